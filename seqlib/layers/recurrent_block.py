"""Griffin's recurrent block (§2.3, Fig. 2c; recurrentgemma ``RecurrentBlock``).

    out = W_o [ RG-LRU(Conv1D_4(W_x u + b_x)) * GeLU_tanh(W_y u + b_y) ] + b_o

Widths as in :class:`seqlib.models.config.ModelConfig`: ``d_rnn`` (the paper's D_RNN, recurrentgemma's
``lru_width``) and ``gate_blocks``, the RG-LRU gates' diagonal blocks (recurrentgemma's ``num_heads``).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from seqlib.layers.conv1d import Conv1D
from seqlib.layers.init import linear
from seqlib.layers.rglru import RGLRU


@dataclass
class RecurrentBlockCache:
    rg_lru_state: torch.Tensor  # [B, R] fp32
    conv1d_state: torch.Tensor  # [B, conv_width - 1, R]


class RecurrentBlock(nn.Module):
    def __init__(
        self,
        width: int,
        d_rnn: int,
        gate_blocks: int,
        conv1d_temporal_width: int = 4,
        final_w_init_variance_scale: float = 1.0,
        scan_backend: str = "auto",
        negative: bool = False,
    ):
        super().__init__()
        self.linear_y = linear(width, d_rnn)
        self.linear_x = linear(width, d_rnn)
        self.linear_out = linear(d_rnn, width, scale=final_w_init_variance_scale)
        self.conv_1d = Conv1D(d_rnn, conv1d_temporal_width)
        self.rg_lru = RGLRU(d_rnn, gate_blocks, scan_backend=scan_backend, negative=negative)

    def init_cache(self, batch: int, device=None, dtype=torch.float32) -> RecurrentBlockCache:
        return RecurrentBlockCache(self.rg_lru.init_cache(batch, device), self.conv_1d.init_cache(batch, device, dtype))

    def state_size(self, seq_len: int) -> dict[str, int]:
        R = self.rg_lru.width
        return {"rg_lru": R, "conv": (self.conv_1d.temporal_width - 1) * R}

    def forward(self, x: torch.Tensor, segment_pos: torch.Tensor, cache: RecurrentBlockCache | None = None):
        y = F.gelu(self.linear_y(x), approximate="tanh")
        x = self.linear_x(x)
        x, conv_state = self.conv_1d(x, segment_pos, None if cache is None else cache.conv1d_state)
        x, lru_state = self.rg_lru(x, segment_pos, None if cache is None else cache.rg_lru_state)
        out = self.linear_out(x * y)
        return out, (None if cache is None else RecurrentBlockCache(lru_state, conv_state))
