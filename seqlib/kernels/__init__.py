"""GPU kernels for :func:`seqlib.layers.scan.rg_lru_scan`, which looks them up in :data:`FUSED_SCANS`.

``FUSED_SCANS`` maps a backend name to ``fn(x, gate_x, gate_a, a_param, reset, h0) -> (y, h_last)``
(gate pre-activations in, as ``rg_lru_scan`` takes them). It holds the fused Triton RG-LRU scan
(Griffin §2.4, App. D) as ``"triton"`` when Triton and a CUDA device are present. On a CPU-only
machine, or without Triton, it is empty; ``TRITON_UNAVAILABLE`` then says why, and asking for
``backend="triton"`` raises the scan module's "unknown scan backend ... (the triton backend needs
CUDA and Triton)" error. Benchmarks add their own entries (e.g. fla's HGRN scans).
"""

from __future__ import annotations

from collections.abc import Callable

import torch

FUSED_SCANS: dict[str, Callable] = {}
TRITON_UNAVAILABLE: str | None = None

try:
    import triton  # noqa: F401
except ImportError as exc:  # pragma: no cover - depends on the machine
    TRITON_UNAVAILABLE = f"triton is not installed ({exc})"

if TRITON_UNAVAILABLE is None and not torch.cuda.is_available():
    TRITON_UNAVAILABLE = "no CUDA device (torch.cuda.is_available() is False)"

if TRITON_UNAVAILABLE is None:
    from seqlib.kernels.rglru_triton import rglru_fused

    FUSED_SCANS["triton"] = rglru_fused

__all__ = ["FUSED_SCANS", "TRITON_UNAVAILABLE"]
