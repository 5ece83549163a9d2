"""Flip-flop: read bits equal the last written bit, instruction frequencies, splits, format."""

import numpy as np
import pytest

from seqlib.tasks import get_task
from seqlib.tasks.flipflop import FlipFlop


def reference_reads(tokens):
    """(position of each read instruction, the bit it must return), by a plain scan."""
    state, out = None, []
    for t in range(0, len(tokens), 2):
        instr, bit = tokens[t], tokens[t + 1] - 3
        if instr == 0:
            state = bit
        elif instr == 1:
            out.append((t, state))
    return out


@pytest.mark.parametrize("split", FlipFlop.splits)
def test_reads_return_last_write_and_only_they_are_scored(split):
    task = FlipFlop(seq_len=128)
    b = task.sample(split, 64, 0)
    for r in range(64):
        x = b.inputs[r].tolist()
        assert x[0] == 0 and x[-2] == 1 and set(x[0::2]) <= {0, 1, 2} and set(x[1::2]) <= {3, 4}
        reads = reference_reads(x)
        assert b.mask[r].nonzero().flatten().tolist() == [t for t, _ in reads]
        assert all(b.targets[r, t] == bit + 3 == x[t + 1] for t, bit in reads)
        assert b.meta["num_reads"][r] == len(reads)


@pytest.mark.parametrize("split, p_i", [("train", 0.8), ("val", 0.8), ("val_dense", 0.1), ("val_sparse", 0.98)])
def test_instruction_frequencies(split, p_i):
    b = get_task("flipflop").sample(split, 200, 1)
    middle = b.inputs[:, 2:-2:2].numpy()  # the i.i.d. instructions between the first w and last r
    k = middle.size
    tol = lambda p: 5 * np.sqrt(p * (1 - p) / k) + 1e-9  # noqa: E731
    p_w = (1 - p_i) / 2
    assert abs((middle == 2).mean() - p_i) < tol(p_i)
    assert abs((middle == 0).mean() - p_w) < tol(p_w)
    assert abs((middle == 1).mean() - p_w) < tol(p_w)
    assert (b.meta["p_i"] == p_i).all()


def test_hand_example_alignment():
    # tokens w1 i0 r1: the read at position 4 is scored, its target is the next token "1" (id 4)
    task = FlipFlop(seq_len=6)
    b = task.sample("train", 500, 0)
    x = b.inputs.numpy()
    rows = np.nonzero((x == [0, 4, 2, 3, 1, 4]).all(axis=1))[0]
    assert len(rows) > 0
    r = rows[0]
    assert b.mask[r].tolist() == [False, False, False, False, True, False]
    assert int(b.targets[r, 4]) == 4


def test_sparse_split_has_few_reads():
    b = get_task("flipflop").sample("val_sparse", 500, 0)
    assert 2.5 < b.meta["num_reads"].mean() < 4.5  # ≈ 1 + 254·0.01 ≈ 3.5


def test_bad_length():
    with pytest.raises(ValueError, match="must be even"):
        FlipFlop(seq_len=511)
