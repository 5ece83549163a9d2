"""Dynamic-programming tasks in the spirit of Tropical Attention (Hashemi et al., NeurIPS 2025, arXiv 2505.17190)."""

from __future__ import annotations

from typing import ClassVar

import numpy as np
from numpy.lib.stride_tricks import as_strided

from ._common import check_int, make_batch, streams
from .base import Batch, Task, TaskSpec
from .scoring import DP_SOLVE_THRESHOLD, LENGTH_KEY, Scoring

SEP, GO, ASK = 0, 1, 2  # special tokens of the token encoding; numbers follow from id 3
NUM_SPECIAL = 3


def shift_rows(a: np.ndarray, shifts: np.ndarray, fill) -> np.ndarray:
    """``out[b, t] = a[b, t - shifts[b]]``, ``fill`` where that index falls outside the row."""
    n, w = a.shape
    s = int(np.abs(shifts).max(initial=0))
    padded = np.full((n, w + 2 * s), fill, dtype=a.dtype)
    padded[:, s : s + w] = a
    step = padded.strides[1]
    windows = as_strided(padded, shape=(n, 2 * s + 1, w), strides=(padded.strides[0], step, step), writeable=False)
    return windows[np.arange(n), s - shifts]


def shift_bitsets(words: np.ndarray, shifts: np.ndarray) -> np.ndarray:
    """Per row, the set ``{t + shifts[b]}`` of a bitset stored as little-endian uint64 words ``[n, K]``.

    Bit t lives in word t // 64 at bit t % 64; bits shifted out of ``[0, 64K)`` are dropped.
    """
    q, r = np.divmod(shifts.astype(np.int64), 64)
    low = shift_rows(words, q, np.uint64(0))  # word j - q
    high = shift_rows(words, q + 1, np.uint64(0))  # word j - q - 1 supplies the bits crossing a word border
    r = r.astype(np.uint64)[:, None]
    carry = np.where(r > 0, high >> ((np.uint64(64) - r) % np.uint64(64)), np.uint64(0))
    return (low << r) | carry


