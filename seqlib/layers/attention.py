"""Multi-query attention, local (sliding window) or global (Griffin §2.3; recurrentgemma
``LocalAttentionBlock``).

* Q has H heads, K and V ``num_kv_heads`` heads (1 = MQA as in the paper), head_dim = D/H;
  ``proj_q/k/v`` have no bias, ``proj_final`` has one.
* RoPE on the first half of each head's channels, at ``segment_pos`` (optional: the global
  Transformer may use additive position encodings instead).
* Key j is visible to query i iff j <= i, i - j <= W (local only) and both are in the same
  document, so a query sees W + 1 tokens including itself (``_compute_causal_mask``;
  :func:`seqlib.layers.segments.attention_mask`).
* Scores scaled by head_dim^-1/2, softmax in fp32.

Decode caches: local attention keeps a ring buffer of the last W keys/values (slot
``position % W``); global attention keeps every key (a growing cache). Both record each slot's
absolute position and document id, so a chunk of any length can follow the cache.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn
from torch._C._functorch import is_batchedtensor

from seqlib.layers.flex import fast_attention, use_fast_path
from seqlib.layers.init import linear
from seqlib.layers.rope import apply_rope
from seqlib.layers.segments import attention_mask, document_ids


@dataclass
class AttentionCache:
    keys: torch.Tensor  # [B, S, Hkv, Dh] (S = W for the ring buffer, grows for global)
    values: torch.Tensor  # [B, S, Hkv, Dh]
    positions: torch.Tensor  # [B, S] absolute token index, -1 for an empty slot
    docs: torch.Tensor  # [B, S] document id of each slot
    num_tokens: torch.Tensor  # 0-d int64: tokens seen so far (all rows advance together); a tensor, so a
    # decode step reads no host value and replays from a CUDA graph (seqlib.decode)
    doc: torch.Tensor  # [B] document id of the last token seen


def masked_attention(q, k, v, mask) -> torch.Tensor:
    """q [B, T, H, Dh], k/v [B, S, Hkv, Dh], mask [B, T, S] -> [B, T, H, Dh]; fp32 softmax."""
    B, T, H, Dh = q.shape
    Hkv = k.shape[2]
    qg = q.float().unflatten(2, (Hkv, H // Hkv))  # [B, T, Hkv, G, Dh]
    with torch.autocast(q.device.type, enabled=False):  # fp32 under autocast too (no bf16 overflow)
        scores = torch.einsum("btkgd,bskd->bkgts", qg, k.float()) * Dh**-0.5
        scores = scores.masked_fill(~mask[:, None, None], torch.finfo(torch.float32).min)
        probs = torch.softmax(scores, dim=-1)
        out = torch.einsum("bkgts,bskd->btkgd", probs, v.float())
    return out.flatten(2, 3).to(q.dtype)


class Attention(nn.Module):
    def __init__(
        self,
        width: int,
        num_heads: int,
        num_kv_heads: int = 1,
        window: int | None = None,
        use_rope: bool = True,
        final_w_init_variance_scale: float = 1.0,
        attention_backend: str = "auto",
    ):
        super().__init__()
        if width % num_heads:
            raise ValueError(f"width {width} is not divisible by num_heads {num_heads}")
        if num_kv_heads < 1 or num_heads % num_kv_heads:
            raise ValueError(f"num_heads {num_heads} is not a multiple of num_kv_heads {num_kv_heads}")
        if window is not None and window < 1:
            raise ValueError(f"attention window must be >= 1 (or None for global attention), got {window}")
        self.num_heads, self.num_kv_heads = num_heads, num_kv_heads
        self.head_dim = width // num_heads
        self.window, self.use_rope = window, use_rope
        self.attention_backend = attention_backend  # "auto": the fast path on CUDA (seqlib.layers.flex)
        self.proj_q = linear(width, width, bias=False)
        self.proj_k = linear(width, num_kv_heads * self.head_dim, bias=False)
        self.proj_v = linear(width, num_kv_heads * self.head_dim, bias=False)
        self.proj_final = linear(width, width, scale=final_w_init_variance_scale)

    def init_cache(self, batch: int, device=None, dtype=torch.float32) -> AttentionCache:
        slots = self.window if self.window is not None else 0
        kv = torch.zeros(batch, slots, self.num_kv_heads, self.head_dim, device=device, dtype=dtype)
        return AttentionCache(
            keys=kv,
            values=kv.clone(),
            positions=torch.full((batch, slots), -1, device=device, dtype=torch.long),
            docs=torch.zeros(batch, slots, device=device, dtype=torch.long),
            num_tokens=torch.zeros((), device=device, dtype=torch.long),
            doc=torch.zeros(batch, device=device, dtype=torch.long),
        )

    def state_size(self, seq_len: int) -> dict[str, int]:
        slots = seq_len if self.window is None else min(seq_len, self.window)
        return {"kv": 2 * slots * self.num_kv_heads * self.head_dim}

    def forward(self, x: torch.Tensor, segment_pos: torch.Tensor, cache: AttentionCache | None = None):
        B, T, _ = x.shape
        q = self.proj_q(x).unflatten(-1, (self.num_heads, self.head_dim))
        k = self.proj_k(x).unflatten(-1, (self.num_kv_heads, self.head_dim))
        v = self.proj_v(x).unflatten(-1, (self.num_kv_heads, self.head_dim))
        if self.use_rope:
            rope_pos = segment_pos.clamp_min(0)
            q, k = apply_rope(q, rope_pos), apply_rope(k, rope_pos)
        pos = torch.arange(T, device=x.device).expand(B, T)
        if cache is not None:
            pos = pos + cache.num_tokens
        doc = document_ids(segment_pos, None if cache is None else cache.doc)
        if cache is None:
            # CUDA fast path (FlexAttention / flash SDPA, seqlib.layers.flex); the reference is the CPU
            # path and the oracle.
            # stacked instances (vmap, seqlib.stack) take the reference: the fast path's kernels
            # and its document check on the host do not batch
            if use_fast_path(self.attention_backend, x) and not is_batchedtensor(q):
                out = fast_attention(q, k, v, segment_pos, self.window)
            else:
                out = masked_attention(q, k, v, attention_mask(pos, doc, pos, doc, self.window))
            return self.proj_final(out.flatten(2)), None
        k_all = torch.cat([cache.keys.to(k.dtype), k], dim=1)
        v_all = torch.cat([cache.values.to(v.dtype), v], dim=1)
        pos_all = torch.cat([cache.positions, pos], dim=1)
        doc_all = torch.cat([cache.docs, doc], dim=1)
        out = masked_attention(q, k_all, v_all, attention_mask(pos, doc, pos_all, doc_all, self.window))
        return self.proj_final(out.flatten(2)), self._update_cache(cache, k, v, pos, doc)

    def _update_cache(self, cache: AttentionCache, k, v, pos, doc) -> AttentionCache:
        T = k.shape[1]
        if self.window is None:  # global: the cache grows
            keys, values = torch.cat([cache.keys.to(k.dtype), k], 1), torch.cat([cache.values.to(v.dtype), v], 1)
            positions, docs = torch.cat([cache.positions, pos], 1), torch.cat([cache.docs, doc], 1)
        else:  # local: write the last min(T, W) tokens into ring slots position % W
            n = min(T, self.window)
            slots = pos[0, T - n :] % self.window  # on the device: no host read of the position
            keys, values = cache.keys.clone().to(k.dtype), cache.values.clone().to(v.dtype)
            positions, docs = cache.positions.clone(), cache.docs.clone()
            keys[:, slots], values[:, slots] = k[:, T - n :], v[:, T - n :]
            positions[:, slots], docs[:, slots] = pos[:, T - n :], doc[:, T - n :]
        return AttentionCache(keys, values, positions, docs, cache.num_tokens + T, doc[:, -1])
