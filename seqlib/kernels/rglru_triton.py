"""Fused RG-LRU scan in Triton: gates + recurrence in one pass, and its reverse-scan backward.

Griffin (arXiv 2402.19427) §2.4, App. A (eq. 4, 6) and App. D (the linear-scan kernel); the gate math
and the reset / bounded-sqrt conventions are those of recurrentgemma's ``RGLRU.forward`` as written
in :func:`seqlib.layers.scan.rg_lru_gates`:

    r = sigmoid(gate_a), i = sigmoid(gate_x), log a = -8 r softplus(a_param),
    m = 1 at a reset else sqrt(1 - a^2), a zeroed at a reset,  h_t = a_t h_{t-1} + m_t i_t x_t.

Layout and work split
---------------------
Grid ``(cdiv(R, BLOCK_R), B)``: one program owns one batch row and ``BLOCK_R`` contiguous channels
(loads coalesced along R) and walks the sequence in tiles of ``BLOCK_T`` steps. Inside a tile the
recurrence is an associative scan over the time axis (the combine rule of ``lru_associative_scan``,
App. D / ``linear_scan_parallel``); the fp32 carry ``h`` links the tiles, so across tiles the scan
is strictly sequential, as in the reference Pallas kernel. The next tile's inputs are loaded before
the current one is reduced (a register double buffer), so each program keeps one tile of loads in
flight while it computes. Any T (row masks) and any R (column masks).

The default forward is the *segmented* variant (``_rglru_fwd_seg_kernel``): each thread owns 4
consecutive steps of its channels, composes them in registers, and only the segment maps go
through the cross-thread scan (an exclusive scan, so no shifted state is needed). That cut the
instructions per element from ~175 to ~85 and took the forward from 42% to 71% of copy bandwidth
on an H100. The backward still uses one inclusive scan per step (36% of copy bandwidth).
Transcendentals use ex2/rcp.approx.ftz (one MUFU each) through inline PTX, except under the
Triton interpreter.

Bytes moved (N = B T R elements, ``s`` = input itemsize)
--------------------------------------------------------
* forward: read x, gate_x, gate_a (3 s N), write y (s N); plus reset (B T bytes), a_param, h0/h_T
  and, only when a gradient is needed, one fp32 state per tile as a checkpoint
  (4 N / BLOCK_T bytes: 1/16 of y at BLOCK_T = 32 in bf16). bf16: 8 N bytes.
* backward: read x, gate_x, gate_a, dy (4 s N) + the checkpoints, write dx, dgate_x, dgate_a
  (3 s N) and [B, R] fp32 partial sums for a_param. bf16: 14 N bytes. Nothing else is stored in
  the forward: the gates are recomputed, and each tile recomputes its own h_t from its checkpoint
  with the same in-tile scan as the forward (exact fp32 states, unlike reusing a bf16 y).

Backward math (per element, fp32; g_t = dL/dh_t)
------------------------------------------------
    g_t = dy_t + a_{t+1} g_{t+1}          (reverse scan; g_{T-1} also gets dL/dh_T)
    dx = g m i,  dgate_x = g m x i (1 - i)
    d log a = g a h_{t-1} - 2 a^2 dz,  dz = g i x / sqrt(max(4 z, 1e-6)),  z = 1 - a^2
    dgate_a = d log a (-8 softplus(a_param)) r (1 - r),  da_param = sum_{B,T} d log a (-8 r) sigmoid(a_param)
    dh0 = a_0 g_0
with the reset terms (a h_{t-1} and the whole sqrt branch) zeroed at resets. ``a h_{t-1}`` is
taken as ``h_t - b_t`` so no shifted state is needed; the reverse scan carries a 3-tuple so that it
needs a_{t+1} without a shifted load either. 1/sqrt(max(4z, 1e-6)) is ``SqrtBoundDerivative``.
"""

from __future__ import annotations

import os

import torch
import triton
import triton.language as tl

from seqlib.layers.rglru_constants import C_RGLRU, MAX_SQRT_GRADIENT

# the kernels write c = 8 as a literal (-8.0) where it enters log a_t and its gradients; Triton's
# interpreter cannot mix a module-level constexpr with tensors there, so keep them in step here
assert C_RGLRU == 8.0, "update the -8.0 literals in the RG-LRU kernels"
_MIN_4Z = 1.0 / MAX_SQRT_GRADIENT**2  # 1e-6

# ex2/rcp.approx.ftz through inline PTX (relative error ~1e-7): a third fewer instructions
FAST_MATH = True
# Set to True (tests do) to fill every output with NaN before the launch: unwritten elements fail.
POISON_OUTPUTS = False