def bitset_has(words: np.ndarray, bit: np.ndarray) -> np.ndarray:
    """Whether bit ``bit[...]`` is set in ``words`` (same leading shape; out-of-range bits are unset)."""
    k = words.shape[-1]
    inside = (bit >= 0) & (bit < 64 * k)
    b = np.clip(bit, 0, 64 * k - 1)
    word = np.take_along_axis(words, b // 64, axis=-1)
    return inside & ((word >> (b % 64).astype(np.uint64)) & np.uint64(1)).astype(bool)


def bitset_unpack(words: np.ndarray, width: int) -> np.ndarray:
    """``[n, width]`` booleans from little-endian uint64 word rows (byte order fixed, machine-independent)."""
    raw = np.ascontiguousarray(words, dtype="<u8").view(np.uint8)
    return np.unpackbits(raw, axis=1, bitorder="little")[:, :width].astype(bool)


def _uniform_choice(rng: np.random.Generator, allowed: np.ndarray) -> np.ndarray:
    """Per row, a column index uniform among the True entries of ``allowed`` (each row needs one)."""
    pick = (rng.random(len(allowed)) * allowed.sum(axis=1)).astype(np.int64)
    return np.argmax(np.cumsum(allowed, axis=1) > pick[:, None], axis=1)


class DPTask(Task):
    """Common protocol of the dynamic-programming tasks (Tropical Attention, arXiv 2505.17190, §5 / App.;
    code ``Baran-phys/Tropical-Attention`` ``dataloaders.py``, job table ``jobs_to_do_train.csv``).

    An instance is ``m`` items (``m = 8`` in training, as the reference's ``length_range (8, 8)``) plus
    global numbers (capacity, target). Splits: ``train`` and ``test`` (in distribution, disjoint seed
    streams; the reference splits one pool 80/20), ``test_length`` (``ood_num_items`` = 2m items),
    ``test_value`` (every value range scaled by ``ood_value_scale`` = 2, the reference's built-in
    2× validation), and ``val`` (in distribution, its own seed stream: our split for selection and
    early stopping). The adversarial-noise axis of the paper is not implemented.

    **Encodings** (``encoding=``), both readable by a causal sequence model:

    * ``"features"`` (the reference's): one float row per item, ``[item fields, global fields, flag]``,
      raw integer values (no normalisation), through a linear input adapter; value OOD is meaningful.
    * ``"tokens"`` (ours): every number is one token ``3 + (value − min)`` over the range of all splits;
      layout ``g1 .. gG SEP`` then per item ``f1 .. fF SEP``. Value-OOD numbers are tokens never seen in
      training, so ``test_value`` mostly probes the embedding of unseen ids.

    **Pointer tasks** (one answer per item): the reference's set encoder is bidirectional, but a causal
    model cannot label item i before it has read the later items, so after the items comes an answer
    block that repeats them: features ``flag = 1`` rows, tokens ``GO`` then per item ``f1 .. fF ASK``.
    Targets (0/1, loss "bce", one logit) and the mask sit on the answer rows / ``ASK`` tokens only.
    Metric: binary F1 over answer positions (sigmoid > 0.5), as the reference; exact match of the whole
    mask reported too. **Pooled tasks**: targets ``[B]``, mean-pooled head (pool over ``segment_pos >= 0``).

    Among several optimal subsets the target is the lexicographically smallest indicator vector
    (item 0 first): the reference states this for balanced partition; we apply it to every pointer
    task so that targets are unique (found by suffix-DP tables and a greedy forward pass). Items are
    not sorted (most reference generators sort them first).

    meta: ``length`` (the number of items, the axis of the length split), ``value_scale`` and
    task-specific keys.
    """

    # "val": in-distribution on its own seed stream, for selection and early stopping; last, so that a
    # config without run.select_split keeps selecting on the split it did (the first after train)
    splits = ("train", "test", "test_length", "test_value", "val")
    in_distribution = ("train", "test", "val")
    pointer: ClassVar[bool]
    loss: ClassVar[str]
    item_fields: ClassVar[int]
    global_fields: ClassVar[int]
    chance: ClassVar[float | None] = None

    def __init__(
        self,
        encoding: str = "features",
        num_items: int = 8,
        ood_num_items: int = 16,
        ood_value_scale: int = 2,
    ) -> None:
        if encoding not in ("features", "tokens"):
            raise ValueError(f"{self.name}: encoding={encoding!r} must be 'features' or 'tokens'")
        self.encoding = encoding
        self.num_items = check_int("num_items", num_items, 2)
        self.ood_num_items = check_int("ood_num_items", ood_num_items, self.num_items + 1)
        self.ood_value_scale = check_int("ood_value_scale", ood_value_scale, 2)
        # number range of every split (the bounds grow with m and with the scale)
        self._num_min, self._num_max = self.bounds(self.ood_num_items, self.ood_value_scale)

    # -- per-task definition -------------------------------------------------------------
    def bounds(self, m: int, scale: int) -> tuple[int, int]:
        """Smallest and largest number any item or global field can take."""
        raise NotImplementedError

    def instances(self, rng: np.random.Generator, n: int, m: int, scale: int):
        """``(items [n, m, F], globals [n, G], target [n, m] or [n], meta)``, integers."""
        raise NotImplementedError

    def extra_features(self, m: int) -> np.ndarray:
        """``[m, E]`` per-row constants appended in the feature encoding (default none)."""
        return np.zeros((m, 0))

    # -- common protocol -----------------------------------------------------------------
    @property
    def feature_dim(self) -> int:
        return self.item_fields + self.global_fields + (1 if self.pointer else self.extra_features(2).shape[1])

    @property
    def spec(self) -> TaskSpec:
        tokens = self.encoding == "tokens"
        return TaskSpec(
            input_kind="tokens" if tokens else "features",
            output_kind="tokens" if self.pointer else "pooled",
            loss=self.loss,
            num_outputs=1,
            vocab_size=NUM_SPECIAL + self._num_max - self._num_min + 1 if tokens else None,
            feature_dim=None if tokens else self.feature_dim,
            chance=self.chance,
        )

    @property
    def scoring(self) -> Scoring:
        """Hashemi et al. 2025 (tasks.md §4, ``_eval_one_epoch``): binary F1 for pointer outputs,
        micro-F1 for a pooled decision (one binary label: micro-F1 = accuracy), MSE for regression;
        on the in-distribution test split, the curve over the number of items. The paper compares
        models without a solve threshold; the line for F1 and accuracy is the book's
        (:data:`~seqlib.tasks.scoring.DP_SOLVE_THRESHOLD`), the MSE has none."""
        if self.pointer:
            metric, higher, label = "f1", True, "F1"
        elif self.loss == "bce":
            metric, higher, label = "accuracy", True, "accuracy (= micro-F1)"
        else:
            metric, higher, label = "loss", False, "MSE"
        none = "Hashemi et al. 2025 state no solve threshold"
        ours = f"ours, {DP_SOLVE_THRESHOLD:g} as Zoology's MQAR line: {none}"
        return Scoring(
            metric=metric,
            higher_is_better=higher,
            label=label,
            train_lengths=(self.num_items, self.num_items),
            curve_splits=("test", "test_length"),
            solve_threshold=None if metric == "loss" else DP_SOLVE_THRESHOLD,
            threshold_source=f"none: {none}" if metric == "loss" else ours,
            chance=self.spec.chance,
        )

    def split_params(self, split: str) -> tuple[int, int]:
        """``(num_items, value_scale)`` of a split."""
        self.check_split(split)
        return (
            self.ood_num_items if split == "test_length" else self.num_items,
            self.ood_value_scale if split == "test_value" else 1,
        )

    def sample(self, split: str, n: int, seed: int) -> Batch:
        check_int("n", n, 1)
        _, rng = streams(self, split, seed)
        m, scale = self.split_params(split)
        items, glob, target, meta = self.instances(rng, n, m, scale)
        meta = {LENGTH_KEY: np.full(n, m), "value_scale": np.full(n, scale), **meta}
        if self.encoding == "tokens":
            inputs, answer_at = self._tokens(items, glob)
        else:
            inputs, answer_at = self._features(items, glob)
        if not self.pointer:
            return make_batch(inputs, target.astype(np.float32), np.ones(n, dtype=bool), meta)
        targets = np.zeros(inputs.shape[:2], dtype=np.float32)
        targets[:, answer_at] = target
        mask = np.zeros(inputs.shape[:2], dtype=bool)
        mask[:, answer_at] = True
        return make_batch(inputs, targets, mask, meta)

    def _tokens(self, items: np.ndarray, glob: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        n, m, f = items.shape
        tok_items = NUM_SPECIAL + items - self._num_min
        head = np.concatenate([NUM_SPECIAL + glob - self._num_min, np.full((n, 1), SEP)], axis=1) if glob.shape[1] else np.zeros((n, 0), dtype=np.int64)
        body = np.concatenate([tok_items, np.full((n, m, 1), SEP)], axis=2).reshape(n, m * (f + 1))
        parts = [head, body]
        answer_at = np.zeros(0, dtype=np.int64)
        if self.pointer:
            ans = np.concatenate([tok_items, np.full((n, m, 1), ASK)], axis=2).reshape(n, m * (f + 1))
            start = head.shape[1] + body.shape[1] + 1
            answer_at = start + (f + 1) * np.arange(m) + f
            parts += [np.full((n, 1), GO), ans]
        return np.concatenate(parts, axis=1), answer_at

    def _features(self, items: np.ndarray, glob: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        n, m, _ = items.shape
        rows = np.concatenate([items, np.broadcast_to(glob[:, None, :], (n, m, glob.shape[1]))], axis=2).astype(np.float32)
        if not self.pointer:
            extra = np.broadcast_to(self.extra_features(m), (n, m, self.extra_features(m).shape[1]))
            return np.concatenate([rows, extra], axis=2).astype(np.float32), np.zeros(0, dtype=np.int64)
        flag = np.zeros((n, m, 1), dtype=np.float32)
        x = np.concatenate([np.concatenate([rows, flag], axis=2), np.concatenate([rows, flag + 1], axis=2)], axis=1)
        return x, m + np.arange(m)


class Knapsack(DPTask):
    """0/1 knapsack (pointer). Items ``(v_i, w_i)`` uniform in ``[1, 10s]``, capacity ``C`` uniform in
    ``[10s, 20s]`` (s = value scale; the reference's v, w ∈ [1, 10], C ∈ [10, 20]). Features
    ``[v_i, w_i, C, flag]``; tokens ``C SEP v w SEP ...``. Target: the items of the lexicographically
    smallest optimal subset (max Σv with Σw ≤ C). Metric: binary F1 (and exact match).
    meta: ``optimum`` (the optimal value).
    """

    name, pointer, loss, item_fields, global_fields = "knapsack", True, "bce", 2, 1

    def bounds(self, m, scale):
        return 1, 20 * scale

    def instances(self, rng, n, m, scale):
        v = rng.integers(1, 10 * scale + 1, size=(n, m))
        w = rng.integers(1, 10 * scale + 1, size=(n, m))
        cap = rng.integers(10 * scale, 20 * scale + 1, size=n)
        best = np.zeros((n, m + 1, 20 * scale + 1), dtype=np.int64)  # best[:, i, c]: items i.., capacity c
        for i in range(m - 1, -1, -1):
            take = shift_rows(best[:, i + 1], w[:, i], -(10**9)) + v[:, i : i + 1]
            best[:, i] = np.maximum(best[:, i + 1], take)
        rows = np.arange(n)
        optimum = best[rows, 0, cap]
        c, need = cap.copy(), optimum.copy()
        chosen = np.zeros((n, m), dtype=np.int64)
        for i in range(m):
            take = best[rows, i + 1, c] < need
            chosen[:, i] = take
            c -= w[:, i] * take
            need -= v[:, i] * take
        return np.stack([v, w], axis=2), cap[:, None], chosen, {"optimum": optimum}


class SubsetSum(DPTask):
    """Subset-sum decision (pooled). Items ``x_i`` uniform in ``[−5s, 5s]``, a target ``T``; label 1 iff a
    nonempty subset sums to T. Half the instances are solvable: T uniform over the reachable sums; the
    other half: T uniform over the holes of the reachable set in ``[min − 1, max + 1]`` (the reference's
    "negatives are holes in the reachable sums"; ``min − 1`` and ``max + 1`` are always holes).
    Features ``[x_i, T]``; tokens ``T SEP x SEP ...``. Loss bce; metric micro-F1 (= accuracy here).
    meta: ``solvable``.
    """

    name, pointer, loss, item_fields, global_fields, chance = "subset_sum", False, "bce", 1, 1, 0.5

    def bounds(self, m, scale):
        return -(5 * scale * m + 1), 5 * scale * m + 1

    def instances(self, rng, n, m, scale):
        x = rng.integers(-5 * scale, 5 * scale + 1, size=(n, m))
        off = 5 * scale * m + 1
        width = 2 * off + 1
        words = np.zeros((n, (width + 63) // 64), dtype=np.uint64)  # nonempty subset sums + off, as bits
        # equal items are merged by binary splitting: c copies of v act as 0/1 pseudo-items of sizes
        # 1, 2, 4, ..., rest (times v), whose nonempty subsets give exactly the counts 1..c
        for v in range(-5 * scale, 5 * scale + 1):
            count = (x == v).sum(axis=1)
            done, size = np.zeros(n, dtype=np.int64), 1
            while (count > done).any():
                k = np.minimum(size, count - done)
                words |= shift_bitsets(words, k * v)
                has = np.nonzero(k > 0)[0]
                bit = off + k[has] * v
                words[has, bit // 64] |= np.uint64(1) << (bit % 64).astype(np.uint64)
                done, size = done + k, 2 * size
        reach = bitset_unpack(words, width)
        lo = np.argmax(reach, axis=1) - 1
        hi = width - np.argmax(reach[:, ::-1], axis=1)
        col = np.arange(width)[None, :]
        in_window = (col >= lo[:, None]) & (col <= hi[:, None])
        solvable = rng.random(n) < 0.5
        t = _uniform_choice(rng, np.where(solvable[:, None], reach, in_window & ~reach)) - off
        return x[:, :, None], t[:, None], solvable.astype(np.int64), {"solvable": solvable}


class MinCoinChange(DPTask):
    """Minimum coin change, each coin used at most once (pointer). Coins uniform in ``[1, 10s]``, target
    ``T`` in ``[10s, 20s]``, about half solvable: for each instance we ask for a solvable (or not) T with
    probability 1/2 and pick it uniformly among the T in range of that kind (the other kind if there is
    none). Target: the coins of the lexicographically smallest minimum-cardinality subset summing to
    T exactly; all zeros if unsolvable. Features ``[c_i, T, flag]``; tokens ``T SEP c SEP ...``.
    Metric: binary F1 (and exact match). meta: ``solvable``, ``num_coins`` (the optimum, 0 if unsolvable).
    """

    name, pointer, loss, item_fields, global_fields = "min_coin_change", True, "bce", 1, 1

    def bounds(self, m, scale):
        return 1, 20 * scale

    def instances(self, rng, n, m, scale):
        c = rng.integers(1, 10 * scale + 1, size=(n, m))
        inf = m + 1
        fewest = np.full((n, m + 1, 20 * scale + 1), inf, dtype=np.int64)  # coins i.. summing to s
        fewest[:, m, 0] = 0
        for i in range(m - 1, -1, -1):
            fewest[:, i] = np.minimum(fewest[:, i + 1], shift_rows(fewest[:, i + 1], c[:, i], inf) + 1)
        reachable = fewest[:, 0, 10 * scale :] < inf
        want = rng.random(n) < 0.5
        want = np.where((reachable == want[:, None]).any(axis=1), want, ~want)
        t = 10 * scale + _uniform_choice(rng, reachable == want[:, None])
        rows = np.arange(n)
        need, s = fewest[rows, 0, t], t.copy()
        chosen = np.zeros((n, m), dtype=np.int64)
        for i in range(m):
            take = (need < inf) & (fewest[rows, i + 1, s] > need)
            chosen[:, i] = take
            s -= c[:, i] * take
            need -= take
        solvable = fewest[rows, 0, t] < inf
        meta = {"solvable": solvable, "num_coins": np.where(solvable, fewest[rows, 0, t], 0)}
        return c[:, :, None], t[:, None], chosen, meta


class LongestIncreasingSubsequence(DPTask):
    """Longest strictly increasing subsequence (pooled regression). Items ``x_i`` uniform in ``[1, 10s]``;
    features ``[x_i, exp(i/(m−1))]`` (the reference's position feature); tokens ``x SEP ...``. Target:
    the LIS length (float); loss and metric MSE. meta: ``lis``.
    """

    name, pointer, loss, item_fields, global_fields = "lis", False, "mse", 1, 0

    def bounds(self, m, scale):
        return 1, 10 * scale

    def extra_features(self, m):
        return np.exp(np.arange(m) / (m - 1))[:, None]

    def instances(self, rng, n, m, scale):
        top = 10 * scale
        x = rng.integers(1, top + 1, size=(n, m))
        ending = np.zeros((n, top + 1), dtype=np.int64)  # ending[:, v]: longest run ending in value v
        rows = np.arange(n)
        for i in range(m):
            before = np.maximum.accumulate(ending, axis=1)[rows, x[:, i] - 1]
            ending[rows, x[:, i]] = np.maximum(ending[rows, x[:, i]], before + 1)
        lis = ending.max(axis=1)
        return x[:, :, None], np.zeros((n, 0), dtype=np.int64), lis, {"lis": lis}


class BalancedPartition(DPTask):
    """Balanced partition (pointer). Items ``x_i`` uniform in ``[1, 10s]`` (range not stated in the
    reference job table; our choice). Target: the lexicographically smallest indicator of a subset S
    minimising ``|Σ_S x − Σ_{not S} x|`` (as the reference; item 0 is then always 0). Features
    ``[x_i, flag]``; tokens ``x SEP ...``. Metric: binary F1 (and exact match). meta: ``imbalance``.
    """

    name, pointer, loss, item_fields, global_fields = "balanced_partition", True, "bce", 1, 0

    def bounds(self, m, scale):
        return 1, 10 * scale

    def instances(self, rng, n, m, scale):
        x = rng.integers(1, 10 * scale + 1, size=(n, m))
        total = x.sum(axis=1)
        width = 10 * scale * m + 1
        reach = np.zeros((n, m + 1, (width + 63) // 64), dtype=np.uint64)  # bitsets: sums of items i..
        reach[:, m, 0] = 1  # the empty subset
        for i in range(m - 1, -1, -1):
            reach[:, i] = reach[:, i + 1] | shift_bitsets(reach[:, i + 1], x[:, i])
        sums = np.arange(width)[None, :]
        gap = np.where(bitset_unpack(reach[:, 0], width), np.abs(2 * sums - total[:, None]), 10**9)
        best = np.argmin(gap, axis=1)
        targets = np.stack([best, total - best], axis=1)  # either side of the optimal split
        chosen = np.zeros((n, m), dtype=np.int64)
        for i in range(m):
            ok = bitset_has(reach[:, i + 1], targets)
            take = ~ok.any(axis=1)
            chosen[:, i] = take
            targets = targets - (x[:, i] * take)[:, None]
        imbalance = np.abs(total - 2 * best)
        return x[:, :, None], np.zeros((n, 0), dtype=np.int64), chosen, {"imbalance": imbalance}


DP_TASKS: tuple[type[DPTask], ...] = (Knapsack, SubsetSum, MinCoinChange, LongestIncreasingSubsequence, BalancedPartition)
