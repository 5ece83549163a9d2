"""The 15 tasks of the Chomsky-hierarchy benchmark (Delétang et al., ICLR 2023, arXiv 2207.02098).

Source: ``google-deepmind/neural_networks_chomsky_hierarchy`` (HEAD 2b8eb4b), ``tasks/{regular,dcf,cs}/*.py``
for the input/output definitions and ``experiments/utils.py::make_model_with_empty_targets`` for the
non-autoregressive format. Every task class below states its definition; the common protocol is in
:class:`ChomskyTask`.
"""

from __future__ import annotations

import math
from typing import ClassVar

import numpy as np

from ._common import check_int, make_batch, pad_right, pick_length, segment_positions, streams
from .base import Batch, Task, TaskSpec
from .scoring import LENGTH_KEY, Scoring

MODULUS = 5
# modular_arithmetic_brackets alphabet (solve_equation remaps brackets, see SolveEquation)
PLUS, MINUS, TIMES, LPAR, RPAR = 5, 6, 7, 8, 9


class ChomskyTask(Task):
    """Common protocol of the Chomsky-hierarchy tasks.

    **Format (non-autoregressive, as the reference's ``make_model_with_empty_targets``).** A row is
    the input string (token ids ``0..input_size-1``, the reference's one-hot indices) followed by
    ``output_length(L)`` *empty* tokens (id ``input_size``); the targets (ids ``0..output_size-1``)
    and the mask sit on those empty positions only, predictions are read there. No computation
    tokens (``computation_steps_mult = 0``, the paper's setting). Pad id ``input_size + 1`` only
    appears with ``mixed_lengths``.

    **Lengths.** ``train`` and ``val`` (in-distribution, separate seed stream): ``L`` uniform in
    ``1..train_max_length`` (40); ``test``: ``L`` uniform in ``train_max_length+1..max_test_length``
    (500 in the paper; lower it for smoke runs). As the reference's ``UniformCurriculum``, **one length
    per batch** by default; ``sample(..., length=L)`` pins it (range evaluation: every length, 512
    sequences each). ``test_length_step=k`` keeps every k-th test length from ``train_max_length+1``
    up to ``max_test_length``: a systematic sample of the range whose mean estimates the
    all-lengths score, for evaluations too small to fill hundreds of lengths (our option). ``mixed_lengths=True`` instead draws a length per example and right-pads
    (``segment_pos = -1``, mask False): our option, not in the reference.

    **Metric.** Per-token masked accuracy (argmax), averaged over test lengths
    (``seqlib.evaluate.length_mean``, the card's ``length_mean_accuracy``); scaled accuracy
    ``(acc - chance)/(1 - chance)`` with ``spec.chance`` = 1/(number of answer symbols): 1/2 for the
    binary tasks, 1/5 for the mod-5 tasks and bucket sort, as the paper's chance levels (the
    termination token of stack manipulation / binary addition / multiplication is not counted).

    **Deviations.** numpy ``Generator`` streams per ``(task, split, seed)`` instead of JAX keys, the
    global numpy RNG and Python's ``random``; same distributions, different bytes. The reference
    computes the *loss* on every output position (also the zero padding after the termination token
    of stack manipulation / binary addition / multiplication) and masks only the accuracy; our one
    mask covers loss and accuracy alike, so that padding is not trained on.

    meta: ``length`` (the sampled L), ``input_length`` (tokens of the input string: L, except for
    modular arithmetic at even L), ``output_length``.
    """

    splits = ("train", "val", "test")
    in_distribution = ("train", "val")  # test: the longer lengths
    level: ClassVar[str]
    input_size: ClassVar[int]
    output_size: ClassVar[int]
    answer_symbols: ClassVar[int | None] = None  # for chance; defaults to output_size

    def __init__(self, train_max_length: int = 40, max_test_length: int = 500, mixed_lengths: bool = False,
                 test_length_step: int = 1) -> None:
        self.train_max_length = check_int("train_max_length", train_max_length, 1)
        self.max_test_length = check_int("max_test_length", max_test_length, self.train_max_length + 1)
        self.mixed_lengths = bool(mixed_lengths)
        self.test_length_step = check_int("test_length_step", test_length_step, 1)

    # -- per-task definition -------------------------------------------------------------
    def output_length(self, length: int) -> int:
        return 1

    def input_length(self, length: int) -> int:
        return length

    def generate(self, rng: np.random.Generator, n: int, length: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """``(inputs [n, input_length], outputs [n, output_length], output_mask)`` at length L."""
        raise NotImplementedError

    # -- common protocol -----------------------------------------------------------------
    @property
    def empty_token(self) -> int:
        return self.input_size

    @property
    def pad_token(self) -> int:
        return self.input_size + 1

    @property
    def spec(self) -> TaskSpec:
        return TaskSpec.per_token(self.input_size + 2, 1.0 / (self.answer_symbols or self.output_size),
                                  num_outputs=self.output_size)

    @property
    def scoring(self) -> Scoring:
        """Delétang et al. 2023 (tasks.md §2.2): accuracy on the test lengths averaged over lengths;
        ``>= 90%`` counts as generalising; the curve runs over ``val`` (trained lengths) and ``test``."""
        return Scoring(
            metric="length_mean_accuracy",
            label="accuracy, length mean",
            train_lengths=(1, self.train_max_length),
            curve_splits=("val", "test"),
            solve_threshold=0.9,
            threshold_source="Delétang et al. 2023: >= 90% test accuracy counts as generalising",
            chance=self.spec.chance,
        )

    def lengths(self, split: str) -> range:
        self.check_split(split)
        if split == "test":
            return range(self.train_max_length + 1, self.max_test_length + 1, self.test_length_step)
        return range(1, self.train_max_length + 1)

    def sample(self, split: str, n: int, seed: int, *, length: int | None = None) -> Batch:
        check_int("n", n, 1)
        len_rng, rng = streams(self, split, seed)
        allowed = self.lengths(split)
        if self.mixed_lengths and length is None:
            per_example = np.asarray(allowed)[len_rng.integers(0, len(allowed), size=n)]
        else:
            per_example = np.full(n, pick_length(len_rng, allowed, length, f"{self.name} split {split!r}"))
        order, blocks = [], []
        for ell in np.unique(per_example):
            idx = np.nonzero(per_example == ell)[0]
            order.append(idx)
            blocks.append(self._rows(rng, len(idx), int(ell)))
        widths = [b[0].shape[1] for b in blocks]
        width = max(widths)
        perm = np.argsort(np.concatenate(order), kind="stable")
        tokens = pad_right([b[0] for b in blocks], width, self.pad_token)[perm]
        targets = pad_right([b[1] for b in blocks], width, 0)[perm]
        mask = pad_right([b[2] for b in blocks], width, False)[perm]
        total = np.concatenate([np.full(len(i), w) for i, w in zip(order, widths)])[perm]
        meta = {
            LENGTH_KEY: per_example,
            "input_length": np.array([self.input_length(int(ell)) for ell in per_example]),
            "output_length": np.array([self.output_length(int(ell)) for ell in per_example]),
        }
        return make_batch(tokens, targets, mask, meta, segment_positions(total, width))

    def _rows(self, rng: np.random.Generator, n: int, length: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        x, y, ymask = self.generate(rng, n, length)
        t_in, t_out = x.shape[1], y.shape[1]
        tokens = np.concatenate([x, np.full((n, t_out), self.empty_token, dtype=np.int64)], axis=1)
        targets = np.zeros((n, t_in + t_out), dtype=np.int64)
        targets[:, t_in:] = y
        mask = np.zeros((n, t_in + t_out), dtype=bool)
        mask[:, t_in:] = ymask
        return tokens, targets, mask


def _all(y: np.ndarray) -> np.ndarray:
    return np.ones(y.shape, dtype=bool)


def _cls(labels: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    y = labels.astype(np.int64)[:, None]
    return y, _all(y)


def _bits(rng: np.random.Generator, n: int, length: int, vocab: int = 2) -> np.ndarray:
    return rng.integers(0, vocab, size=(n, length), dtype=np.int64)


def _until_terminator(out: np.ndarray, stop: np.ndarray) -> np.ndarray:
    """Mask of positions up to and including the termination token at index ``stop`` per row."""
    return np.arange(out.shape[1])[None, :] <= stop[:, None]


# ---------------------------------------------------------------------------------------------
# Regular
# ---------------------------------------------------------------------------------------------


class EvenPairs(ChomskyTask):
    """Even pairs (R; ``tasks/regular/even_pairs.py``): uniform bits; class = (#01 + #10) mod 2.

    Example: ``001110`` → 0 (one 01, one 10); ``0101001`` → 1.
    """

    name, level, input_size, output_size = "even_pairs", "R", 2, 2

    def generate(self, rng, n, length):
        s = _bits(rng, n, length)
        return (s, *_cls((s[:, 1:] != s[:, :-1]).sum(axis=1) % 2))


class ParityCheck(ChomskyTask):
    """Parity check (R; ``tasks/regular/parity_check.py``): uniform bits; class = #1s mod 2."""

    name, level, input_size, output_size = "parity_check", "R", 2, 2

    def generate(self, rng, n, length):
        s = _bits(rng, n, length)
        return (s, *_cls(s.sum(axis=1) % 2))


class CycleNavigation(ChomskyTask):
    """Cycle navigation (R; ``tasks/regular/cycle_navigation.py``): tokens 0/1/2 are moves −1/0/+1
    on a cycle of 5 starting at 0; class = final position = Σ(token − 1) mod 5.
    """

    name, level, input_size, output_size = "cycle_navigation", "R", 3, MODULUS

    def generate(self, rng, n, length):
        s = _bits(rng, n, length, 3)
        return (s, *_cls((s - 1).sum(axis=1) % MODULUS))


def _eval_no_brackets(digits: np.ndarray, ops: np.ndarray) -> np.ndarray:
    """Value mod 5 of ``d0 o0 d1 o1 ... dm`` with ``·`` before ``±`` (ops: 0 '+', 1 '−', 2 '·').

    Products of consecutive ``·``-joined digits by a segmented doubling scan (log2 m steps).
    """
    n, m1 = digits.shape
    k = np.arange(m1)
    start = np.ones((n, m1), dtype=bool)
    start[:, 1:] = ops != 2
    seg = np.maximum.accumulate(np.where(start, k, 0), axis=1)
    prod = digits % MODULUS
    d = 1
    while d < m1:
        same = (k[d:] - d)[None, :] >= seg[:, d:]
        prod[:, d:] = np.where(same, prod[:, d:] * prod[:, :-d] % MODULUS, prod[:, d:])
        d *= 2
    end = np.ones((n, m1), dtype=bool)
    end[:, :-1] = start[:, 1:]
    sign = np.ones((n, m1), dtype=np.int64)
    sign[:, 1:] = np.where(ops == 1, -1, 1)
    term_sign = np.take_along_axis(sign, seg, axis=1)
    return (np.where(end, term_sign * prod, 0).sum(axis=1)) % MODULUS


class ModularArithmetic(ChomskyTask):
    """Modular arithmetic without brackets ("Simple", R; ``tasks/regular/modular_arithmetic.py``).

    Odd length (an even L is lowered to L−1, as the reference): digits 0–4 at even positions,
    operators at odd positions uniform over {+ = 5, − = 6, · = 7}; id 8 (blank) exists in the
    input alphabet but is never sampled. Class = value mod 5, ``·`` before ``±``.
    Example: ``1 + 2 · 3`` → 2; ``1 − 1 − 1`` → 4.
    """

    name, level, input_size, output_size = "modular_arithmetic", "R", 9, MODULUS

    def input_length(self, length):
        return length if length % 2 else length - 1

    def generate(self, rng, n, length):
        m = self.input_length(length) // 2
        digits = rng.integers(0, MODULUS, size=(n, m + 1), dtype=np.int64)
        ops = rng.integers(0, 3, size=(n, m), dtype=np.int64)
        x = np.empty((n, 2 * m + 1), dtype=np.int64)
        x[:, ::2] = digits
        x[:, 1::2] = ops + PLUS
        return (x, *_cls(_eval_no_brackets(digits, ops)))


# ---------------------------------------------------------------------------------------------
# Deterministic context-free
# ---------------------------------------------------------------------------------------------


class StackManipulation(ChomskyTask):
    """Stack manipulation (DCF; ``tasks/dcf/stack_manipulation.py``).

    Input: ``s ~ U{1..L−1}`` stack bits (bottom → top), then ``L−s`` actions uniform over
    {2 = POP, 3 = PUSH 0, 4 = PUSH 1} (L = 1: a one-bit stack, no action); POP on an empty stack is
    ignored. Output (length L+1): the final stack top → bottom, the termination token 2, zeros;
    masked after the 2. Example: ``0 1 1 0 PUSH1 POP POP`` → ``1 1 0 2 0 0 0 0``.
    Vectorised: heights are a reflected walk, a pushed symbol survives iff the height never drops
    below its own afterwards.
    """

    name, level, input_size, output_size, answer_symbols = "stack_manipulation", "DCF", 5, 3, 2

    def output_length(self, length):
        return length + 1

    def generate(self, rng, n, length):
        pos = np.arange(length)[None, :]
        s = np.ones(n, dtype=np.int64) if length == 1 else rng.integers(1, length, size=n)
        in_stack = pos < s[:, None]
        x = np.where(in_stack, _bits(rng, n, length), rng.integers(2, 5, size=(n, length)))
        push = in_stack | (x >= 3)
        value = np.where(in_stack, x, x - 3)
        walk = np.cumsum(np.where(push, 1, -1), axis=1)
        height = walk - np.minimum(np.minimum.accumulate(walk, axis=1), 0)
        later_min = np.minimum.accumulate(height[:, ::-1], axis=1)[:, ::-1]
        survives = push & (later_min >= height)
        top = height[:, -1]
        y = np.zeros((n, length + 1), dtype=np.int64)
        r, c = np.nonzero(survives)
        y[r, top[r] - height[r, c]] = value[r, c]
        y[np.arange(n), top] = 2
        return x, y, _until_terminator(y, top)


class ReverseString(ChomskyTask):
    """Reverse string (DCF; ``tasks/dcf/reverse_string.py``): bits → the reversed string."""

    name, level, input_size, output_size = "reverse_string", "DCF", 2, 2

    def output_length(self, length):
        return length

    def generate(self, rng, n, length):
        s = _bits(rng, n, length)
        y = s[:, ::-1].copy()
        return s, y, _all(y)


def _bracket_expressions(rng: np.random.Generator, n: int, length: int, mult: bool) -> tuple[np.ndarray, np.ndarray]:
    """``n`` random bracketed expressions of exactly ``length`` tokens and their values mod 5.

    The reference grammar (``modular_arithmetic_brackets.py::generate_one_expression_and_result``):
    lengths 1/2/3/4 give ``d``, ``-d``, ``(d)``, ``(-d)``; longer: left length ~ U{1..len−4},
    right = len − left − 3, ``(left op right)`` with op uniform over {+, −} or {+, −, ·}. The
    recursion is unrolled level by level over the whole batch; values are combined bottom-up.
    """
    tokens = np.zeros((n, length), dtype=np.int64)
    ex, st, ln = np.arange(n), np.zeros(n, dtype=np.int64), np.full(n, length, dtype=np.int64)
    levels = []
    while len(ex):
        val = np.zeros(len(ex), dtype=np.int64)
        leaf = ln <= 4
        e, s0, ell = ex[leaf], st[leaf], ln[leaf]
        d = rng.integers(0, MODULUS, size=len(e))
        neg, par = (ell == 2) | (ell == 4), ell >= 3
        tokens[e, s0 + par + neg] = d
        tokens[e[par], s0[par]] = LPAR
        tokens[e[par], s0[par] + ell[par] - 1] = RPAR
        tokens[e[neg], s0[neg] + par[neg]] = MINUS
        val[leaf] = np.where(neg, -d, d) % MODULUS
        inner = np.nonzero(~leaf)[0]
        e, s0, ell = ex[inner], st[inner], ln[inner]
        left = rng.integers(1, ell - 3)
        op = rng.integers(0, 3 if mult else 2, size=len(e))
        tokens[e, s0] = LPAR
        tokens[e, s0 + 1 + left] = PLUS + op
        tokens[e, s0 + ell - 1] = RPAR
        levels.append((val, inner, op))
        ex = np.concatenate([e, e])
        st = np.concatenate([s0 + 1, s0 + 2 + left])
        ln = np.concatenate([left, ell - left - 3])
    below = np.zeros(0, dtype=np.int64)
    for val, inner, op in reversed(levels):
        k = len(inner)
        a, b = below[:k], below[k:]
        val[inner] = np.select([op == 0, op == 1], [a + b, a - b], a * b) % MODULUS
        below = val
    return tokens, below


class ModularArithmeticBrackets(ChomskyTask):
    """Modular arithmetic with brackets (DCF; ``tasks/dcf/modular_arithmetic_brackets.py``).

    A bracketed expression of exactly L tokens from the reference grammar (see
    ``_bracket_expressions``) with ``mult=True`` (as ``experiments/constants.py``); ids digits 0–4,
    + 5, − 6, · 7, ( 8, ) 9 (input size 11: 10 is the reference's unused ``x``). Class = value mod 5.
    Example: ``((1+2)·-3)`` → 1.
    """

    name, level, input_size, output_size = "modular_arithmetic_brackets", "DCF", 11, MODULUS

    def generate(self, rng, n, length):
        x, v = _bracket_expressions(rng, n, length, mult=True)
        return (x, *_cls(v))


class SolveEquation(ChomskyTask):
    """Solve equation (DCF; ``tasks/dcf/solve_equation.py``).

    A ±-only bracketed expression of length L−2 (grammar of ``_bracket_expressions``, ``mult=False``),
    one digit replaced by ``x`` (a position drawn uniformly, moved cyclically forward to the next
    digit, as the reference), then ``=`` and the expression's value: L tokens. Class = the replaced
    digit. Ids: digits 0–4, + 5, − 6, ( 7, ) 8, x 9, = 10. For L < 3 the reference emits L zeros with
    class 0; so do we. Example: ``(x+3)=0`` → 2.
    """

    name, level, input_size, output_size = "solve_equation", "DCF", 11, MODULUS

    def generate(self, rng, n, length):
        if length < 3:
            x = np.zeros((n, length), dtype=np.int64)
            return (x, *_cls(np.zeros(n)))
        m = length - 2
        expr, value = _bracket_expressions(rng, n, m, mult=False)
        expr = np.select([expr == LPAR, expr == RPAR], [7, 8], expr)
        idx = rng.integers(0, m, size=n)
        is_digit = expr < MODULUS
        pos = np.arange(m)
        nxt = np.minimum.accumulate(np.where(is_digit, pos, m)[:, ::-1], axis=1)[:, ::-1]
        rows = np.arange(n)
        chosen = nxt[rows, idx]
        chosen = np.where(chosen == m, nxt[:, 0], chosen)
        solution = expr[rows, chosen]
        expr[rows, chosen] = 9
        x = np.concatenate([expr, np.full((n, 1), 10), value[:, None]], axis=1)
        return (x, *_cls(solution))


# ---------------------------------------------------------------------------------------------
# Context-sensitive
# ---------------------------------------------------------------------------------------------


class DuplicateString(ChomskyTask):
    """Duplicate string (CS; ``tasks/cs/duplicate_string.py``): bits ``s`` → ``ss`` (length 2L)."""

    name, level, input_size, output_size = "duplicate_string", "CS", 2, 2

    def output_length(self, length):
        return 2 * length

    def generate(self, rng, n, length):
        s = _bits(rng, n, length)
        y = np.concatenate([s, s], axis=1)
        return s, y, _all(y)


class MissingDuplicateString(ChomskyTask):
    """Missing duplicate (CS; ``tasks/cs/missing_duplicate_string.py``).

    ``ww`` with ``|w| = ⌊L/2⌋`` random bits, one position (uniform over the 2|w|) replaced by 2,
    padded with one 3 if L is odd; class = the replaced bit. L = 1: input ``1``, class 1 (reference).
    Example: ``0110 0210`` → 1; ``101 121 3`` → 0.
    """

    name, level, input_size, output_size = "missing_duplicate_string", "CS", 4, 2

    def generate(self, rng, n, length):
        if length == 1:
            return (np.ones((n, 1), dtype=np.int64), *_cls(np.ones(n)))
        w = _bits(rng, n, length // 2)
        ww = np.concatenate([w, w], axis=1)
        idx = rng.integers(0, ww.shape[1], size=n)
        rows = np.arange(n)
        label = ww[rows, idx].copy()
        ww[rows, idx] = 2
        x = np.concatenate([ww, np.full((n, length % 2), 3, dtype=np.int64)], axis=1)
        return (x, *_cls(label))


class OddsFirst(ChomskyTask):
    """Odds first (CS; ``tasks/cs/odds_first.py``): bits ``s`` → ``s[1::2] + s[0::2]`` (0-indexed;
    the reference docstring counts from 1: "odd indices first"). Example: ``00110101`` → ``0100 0111``.
    """

    name, level, input_size, output_size = "odds_first", "CS", 2, 2

    def output_length(self, length):
        return length

    def generate(self, rng, n, length):
        s = _bits(rng, n, length)
        y = np.concatenate([s[:, 1::2], s[:, ::2]], axis=1)
        return s, y, _all(y)


def _random_nonzero_bits(rng: np.random.Generator, lengths: np.ndarray, width: int) -> np.ndarray:
    """``[n, width]`` bits, row i uniform over the nonzero numbers of ``lengths[i]`` bits (rest 0).

    Uniform over ``[1, 2^len − 1]`` as the reference's ``random.randint``: rejection of all-zero rows.
    """
    live = np.arange(width)[None, :] < np.asarray(lengths)[:, None]
    bits = _bits(rng, len(lengths), width) * live
    bad = ~bits.any(axis=1)
    while bad.any():
        bits[bad] = _bits(rng, int(bad.sum()), width) * live[bad]
        bad = ~bits.any(axis=1)
    return bits


def _lsb_bits_to_ints(bits: np.ndarray) -> list[int]:
    """Rows of little-endian bits → Python ints (arbitrary precision)."""
    n, w = bits.shape
    msb = np.concatenate([np.zeros((n, (-w) % 8), dtype=np.uint8), bits[:, ::-1].astype(np.uint8)], axis=1)
    return [int.from_bytes(row.tobytes(), "big") for row in np.packbits(msb, axis=1)]


def _ints_to_lsb_bits(values: list[int], width: int) -> np.ndarray:
    """Python ints (< 2^width) → ``[n, width]`` little-endian bits."""
    nbytes = (width + 7) // 8
    raw = np.frombuffer(b"".join(v.to_bytes(nbytes, "big") for v in values), dtype=np.uint8)
    msb = np.unpackbits(raw.reshape(len(values), nbytes), axis=1)[:, nbytes * 8 - width :]
    return msb[:, ::-1].astype(np.int64)


def _bit_length(bits_lsb: np.ndarray) -> np.ndarray:
    """Number of bits without leading zeros (at least 1, as ``f'{0:b}' == '0'``)."""
    highest = bits_lsb.shape[1] - np.argmax(bits_lsb[:, ::-1], axis=1)
    return np.where(bits_lsb.any(axis=1), highest, 1)


def _binary_operands(rng: np.random.Generator, n: int, length: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``(input, a, b)``: ``a 2 b`` LSB first, ``|a| ~ U{1..L−2}``, ``|b| = L−1−|a|``, each uniform nonzero."""
    len_a = rng.integers(1, length - 1, size=n)
    a = _random_nonzero_bits(rng, len_a, length)
    b = _random_nonzero_bits(rng, length - 1 - len_a, length)
    pos = np.arange(length)[None, :]
    la = len_a[:, None]
    b_shift = np.take_along_axis(b, np.clip(pos - la - 1, 0, length - 1), axis=1)
    x = np.where(pos < la, a, np.where(pos == la, 2, b_shift))
    return x, a, b


def _terminated(result_bits: np.ndarray, width: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``result 2 0 0 ...`` of length ``width`` (result without leading zeros) and its mask."""
    n = len(result_bits)
    rlen = _bit_length(result_bits)
    pos = np.arange(width)[None, :]
    src = np.zeros((n, width), dtype=np.int64)
    src[:, : min(width, result_bits.shape[1])] = result_bits[:, :width]
    y = np.where(pos < rlen[:, None], src, np.where(pos == rlen[:, None], 2, 0))
    return y, _until_terminator(y, rlen)


class BinaryAddition(ChomskyTask):
    """Binary addition (CS; ``tasks/cs/binary_addition.py``).

    Input ``a 2 b``, both little-endian, ``|a| ~ U{1..L−2}``, ``|b| = L−1−|a|``, each uniform over
    ``[1, 2^len − 1]``; output ``a+b`` little-endian without leading zeros, then 2, zero-padded to
    L+1, masked after the 2. L ≤ 2 (reference quirk, kept): the input is a single L-bit number in
    ``[0, 2^L − 2]`` and the output that number. Example: ``001 2 01101`` → ``01011 2 000``
    (4 + 22 = 26). Vectorised carry-lookahead (carry into i = the bit at the last j < i with a_j = b_j).
    """

    name, level, input_size, output_size, answer_symbols = "binary_addition", "CS", 3, 3, 2

    def output_length(self, length):
        return length + 1

    def generate(self, rng, n, length):
        if length <= 2:
            x = _ints_to_lsb_bits([int(v) for v in rng.integers(0, 2**length - 1, size=n)], length)
            return (x, *_terminated(x, length + 1))
        x, a, b = _binary_operands(rng, n, length)
        idx = np.arange(length)
        last_eq = np.maximum.accumulate(np.where(a == b, idx, -1), axis=1)
        carry = np.zeros_like(a)
        prev = last_eq[:, :-1]
        carry[:, 1:] = np.where(prev >= 0, np.take_along_axis(a, np.maximum(prev, 0), axis=1), 0)
        return (x, *_terminated(a ^ b ^ carry, length + 1))


class BinaryMultiplication(ChomskyTask):
    """Binary multiplication (CS; ``tasks/cs/binary_multiplication.py``).

    Input as binary addition; output ``a·b`` little-endian without leading zeros, then 2, zero-padded
    to L (the product has at most L−1 bits), masked after the 2. L ≤ 2 (reference quirk, kept): the
    input is an L-bit number in ``[0, 2^L − 2]`` and the output ``[2]`` (L = 1) or ``[0, 2]`` (L = 2).
    Example: ``001 2 01101`` → ``0001101 2 0`` (4 · 22 = 88). Products via Python integers, one per example.
    """

    name, level, input_size, output_size, answer_symbols = "binary_multiplication", "CS", 3, 3, 2

    def output_length(self, length):
        return length

    def generate(self, rng, n, length):
        if length <= 2:
            x = _ints_to_lsb_bits([int(v) for v in rng.integers(0, 2**length - 1, size=n)], length)
            y = np.zeros((n, length), dtype=np.int64)
            y[:, -1] = 2
            return x, y, _all(y)
        x, a, b = _binary_operands(rng, n, length)
        prod = [p * q for p, q in zip(_lsb_bits_to_ints(a), _lsb_bits_to_ints(b))]
        return (x, *_terminated(_ints_to_lsb_bits(prod, length - 1), length))


class ComputeSqrt(ChomskyTask):
    """Compute sqrt (CS; ``tasks/cs/compute_sqrt.py``): ``x ~ U[1, 2^L − 1]`` big-endian in L bits →
    ``⌊√x⌋`` big-endian in ``⌈L/2⌉`` bits. Example: ``100101`` (37) → ``110`` (6).
    """

    name, level, input_size, output_size = "compute_sqrt", "CS", 2, 2

    def output_length(self, length):
        return math.ceil(length / 2)

    def generate(self, rng, n, length):
        lsb = _random_nonzero_bits(rng, np.full(n, length), length)
        roots = [math.isqrt(v) for v in _lsb_bits_to_ints(lsb)]
        y = _ints_to_lsb_bits(roots, self.output_length(length))[:, ::-1].copy()
        return lsb[:, ::-1].copy(), y, _all(y)


class BucketSort(ChomskyTask):
    """Bucket sort (CS; ``tasks/cs/bucket_sort.py``): tokens uniform in 0..4 → the sorted string.
    Example: ``10204112`` → ``00111224``.
    """

    name, level, input_size, output_size = "bucket_sort", "CS", 5, 5

    def output_length(self, length):
        return length

    def generate(self, rng, n, length):
        s = _bits(rng, n, length, 5)
        y = np.sort(s, axis=1)
        return s, y, _all(y)


CHOMSKY_TASKS: tuple[type[ChomskyTask], ...] = (
    EvenPairs,
    ModularArithmetic,
    ParityCheck,
    CycleNavigation,
    StackManipulation,
    ReverseString,
    ModularArithmeticBrackets,
    SolveEquation,
    DuplicateString,
    MissingDuplicateString,
    OddsFirst,
    BinaryAddition,
    BinaryMultiplication,
    ComputeSqrt,
    BucketSort,
)
