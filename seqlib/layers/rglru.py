"""The Real-Gated Linear Recurrent Unit (RG-LRU), Griffin §2.4 and App. A.

    r_t = sigmoid(W_a x_t + b_a)                  (recurrence gate, ``a_gate``)
    i_t = sigmoid(W_x x_t + b_x)                  (input gate, ``input_gate``)
    log a_t = -c * r_t * softplus(a_param),  c = 8
    h_t = a_t * h_{t-1} + sqrt(1 - a_t^2) * (i_t * x_t)

``a_param`` plays the role of -Λ in the paper (a = sigmoid(Λ) = exp(-softplus(a_param))).
At a document start (``segment_pos == 0``) the state is dropped and the input is not scaled,
as in recurrentgemma's ``RGLRU.forward``. The gate math and the scan run in fp32; the state
(the decode cache) is fp32.

**Negative eigenvalues** (``negative=True``; models ``hawk_neg``, ``griffin_neg``). With a_t in (0, 1)
the state transition of a diagonal linear RNN has only positive eigenvalues, and such an RNN cannot
solve parity at arbitrary lengths (Grazzi et al. 2024, "Unlocking state-tracking in linear RNNs
through negative eigenvalues", Theorem 1); their remedy maps the (0, 1) range to (-1, 1). Applied to
the RG-LRU (our construction, not in Griffin or Grazzi et al.):

    A_t = 2 a_t - 1                               in (-1, 1)
    h_t = A_t * h_{t-1} + sqrt(1 - A_t^2) * (i_t * x_t),   1 - A_t^2 = 4 a_t (1 - a_t)

The input normalisation keeps its role (a unit-variance input keeps the state's variance bounded by
1 for any A_t) and is well defined everywhere: at A_t = 0 (a_t = 1/2) the multiplier is 1, and it
goes to 0 at both ends, A_t -> +-1, where the same bounded sqrt derivative caps its gradient. The
initialisation is the RG-LRU's: at zero input r_t = 1/2 and a_t = a^4 with a in [0.9, 0.999], so
A_t = 2 a_t - 1 in [0.31, 0.99], positive, with 1 - A_t = 2 (1 - a_t) (half the memory horizon at
the same a_t). A_t -> -1, a state that flips sign every step (what parity needs), is reached with
r_t softplus(a_param) large. 4 a (1 - a) = -4 a expm1(log a) is computed without cancellation.
"""

from __future__ import annotations

import math

import torch
from torch import nn

from seqlib.layers.init import normal_
from seqlib.layers.scan import rg_lru_scan


class BlockDiagonalLinear(nn.Module):
    """Per-head block-diagonal linear layer with bias (recurrentgemma ``BlockDiagonalLinear``).

    Weight [H, R/H, R/H] with std sqrt(1/(R/H)) (LeCun over the block's fan-in, the torch
    reference's rule), bias [H, R/H] at 0.
    """

    def __init__(self, width: int, num_blocks: int):
        super().__init__()
        if width % num_blocks:
            raise ValueError(f"RG-LRU width {width} is not divisible by the number of gate blocks {num_blocks}")
        self.num_blocks = num_blocks
        block = width // num_blocks
        self.w = nn.Parameter(torch.empty(num_blocks, block, block))
        self.b = nn.Parameter(torch.zeros(num_blocks, block))
        normal_(self.w, math.sqrt(1.0 / block))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        xb = x.unflatten(-1, (self.num_blocks, -1))
        y = torch.einsum("...hi,hij->...hj", xb, self.w.to(x.dtype)) + self.b.to(x.dtype)
        return y.flatten(-2)


def a_param_init(width: int, min_rad: float = 0.9, max_rad: float = 0.999, eps: float = 1e-8) -> torch.Tensor:
    """``rnn_param_init``: a^2 uniform in [min_rad^2, max_rad^2], stored as inverse-softplus(-log a).

    u ~ U[min^2 + eps, max^2 + eps], rho = log(u)/2 = log a, a_param = log(exp(-rho) - 1), so that
    softplus(a_param) = -log a and exp(-softplus(a_param)) = a.
    """
    u = torch.empty(width).uniform_(min_rad**2 + eps, max_rad**2 + eps)
    rho = 0.5 * torch.log(u)
    return torch.log(torch.expm1(-rho))


class RGLRU(nn.Module):
    def __init__(self, width: int, num_blocks: int, scan_backend: str = "auto", negative: bool = False):
        super().__init__()
        self.width = width
        self.scan_backend = scan_backend
        self.negative = negative  # A_t = 2 a_t - 1 in (-1, 1): see the module docstring
        self.input_gate = BlockDiagonalLinear(width, num_blocks)
        self.a_gate = BlockDiagonalLinear(width, num_blocks)
        self.a_param = nn.Parameter(a_param_init(width))

    def init_cache(self, batch: int, device=None) -> torch.Tensor:
        return torch.zeros(batch, self.width, device=device, dtype=torch.float32)

    def forward(self, x: torch.Tensor, segment_pos: torch.Tensor, cache: torch.Tensor | None = None):
        """x: [B, T, R]; cache: h_{t-1} [B, R] fp32 or None. Returns (y [B, T, R], new state or None)."""
        gate_x = self.input_gate(x)
        gate_a = self.a_gate(x)
        reset = segment_pos == 0
        y, h_last = rg_lru_scan(x, gate_x, gate_a, self.a_param, reset, h0=cache, backend=self.scan_backend,
                                negative=self.negative)
        return y, (h_last if cache is not None else None)
