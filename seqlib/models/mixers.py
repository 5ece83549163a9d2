"""What the registry knows about one block kind (a :class:`Mixer`), and the entries for the
paper's mixers and the RNN baselines; the fla zoo's entries are in :mod:`seqlib.models.zoo`.

A mixer entry holds its builder ``cfg -> nn.Module`` (the temporal mixer, interface
``(x, segment_pos, cache) -> (y, cache)``), the check of what it needs of the config (run by the
``ModelConfig`` validator), whether it needs a GPU, the layer class whose ``init_cache`` /
``state_size`` are its decode cache and state-size accounting, and its kernel mode: which kernel
the mixer runs for a :class:`Where` (device, sequence length, training or evaluation, stacked or
not) and why (:func:`seqlib.models.modes.kernel_modes` puts them in every run record).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from types import SimpleNamespace
from typing import TYPE_CHECKING

import torch
from torch import nn

from seqlib.layers.attention import Attention
from seqlib.layers.flex import FLEX_MIN_HEAD_DIM, FLEX_MIN_LEN, flex_applies, use_fast_path
from seqlib.layers.recurrent_block import RecurrentBlock
from seqlib.layers.rnn import RecurrentBaseline
from seqlib.layers.scan import LINEAR_SCANS, resolve_backend
from seqlib.layers.simplicial import SIMPLICIAL_WINDOW2, SimplicialAttention

if TYPE_CHECKING:
    from seqlib.models.config import ModelConfig


def _no_check(cfg: ModelConfig) -> None:
    """Nothing beyond the config's own field constraints (the layer checks its own arguments)."""


# the suffix of a training mode whose backward the kernel's library refuses on this device (the zoo's
# Gated DeltaNet on Hopper, seqlib.models.zoo): such a run cannot train here (seqlib.models.modes)
BACKWARD_REFUSED = " (backward refused)"


@dataclass(frozen=True)
class Where:
    """Where a mixer runs: the device, the sequence length T, training (train mode, gradients on) or
    evaluation (eval mode, no gradients), and whether stacked instances run it under vmap (seqlib.stack)."""

    device: torch.device
    seq_len: int
    training: bool
    stacked: bool = False


@dataclass(frozen=True)
class Mixer:
    """A block kind's entry in :data:`seqlib.models.registry.MIXERS`."""

    build: Callable[[ModelConfig], nn.Module]  # cfg -> the temporal mixer
    layer: type[nn.Module]  # what ``build`` returns: its init_cache / state_size are the decode state
    description: str
    check: Callable[[ModelConfig], None] = _no_check  # raises ValueError saying what the config lacks
    requires_gpu: bool = False
    residual: bool = True  # in a residual block with the MLP (Griffin §2); False: the mixer alone
    # (config, where) -> (the kernel it runs there, why); every mixer states it (keyword only)
    kernel_mode: Callable[[ModelConfig, Where], tuple[str, str]] = field(kw_only=True)


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


def _scan_mode(cfg: ModelConfig, where: Where) -> tuple[str, str]:
    """The RG-LRU scan :func:`seqlib.layers.scan.rg_lru_scan` takes (``resolve_backend``); under vmap
    the fused scan folds the instance axis in by its vmap rule, so a stack runs the same one."""
    backend = resolve_backend(cfg.scan_backend, where.device)
    if cfg.scan_backend != "auto":
        return backend, f"scan_backend={backend} in the model config"
    if backend not in LINEAR_SCANS:
        return backend, "the fused Triton RG-LRU scan (Griffin §2.4, App. D; seqlib.kernels): scan_backend=auto on CUDA"
    from seqlib.kernels import TRITON_UNAVAILABLE

    missing = TRITON_UNAVAILABLE if where.device.type == "cuda" else f"a {where.device.type} device"
    return backend, f"the PyTorch log-depth scan (seqlib.layers.scan): scan_backend=auto and no fused kernel here ({missing})"


