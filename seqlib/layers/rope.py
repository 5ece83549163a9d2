"""Rotary position embedding on a fraction of each head's channels (recurrentgemma ``_apply_rope``).

Griffin's attention rotates the first half of each head's dimensions (split-half, not
interleaved), base 10_000, at positions ``segment_pos`` (restarting in every document); the
rest pass through. HF calls this ``partial_rotary_factor = 0.5``.
"""

from __future__ import annotations

import torch

MAX_WAVELENGTH = 10_000


def apply_rope(x: torch.Tensor, positions: torch.Tensor, fraction: float = 0.5) -> torch.Tensor:
    """x: [B, T, H, D]; positions: [B, T]. Rotates the first ``fraction * D`` channels."""
    rot = int(x.shape[-1] * fraction)
    if rot % 2:
        raise ValueError(f"RoPE needs an even number of rotated channels; head_dim {x.shape[-1]} * {fraction} = {rot}")
    x_rope, x_pass = x[..., :rot], x[..., rot:]
    half = rot // 2
    freq = torch.arange(half, device=x.device, dtype=torch.float32) * 2.0 / rot
    timescale = MAX_WAVELENGTH**freq
    angle = positions.float()[..., None, None] / timescale  # [B, T, 1, half]
    sin, cos = torch.sin(angle), torch.cos(angle)
    first, second = x_rope[..., :half].float(), x_rope[..., half:].float()
    rotated = torch.cat([first * cos - second * sin, second * cos + first * sin], dim=-1)
    return torch.cat([rotated.to(x.dtype), x_pass], dim=-1)
