"""Build a model from its config and the task's spec."""

from __future__ import annotations

import torch

from seqlib.models.config import ModelConfig
from seqlib.models.registry import MODELS, ModelUnavailable
from seqlib.models.sequence_model import SequenceModel
from seqlib.tasks.base import TaskSpec


def unavailable(name: str) -> str | None:
    """Why the registry model ``name`` cannot run on this machine (a GPU-only model without CUDA), or None."""
    if MODELS[name].requires_gpu and not torch.cuda.is_available():
        return f"model {name!r} needs a CUDA GPU (Triton kernels); skipped on this CPU"
    return None


def build_model(cfg: ModelConfig | dict, spec: TaskSpec) -> SequenceModel:
    """The model of ``cfg`` for the task ``spec``; :class:`ModelUnavailable` (with :func:`unavailable`'s
    reason) where it cannot run here."""
    if isinstance(cfg, dict):
        cfg = ModelConfig(**cfg)
    reason = unavailable(cfg.name)
    if reason is not None:
        raise ModelUnavailable(reason)
    return SequenceModel(cfg, spec)
