"""Training batches for stacked runs: padding and stacking the batches of K instances along a new leading
dimension, and a :class:`Prefetcher` that generates the batches of future steps in worker processes.

Instance k at step s trains on ``task.sample("train", batch_size, seed=derive_seed("train", seed_k, s))``,
the batch it would see alone; instances that share a seed share one generated batch.
"""

from __future__ import annotations

import multiprocessing as mp
import os
import signal
import time
from concurrent.futures import Future, ProcessPoolExecutor

import torch

from .objective import derive_seed
from .tasks.base import Batch, Task


def _pad_time(x: torch.Tensor, length: int, fill) -> torch.Tensor:
    """``x`` (``[B, T, ...]``) right-padded with ``fill`` to ``[B, length, ...]``."""
    out = x.new_full((x.shape[0], length, *x.shape[2:]), fill)
    out[:, : x.shape[1]] = x
    return out


def pad_batch(batch: Batch, length: int) -> Batch:
    """``batch`` right-padded along time to ``length``, with the tasks' own padding convention.

    Inputs get 0 (token id or feature value), per-position targets 0 and mask False, ``segment_pos`` -1.
    Pooled targets and masks (shape ``[B]``) and ``meta`` are kept. A batch of that length is returned as is.
    """
    t = batch.inputs.shape[1]
    if length < t:
        raise ValueError(f"cannot pad a batch of length {t} to the shorter length {length}")
    if length == t:
        return batch
    per_position = batch.targets.dim() > 1
    return Batch(
        inputs=_pad_time(batch.inputs, length, 0),
        targets=_pad_time(batch.targets, length, 0) if per_position else batch.targets,
        mask=_pad_time(batch.mask, length, False) if per_position else batch.mask,
        segment_pos=_pad_time(batch.segment_pos, length, -1),
        meta=batch.meta,
    )


def stack_batches(batches: list[Batch], length: int | None = None) -> Batch:
    """The K ``batches``, padded to ``length`` (default: their longest), stacked along a new dimension 0.

    inputs ``[K, B, T]`` or ``[K, B, T, F]``; targets ``[K, B, T]`` or ``[K, B]``; mask as targets;
    segment_pos ``[K, B, T]``. ``meta`` is a *list* of the K meta dicts, in order (not one dict).
    All batches must have the same batch size B.
    """
    if not batches:
        raise ValueError("stack_batches needs at least one batch")
    sizes = sorted({len(b) for b in batches})
    if len(sizes) > 1:
        raise ValueError(f"cannot stack batches of different batch sizes {sizes}")
    width = max(b.inputs.shape[1] for b in batches) if length is None else length
    padded = [pad_batch(b, width) for b in batches]
    return Batch(
        inputs=torch.stack([b.inputs for b in padded]),
        targets=torch.stack([b.targets for b in padded]),
        mask=torch.stack([b.mask for b in padded]),
        segment_pos=torch.stack([b.segment_pos for b in padded]),
        meta=[b.meta for b in padded],
    )


