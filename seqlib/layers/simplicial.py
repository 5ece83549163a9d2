"""Windowed 2-simplicial attention, which flash-linear-attention lacks.

2-simplicial attention (Clift et al. 2019, "Logic and the 2-simplicial Transformer"; Roy et al.
2025, "Fast and Simplex: 2-Simplicial Attention in Triton"), which fla lacks, is implemented
in PyTorch (a reference, O(T * W1 * W2) memory and time; CPU and GPU): query i attends to
key *pairs* (j, l) with the trilinear score ``sum_d q_id k_jd k'_ld / sqrt(Dh)`` and takes
``sum_{j,l} P_ijl (v_j * v'_l)``. j ranges over the local window of Griffin's attention (W + 1
keys incl. itself, same document), l over a shorter window W2 = min(W, 32) (Roy et al. use
512 and 32). Partial RoPE (first half of each head) at ``segment_pos`` is applied to q, k and k';
the trilinear form is not invariant to shifting all three, so this gives a position signal within
each document rather than a purely relative one.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from seqlib.layers.init import linear
from seqlib.layers.rope import apply_rope
from seqlib.layers.segments import document_ids

SIMPLICIAL_WINDOW2 = 32  # the second key window, min(W, 32) (Roy et al. use 32)


@dataclass
class SimplicialCache:
    k1: torch.Tensor  # [B, S, Hkv, Dh], the last S <= W tokens
    v1: torch.Tensor
    k2: torch.Tensor
    v2: torch.Tensor
    positions: torch.Tensor  # [B, S] absolute token index
    docs: torch.Tensor  # [B, S]
    num_tokens: int
    doc: torch.Tensor  # [B] document id of the last token


def _windows(x: torch.Tensor, size: int, fill) -> torch.Tensor:
    """x [B, S, ...] -> [B, S, size, ...]: entry (t, r) is x[t - size + 1 + r] (``fill`` before 0)."""
    pad = [0, 0] * (x.dim() - 2) + [size - 1, 0]
    xp = F.pad(x, pad, value=fill)
    return xp.unfold(1, size, 1).movedim(-1, 2)


def simplicial_attention(q, k1, v1, k2, v2, q_pos, q_doc, k_pos, k_doc, w1: int, w2: int) -> torch.Tensor:
    """Windowed 2-simplicial attention, fp32. q [B, T, H, Dh]; k1/v1/k2/v2 [B, S, Hkv, Dh], S >= T,
    whose last T rows are the queries' own tokens; positions/docs [B, T] and [B, S] (-1 = empty).

    Query i attends to pairs (j, l) with j <= i, i - j <= w1, l <= i, i - l <= w2, all in i's
    document; returns [B, T, H, Dh] in q's dtype. fp32 also under autocast (which would run the einsums
    in bf16, where the mask's fill value overflows).
    """
    with torch.autocast(q.device.type, enabled=False):
        return _simplicial_fp32(q, k1, v1, k2, v2, q_pos, q_doc, k_pos, k_doc, w1, w2)


def _simplicial_fp32(q, k1, v1, k2, v2, q_pos, q_doc, k_pos, k_doc, w1: int, w2: int) -> torch.Tensor:
    B, T, H, Dh = q.shape
    S, Hkv = k1.shape[1], k1.shape[2]
    last = slice(S - T, S)

    def win(x, size, fill):
        return _windows(x, size + 1, fill)[:, last]

    k1w, v1w = win(k1.float(), w1, 0.0), win(v1.float(), w1, 0.0)  # [B, T, w1+1, Hkv, Dh]
    k2w, v2w = win(k2.float(), w2, 0.0), win(v2.float(), w2, 0.0)
    qp, qd = q_pos[:, :, None], q_doc[:, :, None]

    def valid(size):
        kp, kd = win(k_pos, size, -1), win(k_doc, size, -1)
        return (kp >= 0) & (kp <= qp) & (qp - kp <= size) & (kd == qd)  # [B, T, size+1]

    m1, m2 = valid(w1), valid(w2)
    qg = q.float().unflatten(2, (Hkv, H // Hkv))  # [B, T, Hkv, G, Dh]
    qk1 = torch.einsum("btkgd,btjkd->btkgjd", qg, k1w)
    scores = torch.einsum("btkgjd,btlkd->btkgjl", qk1, k2w) * Dh**-0.5
    mask = m1[:, :, None, None, :, None] & m2[:, :, None, None, None, :]
    scores = scores.masked_fill(~mask, torch.finfo(torch.float32).min)
    probs = torch.softmax(scores.flatten(-2), dim=-1).unflatten(-1, scores.shape[-2:])
    pv1 = torch.einsum("btkgjl,btjkd->btkgld", probs, v1w)
    out = torch.einsum("btkgld,btlkd->btkgd", pv1, v2w)
    return out.flatten(2, 3).to(q.dtype)


class SimplicialAttention(nn.Module):
    """Windowed 2-simplicial attention block: projections, partial RoPE, the windowed trilinear
    softmax of :func:`simplicial_attention`, output projection (shapes as Griffin's local MQA)."""

    def __init__(self, width: int, num_heads: int, num_kv_heads: int, window: int, window2: int,
                 final_w_init_variance_scale: float = 1.0):
        super().__init__()
        if width % num_heads or num_heads % num_kv_heads:
            raise ValueError(f"width {width}, num_heads {num_heads}, num_kv_heads {num_kv_heads} do not divide")
        self.num_heads, self.num_kv_heads, self.head_dim = num_heads, num_kv_heads, width // num_heads
        if self.head_dim % 4:
            raise ValueError(f"head_dim {self.head_dim} must be a multiple of 4 (RoPE on half of each head)")
        self.window, self.window2 = window, min(window, window2)
        kv = num_kv_heads * self.head_dim
        self.proj_q = linear(width, width, bias=False)
        self.proj_k1, self.proj_v1 = linear(width, kv, bias=False), linear(width, kv, bias=False)
        self.proj_k2, self.proj_v2 = linear(width, kv, bias=False), linear(width, kv, bias=False)
        self.proj_final = linear(width, width, scale=final_w_init_variance_scale)

    def init_cache(self, batch: int, device=None, dtype=torch.float32) -> SimplicialCache:
        kv = torch.zeros(batch, 0, self.num_kv_heads, self.head_dim, device=device, dtype=dtype)
        idx = torch.zeros(batch, 0, device=device, dtype=torch.long)
        return SimplicialCache(kv, kv, kv, kv, idx, idx, 0, torch.zeros(batch, device=device, dtype=torch.long))

    def state_size(self, seq_len: int) -> dict[str, int]:
        return {"kv": 4 * min(seq_len, self.window) * self.num_kv_heads * self.head_dim}

    def forward(self, x: torch.Tensor, segment_pos: torch.Tensor, cache: SimplicialCache | None = None):
        B, T, _ = x.shape
        rope_pos = segment_pos.clamp_min(0)

        def heads(proj, n, rope):
            y = proj(x).unflatten(-1, (n, self.head_dim))
            return apply_rope(y, rope_pos) if rope else y

        q = heads(self.proj_q, self.num_heads, True)
        k1, k2 = heads(self.proj_k1, self.num_kv_heads, True), heads(self.proj_k2, self.num_kv_heads, True)
        v1, v2 = heads(self.proj_v1, self.num_kv_heads, False), heads(self.proj_v2, self.num_kv_heads, False)
        start = 0 if cache is None else cache.num_tokens
        pos = torch.arange(start, start + T, device=x.device).expand(B, T)
        doc = document_ids(segment_pos, None if cache is None else cache.doc)
        if cache is not None:
            k1, v1, k2, v2 = (torch.cat([c.to(t.dtype), t], 1) for c, t in
                              ((cache.k1, k1), (cache.v1, v1), (cache.k2, k2), (cache.v2, v2)))
            kpos, kdoc = torch.cat([cache.positions, pos], 1), torch.cat([cache.docs, doc], 1)
        else:
            kpos, kdoc = pos, doc
        out = simplicial_attention(q, k1, v1, k2, v2, pos, doc, kpos, kdoc, self.window, self.window2)
        y = self.proj_final(out.flatten(2))
        if cache is None:
            return y, None
        keep = slice(max(0, k1.shape[1] - self.window), None)  # the last W tokens cover both windows
        new = SimplicialCache(k1[:, keep], v1[:, keep], k2[:, keep], v2[:, keep], kpos[:, keep], kdoc[:, keep],
                              cache.num_tokens + T, doc[:, -1])
        return y, new
