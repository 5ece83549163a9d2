"""Selective copying and induction heads, the synthetic tasks of Griffin (De et al. 2024, §6.2, App. H)."""

from __future__ import annotations

import numpy as np

from ._common import check_int, make_batch, pick_length, streams
from .base import Batch, Task, TaskSpec
from .scoring import COPYING_SOLVE_THRESHOLD, LENGTH_KEY, Scoring


class _LengthSplits(Task):
    """``train`` / ``test`` at the training length, ``test_length`` at longer lengths (one per batch);
    ``val`` at the training length on its own seed stream, for selection and early stopping (last, so
    that a config without ``run.select_split`` keeps selecting on the split it did)."""

    splits = ("train", "test", "test_length", "val")
    in_distribution = ("train", "test", "val")

    def __init__(self, vocab_size: int, seq_len: int, test_lengths: tuple[int, ...]) -> None:
        self.vocab_size = check_int("vocab_size", vocab_size, 4)
        self.seq_len = check_int("seq_len", seq_len, 1)
        if not test_lengths:
            raise ValueError(f"{self.name}: test_lengths must not be empty")
        self.test_lengths = tuple(check_int("test_lengths[i]", t, self.seq_len + 1) for t in test_lengths)

    @property
    def spec(self) -> TaskSpec:
        return TaskSpec.per_token(self.vocab_size, 1.0 / self.num_data_tokens)

    @property
    def scoring(self) -> Scoring:
        """Griffin §6.2 (griffin.md): accuracy on the answer tokens at the training length, and beyond
        it on ``test_length``. The paper calls the tasks solved without a number; the solve line is
        the book's (:data:`~seqlib.tasks.scoring.COPYING_SOLVE_THRESHOLD`)."""
        return Scoring(
            train_lengths=(self.seq_len, self.seq_len),
            curve_splits=("test", "test_length"),
            solve_threshold=COPYING_SOLVE_THRESHOLD,
            threshold_source=(f"ours, {COPYING_SOLVE_THRESHOLD:g} as Zoology's MQAR line: De et al. 2024 §6.2 "
                              "report the tasks solved without a threshold"),
            chance=self.spec.chance,
        )

    @property
    def num_data_tokens(self) -> int:
        return self.vocab_size - 2

    def lengths(self, split: str) -> tuple[int, ...]:
        self.check_split(split)
        return self.test_lengths if split == "test_length" else (self.seq_len,)

    def sample(self, split: str, n: int, seed: int, *, length: int | None = None) -> Batch:
        check_int("n", n, 1)
        len_rng, rng = streams(self, split, seed)
        seq_len = pick_length(len_rng, self.lengths(split), length, f"{self.name} split {split!r}")
        inputs, targets, mask, meta = self.generate(rng, n, seq_len)
        return make_batch(inputs, targets, mask, {LENGTH_KEY: np.full(n, seq_len), **meta})

    def generate(self, rng: np.random.Generator, n: int, seq_len: int):  # pragma: no cover - abstract
        raise NotImplementedError


