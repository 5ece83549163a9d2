"""DP tasks: targets checked against brute force over all subsets; encodings; splits; errors."""

import itertools

import numpy as np
import pytest
import torch

from seqlib.tasks import get_task
from seqlib.tasks.dp import DP_TASKS, shift_rows


def subsets(m):
    """All indicator vectors in lexicographic order (item 0 first), so the first optimum is the smallest."""
    return list(itertools.product((0, 1), repeat=m))


def knapsack(v, w, cap):
    best = max(sum(a * b for a, b in zip(s, v)) for s in subsets(len(v)) if sum(a * b for a, b in zip(s, w)) <= cap)
    return next(s for s in subsets(len(v)) if sum(a * b for a, b in zip(s, w)) <= cap and sum(a * b for a, b in zip(s, v)) == best)


def coin_change(c, t):
    ok = [s for s in subsets(len(c)) if sum(a * b for a, b in zip(s, c)) == t]
    if not ok:
        return (0,) * len(c)
    k = min(sum(s) for s in ok)
    return next(s for s in ok if sum(s) == k)


def partition(x):
    total = sum(x)
    gap = lambda s: abs(total - 2 * sum(a * b for a, b in zip(s, x)))  # noqa: E731
    best = min(gap(s) for s in subsets(len(x)))
    return next(s for s in subsets(len(x)) if gap(s) == best)


def subset_sum(x, t):
    return int(any(sum(a * b for a, b in zip(s, x)) == t for s in subsets(len(x)) if any(s)))


def lis(x):
    best = 0
    for s in subsets(len(x)):
        seq = [v for a, v in zip(s, x) if a]
        if all(p < q for p, q in zip(seq, seq[1:])):
            best = max(best, len(seq))
    return best


def rows(split, name, n=40, **params):
    task = get_task(name, num_items=6, ood_num_items=7, **params)
    b = task.sample(split, n, 0)
    return task, b


@pytest.mark.parametrize("split", ["train", "test_length", "test_value"])
def test_pointer_targets_match_brute_force(split):
    for name, solve in (("knapsack", knapsack), ("min_coin_change", coin_change), ("balanced_partition", partition)):
        task, b = rows(split, name)
        m = int(b.meta["length"][0])
        x = b.inputs.numpy()
        for r in range(len(b)):
            items = x[r, :m]
            if name == "knapsack":
                want = solve(items[:, 0].astype(int), items[:, 1].astype(int), int(items[0, 2]))
            elif name == "min_coin_change":
                want = solve(items[:, 0].astype(int), int(items[0, 1]))
            else:
                want = solve(items[:, 0].astype(int))
            assert b.targets[r, m:].tolist() == list(want), (name, items)
            assert b.mask[r].tolist() == [False] * m + [True] * m
            assert (x[r, :m, -1] == 0).all() and (x[r, m:, -1] == 1).all()
            assert np.array_equal(x[r, m:, :-1], items[:, :-1])


@pytest.mark.parametrize("split", ["train", "test_length", "test_value"])
def test_pooled_targets_match_brute_force(split):
    _, b = rows(split, "subset_sum", n=80)
    x = b.inputs.numpy()
    got = [subset_sum(x[r, :, 0].astype(int), int(x[r, 0, 1])) for r in range(80)]
    assert b.targets.tolist() == got
    assert 0.3 < np.mean(got) < 0.7  # about half solvable
    _, b = rows(split, "lis")
    x = b.inputs.numpy()
    assert b.targets.tolist() == [lis(x[r, :, 0].astype(int)) for r in range(len(b))]
    assert np.allclose(x[0, :, 1], np.exp(np.arange(x.shape[1]) / (x.shape[1] - 1)))


def test_hand_checked_instances():
    # knapsack v=(6,5,5) w=(3,2,2) C=4: {1,2} (value 10) beats {0} (6)
    assert knapsack((6, 5, 5), (3, 2, 2), 4) == (0, 1, 1)
    # coins (5,2,3,5) T=5: one coin suffices; lexicographically smallest is the last 5
    assert coin_change((5, 2, 3, 5), 5) == (0, 0, 0, 1)
    # partition (3,1,2): {3} vs {1,2}: smallest indicator is (0,1,1)
    assert partition((3, 1, 2)) == (0, 1, 1)
    assert lis((3, 1, 2, 2, 4)) == 3 and subset_sum((4, -4), 0) == 1 and subset_sum((4, 5), 0) == 0
    # the library's shift primitive
    a = np.array([[1, 2, 3], [4, 5, 6]])
    assert shift_rows(a, np.array([1, -2]), 0).tolist() == [[0, 1, 2], [6, 0, 0]]


def test_value_ranges_per_split():
    task = get_task("knapsack", num_items=6, ood_num_items=9)
    tr, ood_v, ood_l = (task.sample(s, 300, 0).inputs for s in ("train", "test_value", "test_length"))
    assert tr[..., :2].max() == 10 and tr[..., 2].min() >= 10 and tr[..., 2].max() <= 20
    assert ood_v[..., :2].max() > 10 and ood_v[..., 2].max() > 20
    assert tr.shape[1] == 12 and ood_l.shape[1] == 18


