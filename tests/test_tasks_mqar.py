"""MQAR: Zoology's invariants, the query-slot law, the length and value splits, bad parameters."""

import numpy as np
import pytest

from seqlib.config import out_of_distribution
from seqlib.tasks import get_task
from seqlib.tasks.mqar import MQAR


def check_example(x, y, m, pairs, vocab, num_passes=1, fill=False):
    half = vocab // 2
    c = 2 * pairs * num_passes
    keys, values = x[0 : 2 * pairs : 2], x[1 : 2 * pairs : 2]
    assert len(set(keys)) == pairs and len(set(values)) == pairs
    assert all(1 <= k < half for k in keys) and all(half <= v < vocab for v in values)
    assert x[:c] == (x[: 2 * pairs]) * num_passes
    labelled = [i for i in range(len(x)) if m[i]]
    assert len(labelled) == pairs and all(i >= c and (i - c) % 2 == 0 for i in labelled)
    kv = dict(zip(keys, values))
    assert sorted(x[i] for i in labelled) == sorted(keys)  # every key queried exactly once
    assert all(y[i] == kv[x[i]] for i in labelled)  # label = its value, on the query key
    others = [x[i] for i in range(c, len(x)) if not m[i]]
    if not fill:
        assert set(others) == {0}


def test_small_example_without_fill():
    # D=2, L=16, no fill: context `k1 v1 k2 v2`, then both keys at even offsets among zeros
    task = MQAR(vocab_size=20, seq_len=16, num_kv_pairs=2, random_non_queries=False)
    b = task.sample("train", 50, 0)
    for r in range(50):
        check_example(b.inputs[r].tolist(), b.targets[r].tolist(), b.mask[r].tolist(), 2, 20)


@pytest.mark.parametrize("num_passes", [1, 2])
def test_invariants(num_passes):
    task = MQAR(vocab_size=256, seq_len=64, num_kv_pairs=8, num_passes=num_passes, random_non_queries=False)
    for split in ("train", "test"):
        b = task.sample(split, 64, 1)
        for r in range(64):
            check_example(b.inputs[r].tolist(), b.targets[r].tolist(), b.mask[r].tolist(), 8, 256, num_passes)
        assert (b.meta["num_kv_pairs"] == 8).all() and (b.meta["length"] == 64).all()


def test_random_non_queries_fill_only_fillers():
    task = MQAR(vocab_size=256, seq_len=64, num_kv_pairs=4)
    b = task.sample("train", 64, 2)
    for r in range(64):
        check_example(b.inputs[r].tolist(), b.targets[r].tolist(), b.mask[r].tolist(), 4, 256, fill=True)
    fillers = b.inputs[:, 8:][~b.mask[:, 8:]]
    assert len(set(fillers.tolist())) > 100  # uniform over [0, V), not zeros


def test_query_slots_follow_power_law():
    # a = 1 gives uniform slots; a = 0.01 piles queries near the context (p ∝ (g+1)^(a-1))
    near = MQAR(vocab_size=4096, seq_len=512, num_kv_pairs=1, random_non_queries=False)
    flat = MQAR(vocab_size=4096, seq_len=512, num_kv_pairs=1, power_a=1.0, random_non_queries=False)
    gap = lambda b: (b.mask.float().argmax(dim=1) - 2) // 2  # noqa: E731
    g_near, g_flat = gap(near.sample("train", 4000, 0)).numpy(), gap(flat.sample("train", 4000, 0)).numpy()
    w = 0.01 * (np.arange(255) + 1.0) ** (0.01 - 1)
    p0 = w[0] / w.sum()
    assert abs((g_near == 0).mean() - p0) < 4 * np.sqrt(p0 * (1 - p0) / 4000)
    assert abs(g_flat.mean() - 127) < 5 and g_flat.max() <= 254


def test_length_split():
    task = MQAR(vocab_size=1024, seq_len=64, num_kv_pairs=4, random_non_queries=False)
    assert task.lengths("test_length") == (64, 128, 192, 256)
    seen = set()
    for seed in range(12):
        b = task.sample("test_length", 8, seed)
        t = b.inputs.shape[1]
        seen.add(t)
        pairs = 4 * t // 64
        assert (b.meta["num_kv_pairs"] == pairs).all() and (b.meta["length"] == t).all()
        check_example(b.inputs[0].tolist(), b.targets[0].tolist(), b.mask[0].tolist(), pairs, 1024)
    assert seen == {64, 128, 192, 256}
    fixed = MQAR(vocab_size=1024, seq_len=64, num_kv_pairs=4, scale_pairs=False)
    assert (fixed.sample("test_length", 2, 0, length=256).meta["num_kv_pairs"] == 4).all()
    with pytest.raises(ValueError, match="vocab_size=200 must be > length 256"):
        MQAR(vocab_size=200, seq_len=64, num_kv_pairs=4).sample("test_length", 2, 0, length=256)


