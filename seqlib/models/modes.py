"""The kernels a run's mixers execute, and why: every run record's ``measure["kernel_mode"]``.

Which kernel a mixer runs depends on the device, the sequence length T, training or evaluation and
whether stacked instances run it under vmap (:class:`~seqlib.models.mixers.Where`); each mixer entry
states its rule (``Mixer.kernel_mode``: e.g. the fused Triton RG-LRU scan on CUDA, the PyTorch scan
elsewhere; fla's DeltaNet ``fused_recurrent`` for T <= 64, else ``chunk``). A run trains at the
lengths of its train split and evaluates at those of its evaluation splits, so each phase's modes are
taken at its shortest and its longest input (no rule switches more than once in T).
"""

from __future__ import annotations

from collections.abc import Iterable

import torch

from seqlib.models.config import ModelConfig
from seqlib.models.mixers import BACKWARD_REFUSED, Where
from seqlib.models.registry import MIXERS


def input_lengths(task, splits: Iterable[str]) -> tuple[int, int]:
    """The shortest and the longest input (positions) of ``task``'s ``splits``: one example at either
    end of each split's lengths."""
    widths = []
    for split in splits:
        lengths = task.lengths(split)
        for length in (min(lengths), max(lengths)) if lengths else (None,):
            batch = task.sample(split, 1, 0, **({} if length is None else {"length": length}))
            widths.append(int(batch.inputs.shape[1]))
    return min(widths), max(widths)


def kernel_modes(cfg: ModelConfig, task, device: torch.device | str, eval_splits: Iterable[str],
                 stacked: bool = False) -> dict[str, dict[str, str]]:
    """Per block kind of ``cfg``: ``{"train": mode, "eval": mode, "why": ...}``, the
    kernel each phase runs on ``device`` (two modes, shortest input first, where the phase's lengths
    straddle a switch) and the reasons; ``stacked``: the instances of a stack (:mod:`seqlib.stack`)."""
    device = torch.device(device)
    phases = {"train": (True, input_lengths(task, ["train"])), "eval": (False, input_lengths(task, eval_splits))}
    modes = {}
    for kind in dict.fromkeys(cfg.block_types):
        entry, whys = {}, {}
        for phase, (training, lengths) in phases.items():
            picked = [MIXERS[kind].kernel_mode(cfg, Where(device, T, training, stacked)) for T in lengths]
            entry[phase] = ", ".join(dict.fromkeys(mode for mode, _ in picked))
            whys.update(dict.fromkeys(why for _, why in picked))
        modes[kind] = {**entry, "why": "; ".join(whys)}
    return modes


def training_refused(modes: dict[str, dict[str, str]]) -> str | None:
    """Why a run of these :func:`kernel_modes` cannot train here (a mixer whose library refuses its
    backward on this device), or None: such a run is skipped with the reason before it builds a model."""
    refused = {kind: m["why"] for kind, m in modes.items() if BACKWARD_REFUSED in m["train"]}
    return "; ".join(f"{kind}: {why}" for kind, why in refused.items()) or None
