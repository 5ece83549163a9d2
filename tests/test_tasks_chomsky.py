"""Chomsky-hierarchy tasks: targets recomputed by straightforward reference implementations."""

import math

import numpy as np
import pytest

from seqlib.tasks import get_task
from seqlib.tasks.chomsky import CHOMSKY_TASKS, ChomskyTask

MOD_SYMBOLS = {5: "+", 6: "-", 7: "*", 8: "(", 9: ")"}
EQ_SYMBOLS = {5: "+", 6: "-", 7: "(", 8: ")"}


def stack_result(tokens):
    stack, started = [], False
    for t in tokens:  # bits first, then actions 2/3/4; a 0/1 after an action cannot occur
        if t in (0, 1) and not started:
            stack.append(t)
        else:
            started = True
            if t == 2:
                if stack:
                    stack.pop()
            else:
                stack.append(t - 3)
    return stack[::-1] + [2]


def lsb_int(bits):
    return sum(b << i for i, b in enumerate(bits))


def lsb_bits(v):
    return [int(c) for c in f"{v:b}"[::-1]]


def split_operands(x):
    k = x.index(2)
    return lsb_int(x[:k]), lsb_int(x[k + 1 :])


def expected(name, x, length):
    """The task's answer for input ``x`` (a list), written the simplest way."""
    if name == "even_pairs":
        return [sum(a != b for a, b in zip(x, x[1:])) % 2]
    if name == "parity_check":
        return [sum(x) % 2]
    if name == "cycle_navigation":
        return [sum(t - 1 for t in x) % 5]
    if name == "modular_arithmetic":
        return [eval("".join(str(t) if t < 5 else MOD_SYMBOLS[t] for t in x)) % 5]
    if name == "modular_arithmetic_brackets":
        return [eval("".join(str(t) if t < 5 else MOD_SYMBOLS[t] for t in x)) % 5]
    if name == "solve_equation":
        if length < 3:
            return [0]
        lhs = x[:-2]
        for d in range(5):
            expr = "".join(str(d) if t == 9 else str(t) if t < 5 else EQ_SYMBOLS[t] for t in lhs)
            if eval(expr) % 5 == x[-1]:
                return [d]
    if name == "stack_manipulation":
        out = stack_result(x)
        return out + [0] * (length + 1 - len(out))
    if name == "reverse_string":
        return x[::-1]
    if name == "duplicate_string":
        return x + x
    if name == "missing_duplicate_string":
        if length == 1:
            return [1]
        half = length // 2
        i = x.index(2)
        return [x[i + half] if i < half else x[i - half]]
    if name == "odds_first":
        return x[1::2] + x[0::2]
    if name in ("binary_addition", "binary_multiplication"):
        if length <= 2:
            res = lsb_bits(lsb_int(x)) if name == "binary_addition" else [0] * (length - 1)
        else:
            a, b = split_operands(x)
            res = lsb_bits(a + b if name == "binary_addition" else a * b)
        width = length + 1 if name == "binary_addition" else length
        return res + [2] + [0] * (width - len(res) - 1)
    if name == "compute_sqrt":
        root = math.isqrt(int("".join(map(str, x)), 2))
        return [int(c) for c in f"{root:b}".zfill(math.ceil(length / 2))]
    if name == "bucket_sort":
        return sorted(x)
    raise AssertionError(name)


def scored_len(name, y):
    """Positions the mask must cover: up to the termination token where there is one."""
    if name in ("stack_manipulation", "binary_addition", "binary_multiplication"):
        return y.index(2) + 1
    return len(y)


@pytest.mark.parametrize("cls", CHOMSKY_TASKS, ids=lambda c: c.name)
def test_targets_are_the_function_of_the_input(cls):
    task = cls(train_max_length=12, max_test_length=30)
    for split, seed in (("train", 0), ("val", 1), ("test", 2), ("train", 3)):
        b = task.sample(split, 24, seed)
        length = int(b.meta["length"][0])
        t_in, t_out = int(b.meta["input_length"][0]), task.output_length(length)
        assert b.inputs.shape[1] == t_in + t_out
        assert (b.inputs[:, t_in:] == task.empty_token).all()
        assert not b.mask[:, :t_in].any()
        for row in range(24):
            x = b.inputs[row, :t_in].tolist()
            y = expected(task.name, x, length)
            got = b.targets[row, t_in:].tolist()
            k = scored_len(task.name, y)
            assert got[:k] == y[:k], (task.name, x)
            assert b.mask[row, t_in:].tolist() == [True] * k + [False] * (t_out - k)


@pytest.mark.parametrize("cls", CHOMSKY_TASKS, ids=lambda c: c.name)
def test_every_train_length_works(cls):
    task = cls(train_max_length=40, max_test_length=41)
    for length in (1, 2, 3, 4, 5, 6, 40):
        b = task.sample("train", 3, 0, length=length)
        assert (b.meta["length"] == length).all()


