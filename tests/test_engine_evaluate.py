"""The evaluator's metrics (one home each), the length mean of the Chomsky score and the length slice."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch

from seqlib.evaluate import (
    MAX_SLICE_VALUES,
    _metrics,
    _per_example,
    accuracy,
    exact_match,
    f1,
    glitch_rate,
    length_mean,
    mean_loss,
    scaled_accuracy,
    split_metric,
    summarize,
)
from seqlib.tasks.base import Batch, TaskSpec

ROOT = Path(__file__).resolve().parents[1]
BINARY = TaskSpec(input_kind="tokens", output_kind="tokens", loss="bce", num_outputs=1, vocab_size=2)


def _stats(pred: torch.Tensor, target: torch.Tensor, mask: torch.Tensor) -> pd.DataFrame:
    """The evaluator's per-example statistics of 0/1 predictions ``pred`` (as logits of ±1)."""
    batch = Batch(pred, target.float(), mask, torch.zeros_like(pred), {})
    logits = torch.where(pred.bool(), 1.0, -1.0)[..., None]
    return pd.DataFrame(_per_example(logits, batch, BINARY))


def test_metrics_by_hand():
    pred = torch.tensor([[1, 0, 1, 1], [0, 0, 1, 0]])
    target = torch.tensor([[1, 1, 1, 0], [0, 0, 1, 1]])
    mask = torch.tensor([[True, True, False, True], [False, True, True, True]])
    stats = _stats(pred, target, mask)
    # masked pairs: (1,1) (0,1) (1,0) | (0,0) (1,1) (0,1) -> 3 right of 6
    assert accuracy(stats) == pytest.approx(0.5)
    assert glitch_rate(stats) == pytest.approx(0.5)
    # positives: tp = 2, fp = 1, fn = 2 -> F1 = 4 / 7
    assert f1(stats) == pytest.approx(4 / 7)
    assert exact_match(stats) == 0.0
    assert exact_match(_stats(target, target, mask)) == 1.0
    assert scaled_accuracy(0.6, 0.2) == pytest.approx(0.5)
    with pytest.raises(ValueError):
        scaled_accuracy(0.5, 1.0)
    # the split's metrics are these functions, not a second copy of them
    got = _metrics(stats, BINARY)
    assert (got["accuracy"], got["glitch_rate"], got["f1"], got["exact_match"]) == (0.5, 0.5, 4 / 7, 0.0)
    assert got["loss"] == mean_loss(stats) and "scaled_accuracy" not in got  # BINARY has no chance


def test_f1_without_positives_is_one():
    none = torch.zeros((1, 3), dtype=torch.int64)
    assert f1(_stats(none, none, torch.ones((1, 3), dtype=torch.bool))) == 1.0


def _row(split, key, value, metric, v, n=10):
    return {"split": split, "slice_key": key, "slice_value": str(value), "metric": metric, "value": v, "n": n}


def test_length_mean_by_hand():
    rows = [
        _row("test", "all", "all", "accuracy", 0.2, 1020),  # pooled: dominated by length 42
        _row("test", "length", 41, "accuracy", 1.0, 10),
        _row("test", "length", 42, "accuracy", 0.5, 1000),
        _row("test", "length", 43, "accuracy", 0.0, 10),
        _row("test", "length", 41, "loss", 7.0),
        _row("val", "length", 3, "accuracy", 0.9),
        _row("test", "input_length", 41, "accuracy", 0.3),
    ]
    assert length_mean(rows, "test") == pytest.approx(0.5)  # every length weighs the same
    assert length_mean(pd.DataFrame(rows), "test") == pytest.approx(0.5)
    assert length_mean(rows, "val") == pytest.approx(0.9)
    assert length_mean(rows, "test", "loss") == pytest.approx(7.0)
    assert math.isnan(length_mean(rows, "train")) and math.isnan(length_mean([], "test"))
    assert split_metric(rows, "test", "length_mean_accuracy") == pytest.approx(0.5)
    assert split_metric(rows, "test", "accuracy") == pytest.approx(0.2)
    assert math.isnan(split_metric(rows, "test", "f1"))


