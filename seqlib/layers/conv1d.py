"""Causal depthwise Conv1D of the recurrent block (Griffin §2.3, recurrentgemma ``Conv1D``).

c_t = sum_{k=0}^{W-1} w[W-1-k] * x_{t-k} + b, left zero-padded, temporal width W=4. The
document mask drops x_{t-k} when a document starts in (t-k, t] (``_compute_document_mask``).

Cache: the last W-1 *inputs* [B, W-1, R]. Inputs from before the latest document start are
stored as zeros, which is the same as dropping them, so a decode step needs no extra state.
"""

from __future__ import annotations

import math

import torch
from torch import nn

from seqlib.layers.init import normal_
from seqlib.layers.segments import document_ids


class Conv1D(nn.Module):
    def __init__(self, width: int, temporal_width: int = 4, w_init_variance_scale: float = 0.01):
        super().__init__()
        if temporal_width < 1:
            raise ValueError(f"conv temporal_width must be >= 1, got {temporal_width}")
        self.temporal_width = temporal_width
        self.w = nn.Parameter(torch.empty(temporal_width, width))
        self.b = nn.Parameter(torch.zeros(width))
        normal_(self.w, math.sqrt(w_init_variance_scale / temporal_width))

    def init_cache(self, batch: int, device=None, dtype=torch.float32) -> torch.Tensor:
        return torch.zeros(batch, self.temporal_width - 1, self.w.shape[1], device=device, dtype=dtype)

    def forward(self, x: torch.Tensor, segment_pos: torch.Tensor, cache: torch.Tensor | None = None):
        """x: [B, T, R]; returns (conv output [B, T, R], new cache or None)."""
        B, T, _ = x.shape
        k = self.temporal_width - 1
        prefix = cache.to(x.dtype) if cache is not None else x.new_zeros(B, k, x.shape[-1])
        x_ext = torch.cat([prefix, x], dim=1)  # [B, k + T, R]
        # the prefix counts as the current document: resets before it are already zeros
        pos_ext = torch.cat([segment_pos.new_ones(B, k), segment_pos], dim=1)
        doc = document_ids(pos_ext)
        out = self.b.to(x.dtype).expand_as(x)
        for shift in range(self.temporal_width):
            src = x_ext[:, k - shift : k - shift + T]
            same_doc = (doc[:, k - shift : k - shift + T] == doc[:, k:]).unsqueeze(-1)
            out = out + self.w[self.temporal_width - 1 - shift].to(x.dtype) * src * same_doc
        new_cache = None
        if cache is not None:
            tail_doc = doc[:, -k:] if k else doc[:, :0]
            new_cache = x_ext[:, x_ext.shape[1] - k :] * (tail_doc == doc[:, -1:]).unsqueeze(-1)
        return out, new_cache