@pytest.mark.parametrize("cls", DP_TASKS, ids=lambda c: c.name)
def test_token_encoding_mirrors_features(cls):
    feats = cls(encoding="features", num_items=5, ood_num_items=6)
    toks = cls(encoding="tokens", num_items=5, ood_num_items=6)
    for split in ("train", "test_value"):
        bf, bt = feats.sample(split, 16, 4), toks.sample(split, 16, 4)
        assert torch.equal(bf.targets[bf.mask], bt.targets[bt.mask])  # same instances, same answers
        spec = toks.spec
        assert spec.input_kind == "tokens" and bt.inputs.max() < spec.vocab_size
        f = cls.item_fields
        items = bf.inputs[:, :5, :f].long()
        numbers = bt.inputs[bt.inputs >= 3].reshape(16, -1) - 3 + toks._num_min
        g = cls.global_fields
        assert torch.equal(numbers[:, g : g + 5 * f].reshape(16, 5, f), items)
        if cls.pointer:
            assert (bt.inputs[bt.mask] == 2).all() and bt.mask.sum(dim=1).eq(5).all()


def test_bad_parameters():
    with pytest.raises(ValueError, match="encoding"):
        get_task("knapsack", encoding="onehot")
    with pytest.raises(ValueError, match="ood_num_items"):
        get_task("lis", num_items=8, ood_num_items=8)
    with pytest.raises(ValueError, match="num_items"):
        get_task("lis", num_items=1)


def test_bitset_shift_matches_boolean_shift():
    from seqlib.tasks.dp import bitset_has, bitset_unpack, shift_bitsets

    rng = np.random.default_rng(0)
    bits = rng.random((30, 300)) < 0.3
    words = np.zeros((30, 5), dtype=np.uint64)
    for r, t in zip(*np.nonzero(bits)):
        words[r, t // 64] |= np.uint64(1) << np.uint64(t % 64)
    assert (bitset_unpack(words, 300) == bits).all()
    shifts = rng.integers(-150, 150, size=30)  # several words, both directions
    got = bitset_unpack(shift_bitsets(words, shifts), 320)
    for r in range(30):
        want = np.zeros(320, dtype=bool)
        idx = np.nonzero(bits[r])[0] + shifts[r]
        want[idx[(idx >= 0) & (idx < 320)]] = True
        assert (got[r] == want).all()
    probe = np.array([[5, -1, 400]] * 30)
    assert (bitset_has(words, probe) == np.stack([bits[:, 5], np.zeros(30, bool), np.zeros(30, bool)], 1)).all()


def test_subset_sum_with_many_repeated_values():
    # 12 items over 11 values: repeats exercise the binary splitting of equal items
    task = get_task("subset_sum", num_items=12, ood_num_items=13)
    b = task.sample("train", 40, 5)
    x = b.inputs.numpy()
    assert max(np.bincount(x[r, :, 0].astype(int) + 5).max() for r in range(40)) >= 4
    assert b.targets.tolist() == [subset_sum(x[r, :, 0].astype(int), int(x[r, 0, 1])) for r in range(40)]


@pytest.mark.parametrize("name", ["knapsack", "subset_sum", "lis", "stack_manipulation"])
def test_constant_answer_scores_as_by_hand(name):
    """The evaluator's metrics for a constant answer equal the ones worked out from the targets."""
    import pandas as pd

    from seqlib.evaluate import ConstantAnswer, _metrics, _per_example

    task = get_task(name)
    batch = task.sample("test", 64, seed=int(np.random.default_rng().integers(2**31)))
    y = batch.targets[batch.mask].double()
    answer = 2.5 if task.spec.loss == "mse" else 1
    logits, _ = ConstantAnswer(task.spec, answer)(batch.inputs, batch.segment_pos)
    got = _metrics(pd.DataFrame(_per_example(logits, batch, task.spec)), task.spec)
    if task.spec.loss == "mse":
        assert got["loss"] == pytest.approx(float(((y - answer) ** 2).mean()), rel=1e-5)
    else:
        p = float((y == answer).double().mean())
        assert got["accuracy"] == pytest.approx(p)
        if task.spec.loss == "bce":
            assert got["f1"] == pytest.approx(2 * p / (1 + p))


def test_constant_baselines_complements_the_mean_and_bad_answers():
    from seqlib.evaluate import ConstantAnswer, _metrics, constant_baselines, evaluate_split

    whole = lambda t: t[t["slice_key"] == "all"].pivot_table(index="answer", columns="metric", values="value")  # noqa: E731
    decision = whole(constant_baselines(get_task("subset_sum"), ("test",), n=256, seed=3))
    assert list(decision.index) == ["always 0", "always 1"] and decision["accuracy"].sum() == pytest.approx(1.0)
    lis = get_task("lis")
    table = whole(constant_baselines(lis, ("test_length",), n=256, seed=3))
    (label, best), = table["loss"].items()
    mean = float(label.split("(")[1].rstrip(")"))

    def mse(v):
        return _metrics(evaluate_split(ConstantAnswer(lis.spec, v), lis, "test_length", 256, 3, 256,
                                       torch.device("cpu")), lis.spec)["loss"]

    assert best == pytest.approx(mse(mean), abs=1e-3) and best < min(mse(mean - 0.1), mse(mean + 0.1))
    with pytest.raises(ValueError, match="not an answer"):
        ConstantAnswer(get_task("knapsack").spec, 0.5)
    with pytest.raises(ValueError, match="more than 16"):
        constant_baselines(get_task("mqar"), ("test",), n=8)
