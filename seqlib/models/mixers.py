"""What the registry knows about one block kind (a :class:`Mixer`), and the entries for the
paper's mixers and the RNN baselines; the fla zoo's entries are in :mod:`seqlib.models.zoo`.

A mixer entry holds its builder ``cfg -> nn.Module`` (the temporal mixer, interface
``(x, segment_pos, cache) -> (y, cache)``), the check of what it needs of the config (run by the
``ModelConfig`` validator), whether it needs a GPU, and the layer class whose ``init_cache`` /
``state_size`` are its decode cache and state-size accounting.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

from torch import nn

from seqlib.layers.attention import Attention
from seqlib.layers.recurrent_block import RecurrentBlock
from seqlib.layers.rnn import RecurrentBaseline
from seqlib.layers.simplicial import SIMPLICIAL_WINDOW2, SimplicialAttention

if TYPE_CHECKING:
    from seqlib.models.config import ModelConfig


def _no_check(cfg: ModelConfig) -> None:
    """Nothing beyond the config's own field constraints (the layer checks its own arguments)."""


@dataclass(frozen=True)
class Mixer:
    """A block kind's entry in :data:`seqlib.models.registry.MIXERS`."""

    build: Callable[[ModelConfig], nn.Module]  # cfg -> the temporal mixer
    layer: type[nn.Module]  # what ``build`` returns: its init_cache / state_size are the decode state
    description: str
    check: Callable[[ModelConfig], None] = _no_check  # raises ValueError saying what the config lacks
    requires_gpu: bool = False
    residual: bool = True  # in a residual block with the MLP (Griffin §2); False: the mixer alone


def final_w_init_variance_scale(cfg: ModelConfig) -> float:
    """2 / n_layers for each block's output projections (google-deepmind/recurrentgemma,
    ``final_w_init_variance_scale``)."""
    return 2.0 / cfg.n_layers


def _check_heads(cfg: ModelConfig) -> None:
    """Multi-query attention (Griffin §2.3): D splits into H heads, shared by ``num_kv_heads`` K/V heads."""
    if cfg.d_model % cfg.num_heads:
        raise ValueError(f"d_model {cfg.d_model} is not divisible by num_heads {cfg.num_heads}")
    if cfg.num_heads % cfg.num_kv_heads:
        raise ValueError(f"num_heads {cfg.num_heads} is not a multiple of num_kv_heads {cfg.num_kv_heads}")


def _check_rope(cfg: ModelConfig) -> None:
    if (cfg.d_model // cfg.num_heads) % 4:
        raise ValueError(
            f"head_dim d_model/num_heads = {cfg.d_model // cfg.num_heads} must be a multiple of 4 "
            "(RoPE rotates the first half of each head in pairs)"
        )


def _check_rope_attention(cfg: ModelConfig) -> None:
    """Local MQA and 2-simplicial attention: RoPE on every head."""
    _check_heads(cfg)
    _check_rope(cfg)


def _check_global_attention(cfg: ModelConfig) -> None:
    _check_heads(cfg)
    if cfg.pos_encoding == "rope":
        _check_rope(cfg)


def _check_recurrent(cfg: ModelConfig) -> None:
    widths = cfg.resolved
    if widths.d_rnn % widths.gate_blocks:
        raise ValueError(f"d_rnn {widths.d_rnn} is not divisible by gate_blocks {widths.gate_blocks}")


def _recurrent(negative: bool) -> Callable[[ModelConfig], RecurrentBlock]:
    def build(cfg: ModelConfig) -> RecurrentBlock:
        widths = cfg.resolved
        return RecurrentBlock(cfg.d_model, widths.d_rnn, widths.gate_blocks, cfg.conv_width,
                              final_w_init_variance_scale(cfg), cfg.scan_backend, negative=negative)

    return build


def _attention(window: bool) -> Callable[[ModelConfig], Attention]:
    """Local attention sees a window and always uses RoPE; global attention uses RoPE if asked."""

    def build(cfg: ModelConfig) -> Attention:
        return Attention(cfg.d_model, cfg.num_heads, cfg.num_kv_heads, cfg.window if window else None,
                         window or cfg.pos_encoding == "rope", final_w_init_variance_scale(cfg),
                         cfg.attention_backend)

    return build


def _simplicial(cfg: ModelConfig) -> SimplicialAttention:
    return SimplicialAttention(cfg.d_model, cfg.num_heads, cfg.num_kv_heads, cfg.window, SIMPLICIAL_WINDOW2,
                               final_w_init_variance_scale(cfg))


def _rnn(kind: str) -> Callable[[ModelConfig], RecurrentBaseline]:
    return lambda cfg: RecurrentBaseline(cfg.d_model, kind)


CORE_MIXERS: dict[str, Mixer] = {
    "recurrent": Mixer(_recurrent(False), RecurrentBlock,
                       "Griffin's recurrent block: Conv1D + RG-LRU, GeLU-gated (Griffin §2.3, §2.4)", _check_recurrent),
    "recurrent_neg": Mixer(_recurrent(True), RecurrentBlock,
                           "the recurrent block with A_t = 2 a_t - 1 in (-1, 1) (negative eigenvalues, after "
                           "Grazzi et al. 2024; seqlib.layers.rglru)", _check_recurrent),
    "local_attention": Mixer(_attention(window=True), Attention,
                             "local (sliding-window) MQA with RoPE (Griffin §2.3)", _check_rope_attention),
    "global_attention": Mixer(_attention(window=False), Attention, "global causal MQA", _check_global_attention),
    "simplicial": Mixer(_simplicial, SimplicialAttention,
                        "windowed 2-simplicial attention (Clift et al. 2019; Roy et al. 2025)",
                        _check_rope_attention),
    "lstm": Mixer(_rnn("lstm"), RecurrentBaseline, "LSTM layer (Hochreiter & Schmidhuber 1997)", residual=False),
    "gru": Mixer(_rnn("gru"), RecurrentBaseline, "GRU layer (Cho et al. 2014)", residual=False),
}
