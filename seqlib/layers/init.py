"""Weight initialisation used by every layer (recurrentgemma's variance-scaling rules).

Projections draw N(0, scale / fan_in): scale 1 for most, ``2 / num_layers`` for the output
projections that feed the residual stream (``final_w_init_variance_scale``, griffin.md §2.2).
Biases start at 0.
"""

from __future__ import annotations

import math

import torch
from torch import nn


def init_linear(layer: nn.Linear, scale: float = 1.0) -> nn.Linear:
    nn.init.normal_(layer.weight, std=math.sqrt(scale / layer.in_features))
    if layer.bias is not None:
        nn.init.zeros_(layer.bias)
    return layer


def linear(d_in: int, d_out: int, bias: bool = True, scale: float = 1.0) -> nn.Linear:
    """An ``nn.Linear`` initialised with std sqrt(scale / d_in)."""
    return init_linear(nn.Linear(d_in, d_out, bias=bias), scale)


def normal_(tensor: torch.Tensor, std: float) -> torch.Tensor:
    with torch.no_grad():
        return tensor.normal_(0.0, std)