def _attention_mode(window: bool) -> Callable[[ModelConfig, Where], tuple[str, str]]:
    """The path :class:`~seqlib.layers.attention.Attention` takes on one document per row (the
    tasks' batches): the fast path of :mod:`seqlib.layers.flex` or the PyTorch reference."""

    def mode(cfg: ModelConfig, where: Where) -> tuple[str, str]:
        if where.stacked:
            return "reference", "the PyTorch masked attention: stacked instances (vmap) cannot take the fast path's kernels"
        if not use_fast_path(cfg.attention_backend, SimpleNamespace(is_cuda=where.device.type == "cuda")):
            return "reference", (f"the PyTorch masked attention (seqlib.layers.attention): attention_backend="
                                 f"{cfg.attention_backend}" + (" off CUDA" if cfg.attention_backend == "auto" else ""))
        if not window:
            return "sdpa_causal", "SDPA with is_causal (FlashAttention-2 on CUDA): global attention, one document per row"
        head_dim = cfg.d_model // cfg.num_heads
        if flex_applies(where.seq_len, head_dim, where.device.type):
            return "flex", f"FlexAttention with a sliding-window block mask: T >= {FLEX_MIN_LEN} (seqlib.layers.flex)"
        if where.seq_len >= FLEX_MIN_LEN:
            return "sdpa_mask", (f"SDPA with an explicit window mask: head_dim {head_dim} < {FLEX_MIN_HEAD_DIM}, "
                                 "which FlexAttention's GPU kernel does not take (seqlib.layers.flex)")
        return "sdpa_mask", (f"SDPA with an explicit window mask: T < {FLEX_MIN_LEN}, where a FlexAttention kernel "
                             "compiled per shape does not pay (seqlib.layers.flex)")

    return mode


def _simplicial_mode(cfg: ModelConfig, where: Where) -> tuple[str, str]:
    return "pytorch", "windowed 2-simplicial attention in PyTorch (seqlib.layers.simplicial): no fused kernel"


def _rnn_mode(cfg: ModelConfig, where: Where) -> tuple[str, str]:
    """PyTorch's fused LSTM/GRU kernel on one document per row, the step loop under vmap (seqlib.layers.rnn)."""
    if where.stacked:
        return "step_loop", "PyTorch's gate equations step by step: the fused kernel takes one weight set, not a stack"
    if where.device.type == "cuda":
        return "cudnn", "torch.nn.LSTM/GRU's fused cuDNN kernel, one document per row"
    return "aten", f"torch.nn.LSTM/GRU's fused ATen kernel on the {where.device.type}, one document per row"


CORE_MIXERS: dict[str, Mixer] = {
    "recurrent": Mixer(_recurrent(False), RecurrentBlock,
                       "Griffin's recurrent block: Conv1D + RG-LRU, GeLU-gated (Griffin §2.3, §2.4)", _check_recurrent,
                       kernel_mode=_scan_mode),
    "recurrent_neg": Mixer(_recurrent(True), RecurrentBlock,
                           "the recurrent block with A_t = 2 a_t - 1 in (-1, 1) (negative eigenvalues, after "
                           "Grazzi et al. 2024; seqlib.layers.rglru)", _check_recurrent, kernel_mode=_scan_mode),
    "local_attention": Mixer(_attention(window=True), Attention,
                             "local (sliding-window) MQA with RoPE (Griffin §2.3)", _check_rope_attention,
                             kernel_mode=_attention_mode(window=True)),
    "global_attention": Mixer(_attention(window=False), Attention, "global causal MQA", _check_global_attention,
                              kernel_mode=_attention_mode(window=False)),
    "simplicial": Mixer(_simplicial, SimplicialAttention,
                        "windowed 2-simplicial attention (Clift et al. 2019; Roy et al. 2025)",
                        _check_rope_attention, kernel_mode=_simplicial_mode),
    "lstm": Mixer(_rnn("lstm"), RecurrentBaseline, "LSTM layer (Hochreiter & Schmidhuber 1997)", residual=False,
                  kernel_mode=_rnn_mode),
    "gru": Mixer(_rnn("gru"), RecurrentBaseline, "GRU layer (Cho et al. 2014)", residual=False, kernel_mode=_rnn_mode),
}
