"""Whether this process's CUDA context still works after a run failed.

Some CUDA errors are sticky: after an illegal memory access, a misaligned address or a device-side
assert, every later CUDA call of the process fails with the same error. A process that trained one
run after another (a Dask worker of the grid) then failed each later run at its first CUDA call and,
failing in milliseconds, took the whole queue: on an H200 two RetNet runs' illegal memory accesses
ended every other run of a round that way (results/bench/grid-round-20261203T112905.json). So after a
run fails, :func:`lost_after_failure` probes the context; once it is lost, :func:`require_usable`
refuses the next run before its record exists (the grid's worker then exits and Dask restarts it:
:func:`seqlib.book.grid.train`), and only the run that hit the error is recorded failed.
"""

from __future__ import annotations

import torch

# the error that made this process's CUDA context unusable (None: none seen)
_lost: str | None = None
# what a failed run's reason says when its error left the context unusable (the grid reads it)
LOST_NOTE = "this process's CUDA context is unusable after it"


class CudaContextLost(RuntimeError):
    """This process's CUDA context was lost to an earlier run's sticky error: no run may start in it."""


def in_use() -> bool:
    """Whether this process has a CUDA context (a CPU run never probes one)."""
    return torch.cuda.is_available() and torch.cuda.is_initialized()


def probe() -> None:
    """Wait for the GPU and run one kernel: raises if the context is unusable."""
    torch.cuda.synchronize()
    torch.ones(1, device="cuda").sum().item()


def lost_after_failure() -> str:
    """After a run failed: '' if this process has no CUDA context or it still works, else a note for
    that run's reason (and from now on :func:`require_usable` refuses every run here)."""
    global _lost
    if _lost is None and in_use():
        try:
            probe()
        except Exception as err:  # noqa: BLE001 - any failure of the probe means the context is gone
            _lost = f"{type(err).__name__}: {(str(err).splitlines() or [''])[0]}"
    if _lost is None:
        return ""
    return f" [{LOST_NOTE} ({_lost}): no later run starts in it]"


def require_usable() -> None:
    """Raise :class:`CudaContextLost` if an earlier failure left this process's CUDA context unusable."""
    if _lost is not None:
        raise CudaContextLost(f"this process's CUDA context was lost to an earlier run's error ({_lost}); "
                              "a fresh process trains on (the grid restarts its worker)")