def _with_length_means(frame: pd.DataFrame) -> pd.DataFrame:
    """``chapters/results.py::with_length_means`` as it stood (the spec ``length_mean`` replaces)."""
    sel = frame[(frame["slice_key"] == "length") & (frame["metric"] == "accuracy")]
    keys = [c for c in frame.columns if c not in ("slice_value", "value", "n", "metric", "slice_key")]
    means = sel.groupby(keys, dropna=False, as_index=False).agg(value=("value", "mean"), n=("n", "sum"))
    return pd.concat([frame, means.assign(slice_key="all", slice_value="all", metric="length_mean_accuracy")],
                     ignore_index=True)


def test_length_mean_equals_the_chapters_score_on_stored_records():
    paths = sorted((ROOT / "results" / "parity_check").glob("*/*.json"))
    records = [r for r in (json.loads(p.read_text()) for p in paths)
               if r["status"] == "ok" and any(m["slice_key"] == "length" for m in r["metrics"])][:2]
    assert len(records) == 2
    frame = pd.DataFrame([m | {"run_id": r["run_id"]} for r in records for m in r["metrics"]])
    old = _with_length_means(frame)
    old = old[old["metric"] == "length_mean_accuracy"].set_index(["run_id", "split"])["value"]
    assert {"val", "test"} <= set(old.index.get_level_values("split"))
    for (rid, split), value in old.items():
        rec = next(r for r in records if r["run_id"] == rid)
        assert length_mean(rec["metrics"], split) == pytest.approx(value, rel=1e-12)
        want = np.mean([m["value"] for m in rec["metrics"] if m["split"] == split
                        and m["slice_key"] == "length" and m["metric"] == "accuracy"])
        assert length_mean(rec["metrics"], split) == pytest.approx(want, rel=1e-12)


def test_the_length_slice_comes_first_and_is_never_capped():
    n = 2 * MAX_SLICE_VALUES
    per_example = pd.DataFrame({
        "n_scored": np.ones(n, dtype=int), "loss_sum": np.zeros(n), "n_correct": np.ones(n, dtype=int),
        "exact": np.ones(n, dtype=bool),
        "meta:value_scale": np.ones(n, dtype=int),  # constant: the same partition as a constant length
        "meta:length": np.full(n, 8),
        "meta:many": np.arange(n),  # more distinct values than a slice may have
    })
    keys = {r["slice_key"] for r in summarize(per_example, BINARY, "test")}
    assert keys == {"all", "length"}
    per_example["meta:length"] = np.arange(n)
    rows = summarize(per_example, BINARY, "test")
    assert {r["slice_key"] for r in rows} == {"all", "length", "value_scale"}
    assert len({r["slice_value"] for r in rows if r["slice_key"] == "length"}) == n


def test_an_evaluation_out_of_gpu_memory_goes_on_in_halves_with_the_same_statistics(tiny_config, tmp_path):
    """A forward that runs out of GPU memory above 3 examples (faked on the CPU): the batch is split in
    halves until it fits, and every per-example statistic is what the whole batch gives."""
    from seqlib.evaluate import evaluate_split_stack
    from seqlib.models import build_model
    from seqlib.tasks import get_task

    cfg = tiny_config(tmp_path, "hawk", "parity_check")
    task = get_task(cfg.task.name, **cfg.task.params)
    torch.manual_seed(0)
    model = build_model(cfg.model, task.spec).eval()
    tried, ran = [], []

    def whole(x, s, index):
        return model(x, s, scored=index)[0][None]

    def small(x, s, index):
        tried.append(x.shape[0])
        if x.shape[0] > 3:
            raise torch.cuda.OutOfMemoryError("CUDA out of memory (faked)")
        ran.append(x.shape[0])
        return whole(x, s, index)

    args = (task, "test", 32, 0, 16, torch.device("cpu"))
    (expected,), (got,) = evaluate_split_stack(whole, 1, *args), evaluate_split_stack(small, 1, *args)
    assert max(tried) > 3 >= max(ran) and sum(ran) == len(expected)  # whole batches failed, their halves ran
    pd.testing.assert_frame_equal(got, expected)

    def never(x, s, index):
        raise torch.cuda.OutOfMemoryError("CUDA out of memory (faked)")

    with pytest.raises(torch.cuda.OutOfMemoryError):  # not even one example fits: the error stands
        evaluate_split_stack(never, 1, *args)