def bucket(n: int) -> int:
    """``n`` rounded up to a coarse grid (1..8, then steps of an eighth of the power of two below:
    10, 12, 14, 16, 20, 24, ...), at most 25% more, so that few padded shapes recur: a CUDA graph is
    captured per shape (:mod:`seqlib.stack`)."""
    if n < 1:
        raise ValueError(f"bucket needs n >= 1, got {n}")
    q = 1 << max(0, n.bit_length() - 3)
    return -(-n // q) * q


def sample_step(task: Task, batch_size: int, step: int, seeds: list[int], length: int | None,
                buckets: bool = False) -> tuple[Batch, list[int]]:
    """The train batches of ``seeds`` at ``step``, stacked, and the length T of each before padding.
    Padded to ``length``, else to the longest (to its :func:`bucket` with ``buckets``)."""
    batches = [task.sample("train", batch_size, seed=derive_seed("train", seed, step)) for seed in seeds]
    widths = [b.inputs.shape[1] for b in batches]
    if length is None and buckets:
        length = bucket(max(widths))
    return stack_batches(batches, length), widths


def _init_worker() -> None:
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C is the training process's to handle
    torch.set_num_threads(1)


# the cores this process may use, where it shares the machine (set per worker by seqlib.book.grid.local_cluster)
CORES_ENV = "SEQLIB_CORES"


def default_workers() -> int:
    """Worker processes for a :class:`Prefetcher`: none without CUDA (a CPU run needs its cores, and tests
    and CI generate in-process), else all cores (``SEQLIB_CORES``, else the machine's) but two for the
    training process, at least one, at most 8."""
    if not torch.cuda.is_available():
        return 0
    return max(1, min(8, int(os.environ.get(CORES_ENV) or os.cpu_count() or 1) - 2))


class Prefetcher:
    """Train batches of steps ``start_step .. start_step + steps - 1`` for the instances' ``seeds``.

    ``get(step, seeds)`` returns the stacked batch (:func:`stack_batches`; padded to ``length``, or to the
    longest of the step's batches if None, rounded up to its :func:`bucket` with ``buckets``) of
    ``seeds`` in that order, in pinned memory when CUDA is available. Steps must increase (a skipped step is discarded). ``seeds`` may repeat a seed (instances
    that differ in their learning rate only: one batch, repeated) and may leave seeds out: a seed left
    out is dropped for good (its instances stopped) and no longer generated.

    With ``workers > 0``, spawned worker processes each generate whole steps, at most ``ahead`` steps
    beyond the last one consumed; the task is pickled to them. ``workers=0`` generates each step in
    ``get``, in-process: the reference path. An exception in a worker is raised by the ``get`` of its step.
    Use it as a context manager: leaving it (also on an exception) terminates the workers.
    ``data_time_s`` is the total time spent in ``get``.
    """

    def __init__(self, task: Task, batch_size: int, seeds: list[int], start_step: int, steps: int,
                 length: int | None, workers: int | None = None, ahead: int | None = None,
                 buckets: bool = False) -> None:
        self.workers = default_workers() if workers is None else workers
        self.ahead = 2 * self.workers if ahead is None else ahead
        if self.workers < 0:
            raise ValueError(f"workers={self.workers} must be >= 0")
        if self.workers and self.ahead < 1:
            raise ValueError(f"ahead={self.ahead} must be >= 1")
        self.task, self.batch_size, self.length, self.buckets = task, batch_size, length, buckets
        self.start_step, self.stop_step = start_step, start_step + steps
        self.data_time_s = 0.0
        self._live = list(dict.fromkeys(seeds))  # seeds still generated, distinct
        self._next = start_step  # the first step get may still ask for
        self._submitted = start_step  # the first step not yet handed to a worker
        self._pending: dict[int, tuple[list[int], Future]] = {}
        self._pin = torch.cuda.is_available()
        self._pool = None
        if self.workers:
            self._pool = ProcessPoolExecutor(self.workers, mp_context=mp.get_context("spawn"),
                                             initializer=_init_worker)
            self._submit()

    def __enter__(self) -> Prefetcher:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def _submit(self) -> None:
        """Hand the steps up to ``ahead`` beyond the next one to the workers, for the live seeds."""
        while self._submitted < min(self._next + self.ahead, self.stop_step):
            step, seeds = self._submitted, list(self._live)
            future = self._pool.submit(sample_step, self.task, self.batch_size, step, seeds, self.length,
                                       self.buckets)
            self._pending[step] = (seeds, future)
            self._submitted += 1

    def get(self, step: int, seeds: list[int]) -> Batch:
        """The stacked train batch of ``seeds`` at ``step`` (see the class docstring)."""
        if not self.start_step <= step < self.stop_step:
            raise ValueError(f"step {step} is outside the prefetched steps {self.start_step}..{self.stop_step - 1}")
        if step < self._next:
            raise ValueError(f"step {step} requested after step {self._next - 1}: steps must increase")
        if not seeds:
            raise ValueError("get needs at least one seed")
        gone = sorted({s for s in seeds if s not in self._live})
        if gone:
            raise ValueError(f"seeds {gone} are not generated: not given to the Prefetcher, or dropped earlier")
        t0 = time.perf_counter()
        try:
            self._live = [s for s in self._live if s in seeds]
            self._next = step + 1
            if self._pool is None:
                made = list(dict.fromkeys(seeds))
                stacked, widths = sample_step(self.task, self.batch_size, step, made, self.length, self.buckets)
            else:
                made, future = self._pending.pop(step)
                for skipped in [s for s in self._pending if s < step]:
                    self._pending.pop(skipped)[1].cancel()
                self._submit()
                stacked, widths = future.result()
            return self._select(stacked, made, widths, seeds)
        finally:
            self.data_time_s += time.perf_counter() - t0

    def _select(self, stacked: Batch, made: list[int], widths: list[int], seeds: list[int]) -> Batch:
        """The rows of ``seeds`` from ``stacked`` (generated for ``made``), trimmed to their longest when
        ``length`` is None (to its :func:`bucket` with ``buckets``), copied once into pinned memory if
        CUDA is available."""
        index = [made.index(s) for s in seeds]
        width = max(widths[i] for i in index) if self.length is None else self.length
        if self.length is None and self.buckets:
            width = bucket(width)
        if index == list(range(len(made))) and width == stacked.inputs.shape[2] and not self._pin:
            return stacked
        rows = torch.tensor(index)

        def take(x: torch.Tensor) -> torch.Tensor:
            x = x[:, :, :width] if x.dim() > 2 else x  # pooled targets and masks have no time axis
            out = torch.empty((len(index), *x.shape[1:]), dtype=x.dtype, pin_memory=self._pin)
            return torch.index_select(x, 0, rows, out=out)

        return Batch(take(stacked.inputs), take(stacked.targets), take(stacked.mask),
                     take(stacked.segment_pos), [stacked.meta[i] for i in index])

    def close(self) -> None:
        """Terminate the workers now (a step in progress is abandoned) and reap them."""
        if self._pool is None:
            return
        pool, self._pool = self._pool, None
        # private attributes (Python 3.14 has pool.terminate_workers()): the live dict of the pool's
        # processes, which its manager thread may still add to, and that thread
        processes, manager = pool._processes, pool._executor_manager_thread
        pool.shutdown(wait=False, cancel_futures=True)
        for p in list(processes.values()):
            p.terminate()
        if manager is not None:
            manager.join(timeout=10)  # after it, no process is started any more
        for p in list(processes.values()):
            p.terminate()
            p.join()
        self._pending.clear()
