"""A float64 RG-LRU oracle and a relative-error check for the fused kernel.

The oracle is the ``sequential`` backend of :mod:`seqlib.layers.scan` (recurrentgemma's
``rnn_scan`` loop, Griffin §2.4 / App. A) run in float64 instead of fp32: the same gate function
(``rg_lru_gates``, with the bounded sqrt derivative ``SqrtBoundDerivative``) and the same loop.
No Triton needed: the GPU tests, the CPU interpreter test and the benchmark all use it.
"""

from __future__ import annotations

import torch

from seqlib.layers.scan import linear_scan_sequential, rg_lru_gates


def rg_lru_reference(x, gate_x, gate_a, a_param, reset, h0=None, dtype=torch.float64, negative=False):
    """``rg_lru_scan(..., backend="sequential")`` computed in ``dtype``: returns (y, h_last) in dtype."""
    a, b = rg_lru_gates(x, gate_x, gate_a, a_param, reset, dtype=dtype, negative=negative)
    return linear_scan_sequential(a, b, None if h0 is None else h0.to(dtype))


def rel_err(out: torch.Tensor, ref: torch.Tensor) -> float:
    """||out - ref|| / ||ref|| in float64 (max |out| if ref is all zeros); NaN anywhere -> inf."""
    out, ref = out.double(), ref.double()
    if not torch.isfinite(out).all():
        return float("inf")
    den = ref.norm()
    if den == 0:
        return out.abs().max().item() if out.numel() else 0.0
    return ((out - ref).norm() / den).item()


def make_inputs(B, T, R, dtype, device, generator, *, reset_prob=0.02, h0=True, a_near_one=False):
    """Random RG-LRU inputs: gate pre-activations ~ N(0, 1), x ~ N(0, 1), a_param spread over the
    init range (a^2 in [0.81, 0.998]) and beyond, resets mid-sequence, optional fp32 h0."""
    def randn(*shape):
        return torch.randn(*shape, generator=generator, device=device)

    x, gx, ga = (randn(B, T, R).to(dtype) for _ in range(3))
    # a = exp(-softplus(a_param)); softplus^-1(-log a) for a in [0.5, 0.9995]
    u = torch.rand(R, generator=generator, device=device)
    neg_log_a = -torch.log(0.5 + 0.4995 * u)
    a_param = torch.log(torch.expm1(neg_log_a))
    if a_near_one:
        # softplus(a_param) ~ 1e-9 .. 1e-6: 1 - a_t^2 is tiny, so the sqrt gradient cap (1000) binds
        a_param = -14.0 - 7.0 * torch.rand(R, generator=generator, device=device)
    reset = torch.rand(B, T, generator=generator, device=device) < reset_prob
    h = randn(B, R) if h0 else None
    return x, gx, ga, a_param, reset, h


def compare(fn, x, gx, ga, a_param, reset, h0=None, *, use_h_last=True, generator=None, negative=False):
    """Run ``fn`` (the kernel's entry point) and the float64 oracle on the same inputs, forward and
    backward with random upstream gradients; return {name: relative error}. ``negative``: the
    RG-LRU with A_t = 2 a_t - 1 (``seqlib.layers.rglru``), in both."""
    leaves = [t.detach().clone().requires_grad_() for t in (x, gx, ga, a_param)]
    h0k = None if h0 is None else h0.detach().clone().requires_grad_()
    y, h_last = fn(*leaves, reset, h0k, negative=negative) if negative else fn(*leaves, reset, h0k)
    dy = torch.randn(y.shape, generator=generator, device=y.device).to(y.dtype)
    dh = torch.randn(h_last.shape, generator=generator, device=y.device)
    loss = (y.float() * dy.float()).sum() + ((h_last * dh).sum() if use_h_last else 0.0)
    loss.backward()

    leaves_r = [t.detach().double().requires_grad_() for t in (x, gx, ga, a_param)]
    h0r = None if h0 is None else h0.detach().double().requires_grad_()
    y_r, h_r = rg_lru_reference(*leaves_r, reset, h0r, negative=negative)
    loss_r = (y_r * dy.double()).sum() + ((h_r * dh.double()).sum() if use_h_last else 0.0)
    loss_r.backward()

    errs = {"y": rel_err(y, y_r), "h_last": rel_err(h_last, h_r)}
    for name, k, r in zip(("dx", "dgate_x", "dgate_a", "da_param"), leaves, leaves_r):
        errs[name] = rel_err(k.grad, r.grad) if k.grad is not None else float("inf")
    if h0 is not None:
        errs["dh0"] = rel_err(h0k.grad, h0r.grad) if h0k.grad is not None else float("inf")
    return errs


def compare_stacked(fn, K, B, T, R, dtype, device, generator, *, reset_prob=0.1):
    """``torch.func.vmap(fn)`` over K instances (their own a_param, inputs, resets, h0) against K
    separate calls of ``fn``, forward and backward; return {name: largest relative error over instances}."""
    cases = [make_inputs(B, T, R, dtype, device, generator, reset_prob=reset_prob) for _ in range(K)]
    stacked = [torch.stack(ts).detach().requires_grad_(ts[0].is_floating_point())
               for ts in zip(*cases)]  # x, gx, ga, a_param, reset, h0 with a leading instance axis
    y, h_last = torch.func.vmap(fn)(*stacked)
    dy = torch.randn(y.shape, generator=generator, device=device).to(y.dtype)
    dh = torch.randn(h_last.shape, generator=generator, device=device)
    ((y.float() * dy.float()).sum() + (h_last * dh).sum()).backward()
    names = ("dx", "dgate_x", "dgate_a", "da_param", None, "dh0")
    errs = {"y": 0.0, "h_last": 0.0, **{n: 0.0 for n in names if n}}
    for k, case in enumerate(cases):
        leaves = [t.detach().clone().requires_grad_(t.is_floating_point()) for t in case]
        y_k, h_k = fn(*leaves)
        ((y_k.float() * dy[k].float()).sum() + (h_k * dh[k]).sum()).backward()
        errs["y"] = max(errs["y"], rel_err(y[k], y_k))
        errs["h_last"] = max(errs["h_last"], rel_err(h_last[k], h_k))
        for name, s, leaf in zip(names, stacked, leaves):
            if name:
                errs[name] = max(errs[name], rel_err(s.grad[k], leaf.grad))
    return errs