# packed evaluation (seqlib.evaluate.eval_packs): groups smaller than a batch share forward batches
def test_small_groups_pack_up_to_a_batch_and_large_ones_stay_alone():
    from seqlib.evaluate import PER_GROUP, eval_packs, pack_batches
    from seqlib.tasks import get_task

    parity, text = get_task("parity_check"), get_task("text")
    assert eval_packs(parity, [26] * 40, 128) == [list(range(i, i + 4)) for i in range(0, 40, 4)]  # 4 x 26 = 104
    assert pack_batches(parity, [26] * 40, 128) == 10 and pack_batches(parity, [26] * 40, 128, PER_GROUP) == 40
    assert eval_packs(parity, [50, 200, 50, 50, 100], 128) == [[0], [1], [2, 3], [4]]
    assert eval_packs(parity, [64, 64, 1], 128) == [[0, 1], [2]]  # a pack may fill its batch exactly
    assert pack_batches(parity, [50, 200, 50, 50, 100], 128) == 1 + 2 + 1 + 1
    assert eval_packs(parity, [128] * 3, 128) == [[0], [1], [2]]          # the Chomsky test split: as before
    assert eval_packs(text, [32] * 4, 8) == [[0], [1], [2], [3]]          # position buckets: never packed
    assert eval_packs(parity, [26] * 3, 128, PER_GROUP) == [[0], [1], [2]]
    with pytest.raises(ValueError, match="unknown evaluation batching 'mixed'"):
        eval_packs(parity, [1], 8, "mixed")


@pytest.mark.parametrize("model_name", ["hawk", "griffin", "local_transformer", "transformer", "lstm", "gru",
                                        "transformer_vanilla", "simplicial"])
def test_a_packed_evaluation_gives_every_example_the_statistics_of_its_own_group(tiny_config, tmp_path, model_name):
    """Parity's val split at 6 lengths, 7 examples each, in batches of 16: packed, 3 forward batches of
    mixed lengths right-padded; per group, 6. Each example's statistics are the same (causal models)."""
    from seqlib.evaluate import PER_GROUP, evaluate_split
    from seqlib.models import build_model
    from seqlib.tasks import get_task

    cfg = tiny_config(tmp_path, model_name, "parity_check")
    task = get_task(cfg.task.name, **cfg.task.params)
    torch.manual_seed(0)
    model = build_model(cfg.model, task.spec)
    calls = []
    model.register_forward_hook(lambda m, args, out: calls.append(tuple(args[0].shape)))
    args = (model, task, "val", 42, 0, 16, torch.device("cpu"))
    packed = evaluate_split(*args)
    packed_calls, calls[:] = list(calls), []
    alone = evaluate_split(*args, batching=PER_GROUP)
    assert len(packed_calls) == 3 and len(calls) == 6 and len({t for _, t in packed_calls}) > 1
    assert packed.attrs["seq_len"] == alone.attrs["seq_len"]
    exact = [c for c in alone.columns if c != "loss_sum"]
    pd.testing.assert_frame_equal(packed[exact], alone[exact])
    np.testing.assert_allclose(packed["loss_sum"], alone["loss_sum"], rtol=1e-5, atol=1e-6)


