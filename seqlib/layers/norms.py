"""RMSNorm as in Griffin §2 / recurrentgemma ``RMSNorm``: x / sqrt(mean(x^2) + eps) * (1 + s), s=0 at init."""

from __future__ import annotations

import torch
from torch import nn


class RMSNorm(nn.Module):
    def __init__(self, width: int, eps: float = 1e-6):
        super().__init__()
        self.eps = eps
        self.scale = nn.Parameter(torch.zeros(width))  # Gemma style: the gain is (1 + scale)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        var = x.float().pow(2).mean(dim=-1, keepdim=True)
        normed = x.float() * torch.rsqrt(var + self.eps)
        return (normed * (1.0 + self.scale.float())).to(x.dtype)
