"""Helpers shared by the task modules: seed streams, validation, padding, batch assembly."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch

from .base import Batch, Task


def streams(task: Task, split: str, seed: int) -> tuple[np.random.Generator, np.random.Generator]:
    """Two independent generators for ``(task, split, seed)``: one picks the length, one the data.

    Keeping them apart makes ``sample(split, n, seed)`` equal to ``sample(split, n, seed, length=l)``
    when ``l`` is the length the first stream would have drawn.
    """
    length_ss, data_ss = task.split_seed(split, seed).spawn(2)
    return np.random.Generator(np.random.PCG64(length_ss)), np.random.Generator(np.random.PCG64(data_ss))


def check_int(name: str, value: int, low: int, high: int | None = None) -> int:
    """``value`` as an int, or a ValueError naming the constraint ``low <= name <= high``."""
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)):
        raise ValueError(f"{name} must be an integer, got {value!r}")
    if value < low or (high is not None and value > high):
        bound = f"{low} <= {name}" + (f" <= {high}" if high is not None else "")
        raise ValueError(f"{name}={value} violates {bound}")
    return int(value)


def check_prob(name: str, value: float) -> float:
    if not 0.0 <= value <= 1.0:
        raise ValueError(f"{name}={value} must lie in [0, 1]")
    return float(value)


def pick_length(
    rng: np.random.Generator, allowed: Sequence[int], length: int | None, where: str
) -> int:
    """The batch length: ``length`` if given (it must be allowed), else uniform over ``allowed``."""
    if length is None:
        return int(allowed[rng.integers(len(allowed))])
    if length not in allowed:
        step = f" every {allowed.step}" if isinstance(allowed, range) and allowed.step > 1 else ""
        shown = f"{allowed[0]}..{allowed[-1]}{step}" if isinstance(allowed, range) else list(allowed)
        raise ValueError(f"{where}: length={length} is not allowed in this split (allowed: {shown})")
    return int(length)


def segment_positions(lengths: np.ndarray, width: int) -> np.ndarray:
    """``[B, width]`` positions ``0..len-1`` per row and ``-1`` on the right padding."""
    pos = np.arange(width, dtype=np.int64)[None, :]
    return np.where(pos < np.asarray(lengths)[:, None], pos, -1)


def pad_right(rows: Sequence[np.ndarray], width: int, fill) -> np.ndarray:
    """Stack ``[n_i, w_i, ...]`` blocks (w_i <= width) into one array padded with ``fill`` on the right."""
    out = np.full((sum(len(r) for r in rows), width, *rows[0].shape[2:]), fill, dtype=rows[0].dtype)
    start = 0
    for r in rows:
        out[start : start + len(r), : r.shape[1]] = r
        start += len(r)
    return out


def make_batch(
    inputs: np.ndarray,
    targets: np.ndarray,
    mask: np.ndarray,
    meta: dict[str, np.ndarray],
    segment_pos: np.ndarray | None = None,
) -> Batch:
    """Numpy arrays -> :class:`Batch` with the dtypes of the interface.

    Integer targets become int64 (for "ce"), float targets float32; ``segment_pos`` defaults to
    ``arange(T)`` on every row (no padding).
    """
    b, t = inputs.shape[:2]
    if segment_pos is None:
        segment_pos = np.tile(np.arange(t, dtype=np.int64), (b, 1))
    x = torch.from_numpy(np.ascontiguousarray(inputs, dtype=np.int64 if inputs.ndim == 2 else np.float32))
    y_dtype = np.int64 if np.issubdtype(targets.dtype, np.integer) else np.float32
    return Batch(
        inputs=x,
        targets=torch.from_numpy(np.ascontiguousarray(targets, dtype=y_dtype)),
        mask=torch.from_numpy(np.ascontiguousarray(mask, dtype=bool)),
        segment_pos=torch.from_numpy(np.ascontiguousarray(segment_pos, dtype=np.int64)),
        meta={k: np.asarray(v) for k, v in meta.items()},
    )


def sample_distinct(rng: np.random.Generator, n: int, pool: int, k: int) -> np.ndarray:
    """``[n, k]`` ints in ``[0, pool)``, distinct within a row, every ordered k-tuple equally likely.

    Draws ``2k`` values with replacement per row and keeps the first ``k`` distinct ones (exact
    sequential sampling without replacement); rows with fewer than ``k`` distinct are redrawn.
    Falls back to ranking a random matrix when ``k`` is a large part of ``pool``.
    """
    if k > pool:
        raise ValueError(f"cannot draw k={k} distinct values from a pool of {pool}")
    if 4 * k > pool:
        return np.argsort(rng.random((n, pool)), axis=1)[:, :k]
    out = np.empty((n, k), dtype=np.int64)
    todo = np.arange(n)
    while len(todo):
        cand = rng.integers(0, pool, size=(len(todo), 2 * k))
        order = np.argsort(cand, axis=1, kind="stable")
        srt = np.take_along_axis(cand, order, axis=1)
        first = np.ones_like(srt, dtype=bool)
        first[:, 1:] = srt[:, 1:] != srt[:, :-1]
        keep = np.zeros_like(first)
        np.put_along_axis(keep, order, first, axis=1)
        ok = keep.sum(axis=1) >= k
        rows = np.nonzero(ok)[0]
        # first k kept entries of each good row, in draw order
        rank = np.cumsum(keep[rows], axis=1)
        sel = keep[rows] & (rank <= k)
        out[todo[rows]] = cand[rows][sel].reshape(len(rows), k)
        todo = todo[~ok]
    return out


def weighted_sample_without_replacement(
    rng: np.random.Generator, n: int, weights: np.ndarray, k: int
) -> np.ndarray:
    """``[n, k]`` indices drawn one after another without replacement, P(i) ∝ ``weights[i]``.

    Gumbel-top-k: the order of ``log w + Gumbel`` keys has the law of successive sampling, the
    law of ``np.random.choice(len(w), k, replace=False, p=w/w.sum())``.
    """
    keys = np.log(weights)[None, :] + rng.gumbel(size=(n, len(weights)))
    top = np.argpartition(-keys, k - 1, axis=1)[:, :k] if k < len(weights) else np.tile(np.arange(k), (n, 1))
    order = np.argsort(-np.take_along_axis(keys, top, axis=1), axis=1)
    return np.take_along_axis(top, order, axis=1)