def test_padding_that_leaked_into_earlier_positions_would_be_seen(tiny_config, tmp_path):
    """The check above can fail: a forward that reads the whole padded row (a mean over time, not causal)
    changes the packed statistics."""
    from seqlib.evaluate import PER_GROUP, evaluate_split_stack
    from seqlib.models import build_model
    from seqlib.tasks import get_task

    cfg = tiny_config(tmp_path, "hawk", "parity_check")
    task = get_task(cfg.task.name, **cfg.task.params)
    model = build_model(cfg.model, task.spec)

    def leaky(x, s, index):
        logits = model(x, s)[0]
        classes = torch.arange(logits.shape[-1], dtype=logits.dtype)  # a shift by class: softmax sees it
        return (logits + x.float().mean(1)[:, None, None] * classes).flatten(0, 1)[index][None]

    args = (leaky, 1, task, "val", 42, 0, 16, torch.device("cpu"))
    (packed,), (alone,) = evaluate_split_stack(*args), evaluate_split_stack(*args, batching=PER_GROUP)
    assert not np.allclose(packed["loss_sum"], alone["loss_sum"], rtol=1e-5)


def test_a_pooled_head_skips_the_padding_of_a_joined_batch(tiny_config, tmp_path):
    """Subset sum (a pooled head) at two lengths joined into one batch: each example's logits are those
    of its own group alone."""
    from seqlib.evaluate import joined
    from seqlib.models import build_model
    from seqlib.tasks import get_task

    task = get_task("subset_sum")
    cfg = tiny_config(tmp_path, "hawk", "subset_sum", params={})
    torch.manual_seed(0)
    model = build_model(cfg.model, task.spec).eval()
    short, long = task.sample("test", 3, seed=0), task.sample("test_length", 4, seed=0)
    assert short.inputs.shape[1] < long.inputs.shape[1] and task.spec.output_kind == "pooled"
    both = joined([short, long])
    assert both.inputs.shape[:2] == (7, long.inputs.shape[1]) and list(both.meta["length"][:3]) == list(short.meta["length"])
    with torch.no_grad():
        together = model(both.inputs, both.segment_pos)[0]
        apart = torch.cat([model(b.inputs, b.segment_pos)[0] for b in (short, long)])
    torch.testing.assert_close(together, apart, rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("name", ["mqar", "knapsack", "parity_check", "selective_copying", "flipflop", "text"])
def test_the_head_at_the_scored_positions_only_gives_the_same_statistics(name):
    """The evaluator computes a per-position task's head at its scored positions only (``scored_index``:
    MQAR's 16 of 256): every per-example statistic is what the logits of every position give."""
    from test_tasks_registry import small

    from seqlib.evaluate import scored_index
    from seqlib.models import ModelConfig, build_model

    try:
        task = small(name)
        batch = task.sample(task.scoring.split, 6, seed=0)
    except FileNotFoundError as err:  # the text task without the built corpus (make corpus)
        pytest.skip(str(err))
    torch.manual_seed(0)
    model = build_model(ModelConfig(name="hawk", d_model=16, n_layers=2, num_heads=2, window=8), task.spec).eval()
    index = scored_index(batch.mask)
    assert index is not None and len(index) == int(batch.mask.sum())
    with torch.no_grad():
        full = model(batch.inputs, batch.segment_pos)[0]
        at = model(batch.inputs, batch.segment_pos, scored=index)[0]
    assert at.shape[0] == len(index)
    buckets = task.scoring.position_buckets
    every, scored = (pd.DataFrame(_per_example(lg, batch, task.spec, buckets, i)) for lg, i in ((full, None), (at, index)))
    exact = [c for c in every.columns if not c.startswith(("loss_sum", "pos_loss"))]
    pd.testing.assert_frame_equal(scored[exact], every[exact])
    losses = [c for c in every.columns if c.startswith(("loss_sum", "pos_loss"))]
    np.testing.assert_allclose(scored[losses], every[losses], rtol=1e-5, atol=1e-6)
