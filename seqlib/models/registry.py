"""The registry: ``MIXERS`` (block kind -> :class:`~seqlib.models.mixers.Mixer`) and ``MODELS``
(model name -> a description and its block pattern over mixer names). A new mixer is one entry in
:mod:`seqlib.models.mixers` (or, for an fla layer, in :mod:`seqlib.models.zoo`, which also makes it
a model); a new model over existing mixers is one line here.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass

from seqlib.models.mixers import CORE_MIXERS, Mixer
from seqlib.models.zoo import FLA_LAYERS, ZOO_MIXERS


class ModelUnavailable(RuntimeError):
    """The model cannot run here (e.g. a GPU-only kernel on a CPU); the message says why."""


MIXERS: dict[str, Mixer] = {**CORE_MIXERS, **ZOO_MIXERS}


@dataclass(frozen=True)
class ModelEntry:
    pattern: tuple[str, ...]  # mixer names, cycled over the layers
    description: str
    title: str | None = None  # the name pages show (the model's registry name where None)
    limit: str | None = None  # a platform where it cannot train (pages list it with the model)

    def block_types(self, n_layers: int, pattern: list[str] | None = None) -> list[str]:
        """The mixer of each of ``n_layers`` layers: ``pattern`` (default: the entry's) cycled."""
        return list(itertools.islice(itertools.cycle(pattern or self.pattern), n_layers))

    @property
    def requires_gpu(self) -> bool:
        return any(MIXERS[kind].requires_gpu for kind in self.pattern)


MODELS: dict[str, ModelEntry] = {
    "hawk": ModelEntry(("recurrent",), "Hawk: RG-LRU recurrent blocks only (Griffin §2)", "Hawk"),
    # Griffin §3: two recurrent blocks then one local-MQA block, repeated
    "griffin": ModelEntry(("recurrent", "recurrent", "local_attention"),
                          "Griffin: recurrent, recurrent, local MQA, repeated (Griffin §2)", "Griffin"),
    # positive controls for state tracking: the RG-LRU with A_t = 2 a_t - 1 in (-1, 1) (seqlib.layers.rglru)
    "hawk_neg": ModelEntry(("recurrent_neg",), "Hawk with A_t in (-1, 1): negative eigenvalues (Grazzi et al. 2024)",
                           "Hawk, A_t in (−1, 1)"),
    "griffin_neg": ModelEntry(("recurrent_neg", "recurrent_neg", "local_attention"),
                              "Griffin with A_t in (-1, 1) in its recurrent blocks", "Griffin, A_t in (−1, 1)"),
    "local_transformer": ModelEntry(("local_attention",), "Transformer with local (sliding-window) MQA only",
                                    "Local-attention Transformer"),
    "transformer": ModelEntry(("global_attention",), "Transformer with global causal MQA", "Transformer"),
    # the vanilla Transformer: absolute sinusoidal positions (Vaswani et al. 2017) instead of RoPE
    "transformer_vanilla": ModelEntry(("global_attention",), "Transformer with global causal MQA and sinusoidal "
                                      "absolute positions (Vaswani et al. 2017)", "Transformer, sinusoidal"),
    "lstm": ModelEntry(("lstm",), "stacked LSTM baseline (no MLP, no residual)", "LSTM"),
    "gru": ModelEntry(("gru",), "stacked GRU baseline (no MLP, no residual)", "GRU"),
    "simplicial": ModelEntry(
        ("simplicial",), "windowed 2-simplicial attention (Clift et al. 2019; Roy et al. 2025), PyTorch",
        "2-simplicial attention",
    ),
}
# The flash-linear-attention 0.6.0 zoo: the same backbone, only the mixer differs.
MODELS.update({name: ModelEntry((name,), fla.description, fla.title, fla.limit) for name, fla in FLA_LAYERS.items()})


def list_models() -> list[str]:
    return sorted(MODELS)