def test_hand_checked_examples():
    # stack manipulation (reference docstring): 0 1 1 0 PUSH1 POP POP -> 1 1 0 2 0 0 0 0
    assert expected("stack_manipulation", [0, 1, 1, 0, 4, 2, 2], 7) == [1, 1, 0, 2, 0, 0, 0, 0]
    task = get_task("stack_manipulation")
    assert task.name == "stack_manipulation"
    # binary addition: 001 + 01101 = 4 + 22 = 26 -> 01011 2 000 (input length 9)
    assert expected("binary_addition", [0, 0, 1, 2, 0, 1, 1, 0, 1], 9) == [0, 1, 0, 1, 1, 2, 0, 0, 0, 0]
    # modular arithmetic 1 + 2 * 3 = 7 = 2 (mod 5); 1 - 1 - 1 = 4
    assert expected("modular_arithmetic", [1, 5, 2, 7, 3], 5) == [2]
    assert expected("modular_arithmetic", [1, 6, 1, 6, 1], 5) == [4]


def test_generator_matches_hand_values():
    """The library's own vectorised helpers on inputs fixed by hand."""
    from seqlib.tasks.chomsky import _eval_no_brackets

    digits = np.array([[1, 2, 3], [1, 1, 1], [4, 3, 2]])
    ops = np.array([[0, 2], [1, 1], [2, 2]])  # 1+2*3, 1-1-1, 4*3*2
    assert _eval_no_brackets(digits, ops).tolist() == [2, 4, 4]


def test_lengths_and_modular_even_length():
    task = get_task("modular_arithmetic", max_test_length=60)
    b = task.sample("test", 4, 0, length=50)
    assert b.meta["input_length"].tolist() == [49] * 4 and b.inputs.shape[1] == 50
    with pytest.raises(ValueError, match="length=10 is not allowed"):
        task.sample("test", 4, 0, length=10)
    lengths = {int(task.sample("train", 1, s).meta["length"][0]) for s in range(200)}
    assert lengths <= set(range(1, 41)) and len(lengths) > 30
    lengths = {int(task.sample("test", 1, s).meta["length"][0]) for s in range(100)}
    assert lengths <= set(range(41, 61))


def test_pinned_length_reproduces_unpinned_batch():
    task = get_task("bucket_sort")
    free = task.sample("train", 5, 9)
    pinned = task.sample("train", 5, 9, length=int(free.meta["length"][0]))
    assert (free.inputs == pinned.inputs).all()


def test_mixed_lengths_pad_with_minus_one():
    task = get_task("duplicate_string", mixed_lengths=True, max_test_length=50)
    b = task.sample("test", 32, 0)
    total = b.meta["input_length"] + b.meta["output_length"]
    assert len(set(total.tolist())) > 1
    for row in range(32):
        t = int(total[row])
        assert b.segment_pos[row, :t].tolist() == list(range(t))
        assert (b.segment_pos[row, t:] == -1).all() and not b.mask[row, t:].any()
        assert (b.inputs[row, t:] == task.pad_token).all()
        x = b.inputs[row, : t // 3].tolist()
        assert b.targets[row, t // 3 : t].tolist() == x + x


def test_chance_levels():
    chance = {c.name: c().spec.chance for c in CHOMSKY_TASKS}
    assert chance["parity_check"] == 0.5 and chance["binary_addition"] == 0.5
    assert chance["cycle_navigation"] == 0.2 and chance["bucket_sort"] == 0.2
    assert all(isinstance(c(), ChomskyTask) for c in CHOMSKY_TASKS)


def test_bad_lengths():
    with pytest.raises(ValueError, match="max_test_length"):
        get_task("parity_check", train_max_length=40, max_test_length=40)
    with pytest.raises(ValueError, match="train_max_length"):
        get_task("parity_check", train_max_length=0)


def test_test_length_step_samples_every_kth_length():
    task = get_task("parity_check", train_max_length=40, max_test_length=60, test_length_step=5)
    assert list(task.lengths("test")) == [41, 46, 51, 56]
    assert list(task.lengths("train")) == list(range(1, 41))  # training lengths are untouched
    drawn = {int(task.sample("test", 1, s).meta["length"][0]) for s in range(60)}
    assert drawn == {41, 46, 51, 56}
    mixed = get_task("parity_check", max_test_length=60, test_length_step=5, mixed_lengths=True)
    assert set(mixed.sample("test", 64, 0).meta["length"].tolist()) <= {41, 46, 51, 56}
    with pytest.raises(ValueError, match=r"41\.\.56 every 5"):
        task.sample("test", 2, 0, length=42)
    with pytest.raises(ValueError, match="test_length_step"):
        get_task("parity_check", test_length_step=0)
