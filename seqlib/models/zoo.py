"""The mixer zoo: flash-linear-attention (fla 0.6.0) layers and windowed 2-simplicial attention.

Each mixer plugs into the Hawk/Griffin backbone (same embeddings, RMSNorms, GeGLU MLP, head) with
the temporal-mixer interface ``(x, segment_pos, cache) -> (y, cache)``, so a comparison differs
only in the mixer. Names come from :data:`seqlib.models.registry.ZOO_MODELS` (the registry is the
one list of names); this module holds one builder per name.

fla layers (Triton kernels, GPU only; fla is imported lazily inside the builders):

* Every layer is built as fla's *layer 0* of its own one-layer cache, with fla's own
  initialisation. For RWKV-7 this means each layer takes its own value as ``v_first`` (no
  cross-layer value residual, a simplification of Peng et al. 2025 §4).
* Documents: fla layers take no ``segment_pos``. With one document per row nothing is needed. If
  ``segment_pos`` restarts mid-row, mixers whose fla layer takes ``cu_seqlens`` are run on the
  batch flattened to one row with ``cu_seqlens`` at every document start (fla's varlen mode);
  the others (``VARLEN`` False) raise ``ValueError``.
* Decoding: where fla keeps a recurrent cache (``past_key_values``), the mixer's cache wraps a
  private ``fla.models.utils.Cache``; chunked or token-by-token decoding continues one document
  per row (a document start after the first chunk raises ``NotImplementedError``). Mixers whose
  fla layer has no usable cache raise ``NotImplementedError`` with the reason (``DECODE``).
* No flash-attn / mamba_ssm / causal_conv1d: fla's Mamba2 then runs its chunked-SSD PyTorch path
  (with fla's Triton norms and activations) and the Triton short convolution.

2-simplicial attention (Clift et al. 2019, "Logic and the 2-simplicial Transformer"; Roy et al.
2025, "Fast and Simplex: 2-Simplicial Attention in Triton"), which fla lacks, is implemented
here in PyTorch (a reference, O(T * W1 * W2) memory and time; CPU and GPU): query i attends to
key *pairs* (j, l) with the trilinear score ``sum_d q_id k_jd k'_ld / sqrt(Dh)`` and takes
``sum_{j,l} P_ijl (v_j * v'_l)``. j ranges over the local window of Griffin's attention (W + 1
keys incl. itself, same document), l over a shorter window W2 = min(W, 32) (Roy et al. use
512 and 32). Partial RoPE (first half of each head) at ``segment_pos`` is applied to q, k and k';
the trilinear form is not invariant to shifting all three, so this gives a position signal within
each document rather than a purely relative one.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from seqlib.layers.init import linear
from seqlib.layers.rope import apply_rope
from seqlib.layers.segments import document_ids

SIMPLICIAL_WINDOW2 = 32

# ---------------------------------------------------------------------------------------------
# fla wrappers


@dataclass
class ZooCache:
    state: object  # fla.models.utils.Cache holding this layer's recurrent / conv state (layer 0)
    num_tokens: int


def _heads_dim(width: int, num_heads: int, preferred: int = 64) -> tuple[int, int]:
    """(heads, head_dim) for layers sized by head_dim: the preferred head_dim if it divides width."""
    if width % preferred == 0:
        return width // preferred, preferred
    if width % num_heads:
        raise ValueError(f"d_model {width} is not divisible by num_heads {num_heads}")
    return num_heads, width // num_heads


def _mamba2(cfg):
    from fla.layers import Mamba2

    heads, head_dim = _heads_dim(2 * cfg.d_model, cfg.num_heads)
    return Mamba2(num_heads=heads, head_dim=head_dim, hidden_size=cfg.d_model, state_size=128, expand=2,
                  n_groups=1, layer_idx=0, backend="triton")


def _deltanet(cfg):
    from fla.layers import DeltaNet

    return DeltaNet(hidden_size=cfg.d_model, num_heads=cfg.num_heads, use_short_conv=True, layer_idx=0)


def _gated_deltanet(cfg):
    from fla.layers import GatedDeltaNet

    return GatedDeltaNet(hidden_size=cfg.d_model, num_heads=cfg.num_heads, head_dim=cfg.d_model // cfg.num_heads,
                         expand_v=2, layer_idx=0)


def _rwkv7(cfg):
    from fla.layers import RWKV7Attention

    _, head_dim = _heads_dim(cfg.d_model, cfg.num_heads)
    return RWKV7Attention(hidden_size=cfg.d_model, head_dim=head_dim, layer_idx=0,
                          num_hidden_layers=max(2, cfg.n_layers))


def _mesanet(cfg):
    from fla.layers import MesaNet

    return MesaNet(hidden_size=cfg.d_model, num_heads=cfg.num_heads, head_dim=cfg.d_model // cfg.num_heads,
                   layer_idx=0)


def _path(cfg):
    from fla.layers import PaTHAttention

    return PaTHAttention(hidden_size=cfg.d_model, num_heads=cfg.num_heads, layer_idx=0)


def _deltaformer(cfg):
    from fla.layers import DeltaFormerAttention

    return DeltaFormerAttention(hidden_size=cfg.d_model, num_heads=cfg.num_heads, layer_idx=0)


def _nsa(cfg):
    from fla.layers import NativeSparseAttention

    # fla's NSA kernels need a GQA group (query heads per KV head) that is a power of 2 and >= 16
    return NativeSparseAttention(hidden_size=cfg.d_model, num_heads=16, num_kv_heads=1, head_dim=64,
                                 block_size=64, block_counts=16, window_size=cfg.window, layer_idx=0)


def _gla(cfg):
    from fla.layers import GatedLinearAttention

    return GatedLinearAttention(hidden_size=cfg.d_model, num_heads=cfg.num_heads, expand_k=0.5, expand_v=1.0,
                                layer_idx=0)


def _retnet(cfg):
    from fla.layers import MultiScaleRetention

    return MultiScaleRetention(hidden_size=cfg.d_model, num_heads=cfg.num_heads, expand_k=1.0, expand_v=2.0,
                               layer_idx=0)


def _hgrn2(cfg):
    from fla.layers import HGRN2Attention

    return HGRN2Attention(hidden_size=cfg.d_model, num_heads=cfg.num_heads, expand_ratio=None, layer_idx=0)


def _based(cfg):
    from fla.layers import BasedLinearAttention

    return BasedLinearAttention(hidden_size=cfg.d_model, feature_dim=16, num_heads=cfg.num_heads,
                                num_key_value_heads=cfg.num_heads)


def _gsa(cfg):
    from fla.layers import GatedSlotAttention

    return GatedSlotAttention(hidden_size=cfg.d_model, num_heads=cfg.num_heads, num_slots=64, layer_idx=0)


def _rwkv6(cfg):
    from fla.layers import RWKV6Attention

    return RWKV6Attention(hidden_size=cfg.d_model, num_heads=cfg.num_heads, expand_k=0.5, expand_v=1.0,
                          layer_idx=0)


BUILDERS: dict[str, Callable] = {
    "mamba2": _mamba2, "deltanet": _deltanet, "gated_deltanet": _gated_deltanet, "rwkv7": _rwkv7,
    "mesanet": _mesanet, "path": _path, "deltaformer": _deltaformer, "nsa": _nsa, "gla": _gla,
    "retnet": _retnet, "hgrn2": _hgrn2, "based": _based, "gsa": _gsa, "rwkv6": _rwkv6,
}
# fla layer takes cu_seqlens (packed documents); the others assume one document per row
VARLEN = {name: name not in ("mamba2", "based") for name in BUILDERS}
# True, or why step decoding is not offered
DECODE: dict[str, bool | str] = {name: True for name in BUILDERS}
DECODE.update({
    "based": "fla's BasedLinearAttention has no recurrent cache (parallel/chunk kernels only)",
    "deltaformer": "fla's DeltaFormerAttention raises on past_key_values (no decoding kernel)",
    "path": "fla's PaTHAttention decodes only through its padded-batch attention_mask path (not wired up here)",
})


class FlaMixer(nn.Module):
    """An fla layer as a temporal mixer ``(x, segment_pos, cache) -> (y, cache)``."""

    def __init__(self, name: str, layer: nn.Module):
        super().__init__()
        self.name, self.layer = name, layer

    def init_cache(self, batch: int, device=None, dtype=torch.float32) -> ZooCache:
        if DECODE[self.name] is not True:
            raise NotImplementedError(f"{self.name}: no step decoding: {DECODE[self.name]}")
        from fla.models.utils import Cache

        return ZooCache(Cache(), 0)

    def _call(self, x: torch.Tensor, **kwargs) -> torch.Tensor:
        out = self.layer(x, **kwargs)
        return out[0] if isinstance(out, tuple) else out

    def forward(self, x: torch.Tensor, segment_pos: torch.Tensor, cache: ZooCache | None = None):
        B, T, D = x.shape
        starts = segment_pos == 0
        if cache is None:
            if not bool(starts[:, 1:].any()):
                return self._call(x), None
            if not VARLEN[self.name]:
                raise ValueError(
                    f"{self.name}: fla's layer takes no cu_seqlens, so it needs one document per row; "
                    "segment_pos restarts mid-row"
                )
            boundary = starts.clone()
            boundary[:, 0] = True  # every row starts a sequence of the flattened batch
            idx = torch.nonzero(boundary.flatten()).flatten()
            cu_seqlens = torch.cat([idx, idx.new_tensor([B * T])]).to(torch.int32)
            return self._call(x.reshape(1, B * T, D), cu_seqlens=cu_seqlens).reshape(B, T, D), None
        if DECODE[self.name] is not True:
            raise NotImplementedError(f"{self.name}: no step decoding: {DECODE[self.name]}")
        if bool(starts[:, 1:].any()) or (cache.num_tokens > 0 and bool(starts.any())):
            raise NotImplementedError(f"{self.name}: decoding continues one document per row (no resets)")
        y = self._call(x, past_key_values=cache.state, use_cache=True)
        return y, ZooCache(cache.state, cache.num_tokens + T)


# ---------------------------------------------------------------------------------------------
# 2-simplicial attention


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
    document; returns [B, T, H, Dh] in q's dtype.
    """
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


# ---------------------------------------------------------------------------------------------


def _zoo_names() -> set[str]:
    from seqlib.models.registry import ZOO_MODELS

    missing = set(ZOO_MODELS) ^ set(BUILDERS)
    if missing:
        raise RuntimeError(f"registry ZOO_MODELS and zoo BUILDERS disagree on {sorted(missing)}")
    return set(ZOO_MODELS)


ZOO_MIXERS: frozenset[str] = frozenset(_zoo_names() | {"simplicial"})


def build_zoo_mixer(kind: str, cfg) -> nn.Module:
    """The temporal mixer for block type ``kind`` (a zoo model name or ``simplicial``)."""
    if kind == "simplicial":
        return SimplicialAttention(cfg.d_model, cfg.num_heads, cfg.num_kv_heads, cfg.window, SIMPLICIAL_WINDOW2,
                                   2.0 / cfg.n_layers)
    return FlaMixer(kind, BUILDERS[kind](cfg))
