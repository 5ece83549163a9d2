"""Parameter-matched comparisons: size any model to a target parameter budget (within ±3%).

Widths are searched on the meta device (no memory is allocated). Attention and recurrent
models first take the largest ``d_model`` (a multiple of ``4 * num_heads``, so RoPE halves stay
even) whose model fits the budget with the paper's MLP width 3D, then set ``mlp_width`` so the
total lands on the budget (the next width up, with a narrower MLP, is also tried; the MLP stays
within 1.5D..6D); LSTM/GRU search their hidden size; an fla layer whose kernels take some head widths only
(:attr:`seqlib.models.zoo.FlaLayer.head_dims`) takes the nearest of those widths. The returned config says exactly
what was changed; chapters report the resulting counts and state sizes.
"""

from __future__ import annotations

import math

import torch

from seqlib.models.config import ModelConfig
from seqlib.models.sequence_model import SequenceModel
from seqlib.models.zoo import takes_width
from seqlib.tasks.base import TaskSpec

TOLERANCE = 0.03


def count_params(cfg: ModelConfig, spec: TaskSpec) -> int:
    with torch.device("meta"):
        return SequenceModel(cfg, spec).num_params()


def _with(cfg: ModelConfig, **changes) -> ModelConfig:
    return ModelConfig(**{**cfg.model_dump(), **changes})


def _fit_mlp(cfg: ModelConfig, spec: TaskSpec, target_params: int) -> ModelConfig | None:
    """Set ``mlp_width`` so the count lands on the target; None if that needs < 1.5D or > 6D."""
    per_unit = cfg.n_layers * (3 * cfg.d_model + 2)  # per hidden unit: 3 weight columns, 2 biases
    base_params = count_params(cfg, spec) - cfg.resolved.mlp_width * per_unit
    width = round((target_params - base_params) / per_unit)
    if not 1.5 * cfg.d_model <= width <= 6 * cfg.d_model:
        return None
    return _with(cfg, mlp_width=width)


def match_budget(cfg: ModelConfig, spec: TaskSpec, target_params: int, tolerance: float = TOLERANCE) -> ModelConfig:
    """Return a copy of ``cfg`` resized so its parameter count is within ``tolerance`` of the target."""
    if target_params <= 0:
        raise ValueError(f"target_params must be positive, got {target_params}")
    recurrent_baseline = cfg.name in ("lstm", "gru")
    step = 1 if recurrent_baseline else 4 * cfg.num_heads
    base = {"d_rnn": None, "mlp_width": None}

    def at_width(d: int) -> ModelConfig:
        return _with(cfg, d_model=d, **base)

    # exponential then binary search for the largest width that fits the budget
    lo, hi = step, step
    while count_params(at_width(hi), spec) <= target_params:
        lo, hi = hi, hi * 2
    while hi - lo > step:
        mid = (lo + hi) // 2 // step * step
        if count_params(at_width(mid), spec) <= target_params:
            lo = mid
        else:
            hi = mid
    widths = [lo, hi]
    if not all(takes_width(cfg.block_types, cfg.num_heads, d) for d in widths):
        # fla kernels that take some head widths only: the nearest such widths under and over the budget
        takes = [d for d in range(step, 64 * hi, step) if takes_width(cfg.block_types, cfg.num_heads, d)]
        widths = [d for d in takes if d <= lo][-1:] + [d for d in takes if d >= hi][:1]
        if not widths:
            raise ValueError(f"cannot size {cfg.name!r}: fla's kernels take no d_model near {lo} "
                             f"over {cfg.num_heads} heads (seqlib.models.zoo.FlaLayer.head_dims)")
    candidates = [at_width(d) for d in widths]
    if not recurrent_baseline and cfg.mlp_expansion > 0:
        # the width just under and just over the budget, each with its MLP resized onto the budget
        candidates = [c for c in (_fit_mlp(at_width(d), spec, target_params) for d in widths) if c] or candidates

    def preference(c: ModelConfig) -> tuple[bool, float]:
        miss = abs(count_params(c, spec) - target_params)
        off_ratio = abs(math.log(c.resolved.mlp_width / (c.mlp_expansion * c.d_model))) if c.mlp_expansion else 0.0
        return miss > tolerance * target_params, off_ratio if not recurrent_baseline else miss

    best = min(candidates, key=preference)
    got = count_params(best, spec)
    if abs(got - target_params) > tolerance * target_params:
        raise ValueError(
            f"cannot size {cfg.name!r} to {target_params} parameters within ±{tolerance:.0%}: "
            f"closest is {got} (d_model={best.d_model}); change n_layers or num_heads"
        )
    return best
