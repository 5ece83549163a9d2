"""Linear recurrences h_t = a_t * h_{t-1} + b_t, and the RG-LRU scan built on them.

Griffin (arXiv 2402.19427) §2.4 and App. A; the gate math follows recurrentgemma's
``RGLRU.forward``. Backends share one entry point, :func:`rg_lru_scan`:

* ``sequential`` -- a plain loop over time, the readable reference (as the reference's
  ``rnn_scan``);
* ``parallel``   -- a log-depth (Hillis-Steele) associative scan in plain PyTorch, with the
  combine rule (a_i, b_i) o (a_j, b_j) = (a_j a_i, a_j b_i + b_j) of ``lru_associative_scan``;
* fused kernels  -- looked up in :data:`seqlib.kernels.FUSED_SCANS`: ``triton``
  (``seqlib.kernels.rglru_triton``), present only when Triton and CUDA are.

All accumulation is fp32, as in both official code paths.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
import torch.nn.functional as F

from seqlib.layers.rglru_constants import C_RGLRU, MAX_SQRT_GRADIENT


class SqrtBoundDerivative(torch.autograd.Function):
    """sqrt(z) whose backward uses 1/sqrt(max(4z, 1/MAX^2)): the gradient is capped at 1000.

    The reference (``SqrtBoundDerivative``) does this "to prevent NaNs during training in
    bfloat16": z = 1 - a_t^2 -> 0 as a_t -> 1.
    """

    generate_vmap_rule = True  # plain torch ops: vmap (the stacked trainer) batches them itself

    @staticmethod
    def forward(z: torch.Tensor) -> torch.Tensor:
        return torch.sqrt(z)

    @staticmethod
    def setup_context(ctx, inputs, output) -> None:
        ctx.save_for_backward(inputs[0])

    @staticmethod
    def backward(ctx, grad: torch.Tensor) -> torch.Tensor:
        (z,) = ctx.saved_tensors
        clipped = torch.clamp_min(4.0 * z, 1.0 / MAX_SQRT_GRADIENT**2)
        return grad / torch.sqrt(clipped)


def sqrt_bound_derivative(z: torch.Tensor) -> torch.Tensor:
    return SqrtBoundDerivative.apply(z)


def linear_scan_sequential(a: torch.Tensor, b: torch.Tensor, h0: torch.Tensor | None):
    """h_t = a_t h_{t-1} + b_t by a loop over t. a, b: [B, T, R] fp32; h0: [B, R] or None."""
    h = torch.zeros_like(b[:, 0]) if h0 is None else h0
    out = []
    for t in range(b.shape[1]):
        h = a[:, t] * h + b[:, t]
        out.append(h)
    return torch.stack(out, dim=1), h


def linear_scan_parallel(a: torch.Tensor, b: torch.Tensor, h0: torch.Tensor | None):
    """The same recurrence as a log-depth inclusive scan (Hillis-Steele, O(T log T) work)."""
    if h0 is not None:
        b = torch.cat([a[:, :1] * h0[:, None] + b[:, :1], b[:, 1:]], dim=1)
    T = b.shape[1]
    shift = 1
    while shift < T:
        # combine each element with the one `shift` steps earlier (identity (1, 0) before t=0)
        a_prev = F.pad(a[:, :-shift], (0, 0, shift, 0), value=1.0)
        b_prev = F.pad(b[:, :-shift], (0, 0, shift, 0), value=0.0)
        b = a * b_prev + b
        a = a * a_prev
        shift *= 2
    return b, b[:, -1]


LINEAR_SCANS: dict[str, Callable] = {
    "sequential": linear_scan_sequential,
    "parallel": linear_scan_parallel,
}


def fused_scans(device: torch.device) -> dict[str, Callable]:
    """The fused kernels usable on ``device``: ``seqlib.kernels.FUSED_SCANS`` on CUDA (the Triton scan
    when Triton is installed), none elsewhere. They take the gate pre-activations directly:
    ``fn(x, gate_x, gate_a, a_param, reset, h0, negative=False) -> (y, h_last)``."""
    if device.type != "cuda":
        return {}
    from seqlib.kernels import FUSED_SCANS

    return FUSED_SCANS


def resolve_backend(backend: str, device: torch.device) -> str:
    fused = fused_scans(device)
    if backend == "auto":
        return "triton" if "triton" in fused else "parallel"
    if backend not in LINEAR_SCANS and backend not in fused:
        raise ValueError(
            f"unknown scan backend {backend!r}; available here: {[*LINEAR_SCANS, *fused]}"
            + ("" if backend != "triton" else " (the triton backend needs CUDA and Triton)")
        )
    return backend


def rg_lru_gates(
    x: torch.Tensor,
    gate_x: torch.Tensor,
    gate_a: torch.Tensor,
    a_param: torch.Tensor,
    reset: torch.Tensor,
    dtype: torch.dtype = torch.float32,
    negative: bool = False,
):
    """RG-LRU gate math in ``dtype`` (fp32; the float64 oracle uses float64) -> (A_t, normalized
    input b_t) for h_t = A_t h_{t-1} + b_t.

    log a_t = -c * r_t * softplus(a_param), r_t = sigmoid(gate_a), i_t = sigmoid(gate_x);
    A_t = a_t, or 2 a_t - 1 with ``negative`` (``seqlib.layers.rglru``); b_t = sqrt(1 - A_t^2) * i_t * x_t,
    except at a document start (reset) where the multiplier is 1 and A_t is zeroed (recurrentgemma
    ``RGLRU.forward``). 1 - A_t^2 is computed without cancellation as a_t -> 1: 1 - a^2 = -expm1(2 log a),
    1 - (2a - 1)^2 = 4 a (1 - a) = -4 a expm1(log a).
    """
    x, gate_x, gate_a, a_param = (t.to(dtype) for t in (x, gate_x, gate_a, a_param))
    log_a = -C_RGLRU * torch.sigmoid(gate_a) * F.softplus(a_param)
    a = torch.exp(log_a)
    if negative:
        coef, one_minus_sq = 2.0 * a - 1.0, -4.0 * a * torch.expm1(log_a)
    else:
        coef, one_minus_sq = a, 1.0 - torch.exp(2.0 * log_a)
    gated_x = x * torch.sigmoid(gate_x)
    reset = reset[..., None].to(x.dtype)
    multiplier = reset + (1.0 - reset) * sqrt_bound_derivative(one_minus_sq)
    return coef * (1.0 - reset), gated_x * multiplier


def rg_lru_scan(
    x: torch.Tensor,
    gate_x: torch.Tensor,
    gate_a: torch.Tensor,
    a_param: torch.Tensor,
    reset: torch.Tensor,
    h0: torch.Tensor | None = None,
    backend: str = "auto",
    negative: bool = False,
) -> tuple[torch.Tensor, torch.Tensor]:
    """The RG-LRU after its gate projections (``negative``: A_t = 2 a_t - 1, :func:`rg_lru_gates`).

    x, gate_x, gate_a: [B, T, R] (any float dtype; gate pre-activations, before the sigmoid);
    a_param: [R]; reset: [B, T] bool (segment_pos == 0); h0: [B, R] fp32 or None.
    Returns y: [B, T, R] in x's dtype and the last state h_T: [B, R] in fp32.
    """
    if x.shape != gate_x.shape or x.shape != gate_a.shape:
        raise ValueError(f"rg_lru_scan: x {tuple(x.shape)}, gate_x {tuple(gate_x.shape)} and "
                         f"gate_a {tuple(gate_a.shape)} must have one shape [B, T, R]")
    if reset.shape != x.shape[:2]:
        raise ValueError(f"rg_lru_scan: reset {tuple(reset.shape)} must be [B, T] = {tuple(x.shape[:2])}")
    backend = resolve_backend(backend, x.device)
    if backend not in LINEAR_SCANS:
        return fused_scans(x.device)[backend](x, gate_x, gate_a, a_param, reset, h0, negative=negative)
    a, b = rg_lru_gates(x, gate_x, gate_a, a_param, reset, negative=negative)
    h0 = None if h0 is None else h0.float()
    y, h_last = LINEAR_SCANS[backend](a, b, h0)
    return y.to(x.dtype), h_last