class SelectiveCopying(_LengthSplits):
    """Selective copying (Griffin §6.2: vocab 16, T = 1024, 16 data tokens; the task of Mamba §4.1.1).

    Griffin's generator is not public; our protocol follows MAD's ``generate_selective_copying_instance``
    (``athms/mad-lab`` ``mad/data/instances.py``) in layout and ids: ``k = 16`` data tokens uniform over
    ``0..V−3`` (with replacement) are placed at ``k`` distinct positions drawn uniformly among the first
    ``T−k−1`` positions, all others blank (``V−2``); then the copy token (``V−1``), then ``k`` blanks.
    Targets: the ``k`` data tokens in order, on the last ``k`` positions (the trailing blanks); mask
    only there. Deviation from MAD: MAD inserts each blank before a uniformly chosen data token, so
    its last data token always sits right before the copy token; we draw the data positions
    uniformly (every arrangement equally likely), which leaves no such shortcut.

    Splits: ``train`` and ``test`` at ``seq_len`` (1024), ``test_length`` at ``test_lengths``
    (default 2048 and 4096: longer stretches of blanks, the same 16 tokens), one length per batch.
    meta: ``length``, ``first_data_pos`` (position of the earliest data token).
    """

    name = "selective_copying"

    def __init__(
        self,
        vocab_size: int = 16,
        seq_len: int = 1024,
        num_tokens: int = 16,
        test_lengths: tuple[int, ...] = (2048, 4096),
    ) -> None:
        super().__init__(vocab_size, seq_len, test_lengths)
        self.num_tokens = check_int("num_tokens", num_tokens, 1)
        if self.seq_len < 2 * self.num_tokens + 1:
            raise ValueError(
                f"selective_copying: seq_len={seq_len} < 2·num_tokens + 1 = {2 * num_tokens + 1}: "
                "the data tokens, the copy token and the answer slots do not fit"
            )

    def generate(self, rng, n, seq_len):
        k = self.num_tokens
        blank, copy = self.vocab_size - 2, self.vocab_size - 1
        region = seq_len - k - 1
        pos = np.sort(np.argpartition(rng.random((n, region)), k - 1, axis=1)[:, :k], axis=1)
        data = rng.integers(0, self.num_data_tokens, size=(n, k))
        inputs = np.full((n, seq_len), blank, dtype=np.int64)
        rows = np.arange(n)[:, None]
        inputs[rows, pos] = data
        inputs[:, region] = copy
        targets = np.zeros_like(inputs)
        targets[:, -k:] = data
        mask = np.zeros(inputs.shape, dtype=bool)
        mask[:, -k:] = True
        return inputs, targets, mask, {"first_data_pos": pos[:, 0]}


class InductionHeads(_LengthSplits):
    """Induction heads (Griffin §6.2: vocab 16, train T = 256; cf. Olsson et al. 2022 and the H3 synthetic task).

    Griffin's generator is not public; our protocol (the H3-style associative-recall form): a
    sequence of ``T`` tokens uniform over ``0..V−2``, except that the trigger token ``V−1`` occurs
    exactly twice: once at a position ``p`` uniform in ``0..T−3``, followed by a uniform token ``x``,
    and once at the last position ``T−1``. Target: ``x``, at the last position (the model reads the
    trigger and must recall what followed it); mask only there.

    Splits: ``train`` and ``test`` at ``seq_len`` (256); ``test_length`` at ``test_lengths``
    (default 512 … 8192, up to 32× the training length; the paper reports extrapolation "orders of
    magnitude" longer for Hawk), one length per batch.
    meta: ``length``, ``distance`` (T−1−p: how far back the trigger was).
    """

    name = "induction_heads"

    def __init__(
        self,
        vocab_size: int = 16,
        seq_len: int = 256,
        test_lengths: tuple[int, ...] = (512, 1024, 2048, 4096, 8192),
    ) -> None:
        super().__init__(vocab_size, seq_len, test_lengths)
        if self.seq_len < 3:
            raise ValueError(f"induction_heads: seq_len={seq_len} must be >= 3 (trigger, token, trigger)")

    @property
    def num_data_tokens(self) -> int:
        return self.vocab_size - 1

    def generate(self, rng, n, seq_len):
        trigger = self.vocab_size - 1
        inputs = rng.integers(0, trigger, size=(n, seq_len))
        p = rng.integers(0, seq_len - 2, size=n)
        rows = np.arange(n)
        inputs[rows, p] = trigger
        inputs[:, -1] = trigger
        targets = np.zeros_like(inputs)
        targets[:, -1] = inputs[rows, p + 1]
        mask = np.zeros(inputs.shape, dtype=bool)
        mask[:, -1] = True
        return inputs, targets, mask, {"distance": seq_len - 1 - p}
