"""The pre-norm residual block of Griffin §2.1 (recurrentgemma ``ResidualBlock``).

    r = x + Temporal(RMSNorm(x)),    x' = r + MLP(RMSNorm(r))

The temporal mixer is any module with the interface ``(x, segment_pos, cache) -> (y, cache)``.
"""

from __future__ import annotations

import torch
from torch import nn

from seqlib.layers.mlp import MLPBlock
from seqlib.layers.norms import RMSNorm


class ResidualBlock(nn.Module):
    def __init__(self, width: int, mixer: nn.Module, mlp: MLPBlock | None):
        super().__init__()
        self.temporal_pre_norm = RMSNorm(width)
        self.temporal_block = mixer
        self.channel_pre_norm = RMSNorm(width) if mlp is not None else None
        self.mlp_block = mlp

    def init_cache(self, batch: int, device=None, dtype=torch.float32):
        return self.temporal_block.init_cache(batch, device=device, dtype=dtype)

    def forward(self, x: torch.Tensor, segment_pos: torch.Tensor, cache=None):
        y, cache = self.temporal_block(self.temporal_pre_norm(x), segment_pos, cache)
        residual = x + y
        if self.mlp_block is None:
            return residual, cache
        return residual + self.mlp_block(self.channel_pre_norm(residual)), cache
