"""One model class for every architecture: input adapter -> blocks -> final RMSNorm -> head.

The input adapter is a token embedding or, for numeric-feature tasks, a linear map; the head is
the tied embedding (Griffin §2: input and output embeddings are shared) when the outputs are the
input vocabulary, a linear head otherwise, pooled over valid positions for sequence-level tasks.
Blocks follow the interface ``(x, segment_pos, cache) -> (x, cache)``.
"""

from __future__ import annotations

import math

import torch
from torch import nn
from torch._C._functorch import is_batchedtensor

from seqlib.layers.init import linear, normal_
from seqlib.layers.mlp import MLPBlock
from seqlib.layers.norms import RMSNorm
from seqlib.layers.residual import ResidualBlock
from seqlib.layers.segments import check_segment_pos, default_segment_pos
from seqlib.models.config import ModelConfig
from seqlib.models.mixers import final_w_init_variance_scale
from seqlib.models.registry import MIXERS
from seqlib.tasks.base import TaskSpec


def sinusoidal_encoding(positions: torch.Tensor, width: int) -> torch.Tensor:
    """Vaswani et al. (2017) sin/cos position encoding at ``positions`` [B, T] -> [B, T, width]."""
    half = width // 2
    freq = torch.exp(-math.log(10_000.0) * torch.arange(half, device=positions.device) / half)
    angle = positions.float()[..., None] * freq
    enc = torch.cat([torch.sin(angle), torch.cos(angle)], dim=-1)
    return nn.functional.pad(enc, (0, width - 2 * half))


def mlp_width(kind: str, cfg: ModelConfig) -> int:
    """The width of the MLP in a block of ``kind`` (Griffin §2); 0 for none: a mixer that stands alone
    (the LSTM/GRU baselines) or ``mlp_expansion = 0`` (Zoology's MQAR blocks, tasks.md §1.2)."""
    return cfg.resolved.mlp_width if MIXERS[kind].residual and cfg.mlp_expansion > 0 else 0


def build_block(kind: str, cfg: ModelConfig) -> nn.Module:
    """The mixer ``MIXERS[kind]`` builds, in a residual block with its MLP (:func:`mlp_width`) unless it
    stands alone (the LSTM/GRU baselines)."""
    mixer = MIXERS[kind]
    temporal = mixer.build(cfg)  # before the MLP: the order in which the weights are drawn
    if not mixer.residual:
        return temporal
    width = mlp_width(kind, cfg)
    mlp = MLPBlock(cfg.d_model, width, final_w_init_variance_scale(cfg)) if width > 0 else None
    return ResidualBlock(cfg.d_model, temporal, mlp)


