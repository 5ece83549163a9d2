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
}


def list_models() -> list[str]:
    return sorted(MODELS)
