"""Selective copying and induction heads: layout invariants, length splits, bad parameters."""

import pytest

from seqlib.tasks.copying import InductionHeads, SelectiveCopying


@pytest.mark.parametrize("split", ["train", "test", "test_length"])
def test_selective_copying_targets_are_the_data_tokens_in_order(split):
    task = SelectiveCopying(seq_len=64, num_tokens=5, test_lengths=(128,))
    b = task.sample(split, 32, 0)
    t = b.inputs.shape[1]
    assert t == (128 if split == "test_length" else 64)
    for r in range(32):
        x = b.inputs[r].tolist()
        data = [v for v in x[: t - 6] if v != 14]
        assert len(data) == 5 and all(v < 14 for v in data)
        assert x[t - 6] == 15 and x[t - 5 :] == [14] * 5
        assert b.targets[r, -5:].tolist() == data
        assert b.mask[r].tolist() == [False] * (t - 5) + [True] * 5


def test_selective_copying_positions_are_spread():
    b = SelectiveCopying(seq_len=64, num_tokens=4).sample("train", 400, 1)
    last = (b.inputs[:, :59] != 14).float().cumsum(dim=1).argmax(dim=1)
    assert (last < 58).float().mean() > 0.5  # unlike MAD, the last data token is not glued to the copy token


def test_induction_heads_recall_token_after_trigger():
    task = InductionHeads(seq_len=32, test_lengths=(64, 128))
    for split in ("train", "test_length"):
        b = task.sample(split, 64, 2)
        t = b.inputs.shape[1]
        for r in range(64):
            x = b.inputs[r].tolist()
            assert x.count(15) == 2 and x[-1] == 15
            p = x.index(15)
            assert p <= t - 3 and b.meta["distance"][r] == t - 1 - p
            assert b.targets[r, -1] == x[p + 1] and b.mask[r].sum() == 1 and b.mask[r, -1]


def test_length_pinning():
    task = InductionHeads(seq_len=32, test_lengths=(64, 128))
    assert task.sample("test_length", 2, 0, length=128).inputs.shape == (2, 128)
    with pytest.raises(ValueError, match="length=96 is not allowed"):
        task.sample("test_length", 2, 0, length=96)


def test_bad_parameters():
    with pytest.raises(ValueError, match="2·num_tokens"):
        SelectiveCopying(seq_len=32, num_tokens=16)
    with pytest.raises(ValueError, match="test_lengths"):
        InductionHeads(seq_len=256, test_lengths=(128,))
    with pytest.raises(ValueError, match="vocab_size"):
        InductionHeads(vocab_size=2)
