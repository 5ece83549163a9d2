"""GPU kernels behind the scan seam of :mod:`seqlib.layers.scan`.

Importing this package registers the fused Triton RG-LRU scan (Griffin §2.4, App. D) as the
``"triton"`` backend of :func:`seqlib.layers.scan.rg_lru_scan` when Triton and a CUDA device are
present. On a CPU-only machine, or without Triton, it imports cleanly and registers nothing;
``TRITON_UNAVAILABLE`` then says why, and asking for ``backend="triton"`` raises the scan module's
"unknown scan backend ... (the triton backend needs CUDA and Triton)" error.
"""

from __future__ import annotations

import torch

from seqlib.layers.scan import register_fused_scan

TRITON_UNAVAILABLE: str | None = None

try:
    import triton  # noqa: F401
except ImportError as exc:  # pragma: no cover - depends on the machine
    TRITON_UNAVAILABLE = f"triton is not installed ({exc})"

if TRITON_UNAVAILABLE is None and not torch.cuda.is_available():
    TRITON_UNAVAILABLE = "no CUDA device (torch.cuda.is_available() is False)"

if TRITON_UNAVAILABLE is None:
    from seqlib.kernels.rglru_triton import rglru_fused

    register_fused_scan("triton", rglru_fused)

__all__ = ["TRITON_UNAVAILABLE"]
