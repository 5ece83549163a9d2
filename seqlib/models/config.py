"""ModelConfig: what the registry needs to build any model by name (validated, unknown keys rejected)."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator


class ModelConfig(BaseModel):
    """Sizes follow Griffin App. C (Table 2) by default: MLP expansion 3, D_RNN ~ 4D/3, conv width 4.

    ``gate_blocks`` defaults to ``num_heads`` (recurrentgemma; the paper used 16 blocks).
    ``mlp_width`` defaults to ``mlp_expansion * d_model``; the parameter-matching helper may set it.
    ``window`` is the local-attention window W (a query sees W + 1 tokens, as in the reference).
    ``pos_encoding`` applies to the global Transformer (the Chomsky reference compares encodings);
    Griffin's local attention always uses RoPE.
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
    window: int = 128
    pos_encoding: Literal["rope", "sinusoidal", "learned", "none"] = "rope"
    max_len: int = Field(4096, ge=1)
    scan_backend: Literal["auto", "sequential", "parallel", "triton"] = "auto"
    embed_scale_by_sqrt_dim: bool = False
    attention_backend: Literal["auto", "reference", "flex"] = "auto"  # auto: FlexAttention/flash on CUDA

    @model_validator(mode="after")
    def _check(self) -> ModelConfig:
        from seqlib.models.registry import MODELS

        if self.name not in MODELS:
            raise ValueError(f"unknown model {self.name!r}; known models: {sorted(MODELS)}")
        if self.window < 1:
            raise ValueError(f"window must be >= 1, got {self.window}")
        types = set(self.block_types)
        if types & {"local_attention", "global_attention"}:
            if self.d_model % self.num_heads:
                raise ValueError(f"d_model {self.d_model} is not divisible by num_heads {self.num_heads}")
            if self.num_heads % self.num_kv_heads:
                raise ValueError(f"num_heads {self.num_heads} is not a multiple of num_kv_heads {self.num_kv_heads}")
        if (self.d_model // self.num_heads) % 4 and self.uses_rope:
            raise ValueError(
                f"head_dim d_model/num_heads = {self.d_model // self.num_heads} must be a multiple of 4 "
                "(RoPE rotates the first half of each head in pairs)"
            )
        if "recurrent" in types and self.lru_width % self.blocks:
            raise ValueError(f"d_rnn {self.lru_width} is not divisible by gate_blocks {self.blocks}")
        return self

    @property
    def block_types(self) -> list[str]:
        from seqlib.models.registry import MODELS

        return MODELS[self.name].block_types(self.n_layers)

    @property
    def uses_rope(self) -> bool:
        types = set(self.block_types)
        return "local_attention" in types or ("global_attention" in types and self.pos_encoding == "rope")

    @property
    def blocks(self) -> int:
        return self.gate_blocks or self.num_heads

    @property
    def lru_width(self) -> int:
        if self.d_rnn is not None:
            return self.d_rnn
        return max(self.blocks, round(4 * self.d_model / 3 / self.blocks) * self.blocks)

    @property
    def ffw_width(self) -> int:
        return self.mlp_width if self.mlp_width is not None else self.mlp_expansion * self.d_model
