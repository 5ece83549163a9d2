"""Multi-query associative recall (MQAR), as Zoology generates it."""

from __future__ import annotations

import numpy as np

from ._common import (
    check_int,
    make_batch,
    pick_length,
    sample_distinct,
    streams,
    weighted_sample_without_replacement,
)
from .base import Batch, Task, TaskSpec
from .scoring import LENGTH_KEY, Scoring


class MQAR(Task):
    """Multi-query associative recall (Arora et al., *Zoology*, arXiv 2312.04927, §3; Based, arXiv 2402.18668).

    Source: ``HazyResearch/zoology`` ``zoology/data/multiquery_ar.py::multiquery_ar`` (HEAD d88d6f5).

    Protocol (one example, length ``L``, ``D`` pairs, vocabulary ``V``):

    * keys: ``D`` distinct ids from ``1..V//2-1``; values: ``D`` distinct ids from ``V//2..V-1``;
      id 0 is the filler.
    * context ``k1 v1 ... kD vD``, repeated ``num_passes`` times (``C = 2·D·num_passes`` tokens).
    * query region: ``space = (L-C)//2`` even slots; slot ``g`` has weight ``a·(g+1)^(a-1)``
      (``a = power_a = 0.01``), ``D`` slots drawn without replacement, key ``i`` goes to slot
      ``gaps[i]`` (offset ``C + 2·gaps[i]``): every key is queried exactly once.
    * targets: ``v_i`` **at the query-key position** (the model outputs the value when it reads the
      key); mask True there only (Zoology's -100 elsewhere), so exactly ``D`` labelled positions.
    * ``random_non_queries=True`` (Zoology's class default; Fig. 2 uses False) replaces every filler 0
      by a uniform id in ``[0, V)``; fillers may collide with keys or values; labels are unchanged.

    Constraints (ValueError otherwise): ``L`` even, ``V > L``, ``2·D·num_passes + 2·D <= L``.
    Metric: per-example mean accuracy over labelled positions, sliced by ``meta["length"]`` (Zoology's
    ``input_seq_len``; ``num_kv_pairs`` grows with it, so it gives the same slices).

    Splits:

    * ``train`` / ``test``: the protocol above at ``(L, D)``, disjoint seed streams (Zoology seeds
      train segments from [0, 2^31) and test ones from [2^31, 2^32)); ``val`` the same on a third
      stream, for selection and early stopping (ours: Zoology stops on its test set).
    * ``test_length``: length generalization: one length per batch from ``{L, 2L, 3L, 4L}``
      (``length=`` pins it), with ``D`` scaled by the same factor when ``scale_pairs`` (constant
      pair density, like the Based test mixture where D = L/4 at long L) or kept at ``D``.
      Needs ``V > 4L``.
    * ``train_value`` / ``test_value``: value generalization (our design; Zoology has none). The key
      range ``1..V//2-1`` and the value range ``V//2..V-1`` are each cut at ``1 - holdout``:
      ``train_value`` draws keys, values *and* random fillers only from the lower parts (and 0),
      ``test_value`` draws keys and values only from the held-out upper parts (fillers from all of
      ``[0, V)``). A model trained on ``train_value`` has never seen a held-out id, as input or as a
      label, so ``test_value`` measures recall of ids whose embeddings were never trained.

    Deviations from Zoology: numpy ``Generator`` streams per ``(task, split, seed)`` instead of
    ``np.random.seed`` + the global RNG (same distributions, different bytes); slot sampling uses the
    Gumbel-top-k form of ``np.random.choice(space, D, replace=False, p=p)`` (same law); the targets
    are aligned with the inputs (``[B, L]``, masked) instead of -100-filled labels.

    meta: ``length`` (the sequence length, Zoology's ``input_seq_len``), ``num_kv_pairs``, ``num_passes``.
    """

    name = "mqar"
    # "val": in-distribution on its own seed stream, for selection and early stopping; last, so that a
    # config without run.select_split keeps selecting on the split it did (the first after train)
    splits = ("train", "test", "test_length", "train_value", "test_value", "val")
    # train_value and test_value draw their ids from parts of the id ranges, test_length longer sequences
    in_distribution = ("train", "test", "val")
    length_factors = (1, 2, 3, 4)

    def __init__(
        self,
        vocab_size: int = 8192,
        seq_len: int = 256,
        num_kv_pairs: int = 16,
        power_a: float = 0.01,
        num_passes: int = 1,
        random_non_queries: bool = True,
        scale_pairs: bool = True,
        holdout: float = 0.25,
    ) -> None:
        self.vocab_size = check_int("vocab_size", vocab_size, 4)
        self.seq_len = check_int("seq_len", seq_len, 4)
        self.num_kv_pairs = check_int("num_kv_pairs", num_kv_pairs, 1)
        self.num_passes = check_int("num_passes", num_passes, 1)
        if self.seq_len % 2:
            raise ValueError(f"MQAR: seq_len={seq_len} must be even")
        if self.vocab_size <= self.seq_len:
            raise ValueError(f"MQAR: vocab_size={vocab_size} must be > seq_len={seq_len}")
        self._check_fits(self.seq_len, self.num_kv_pairs)
        if not power_a > 0:
            raise ValueError(f"MQAR: power_a={power_a} must be > 0")
        if not 0.0 < holdout < 1.0:
            raise ValueError(f"MQAR: holdout={holdout} must lie in (0, 1)")
        self.power_a = float(power_a)
        self.random_non_queries = bool(random_non_queries)
        self.scale_pairs = bool(scale_pairs)
        half = self.vocab_size // 2
        # key ids 1..half-1 and value ids half..V-1, each cut into a seen and a held-out part
        n_keys, n_vals = half - 1, self.vocab_size - half
        cut_k, cut_v = int(round(n_keys * (1 - holdout))), int(round(n_vals * (1 - holdout)))
        self._key_ranges = {"seen": (1, 1 + cut_k), "held": (1 + cut_k, half), "all": (1, half)}
        self._val_ranges = {"seen": (half, half + cut_v), "held": (half + cut_v, self.vocab_size), "all": (half, self.vocab_size)}
        for part in ("seen", "held"):
            for lo, hi in (self._key_ranges[part], self._val_ranges[part]):
                if hi - lo < self.num_kv_pairs:
                    raise ValueError(
                        f"MQAR: holdout={holdout} leaves {hi - lo} ids in a {part} key/value range, "
                        f"fewer than num_kv_pairs={num_kv_pairs}"
                    )

    def _check_fits(self, seq_len: int, pairs: int) -> None:
        need = 2 * pairs * self.num_passes + 2 * pairs
        if need > seq_len:
            raise ValueError(
                f"MQAR: 2·D·num_passes + 2·D = {need} > seq_len={seq_len} "
                f"(D={pairs}, num_passes={self.num_passes}): more pairs than fit in the length"
            )

    @property
    def spec(self) -> TaskSpec:
        return TaskSpec.per_token(self.vocab_size, 1.0 / (self.vocab_size - self.vocab_size // 2))

    @property
    def scoring(self) -> Scoring:
        """Zoology (tasks.md §1.2): accuracy on the in-distribution test split; training stops once
        ``valid/accuracy > 0.99`` (``early_stopping_threshold``), the solve line. Zoology's accuracy is
        the per-example mean, equal to the pooled ``accuracy`` here (every example scores D keys)."""
        return Scoring(
            train_lengths=(self.seq_len, self.seq_len),
            curve_splits=("test_length",),
            solve_threshold=0.99,
            threshold_source="Zoology (Arora et al. 2023), code: early_stopping_threshold = 0.99 on valid/accuracy",
            chance=self.spec.chance,
        )

    def lengths(self, split: str) -> tuple[int, ...]:
        """The sequence lengths a split produces."""
        self.check_split(split)
        if split == "test_length":
            return tuple(f * self.seq_len for f in self.length_factors)
        return (self.seq_len,)

    def sample(self, split: str, n: int, seed: int, *, length: int | None = None) -> Batch:
        check_int("n", n, 1)
        len_rng, rng = streams(self, split, seed)
        seq_len = pick_length(len_rng, self.lengths(split), length, f"MQAR split {split!r}")
        pairs = self.num_kv_pairs
        if split == "test_length":
            if self.vocab_size <= seq_len:
                raise ValueError(f"MQAR test_length: vocab_size={self.vocab_size} must be > length {seq_len}")
            if self.scale_pairs:
                pairs = pairs * seq_len // self.seq_len
        part_kv = {"train_value": "seen", "test_value": "held"}.get(split, "all")
        inputs, targets, mask = self.generate(rng, n, seq_len, pairs, part_kv, fill_seen_only=split == "train_value")
        meta = {
            LENGTH_KEY: np.full(n, seq_len),
            "num_kv_pairs": np.full(n, pairs),
            "num_passes": np.full(n, self.num_passes),
        }
        return make_batch(inputs, targets, mask, meta)

    @staticmethod
    def value_distances(batch: Batch) -> np.ndarray:
        """How many tokens back the answer lies, for every scored position in row-major order: the
        query position minus the position of its value in the context (the last pass). An attention
        window shorter than this distance cannot read the value from the query; Zoology's slot law
        (weights ``a·(g+1)^(a-1)``) decides how often that happens."""
        inputs, mask = batch.inputs.numpy(), batch.mask.numpy()
        contexts = 2 * batch.meta["num_kv_pairs"] * batch.meta["num_passes"]
        out = []
        for row, c in enumerate(contexts):
            context = inputs[row, :c]
            for p in np.flatnonzero(mask[row]):
                key_at = np.flatnonzero(context[0::2] == inputs[row, p])[-1] * 2
                out.append(p - (key_at + 1))
        return np.asarray(out, dtype=np.int64)

    def window_ceiling(self, windows, split: str = "test", n: int = 1024, seed: int = 0) -> dict[int, float]:
        """Per local-attention window W, the share of the queries of ``n`` examples of ``split`` whose
        value lies at most W tokens back (:meth:`value_distances`): the accuracy of a model that
        recalls inside one window and nowhere else, the "window ceiling" (a query sees itself and
        the W tokens before it, as Griffin's local attention does)."""
        windows = [check_int("window", w, 1) for w in windows]
        if not windows:
            raise ValueError("MQAR window_ceiling: no window given")
        distances = self.value_distances(self.sample(split, n, seed))
        return {w: float((distances <= w).mean()) for w in windows}

    def generate(
        self,
        rng: np.random.Generator,
        n: int,
        seq_len: int,
        pairs: int,
        part: str = "all",
        fill_seen_only: bool = False,
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """``(inputs, targets, mask)`` of shape ``[n, seq_len]`` with ids drawn from ``part``."""
        self._check_fits(seq_len, pairs)
        (k_lo, k_hi), (v_lo, v_hi) = self._key_ranges[part], self._val_ranges[part]
        keys = k_lo + sample_distinct(rng, n, k_hi - k_lo, pairs)
        values = v_lo + sample_distinct(rng, n, v_hi - v_lo, pairs)
        context = np.tile(np.stack([keys, values], axis=2).reshape(n, 2 * pairs), self.num_passes)
        c = context.shape[1]
        space = (seq_len - c) // 2
        g = np.arange(space, dtype=np.float64)
        weights = self.power_a * (g + 1) ** (self.power_a - 1)
        gaps = weighted_sample_without_replacement(rng, n, weights, pairs)
        inputs = np.zeros((n, seq_len), dtype=np.int64)
        inputs[:, :c] = context
        rows = np.arange(n)[:, None]
        qpos = c + 2 * gaps
        inputs[rows, qpos] = keys
        targets = np.zeros_like(inputs)
        targets[rows, qpos] = values
        mask = np.zeros(inputs.shape, dtype=bool)
        mask[rows, qpos] = True
        if self.random_non_queries:
            filler = inputs == 0
            if fill_seen_only:
                # 0 and the seen key/value ids only, so held-out ids never appear in training
                (ks, ke), (vs, ve) = self._key_ranges["seen"], self._val_ranges["seen"]
                r = rng.integers(0, 1 + (ke - ks) + (ve - vs), size=int(filler.sum()))
                r = np.where(r == 0, 0, np.where(r <= ke - ks, ks + r - 1, vs + r - 1 - (ke - ks)))
            else:
                r = rng.integers(0, self.vocab_size, size=int(filler.sum()))
            inputs[filler] = r
        return inputs, targets, mask