class SequenceModel(nn.Module):
    def __init__(self, cfg: ModelConfig, spec: TaskSpec):
        super().__init__()
        self.cfg, self.spec = cfg, spec
        D = cfg.d_model
        if spec.input_kind == "tokens":
            if not spec.vocab_size:
                raise ValueError("a token task needs spec.vocab_size")
            self.embed = nn.Embedding(spec.vocab_size, D)
            normal_(self.embed.weight, 1.0 / math.sqrt(D))
        else:
            if not spec.feature_dim:
                raise ValueError("a feature task needs spec.feature_dim")
            self.embed = linear(spec.feature_dim, D)
        self.additive_pos = cfg.pos_encoding if "global_attention" in cfg.block_types else "none"
        if self.additive_pos == "learned":
            self.pos_embed = nn.Embedding(cfg.max_len, D)
            normal_(self.pos_embed.weight, 1.0 / math.sqrt(D))
        self.blocks = nn.ModuleList(build_block(kind, cfg) for kind in cfg.block_types)
        self.final_norm = RMSNorm(D)
        self.tied = spec.input_kind == "tokens" and spec.output_kind == "tokens" and spec.num_outputs == spec.vocab_size
        self.head = None if self.tied else linear(D, spec.num_outputs)

    def num_params(self) -> int:
        return sum(p.numel() for p in self.parameters())

    def init_cache(self, batch: int, device=None, dtype=torch.float32) -> list:
        return [block.init_cache(batch, device=device, dtype=dtype) for block in self.blocks]

    def state_size(self, seq_len: int) -> dict[str, int]:
        """Elements of decode state per sequence after ``seq_len`` tokens (zoology-style accounting),
        summed over blocks by kind (RG-LRU state, conv state, KV cache, RNN state, ...)."""
        sizes: dict[str, int] = {}
        for block in self.blocks:
            mixer = block.temporal_block if isinstance(block, ResidualBlock) else block
            for key, n in mixer.state_size(seq_len).items():
                sizes[key] = sizes.get(key, 0) + n
        sizes["total"] = -1 if "unknown" in sizes else sum(sizes.values())
        return sizes

    def embed_inputs(self, inputs: torch.Tensor, segment_pos: torch.Tensor) -> torch.Tensor:
        x = self.embed(inputs)
        if self.cfg.embed_scale_by_sqrt_dim:
            x = x * math.sqrt(self.cfg.d_model)
        pos = segment_pos.clamp_min(0)
        if self.additive_pos == "sinusoidal":
            x = x + sinusoidal_encoding(pos, self.cfg.d_model).to(x.dtype)
        elif self.additive_pos == "learned":
            if not is_batchedtensor(pos) and int(pos.max()) >= self.cfg.max_len:  # under vmap (seqlib.stack) the config check covers it
                raise ValueError(
                    f"learned position embeddings cover positions < max_len={self.cfg.max_len}; "
                    f"got position {int(pos.max())}"
                )
            x = x + self.pos_embed(pos)
        return x

    def forward(self, inputs: torch.Tensor, segment_pos: torch.Tensor | None = None, cache: list | None = None,
                scored: torch.Tensor | None = None):
        """inputs: [B, T] ids or [B, T, F] features; returns (logits, cache or None).

        logits: [B, T, num_outputs] for per-position tasks, [B, num_outputs] for pooled ones; with
        ``scored`` (a [B, T] bool mask of a per-position task), [N, num_outputs] at its N True
        positions in row-major order: the head then skips the positions no loss reads (MQAR scores
        16 of 256, so most of its V = 8192 projection is skipped). ``scored`` may also be an int64 [N]
        index of flat positions ``b * T + t`` (the stacked trainer's form: one shape for every instance).
        """
        expected = 2 if self.spec.input_kind == "tokens" else 3
        if inputs.dim() != expected:
            raise ValueError(
                f"{self.spec.input_kind} inputs must have {expected} dims, got shape {tuple(inputs.shape)}"
            )
        B, T = inputs.shape[:2]
        if segment_pos is None:
            segment_pos = default_segment_pos(B, T, inputs.device)
        check_segment_pos(inputs, segment_pos)
        if cache is not None and len(cache) != len(self.blocks):
            raise ValueError(f"cache has {len(cache)} entries for {len(self.blocks)} blocks")
        x = self.embed_inputs(inputs, segment_pos)
        new_cache = [] if cache is not None else None
        for i, block in enumerate(self.blocks):
            x, c = block(x, segment_pos, None if cache is None else cache[i])
            if new_cache is not None:
                new_cache.append(c)
        x = self.final_norm(x)
        if scored is not None:
            as_mask = scored.dtype == torch.bool and scored.shape == inputs.shape[:2]
            as_index = scored.dtype == torch.long and scored.dim() == 1
            if self.spec.output_kind == "pooled" or not (as_mask or as_index):
                raise ValueError(f"scored must be a bool [B, T] = {tuple(inputs.shape[:2])} mask or an int64 [N] "
                                 f"index of a per-position task; got {scored.dtype} {tuple(scored.shape)} "
                                 f"({self.spec.output_kind} outputs)")
            x = x[scored] if as_mask else x.flatten(0, 1)[scored]
        elif self.spec.output_kind == "pooled":
            valid = (segment_pos >= 0).unsqueeze(-1).to(x.dtype)
            x = (x * valid).sum(1) / valid.sum(1).clamp_min(1.0)
        logits = x @ self.embed.weight.T.to(x.dtype) if self.tied else self.head(x)
        return logits, new_cache
