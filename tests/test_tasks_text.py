"""The byte-level text task on a corpus written here (seqlib.corpus's own writer), and the evaluator's
position buckets and bits."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest
import torch

from seqlib import corpus
from seqlib.evaluate import ConstantAnswer, bucket_labels, evaluate_split, summarize
from seqlib.tasks import get_task
from seqlib.tasks.text import DOC, POSITION_BUCKETS, token_stream


def documents(n: int = 400) -> list[tuple[str, str, bytes]]:
    """Documents whose bytes name their source: gcide's are lower-case letters, the docs' upper-case."""
    rng = np.random.default_rng(0)
    out = []
    for source, letters in (("gcide", b"abcdefgh"), ("python-docs", b"ABCDEFGH")):
        for i in range(n):
            size = int(rng.integers(20, 200))
            out.append((source, f"doc{i}", bytes(rng.choice(list(letters), size).tolist())))
    return out


@pytest.fixture(scope="module")
def root(tmp_path_factory):
    out = tmp_path_factory.mktemp("corpus")
    corpus._write(out, documents(), packages=[])
    return str(out)


def test_the_stream_is_the_split_s_documents_each_after_its_doc_token(root):
    data, starts = corpus.load_split("val", root)
    stream, source_starts, sources = token_stream("val", root)
    assert len(stream) == len(data) + len(starts) and (stream == DOC).sum() == len(starts)
    assert np.array_equal(stream[stream != DOC], np.asarray(data))
    assert np.array_equal(np.flatnonzero(stream == DOC), starts + np.arange(len(starts)))
    assert sources == ("gcide", "python-docs") and source_starts[0] == 0 and stream[source_starts[1]] == DOC
    assert stream[source_starts[1] - 1] == ord("\n") and stream[source_starts[1] + 1] in b"ABCDEFGH"
    assert stream[source_starts[1] - 2] in b"abcdefgh"  # the last gcide document's last letter


@pytest.mark.parametrize("split", ["train", "val", "test", "val_long", "test_long"])
def test_a_window_is_a_stretch_of_its_split_and_predicts_the_next_byte(root, split):
    task = get_task("text", seq_len=32, long_lengths=(48, 64), corpus=root)
    batch = task.sample(split, 64, seed=1)
    stream, source_starts, _ = token_stream(split.removesuffix("_long"), root)
    length = batch.inputs.shape[1]
    assert length == (32 if not split.endswith("_long") else batch.meta["length"][0])
    text = stream.astype(np.int64).tobytes()
    for x, y, m, source in zip(batch.inputs.numpy(), batch.targets.numpy(), batch.mask.numpy(), batch.meta["source"]):
        assert np.array_equal(x[1:], y[:-1]) and x.astype(np.int64).tobytes() in text
        assert np.array_equal(m, y != DOC)  # a document's start is never a target
        letters = b"abcdefgh" if source == "gcide" else b"ABCDEFGH"
        assert x[0] in (*letters, DOC, ord("\n"))
    assert set(batch.meta["source"]) == {"gcide", "python-docs"}


def test_train_bytes_keeps_the_windows_in_the_first_bytes(root):
    task = get_task("text", seq_len=16, long_lengths=(32,), train_bytes=100, corpus=root)
    stream, _, _ = token_stream("train", root)
    head = stream[:100].astype(np.int64).tobytes()
    batch = task.sample("train", 200, seed=0)
    assert all(np.concatenate([x, y[-1:]]).tobytes() in head
               for x, y in zip(batch.inputs.numpy(), batch.targets.numpy()))
    assert not torch.equal(batch.inputs, get_task("text", seq_len=16, long_lengths=(32,), corpus=root)
                           .sample("train", 200, seed=0).inputs)


def test_the_long_splits_visit_every_long_length(root):
    task = get_task("text", seq_len=16, long_lengths=(32, 64), corpus=root)
    assert task.lengths("test_long") == (32, 64) and task.lengths("test") is None
    assert task.sample("test_long", 2, 0, length=64).inputs.shape == (2, 64)
    with pytest.raises(ValueError, match="length=16 is not allowed"):
        task.sample("test_long", 2, 0, length=16)


@pytest.mark.parametrize("params, message", [
    ({"seq_len": 1}, "seq_len=1 violates 2 <= seq_len"),
    ({"seq_len": 64, "long_lengths": (64,)}, "long_lengths=64 violates 65 <= long_lengths"),
    ({"long_lengths": ()}, "long_lengths must name at least one length"),
    ({"seq_len": 64, "train_bytes": 64}, "train_bytes=64 violates 65 <= train_bytes"),
])
def test_bad_parameters_are_refused(params, message):
    with pytest.raises(ValueError, match=message):
        get_task("text", **params)


def test_a_split_too_short_for_the_window_names_the_problem(root):
    size = len(token_stream("val", root)[0])
    task = get_task("text", seq_len=size, long_lengths=(size + 1,), corpus=root)
    with pytest.raises(ValueError, match=f"text/val: {size} tokens cannot hold a window of {size}"):
        task.sample("val", 1, 0)


def test_a_missing_corpus_says_how_to_build_it(tmp_path):
    with pytest.raises(FileNotFoundError, match="make corpus"):
        get_task("text", seq_len=16, long_lengths=(32,), corpus=str(tmp_path)).sample("val", 1, 0)


def test_bucket_labels_cut_the_positions_at_the_window():
    assert bucket_labels((0, 16, 64), 40) == [("0-16", 0, 16), ("16-64", 16, 40)]
    assert bucket_labels((0, 16, 64), 100) == [("0-16", 0, 16), ("16-64", 16, 64), ("64-", 64, 100)]
    assert bucket_labels((), 10) == []


def test_the_evaluator_reports_bits_per_byte_overall_per_position_and_per_source(root):
    """A uniform answer over the 257 outputs costs log2(257) bits at every scored position; the
    position rows pool the buckets' positions, the source rows the windows' sources (their loss)."""
    task = get_task("text", seq_len=32, long_lengths=(80,), corpus=root)
    uniform = ConstantAnswer(task.spec, 0)
    uniform.answer = torch.zeros(task.spec.num_outputs)
    rows = pd.DataFrame(summarize(evaluate_split(uniform, task, "test_long", 12, 0, 4, torch.device("cpu")),
                                  task.spec, "test_long"))
    bits = rows[rows.metric == "bits"]
    assert np.allclose(bits.value, math.log2(257))
    position = bits[bits.slice_key == "position"]
    assert list(position.slice_value) == ["0-16", "16-64", "64-256"] == [lab for lab, *_ in bucket_labels(POSITION_BUCKETS, 80)]
    by_source = rows[(rows.slice_key == "source") & (rows.metric == "loss")]  # a metadata slice: loss, not bits
    assert set(by_source.slice_value) == {"gcide", "python-docs"} and np.allclose(by_source.value, math.log(257))
    loss = rows[(rows.metric == "loss") & (rows.slice_key == "all")].value.item()
    assert bits[bits.slice_key == "all"].value.item() == pytest.approx(loss / math.log(2))


def test_the_position_rows_weigh_each_bucket_by_its_scored_positions():
    """By hand: two examples, buckets (0, 2): the loss of a bucket is its loss sum over its scored count."""
    from seqlib.evaluate import _per_example
    from seqlib.tasks.base import Batch, TaskSpec

    spec = TaskSpec.per_token(3, 1 / 3)
    logits = torch.zeros(2, 4, 3)
    logits[0, :, 0] = 10.0  # example 0 is sure of class 0: about 0 loss where the target is 0
    targets = torch.tensor([[0, 0, 1, 1], [2, 2, 2, 2]])
    mask = torch.tensor([[True, True, True, False], [True, False, True, True]])
    batch = Batch(targets, targets, mask, torch.arange(4).expand(2, 4), {"length": np.array([4, 4])})
    stats = pd.DataFrame(_per_example(logits, batch, spec, (0, 2)))
    assert list(stats["pos_n:0-2"]) == [2, 1] and list(stats["pos_n:2-"]) == [1, 2]
    rows = pd.DataFrame(summarize(stats, spec, "test"))
    rows = rows[(rows.slice_key == "position") & (rows.metric == "loss")].set_index("slice_value").value
    assert rows["0-2"] == pytest.approx(math.log(3) / 3, rel=1e-3)  # two sure hits and one uniform example
    assert rows["2-"] == pytest.approx((10 + math.log(3) * 2) / 3, rel=1e-3)  # one sure miss (about 10 nats)
