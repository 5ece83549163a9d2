"""LSTM and GRU baselines (Hochreiter & Schmidhuber 1997; Cho et al. 2014) as temporal mixers.

They keep PyTorch's parameter layout (``nn.LSTM`` / ``nn.GRU``) and use its fused kernel
(cuDNN on a GPU) whenever no document starts after t = 0. With a document start mid-sequence
the state must be zeroed there, which the fused kernel cannot do: a step loop with the same
weights and PyTorch's gate order (LSTM i, f, g, o; GRU r, z, n) runs instead.
"""

from __future__ import annotations

import torch
from torch import nn
from torch._C._functorch import is_batchedtensor


class RecurrentBaseline(nn.Module):
    """One LSTM or GRU layer, ``width -> width``, interface ``(x, segment_pos, cache) -> (y, cache)``."""

    def __init__(self, width: int, kind: str):
        super().__init__()
        if kind not in ("lstm", "gru"):
            raise ValueError(f"unknown recurrent baseline {kind!r}; choose 'lstm' or 'gru'")
        self.kind, self.width = kind, width
        self.rnn = (nn.LSTM if kind == "lstm" else nn.GRU)(width, width, batch_first=True)

    def init_cache(self, batch: int, device=None, dtype=torch.float32):
        zeros = torch.zeros(1, batch, self.width, device=device, dtype=torch.float32)
        return (zeros, zeros.clone()) if self.kind == "lstm" else zeros

    def state_size(self, seq_len: int) -> dict[str, int]:
        return {"rnn": (2 if self.kind == "lstm" else 1) * self.width}

    def _keep(self, state, keep):
        k = keep[None, :, None].to(torch.float32)
        return tuple(s * k for s in state) if isinstance(state, tuple) else state * k

    def forward(self, x: torch.Tensor, segment_pos: torch.Tensor, cache=None):
        state = cache if cache is not None else self.init_cache(x.shape[0], x.device)
        reset = segment_pos == 0
        state = self._keep(state, ~reset[:, 0])
        # the fused kernel takes one weight set: stacked instances (vmap, seqlib.stack) take the loop
        if not is_batchedtensor(self.rnn.weight_ih_l0) and not reset[:, 1:].any():
            cast = tuple(s.to(x.dtype) for s in state) if isinstance(state, tuple) else state.to(x.dtype)
            y, new_state = self.rnn(x, cast)
        else:
            y, new_state = self._step_loop(x, reset, state)
        if cache is None:
            return y, None
        if isinstance(new_state, tuple):
            return y, tuple(s.float() for s in new_state)
        return y, new_state.float()

    def _step_loop(self, x, reset, state):
        w_ih, w_hh, b_ih, b_hh = self.rnn.weight_ih_l0, self.rnn.weight_hh_l0, self.rnn.bias_ih_l0, self.rnn.bias_hh_l0
        x_proj = x @ w_ih.T.to(x.dtype) + b_ih.to(x.dtype)
        h = state[0][0] if self.kind == "lstm" else state[0]
        c = state[1][0] if self.kind == "lstm" else None
        h, c = h.to(x.dtype), (c.to(x.dtype) if c is not None else None)
        out = []
        for t in range(x.shape[1]):
            if t > 0:
                keep = (~reset[:, t])[:, None].to(x.dtype)
                h = h * keep
                c = c * keep if c is not None else None
            hh = h @ w_hh.T.to(x.dtype) + b_hh.to(x.dtype)
            if self.kind == "lstm":
                i, f, g, o = (x_proj[:, t] + hh).chunk(4, dim=-1)
                c = torch.sigmoid(f) * c + torch.sigmoid(i) * torch.tanh(g)
                h = torch.sigmoid(o) * torch.tanh(c)
            else:
                xr, xz, xn = x_proj[:, t].chunk(3, dim=-1)
                hr, hz, hn = hh.chunk(3, dim=-1)
                r, z = torch.sigmoid(xr + hr), torch.sigmoid(xz + hz)
                h = (1 - z) * torch.tanh(xn + r * hn) + z * h
            out.append(h)
        final = (h[None], c[None]) if self.kind == "lstm" else h[None]
        return torch.stack(out, dim=1), final
