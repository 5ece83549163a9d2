"""Flip-flop language modelling (Liu et al., NeurIPS 2023, arXiv 2306.00946)."""

from __future__ import annotations

import numpy as np

from ._common import check_int, check_prob, make_batch, streams
from .base import Batch, Task, TaskSpec
from .scoring import LENGTH_KEY, Scoring

WRITE, READ, IGNORE, ZERO, ONE = 0, 1, 2, 3, 4  # the HF dataset's ids {'w':0,'r':1,'i':2,'0':3,'1':4}


class FlipFlop(Task):
    """Flip-flop language FFL(p_i) (Liu et al. 2023, §3 and App. B; HF dataset ``synthseq/flipflop``).

    A sequence is ``T/2`` instruction–bit pairs (``T = 512``, no separators), e.g. ``w1 i1 w0 r0``:
    ``w b`` writes b, ``i b`` is noise (b uniform, state unchanged), ``r b`` reads: b equals the last
    written bit. The first instruction is ``w``, the last ``r``; the ones in between are i.i.d. with
    ``p_i`` and ``p_w = p_r = (1 − p_i)/2``. Written and ignored bits are uniform.

    Splits (the dataset card's): ``train`` and ``val`` FFL(0.8), ``val_dense`` FFL(0.1),
    ``val_sparse`` FFL(0.98) (about 3.5 reads per sequence); each on its own seed stream.

    Targets: next-token LM alignment, ``targets[t] = tokens[t+1]``; the mask is True only at the
    ``r`` positions, so only the deterministic bits are scored ("clean" mode of App. B.2). Metric:
    **glitch rate** = fraction of those bits mispredicted by argmax, reported per split
    (``seqlib.evaluate.glitch_rate``), never averaged across splits.

    Deviations: sequences are generated on the fly from numpy streams instead of read from the HF
    dataset (same law, other bytes, unbounded size); the dense LM loss on the random bits and
    instructions (the paper's default training loss) is not offered: the single mask of the task
    interface serves loss and metric, and only the read bits are learnable.

    meta: ``length`` (T, the same on every split), ``num_reads`` (scored bits), ``p_i``.
    """

    name = "flipflop"
    split_p_i = {"train": 0.8, "val": 0.8, "val_dense": 0.1, "val_sparse": 0.98}
    splits = tuple(split_p_i)
    in_distribution = ("train", "val")  # FFL(0.8); val_dense and val_sparse are other p_i

    def __init__(self, seq_len: int = 512) -> None:
        self.seq_len = check_int("seq_len", seq_len, 4)
        if self.seq_len % 2:
            raise ValueError(f"flipflop: seq_len={seq_len} must be even (instruction–bit pairs)")

    @property
    def spec(self) -> TaskSpec:
        return TaskSpec.per_token(5, 0.5)

    @property
    def scoring(self) -> Scoring:
        """Liu et al. 2023 (tasks.md §3): the glitch rate per split, headlined on ``val_sparse``, the
        hardest (the chapter shows all three); solved means no glitch, as the LSTM's perfect
        extrapolation (R2). Every split has length T, so there is no length curve."""
        return Scoring(
            split="val_sparse",
            metric="glitch_rate",
            higher_is_better=False,
            label="glitch rate, sparse",
            train_lengths=(self.seq_len, self.seq_len),
            curve_splits=(),
            solve_threshold=0.0,
            threshold_source="Liu et al. 2023: zero glitches is perfect extrapolation",
            chance=self.spec.chance,
        )

    def sample(self, split: str, n: int, seed: int) -> Batch:
        check_int("n", n, 1)
        _, rng = streams(self, split, seed)
        p_i = self.split_p_i[split]
        tokens = self.generate(rng, n, p_i)
        targets = np.zeros_like(tokens)
        targets[:, :-1] = tokens[:, 1:]
        mask = tokens == READ
        meta = {LENGTH_KEY: np.full(n, self.seq_len), "num_reads": mask.sum(axis=1), "p_i": np.full(n, p_i)}
        return make_batch(tokens, targets, mask, meta)

    def generate(self, rng: np.random.Generator, n: int, p_i: float) -> np.ndarray:
        """``[n, T]`` token ids of FFL(p_i) sequences."""
        check_prob("p_i", p_i)
        steps = self.seq_len // 2
        p_w = (1.0 - p_i) / 2
        u = rng.random((n, steps))
        instr = np.where(u < p_w, WRITE, np.where(u < 2 * p_w, READ, IGNORE))
        instr[:, 0], instr[:, -1] = WRITE, READ
        bits = rng.integers(0, 2, size=(n, steps))
        idx = np.arange(steps)
        last_write = np.maximum.accumulate(np.where(instr == WRITE, idx, 0), axis=1)
        bits = np.where(instr == READ, np.take_along_axis(bits, last_write, axis=1), bits)
        tokens = np.empty((n, self.seq_len), dtype=np.int64)
        tokens[:, 0::2] = instr
        tokens[:, 1::2] = bits + ZERO
        return tokens