def test_value_split_ids_are_disjoint():
    task = MQAR(vocab_size=256, seq_len=64, num_kv_pairs=4, holdout=0.25)
    tr, te = task.sample("train_value", 200, 0), task.sample("test_value", 200, 0)
    key_cut, val_cut = 1 + round(127 * 0.75), 128 + round(128 * 0.75)
    seen_ids = set(tr.inputs.flatten().tolist()) | set(tr.targets[tr.mask].tolist())
    assert all(i < key_cut or 128 <= i < val_cut for i in seen_ids)
    keys, vals = te.inputs[:, 0:8:2], te.inputs[:, 1:8:2]
    assert (keys >= key_cut).all() and (keys < 128).all() and (vals >= val_cut).all()
    assert (te.targets[te.mask] >= val_cut).all()


@pytest.mark.parametrize(
    "params, match",
    [
        ({"seq_len": 63}, "must be even"),
        ({"vocab_size": 64, "seq_len": 64}, "must be > seq_len"),
        ({"seq_len": 64, "num_kv_pairs": 17}, "more pairs than fit"),
        ({"seq_len": 64, "num_kv_pairs": 11, "num_passes": 2}, "more pairs than fit"),
        ({"holdout": 1.5}, "holdout"),
        ({"vocab_size": 70, "seq_len": 64, "num_kv_pairs": 16, "holdout": 0.9}, "fewer than num_kv_pairs"),
    ],
)
def test_bad_parameters(params, match):
    with pytest.raises(ValueError, match=match):
        get_task("mqar", **{"vocab_size": 8192, **params})


def test_hand_checked_minimal_example():
    # V=8, L=4, D=1: space = 1 slot, so every example is `k v k 0` with v labelled on the query k
    b = MQAR(vocab_size=8, seq_len=4, num_kv_pairs=1, random_non_queries=False).sample("train", 20, 0)
    for x, y, m in zip(b.inputs.tolist(), b.targets.tolist(), b.mask.tolist()):
        k, v = x[0], x[1]
        assert 1 <= k <= 3 and 4 <= v <= 7
        assert x == [k, v, k, 0] and m == [False, False, True, False] and y[2] == v


@pytest.mark.parametrize("num_passes", [1, 2])
def test_value_distances_point_at_the_answer(num_passes):
    """Fresh batches, fillers on (they may repeat a key id): each distance lands on the query's
    value, right after its key, inside the context; and they name the last pass."""
    task = MQAR(vocab_size=256, seq_len=128, num_kv_pairs=6, num_passes=num_passes)
    b = task.sample("train", 32, int(np.random.default_rng().integers(2**31)))
    d = MQAR.value_distances(b)
    rows, pos = np.nonzero(b.mask.numpy())
    x, y = b.inputs.numpy(), b.targets.numpy()
    assert len(d) == len(pos) and (d > 0).all()
    value_at = pos - d
    assert (x[rows, value_at] == y[rows, pos]).all()
    assert (x[rows, value_at - 1] == x[rows, pos]).all()
    assert (value_at < 2 * 6 * num_passes).all() and (value_at >= 2 * 6 * (num_passes - 1)).all()


def test_test_value_is_out_of_distribution_and_val_is_not():
    """test_value's held-out ids show in no metadata, so only the task's declaration marks it; val is
    train's distribution on its own stream."""
    task = get_task("mqar", vocab_size=256, seq_len=64, num_kv_pairs=8)
    assert "test_value" not in task.in_distribution and "val" in task.in_distribution
    assert out_of_distribution(task, "test_value") == (
        "task 'mqar' does not declare it in distribution (its in-distribution splits: train, test, val)")
    assert out_of_distribution(task, "val") is None and out_of_distribution(task, "test") is None
    assert out_of_distribution(task, "test_length").startswith("its length 64..256")
