"""The gated MLP block (GeGLU) of Griffin §2.2: W_d [GeLU_tanh(W_1 u + b_1) * (W_2 u + b_2)] + b_d."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from seqlib.layers.init import linear


class MLPBlock(nn.Module):
    """Expansion M=3 in the paper: ``hidden = 3 * width`` unless given (parameter matching may set it)."""

    def __init__(self, width: int, hidden: int, final_w_init_variance_scale: float = 1.0):
        super().__init__()
        self.ffw_up_gate = linear(width, hidden)
        self.ffw_up = linear(width, hidden)
        self.ffw_down = linear(hidden, width, scale=final_w_init_variance_scale)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        gate = F.gelu(self.ffw_up_gate(x), approximate="tanh")
        return self.ffw_down(gate * self.ffw_up(x))
