"""Measurements recorded with every run: parameters, state size, throughput, step time, memory, wall time.

* ``num_params``: ``model.num_params()`` (tied embeddings counted once).
* ``state_size``: ``model.state_size(seq_len)["total"]``, elements of recurrent state / KV cache per
  sequence at the longest evaluated length, Zoology-style accounting (``../shared/reference/tasks.md``
  §1.2 logs ``state_size`` at the max test L); the model's full breakdown goes to ``state_size_detail``.
* ``tokens_per_s``: training tokens (batch x length, scored or not) per second of training-step time
  (evaluation excluded). ``step_time_s``: median wall time of one optimiser step, first step excluded.
* ``peak_memory_bytes``: on CUDA ``torch.cuda.max_memory_allocated`` since the run started
  (``peak_memory_kind="cuda"``); on CPU the highest resident set size sampled from ``/proc/self/statm``
  during the run (``"rss"``, the whole process, so it includes the interpreter and libraries).
* ``wall_time_s``: the whole run, model build to last evaluation.
* ``device_processes``: training processes that shared the GPU (``SEQLIB_GPU_SHARE``, set per worker
  by the grid's local cluster; 1 alone): each one's times are then its share of a busier GPU, and
  each may allocate only that share of its memory (so that one process's out-of-memory error, which
  halves its stack, cannot come from another's allocations).
"""

from __future__ import annotations

import os
import resource
import statistics
import time
from dataclasses import dataclass, field

import torch

# training processes sharing one GPU (seqlib.book.grid.local_cluster sets it per worker)
SHARE_ENV = "SEQLIB_GPU_SHARE"
_PAGE = os.sysconf("SC_PAGE_SIZE") if hasattr(os, "sysconf") else 4096


def device_processes() -> int:
    """Training processes sharing this process's GPU (``SEQLIB_GPU_SHARE``; 1 if unset)."""
    return max(1, int(os.environ.get(SHARE_ENV) or 1))


def share_hint() -> str:
    """What a run out of GPU memory within this process's share of the GPU (:func:`device_processes`)
    should add: the cap, and that a grid with fewer workers per GPU gives each run more."""
    n = device_processes()
    return "" if n == 1 else (f" [within this process's 1/{n} share of the GPU's memory ({SHARE_ENV}={n}): "
                              "a grid with fewer --workers-per-gpu gives the run more]")


def rss_bytes() -> int:
    """Current resident set size of this process (Linux ``/proc``; peak RSS from getrusage elsewhere)."""
    try:
        with open("/proc/self/statm") as f:
            return int(f.read().split()[1]) * _PAGE
    except OSError:
        return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024


@dataclass
class Meter:
    """Accumulates step timings, tokens and peak memory over one run."""

    device: torch.device
    start: float = field(default_factory=time.perf_counter)
    step_times: list[float] = field(default_factory=list)
    tokens: int = 0
    peak_rss: int = 0

    def __post_init__(self) -> None:
        if self.device.type == "cuda":
            torch.cuda.reset_peak_memory_stats(self.device)
            if device_processes() > 1:  # this process's share of the GPU's memory (module docstring)
                index = torch.cuda.current_device() if self.device.index is None else self.device.index
                torch.cuda.set_per_process_memory_fraction(1 / device_processes(), index)  # wants an index
        self.peak_rss = rss_bytes()

    def step(self, seconds: float, tokens: int) -> None:
        self.step_times.append(seconds)
        self.tokens += tokens
        if self.device.type != "cuda":
            self.peak_rss = max(self.peak_rss, rss_bytes())

    def sync(self) -> None:
        if self.device.type == "cuda":
            torch.cuda.synchronize(self.device)

    def summary(self) -> dict:
        timed = self.step_times[1:] or self.step_times
        train_time = sum(self.step_times)
        if self.device.type == "cuda":
            peak, kind = torch.cuda.max_memory_allocated(self.device), "cuda"
        else:
            peak, kind = max(self.peak_rss, rss_bytes()), "rss"
        return {
            "tokens_per_s": self.tokens / train_time if train_time > 0 else None,
            "step_time_s": statistics.median(timed) if timed else None,
            "train_time_s": train_time,
            "train_tokens": self.tokens,
            "peak_memory_bytes": peak,
            "peak_memory_kind": kind,
            "wall_time_s": time.perf_counter() - self.start,
            "device_processes": device_processes() if self.device.type == "cuda" else 1,
        }


def model_size(model: torch.nn.Module, seq_len: int) -> dict:
    """``num_params``, ``state_size`` (total) and ``state_size_detail`` (the model's breakdown)."""
    detail = {k: int(v) for k, v in model.state_size(seq_len).items()}
    return {"num_params": int(model.num_params()), "state_size": detail["total"],
            "state_size_seq_len": seq_len, "state_size_detail": detail}