# ----------------------------------------------------------------------------------------------
# device helpers
# ----------------------------------------------------------------------------------------------
@triton.jit
def _softplus(x):
    """softplus(x) = max(x, 0) + log1p(exp(-|x|)), with Kahan's accurate log1p."""
    u = tl.exp(-tl.abs(x))
    w = 1.0 + u
    log1p_u = tl.where(w == 1.0, u, tl.log(w) * (u / (w - 1.0)))
    return tl.maximum(x, 0.0) + log1p_u


@triton.jit
def _ex2(x, FAST: tl.constexpr):
    """2^x; FAST: one ex2.approx.ftz (MUFU) instead of the denormal-safe sequence."""
    if FAST:
        return tl.inline_asm_elementwise("ex2.approx.ftz.f32 $0, $1;", "=f,f", [x], dtype=tl.float32,
                                         is_pure=True, pack=1)
    else:
        return tl.exp2(x)


@triton.jit
def _rcp(x, FAST: tl.constexpr):
    if FAST:
        return tl.inline_asm_elementwise("rcp.approx.ftz.f32 $0, $1;", "=f,f", [x], dtype=tl.float32,
                                         is_pure=True, pack=1)
    else:
        return 1.0 / x


@triton.jit
def _rglru_elementwise(x, gx, ga, rs, sp, valid, FAST: tl.constexpr, NEG: tl.constexpr):
    """Gate math of one tile (fp32): returns r, i, the recurrence coefficient A (a, or 2a - 1 with
    ``NEG``: the negative-eigenvalue variant, ``seqlib.layers.rglru``), dA = dA/dlog a, z = 1 - A^2,
    m, abar (A zeroed at resets, 1 on padding rows so they are the scan's identity) and b = m i x
    (0 on padding).

    ``sp`` is softplus(a_param); exp(v) = 2^(v log2 e) throughout."""
    LOG2E: tl.constexpr = 1.4426950408889634
    r = _rcp(1.0 + _ex2(ga * -LOG2E, FAST), FAST)
    i = _rcp(1.0 + _ex2(gx * -LOG2E, FAST), FAST)
    log_a = -8.0 * r * sp
    a = _ex2(log_a * LOG2E, FAST)
    # expm1(log_a): a Taylor polynomial near 0 (where a - 1 would cancel), a - 1 elsewhere
    v = log_a
    p = 1.0 + v * (0.5 + v * (1.0 / 6.0 + v * (1.0 / 24.0 + v * (1.0 / 120.0 + v * (1.0 / 720.0)))))
    em1 = tl.where(v > -0.125, v * p, a - 1.0)
    if NEG:
        coef = 2.0 * a - 1.0
        dcoef = 2.0 * a
        z = -4.0 * a * em1  # 1 - (2a - 1)^2 = 4 a (1 - a), without cancellation as a -> 1
    else:
        coef = a
        dcoef = a
        z = -em1 * (2.0 + em1)  # 1 - a^2 without cancellation as a -> 1
    m = tl.where(rs, 1.0, tl.sqrt(z))
    abar = tl.where(rs, 0.0, coef)
    abar = tl.where(valid, abar, 1.0)
    b = m * i * x
    return r, i, coef, dcoef, z, m, abar, b


@triton.jit
def _fwd_combine(a_l, b_l, a_r, b_r):
    # (earlier, later) -> the map h -> a_r (a_l h + b_l) + b_r
    return a_l * a_r, a_r * b_l + b_r


@triton.jit
def _bwd_combine(f_r, p_r, g_r, f_l, p_l, g_l):
    # reverse scan: first argument is the later interval [m+1, s], second the earlier [t, m].
    # An interval [t, s] holds f = a_t, p = prod_{k=t+1..s} a_k, g = sum_u prod_{k=t+1..u} a_k dy_u.
    q = p_l * f_r
    return f_l, q * p_r, g_l + q * g_r


@triton.jit
def _load_tile(x_ptr, gx_ptr, ga_ptr, rs_ptr, row0, t_idx, cols, T, R):
    """Load the [BLOCK_T, BLOCK_R] inputs of the tile whose first time step is row0 (as fp32).

    The pointers point at time step row0 of this batch row; rows outside [0, T) are masked off
    (no memory traffic), so prefetching one tile past either end is free.
    """
    rows = row0 + t_idx
    tmask = (rows >= 0) & (rows < T)
    mask = tmask[:, None] & (cols[None, :] < R)
    off = t_idx[:, None] * R + cols[None, :]
    x = tl.load(x_ptr + off, mask=mask, other=0.0).to(tl.float32)
    gx = tl.load(gx_ptr + off, mask=mask, other=0.0).to(tl.float32)
    ga = tl.load(ga_ptr + off, mask=mask, other=0.0).to(tl.float32)
    rs = tl.load(rs_ptr + t_idx, mask=tmask, other=0) != 0
    return x, gx, ga, rs


