"""ModelConfig: what the registry needs to build any model by name (validated, unknown keys rejected)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from seqlib.models.registry import MIXERS, MODELS


@dataclass(frozen=True)
class ResolvedWidths:
    """The optional widths of a :class:`ModelConfig` with their defaults filled in (same names)."""

    d_rnn: int
    gate_blocks: int
    mlp_width: int


class ModelConfig(BaseModel):
    """Sizes follow Griffin App. C (Table 2) by default: MLP expansion 3, D_RNN ~ 4D/3, conv width 4.

    ``gate_blocks`` defaults to ``num_heads`` (recurrentgemma; the paper used 16 blocks).
    ``mlp_width`` defaults to ``mlp_expansion * d_model``; the parameter-matching helper may set it.
    ``mlp_expansion = 0`` builds no MLP: each residual block is the mixer alone (Zoology's MQAR blocks,
    ``state_mixer = Identity``, tasks.md §1.2).
    ``pattern`` replaces the registry's block pattern of the model (the mixer names cycled over the
    layers) with one over the same mixers, each of which must appear in the ``n_layers`` layers: a
    2-layer Griffin is ``[recurrent, local_attention]`` (its registry pattern would give two
    recurrent blocks and no attention). None: the registry's pattern.
    ``window`` is the local-attention window W (a query sees W + 1 tokens, as in the reference).
    ``pos_encoding`` applies to the global Transformer (the Chomsky reference compares encodings);
    Griffin's local attention always uses RoPE. Each mixer checks what it needs of the config
    (``MIXERS[kind].check``); ``resolved`` gives the widths with their defaults filled in.
    """

    model_config = ConfigDict(extra="forbid")

    name: str
    d_model: int = Field(64, ge=1)
    n_layers: int = Field(2, ge=1)
    num_heads: int = Field(4, ge=1)
    num_kv_heads: int = Field(1, ge=1)
    d_rnn: int | None = Field(None, ge=1)
    gate_blocks: int | None = Field(None, ge=1)
    mlp_expansion: int = Field(3, ge=0)
    mlp_width: int | None = Field(None, ge=1)
    conv_width: int = Field(4, ge=1)
    pattern: list[str] | None = None
    window: int = 128
    pos_encoding: Literal["rope", "sinusoidal", "learned", "none"] = "rope"
    max_len: int = Field(4096, ge=1)
    scan_backend: Literal["auto", "sequential", "parallel", "triton"] = "auto"
    embed_scale_by_sqrt_dim: bool = False
    attention_backend: Literal["auto", "reference", "flex"] = "auto"  # auto: FlexAttention/flash on CUDA

    @model_validator(mode="after")
    def _check(self) -> ModelConfig:
        if self.name not in MODELS:
            raise ValueError(f"unknown model {self.name!r}; known models: {sorted(MODELS)}")
        if self.window < 1:
            raise ValueError(f"window must be >= 1, got {self.window}")
        if self.pattern is not None:
            own = MODELS[self.name].pattern
            foreign = [kind for kind in self.pattern if kind not in own]
            if not self.pattern or foreign:
                raise ValueError(f"model {self.name!r}: pattern {self.pattern} must be a non-empty list of "
                                 f"its own mixers {sorted(set(own))}" + (f", not {foreign}" if foreign else ""))
            if len(self.pattern) > self.n_layers:
                raise ValueError(f"model {self.name!r}: pattern {self.pattern} has more blocks than "
                                 f"n_layers={self.n_layers}, so some would never be built")
        for kind in dict.fromkeys(self.block_types):
            try:
                MIXERS[kind].check(self)
            except ValueError as exc:
                raise ValueError(f"model {self.name!r}, {kind} mixer: {exc}") from None
        return self

    @property
    def block_types(self) -> list[str]:
        return MODELS[self.name].block_types(self.n_layers, self.pattern)

    @property
    def resolved(self) -> ResolvedWidths:
        """Griffin App. C defaults: gate_blocks = num_heads (recurrentgemma), D_RNN = 4D/3 rounded to a
        multiple of gate_blocks, mlp_width = mlp_expansion * D. A property, so not a field: it is not
        in ``model_dump`` (nor in the config hash)."""
        gate_blocks = self.gate_blocks or self.num_heads
        d_rnn = self.d_rnn or max(gate_blocks, round(4 * self.d_model / 3 / gate_blocks) * gate_blocks)
        mlp_width = self.mlp_width or self.mlp_expansion * self.d_model
        return ResolvedWidths(d_rnn=d_rnn, gate_blocks=gate_blocks, mlp_width=mlp_width)
