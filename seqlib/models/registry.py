"""One registry that builds any model by name: a new model is one builder plus one line here."""

from __future__ import annotations

import itertools
from collections.abc import Callable
from dataclasses import dataclass


class ModelUnavailable(RuntimeError):
    """The model cannot run here (e.g. a GPU-only kernel on a CPU); the message says why."""


@dataclass(frozen=True)
class ModelEntry:
    block_types: Callable[[int], list[str]]  # n_layers -> a block type per layer
    description: str
    requires_gpu: bool = False


def _repeat(kind: str) -> Callable[[int], list[str]]:
    return lambda n: [kind] * n


def _griffin_pattern(n: int) -> list[str]:
    """Griffin §3: two recurrent blocks then one local-MQA block, repeated (``itertools.cycle``)."""
    return list(itertools.islice(itertools.cycle(["recurrent", "recurrent", "local_attention"]), n))


MODELS: dict[str, ModelEntry] = {
    "hawk": ModelEntry(_repeat("recurrent"), "Hawk: RG-LRU recurrent blocks only (Griffin §2)"),
    "griffin": ModelEntry(_griffin_pattern, "Griffin: recurrent, recurrent, local MQA, repeated (Griffin §2)"),
    "local_transformer": ModelEntry(_repeat("local_attention"), "Transformer with local (sliding-window) MQA only"),
    "transformer": ModelEntry(_repeat("global_attention"), "Transformer with global causal MQA"),
    "lstm": ModelEntry(_repeat("lstm"), "stacked LSTM baseline (no MLP, no residual)"),
    "gru": ModelEntry(_repeat("gru"), "stacked GRU baseline (no MLP, no residual)"),
    "simplicial": ModelEntry(
        _repeat("simplicial"), "windowed 2-simplicial attention (Clift et al. 2019; Roy et al. 2025), PyTorch"
    ),
}

# The flash-linear-attention 0.6.0 zoo (seqlib.models.zoo): the same backbone, only the mixer differs.
# Triton kernels, so GPU only; on a CPU ``build_model`` raises ModelUnavailable with the reason.
ZOO_MODELS = {
    "mamba2": "Mamba-2 (Dao & Gu 2024), fla Mamba2, no mamba_ssm: chunked-SSD PyTorch path",
    "deltanet": "DeltaNet (Yang et al. 2024, delta rule, chunkwise)",
    "gated_deltanet": "Gated DeltaNet (Yang et al. 2025)",
    "rwkv7": "RWKV-7 'Goose' (Peng et al. 2025)",
    "mesanet": "MesaNet (von Oswald et al. 2025)",
    "path": "PaTH attention (Yang et al. 2025, Householder position encoding)",
    "deltaformer": "DeltaFormer (Zhong et al. 2025)",
    "nsa": "Native Sparse Attention (Yuan et al. 2025)",
    "gla": "Gated Linear Attention (Yang et al. 2024)",
    "retnet": "RetNet multi-scale retention (Sun et al. 2023)",
    "hgrn2": "HGRN2 (Qin et al. 2024)",
    "based": "Based linear attention, Taylor feature map (Arora et al. 2024)",
    "gsa": "Gated Slot Attention (Zhang et al. 2024)",
    "rwkv6": "RWKV-6 'Finch' (Peng et al. 2024)",
}
MODELS.update({name: ModelEntry(_repeat(name), desc, requires_gpu=True) for name, desc in ZOO_MODELS.items()})


def list_models() -> list[str]:
    return sorted(MODELS)