# ----------------------------------------------------------------------------------------------
# forward
# ----------------------------------------------------------------------------------------------
@triton.jit
def _rglru_fwd_kernel(
    x_ptr, gx_ptr, ga_ptr, ap_ptr, rs_ptr, h0_ptr,
    y_ptr, hlast_ptr, ckpt_ptr,
    T, R, NT, AP_ROWS,
    HAS_H0: tl.constexpr, STORE_CKPT: tl.constexpr,
    BLOCK_T: tl.constexpr, BLOCK_R: tl.constexpr, FAST: tl.constexpr, NEG: tl.constexpr,
):
    pid_r = tl.program_id(0)
    b = tl.program_id(1).to(tl.int64)
    cols = pid_r * BLOCK_R + tl.arange(0, BLOCK_R)
    cmask = cols < R
    t_idx = tl.arange(0, BLOCK_T)
    last_row = (t_idx == BLOCK_T - 1)[:, None]

    # a_param row of this batch row: AP_ROWS batch rows share one (stacked instances, seqlib.stack)
    sp = _softplus(tl.load(ap_ptr + (b // AP_ROWS) * R + cols, mask=cmask, other=0.0).to(tl.float32))[None, :]
    if HAS_H0:
        h = tl.load(h0_ptr + b * R + cols, mask=cmask, other=0.0).to(tl.float32)
    else:
        h = tl.zeros([BLOCK_R], dtype=tl.float32)

    bt = b * T  # int64
    x_n, gx_n, ga_n, rs_n = _load_tile(x_ptr + bt * R, gx_ptr + bt * R, ga_ptr + bt * R, rs_ptr + bt,
                                       0, t_idx, cols, T, R)
    for c in range(NT):
        row0 = c * BLOCK_T
        x, gx, ga, rs = x_n, gx_n, ga_n, rs_n
        # prefetch the next tile (all-masked past the end: no traffic)
        nxt = (bt + row0 + BLOCK_T) * R
        x_n, gx_n, ga_n, rs_n = _load_tile(x_ptr + nxt, gx_ptr + nxt, ga_ptr + nxt, rs_ptr + bt + row0 + BLOCK_T,
                                           row0 + BLOCK_T, t_idx, cols, T, R)
        if STORE_CKPT:
            tl.store(ckpt_ptr + (b * NT + c) * R + cols, h, mask=cmask)

        valid = ((row0 + t_idx) < T)[:, None]
        _r, _i, _A, _dA, _z, _m, abar, bb = _rglru_elementwise(x, gx, ga, rs[:, None], sp, valid, FAST, NEG)
        acc_a, acc_b = tl.associative_scan((abar, bb), 0, _fwd_combine)
        hs = acc_a * h[None, :] + acc_b
        off = t_idx[:, None] * R + cols[None, :]
        mask = valid & cmask[None, :]
        tl.store(y_ptr + (bt + row0) * R + off, hs.to(y_ptr.dtype.element_ty), mask=mask)
        # padding rows are the identity, so the last row holds h at min(T, row0 + BLOCK_T) - 1
        h = tl.sum(tl.where(last_row, hs, 0.0), axis=0)

    tl.store(hlast_ptr + b * R + cols, h, mask=cmask)


@triton.jit
def _fwd_excl_combine(a_l, b_l, ea_l, eb_l, a_r, b_r, ea_r, eb_r):
    # (full map, map of the interval without its last element): the second pair of a scan
    # result at s is the exclusive prefix, i.e. the map from h_start to the state entering s
    return a_l * a_r, a_r * b_l + b_r, ea_r * a_l, ea_r * b_l + eb_r


@triton.jit
def _seg_load(x_ptr, gx_ptr, ga_ptr, rs_ptr, rel, row0, cols, T, R):
    """Raw loads of one sub-tile of a segmented tile: rows row0 + rel ([S] offsets from the
    pointers' row row0); rows outside [0, T) are masked off."""
    rows = row0 + rel
    tmask = (rows >= 0) & (rows < T)
    mask = tmask[:, None] & (cols[None, :] < R)
    off = rel[:, None] * R + cols[None, :]
    x = tl.load(x_ptr + off, mask=mask, other=0.0)
    gx = tl.load(gx_ptr + off, mask=mask, other=0.0)
    ga = tl.load(ga_ptr + off, mask=mask, other=0.0)
    rs = tl.load(rs_ptr + rel, mask=tmask, other=0)
    return x, gx, ga, rs


@triton.jit
def _seg_gates(x, gx, ga, rs, rows, T, sp, FAST: tl.constexpr, NEG: tl.constexpr):
    tmask = (rows < T)[:, None]
    _r, _i, _A, _dA, _z, _m, abar, b = _rglru_elementwise(x.to(tl.float32), gx.to(tl.float32), ga.to(tl.float32),
                                                          (rs != 0)[:, None], sp, tmask, FAST, NEG)
    return abar, b


@triton.jit
def _seg_store(y_ptr, h, rel, row0, cols, T, R):
    mask = ((row0 + rel) < T)[:, None] & (cols[None, :] < R)
    tl.store(y_ptr + rel[:, None] * R + cols[None, :], h.to(y_ptr.dtype.element_ty), mask=mask)


@triton.jit
def _rglru_fwd_seg_kernel(
    x_ptr, gx_ptr, ga_ptr, ap_ptr, rs_ptr, h0_ptr,
    y_ptr, hlast_ptr, ckpt_ptr,
    T, R, NT, AP_ROWS,
    HAS_H0: tl.constexpr, STORE_CKPT: tl.constexpr,
    SEG_ROWS: tl.constexpr, BLOCK_R: tl.constexpr, FAST: tl.constexpr, NEG: tl.constexpr,
):
    """Forward with 4-step segments per thread: a tile of BLOCK_T = 4 * SEG_ROWS steps is loaded
    as 4 strided sub-tiles (sub-tile k holds steps 4 s + k), so each thread owns 4 consecutive
    steps of its channels. The recurrence is composed sequentially inside a segment, the segments
    are scanned across threads (one exclusive scan per 4 steps instead of an inclusive scan per
    step), and each segment is replayed from its entering state. The next tile's 4 sub-tiles are
    loaded before this one is computed. Same results as the plain kernel up to rounding order."""
    pid_r = tl.program_id(0)
    b = tl.program_id(1).to(tl.int64)
    cols = pid_r * BLOCK_R + tl.arange(0, BLOCK_R)
    cmask = cols < R
    s_idx = tl.arange(0, SEG_ROWS)
    r0 = s_idx * 4
    r1 = r0 + 1
    r2 = r0 + 2
    r3 = r0 + 3
    last_row = (s_idx == SEG_ROWS - 1)[:, None]
    BLOCK_T: tl.constexpr = 4 * SEG_ROWS

    # a_param row of this batch row: AP_ROWS batch rows share one (stacked instances, seqlib.stack)
    sp = _softplus(tl.load(ap_ptr + (b // AP_ROWS) * R + cols, mask=cmask, other=0.0).to(tl.float32))[None, :]
    if HAS_H0:
        h = tl.load(h0_ptr + b * R + cols, mask=cmask, other=0.0).to(tl.float32)
    else:
        h = tl.zeros([BLOCK_R], dtype=tl.float32)
    ones = tl.full([SEG_ROWS, BLOCK_R], 1.0, tl.float32)
    zeros = tl.zeros([SEG_ROWS, BLOCK_R], dtype=tl.float32)
    bt = b * T
    xp, gxp, gap, rsp = x_ptr + bt * R, gx_ptr + bt * R, ga_ptr + bt * R, rs_ptr + bt
    x0n, g0n, a0n, s0n = _seg_load(xp, gxp, gap, rsp, r0, 0, cols, T, R)
    x1n, g1n, a1n, s1n = _seg_load(xp, gxp, gap, rsp, r1, 0, cols, T, R)
    x2n, g2n, a2n, s2n = _seg_load(xp, gxp, gap, rsp, r2, 0, cols, T, R)
    x3n, g3n, a3n, s3n = _seg_load(xp, gxp, gap, rsp, r3, 0, cols, T, R)
    for c in range(NT):
        row0 = c * BLOCK_T
        if STORE_CKPT:
            tl.store(ckpt_ptr + (b * NT + c) * R + cols, h, mask=cmask)
        x0, g0, q0, s0 = x0n, g0n, a0n, s0n
        x1, g1, q1, s1 = x1n, g1n, a1n, s1n
        x2, g2, q2, s2 = x2n, g2n, a2n, s2n
        x3, g3, q3, s3 = x3n, g3n, a3n, s3n
        nb = (bt + row0 + BLOCK_T) * R
        nxp, ngxp, ngap, nrsp = x_ptr + nb, gx_ptr + nb, ga_ptr + nb, rs_ptr + bt + row0 + BLOCK_T
        x0n, g0n, a0n, s0n = _seg_load(nxp, ngxp, ngap, nrsp, r0, row0 + BLOCK_T, cols, T, R)
        x1n, g1n, a1n, s1n = _seg_load(nxp, ngxp, ngap, nrsp, r1, row0 + BLOCK_T, cols, T, R)
        x2n, g2n, a2n, s2n = _seg_load(nxp, ngxp, ngap, nrsp, r2, row0 + BLOCK_T, cols, T, R)
        x3n, g3n, a3n, s3n = _seg_load(nxp, ngxp, ngap, nrsp, r3, row0 + BLOCK_T, cols, T, R)

        a0, b0 = _seg_gates(x0, g0, q0, s0, row0 + r0, T, sp, FAST, NEG)
        a1, b1 = _seg_gates(x1, g1, q1, s1, row0 + r1, T, sp, FAST, NEG)
        a2, b2 = _seg_gates(x2, g2, q2, s2, row0 + r2, T, sp, FAST, NEG)
        a3, b3 = _seg_gates(x3, g3, q3, s3, row0 + r3, T, sp, FAST, NEG)
        # the segment's map h -> A h + B, composed in-thread
        sa = a1 * a0
        sb = a1 * b0 + b1
        sb = a2 * sb + b2
        sa = a2 * sa
        sb = a3 * sb + b3
        sa = a3 * sa
        _fa, _fb, ea, eb = tl.associative_scan((sa, sb, ones, zeros), 0, _fwd_excl_combine)
        hh = ea * h[None, :] + eb  # the state entering each segment
        yp = y_ptr + (bt + row0) * R
        hh = a0 * hh + b0
        _seg_store(yp, hh, r0, row0, cols, T, R)
        hh = a1 * hh + b1
        _seg_store(yp, hh, r1, row0, cols, T, R)
        hh = a2 * hh + b2
        _seg_store(yp, hh, r2, row0, cols, T, R)
        hh = a3 * hh + b3
        _seg_store(yp, hh, r3, row0, cols, T, R)
        h = tl.sum(tl.where(last_row, hh, 0.0), axis=0)

    tl.store(hlast_ptr + b * R + cols, h, mask=cmask)


# ----------------------------------------------------------------------------------------------
# backward
# ----------------------------------------------------------------------------------------------
@triton.jit
def _rglru_bwd_kernel(
    x_ptr, gx_ptr, ga_ptr, ap_ptr, rs_ptr, ckpt_ptr, dy_ptr, dht_ptr,
    dx_ptr, dgx_ptr, dga_ptr, dh0_ptr, dsp_ptr,
    T, R, NT, NT_CKPT, AP_ROWS,
    HAS_DHT: tl.constexpr, CKPT_EVERY: tl.constexpr,
    BLOCK_T: tl.constexpr, BLOCK_R: tl.constexpr, FAST: tl.constexpr, NEG: tl.constexpr,
):
    pid_r = tl.program_id(0)
    b = tl.program_id(1).to(tl.int64)
    cols = pid_r * BLOCK_R + tl.arange(0, BLOCK_R)
    cmask = cols < R
    t_idx = tl.arange(0, BLOCK_T)
    first_row = (t_idx == 0)[:, None]
    off = t_idx[:, None] * R + cols[None, :]

    # a_param row of this batch row: AP_ROWS batch rows share one (stacked instances, seqlib.stack)
    sp = _softplus(tl.load(ap_ptr + (b // AP_ROWS) * R + cols, mask=cmask, other=0.0).to(tl.float32))[None, :]
    if HAS_DHT:
        carry = tl.load(dht_ptr + b * R + cols, mask=cmask, other=0.0).to(tl.float32)
    else:
        carry = tl.zeros([BLOCK_R], dtype=tl.float32)
    dsp_acc = tl.zeros([BLOCK_T, BLOCK_R], dtype=tl.float32)
    ones = tl.full([BLOCK_T, BLOCK_R], 1.0, tl.float32)

    bt = b * T
    row0 = (NT - 1) * BLOCK_T
    cur = (bt + row0) * R
    x_n, gx_n, ga_n, rs_n = _load_tile(x_ptr + cur, gx_ptr + cur, ga_ptr + cur, rs_ptr + bt + row0,
                                       row0, t_idx, cols, T, R)
    dy_n = tl.load(dy_ptr + cur + off, mask=((row0 + t_idx) < T)[:, None] & cmask[None, :],
                   other=0.0).to(tl.float32)
    for k in range(NT):
        c = NT - 1 - k
        row0 = c * BLOCK_T
        cur = (bt + row0) * R
        x, gx, ga, rs, dy = x_n, gx_n, ga_n, rs_n, dy_n
        h_start = tl.load(ckpt_ptr + (b * NT_CKPT + c * CKPT_EVERY) * R + cols, mask=cmask, other=0.0)
        # prefetch the previous tile (rows < 0 at c == 0: masked off entirely)
        prv = row0 - BLOCK_T
        poff = (bt + prv) * R
        x_n, gx_n, ga_n, rs_n = _load_tile(x_ptr + poff, gx_ptr + poff, ga_ptr + poff, rs_ptr + bt + prv,
                                           prv, t_idx, cols, T, R)
        dy_n = tl.load(dy_ptr + poff + off, mask=((prv + t_idx) >= 0)[:, None] & cmask[None, :],
                       other=0.0).to(tl.float32)

        valid = ((row0 + t_idx) < T)[:, None]
        mask = valid & cmask[None, :]
        rs2 = rs[:, None]
        r, i, coef, dcoef, z, m, abar, bb = _rglru_elementwise(x, gx, ga, rs2, sp, valid, FAST, NEG)
        # the states entering each step (h_{t-1}) of this tile, recomputed from its checkpoint
        if NEG:  # A can be 0: h_{t-1} from the exclusive scan, not (h_t - b_t) / A
            zeros = tl.zeros([BLOCK_T, BLOCK_R], dtype=tl.float32)
            _fa, _fb, ea, eb = tl.associative_scan((abar, bb, ones, zeros), 0, _fwd_excl_combine)
            dA_h = dcoef * (ea * h_start[None, :] + eb)
        else:  # A h_{t-1} = h_t - b_t
            acc_a, acc_b = tl.associative_scan((abar, bb), 0, _fwd_combine)
            dA_h = acc_a * h_start[None, :] + acc_b - bb
        # g_t = dy_t + a_{t+1} g_{t+1}, with the later tiles' carry a_{t1} g_{t1} (or dL/dh_T)
        _f, p, gg = tl.associative_scan((abar, ones, dy), 0, _bwd_combine, reverse=True)
        g = gg + p * carry[None, :]

        gi = g * i
        dx = gi * m
        dgx = dx * x * (1.0 - i)
        dz = gi * x * tl.rsqrt(tl.maximum(4.0 * z, 1e-6))
        dlog = g * dA_h - 2.0 * coef * dcoef * dz  # g dA/dlog a h_{t-1} + (through sqrt(1 - A^2))
        dlog = tl.where(valid & (rs2 == 0), dlog, 0.0)
        dga = dlog * (-8.0) * sp * r * (1.0 - r)
        dsp_acc += dlog * r

        tl.store(dx_ptr + cur + off, dx.to(dx_ptr.dtype.element_ty), mask=mask)
        tl.store(dgx_ptr + cur + off, dgx.to(dgx_ptr.dtype.element_ty), mask=mask)
        tl.store(dga_ptr + cur + off, dga.to(dga_ptr.dtype.element_ty), mask=mask)
        carry = tl.sum(tl.where(first_row, abar * g, 0.0), axis=0)

    tl.store(dh0_ptr + b * R + cols, carry, mask=cmask)
    tl.store(dsp_ptr + b * R + cols, -8.0 * tl.sum(dsp_acc, axis=0), mask=cmask)


# ----------------------------------------------------------------------------------------------
# host side
# ----------------------------------------------------------------------------------------------
def _fast() -> bool:
    """PTX fast-math (ex2/rcp .approx.ftz) except under the interpreter, which has no inline asm."""
    return os.environ.get("TRITON_INTERPRET", "0") != "1" and FAST_MATH


def _alloc(shape, dtype, device):
    if POISON_OUTPUTS:
        return torch.full(shape, float("nan"), dtype=dtype, device=device)
    return torch.empty(shape, dtype=dtype, device=device)


# (BLOCK_T, BLOCK_R, num_warps[, 4]) per launch; a trailing 4 selects the segmented forward
# (BLOCK_T = 4 * rows, each thread owning 4 consecutive steps). FWD_CONFIG serves forwards without autograd state,
# TRAIN_FWD_CONFIG the forward that stores checkpoints for BWD_CONFIG, whose BLOCK_T must be a
# multiple of TRAIN_FWD_CONFIG's. Chosen by the sweep of ``python -m seqlib.bench.scan --sweep``.
# Measured on an H100 (B=8, T=4096, R=1024, bf16; results/bench): plain forward 0.19-0.22 ms for
# every config, segmented 0.126-0.16 ms; backward 0.44 ms at (32, 16, 2), 0.45-0.69 ms elsewhere.
FWD_CONFIG = (128, 32, 8, 4)
TRAIN_FWD_CONFIG = (32, 16, 2, 4)
BWD_CONFIG = (32, 16, 2)
_SM_COUNT: dict[int, int] = {}


def _fit(config, B, R, device):
    """Halve BLOCK_R (down to 16) while the grid has fewer programs than the device has SMs."""
    block_t, block_r, num_warps, *rest = config
    if device.type != "cuda":
        return config
    idx = device.index if device.index is not None else torch.cuda.current_device()
    if idx not in _SM_COUNT:
        _SM_COUNT[idx] = torch.cuda.get_device_properties(idx).multi_processor_count
    while block_r > 16 and B * triton.cdiv(R, block_r) < _SM_COUNT[idx]:
        block_r //= 2
    return (block_t, block_r, num_warps, *rest)


def _ap_rows(a_param, B: int) -> int:
    """Batch rows per row of ``a_param``: B for one [R] vector, B / K for K stacked instances [K, R]."""
    return B if a_param.dim() == 1 else B // a_param.shape[0]


def _check(x, gate_x, gate_a, a_param, reset, h0):
    if x.dim() != 3:
        raise ValueError(f"rglru_fused: x must be [B, T, R], got {tuple(x.shape)}")
    B, T, R = x.shape
    if gate_x.shape != x.shape or gate_a.shape != x.shape:
        raise ValueError("rglru_fused: x, gate_x and gate_a must have one shape [B, T, R]")
    if not (tuple(a_param.shape) == (R,) or (a_param.dim() == 2 and a_param.shape[1] == R and a_param.shape[0] > 0
                                             and B % a_param.shape[0] == 0)):
        raise ValueError(f"rglru_fused: a_param must be [R] = [{R}] or [K, R] with K dividing B = {B} "
                         f"(K stacked instances, B / K rows each), got {tuple(a_param.shape)}")
    if tuple(reset.shape) != (B, T):
        raise ValueError(f"rglru_fused: reset must be [B, T] = [{B}, {T}], got {tuple(reset.shape)}")
    if h0 is not None and tuple(h0.shape) != (B, R):
        raise ValueError(f"rglru_fused: h0 must be [B, R] = [{B}, {R}], got {tuple(h0.shape)}")


def rglru_fwd(x, gate_x, gate_a, a_param, reset, h0=None, *, store_ckpt=False, config=None, negative=False):
    """Launch the forward kernel. Returns (y [B,T,R] in x's dtype, h_T [B,R] fp32, ckpt or None).

    ``ckpt`` is [B, cdiv(T, BLOCK_T), R] fp32: the state entering each forward tile.
    """
    B, T, R = x.shape
    block_t, block_r, num_warps, *seg = config or FWD_CONFIG
    segmented = bool(seg) and seg[0] == 4
    x, gate_x, gate_a = x.contiguous(), gate_x.contiguous(), gate_a.contiguous()
    rs = reset.contiguous().to(torch.uint8)  # a copy, not a bool->uint8 view: inductor cannot lower that view
    nt = triton.cdiv(T, block_t)
    y = _alloc((B, T, R), x.dtype, x.device)
    h_last = _alloc((B, R), torch.float32, x.device)
    ckpt = _alloc((B, nt, R), torch.float32, x.device) if store_ckpt else h_last
    h0c = h0.contiguous() if h0 is not None else h_last
    grid = (triton.cdiv(R, block_r), B)
    args = (x, gate_x, gate_a, a_param.contiguous(), rs, h0c, y, h_last, ckpt, T, R, nt, _ap_rows(a_param, B))
    if segmented:
        _rglru_fwd_seg_kernel[grid](*args, HAS_H0=h0 is not None, STORE_CKPT=store_ckpt, SEG_ROWS=block_t // 4,
                                    BLOCK_R=block_r, FAST=_fast(), NEG=negative, num_warps=num_warps)
    else:
        _rglru_fwd_kernel[grid](*args, HAS_H0=h0 is not None, STORE_CKPT=store_ckpt,
                                BLOCK_T=block_t, BLOCK_R=block_r, FAST=_fast(), NEG=negative, num_warps=num_warps)
    return y, h_last, (ckpt if store_ckpt else None)


def rglru_bwd(x, gate_x, gate_a, a_param, reset, ckpt, dy, dh_last=None, *, fwd_block_t, config=None,
              negative=False):
    """Launch the backward kernel on the checkpoints of :func:`rglru_fwd` (made with BLOCK_T = fwd_block_t).

    Returns (dx, dgate_x, dgate_a in their inputs' dtypes, da_param in a_param's dtype, dh0 fp32).
    """
    B, T, R = x.shape
    block_t, block_r, num_warps = config or BWD_CONFIG
    nt = triton.cdiv(T, block_t)
    nt_ckpt = ckpt.shape[1]
    if block_t % fwd_block_t or nt_ckpt != triton.cdiv(T, fwd_block_t):
        raise ValueError(f"rglru_bwd: BLOCK_T={block_t} must be a multiple of the forward's {fwd_block_t}, "
                         f"whose {nt_ckpt} checkpoints must cover T={T}")
    every = block_t // fwd_block_t
    x, gate_x, gate_a = x.contiguous(), gate_x.contiguous(), gate_a.contiguous()
    rs = reset.contiguous().to(torch.uint8)  # a copy, not a bool->uint8 view: inductor cannot lower that view
    dy = dy.contiguous()
    dx = _alloc((B, T, R), x.dtype, x.device)
    dgx = _alloc((B, T, R), gate_x.dtype, x.device)
    dga = _alloc((B, T, R), gate_a.dtype, x.device)
    dh0 = _alloc((B, R), torch.float32, x.device)
    dsp = _alloc((B, R), torch.float32, x.device)
    dht = dh_last.contiguous() if dh_last is not None else dh0
    grid = (triton.cdiv(R, block_r), B)
    _rglru_bwd_kernel[grid](
        x, gate_x, gate_a, a_param.contiguous(), rs, ckpt, dy, dht,
        dx, dgx, dga, dh0, dsp, T, R, nt, nt_ckpt, _ap_rows(a_param, B),
        HAS_DHT=dh_last is not None, CKPT_EVERY=every, BLOCK_T=block_t, BLOCK_R=block_r, FAST=_fast(),
        NEG=negative, num_warps=num_warps,
    )
    # d softplus(a_param) / d a_param = sigmoid(a_param); the [B, R] per-program partials are
    # summed here in a fixed order (deterministic, no atomics)
    da = dsp.view(-1, _ap_rows(a_param, B), R).sum(1).view(a_param.shape) * torch.sigmoid(a_param.float())
    return dx, dgx, dga, da.to(a_param.dtype), dh0


class _RGLRUFused(torch.autograd.Function):
    """The fused scan with its backward; under ``torch.func.vmap`` (stacked instances, ``seqlib.stack``)
    the instance axis is folded into the batch and a_param becomes [K, R] (:meth:`vmap`)."""

    @staticmethod
    def forward(x, gate_x, gate_a, a_param, reset, h0, store_ckpt, negative):
        cfg = _train_config(store_ckpt, x)
        y, h_last, ckpt = rglru_fwd(x, gate_x, gate_a, a_param, reset, h0, store_ckpt=store_ckpt, config=cfg,
                                    negative=negative)
        return y, h_last, (ckpt if store_ckpt else h_last.new_empty(0))

    @staticmethod
    def setup_context(ctx, inputs, output):
        x, gate_x, gate_a, a_param, reset, h0, store_ckpt, negative = inputs
        ckpt = output[2]
        ctx.mark_non_differentiable(ckpt)
        ctx.negative = negative
        if store_ckpt:
            ctx.fwd_block_t = _train_config(True, x)[0]
            ctx.save_for_backward(x, gate_x, gate_a, a_param, reset, ckpt)
            ctx.h0_dtype = None if h0 is None else h0.dtype

    @staticmethod
    def backward(ctx, dy, dh_last, _dckpt):
        x, gate_x, gate_a, a_param, reset, ckpt = ctx.saved_tensors
        cfg = _fit(BWD_CONFIG, x.shape[0], x.shape[2], x.device)
        if cfg[0] % ctx.fwd_block_t:  # configs changed between forward and backward
            cfg = (ctx.fwd_block_t, *cfg[1:])
        dx, dgx, dga, da, dh0 = rglru_bwd(x, gate_x, gate_a, a_param, reset, ckpt, dy, dh_last,
                                          fwd_block_t=ctx.fwd_block_t, config=cfg, negative=ctx.negative)
        dh0 = None if ctx.h0_dtype is None else dh0.to(ctx.h0_dtype)
        return dx, dgx, dga, da, None, dh0, None, None

    @staticmethod
    def vmap(info, in_dims, x, gate_x, gate_a, a_param, reset, h0, store_ckpt, negative):
        K = info.batch_size

        def rows(t, d):  # instance axis first, then folded into the batch: [K * B, ...]
            t = t.movedim(d, 0) if d is not None else t.expand(K, *t.shape)
            return t.reshape(-1, *t.shape[2:])

        xd, gxd, gad, apd, rsd, h0d, *_ = in_dims
        x, gate_x, gate_a, reset = rows(x, xd), rows(gate_x, gxd), rows(gate_a, gad), rows(reset, rsd)
        h0 = None if h0 is None else rows(h0, h0d)
        a_param = a_param if apd is None else a_param.movedim(apd, 0)  # [K, R]: one row per instance
        y, h_last, ckpt = _RGLRUFused.apply(x, gate_x, gate_a, a_param, reset, h0, store_ckpt, negative)
        unfold = lambda t: t.view(K, -1, *t.shape[1:]) if t.numel() else t.expand(K, 0)  # noqa: E731
        return (unfold(y), unfold(h_last), unfold(ckpt)), (0, 0, 0)


def _train_config(store_ckpt: bool, x):
    """The forward's launch config: the one whose checkpoints the backward reads when it stores them."""
    return _fit(TRAIN_FWD_CONFIG if store_ckpt else FWD_CONFIG, x.shape[0], x.shape[2], x.device)


def rglru_fused(x, gate_x, gate_a, a_param, reset, h0=None, negative=False):
    """Fused RG-LRU: ``(x, gate_x, gate_a, a_param, reset, h0) -> (y, h_last)``.

    The semantics of ``seqlib.layers.scan.rg_lru_scan(..., backend="sequential")``: x and the gate
    pre-activations [B, T, R] (any float dtype), a_param [R], reset [B, T] bool, h0 [B, R] or None;
    y in x's dtype, h_last fp32. Differentiable in x, both gates, a_param, h0 and through h_last.
    ``negative``: the recurrence coefficient 2 a_t - 1 in (-1, 1) (``seqlib.layers.rglru``).
    """
    _check(x, gate_x, gate_a, a_param, reset, h0)
    if x.shape[1] == 0:
        B, _, R = x.shape
        h = torch.zeros(B, R, device=x.device) if h0 is None else h0.float()
        return x.new_empty(x.shape), h
    y, h_last, _ = _RGLRUFused.apply(x, gate_x, gate_a, a_param, reset, h0, torch.is_grad_enabled(), negative)
    return y, h_last
