"""Build a model from its config and the task's spec."""

from __future__ import annotations

import torch

from seqlib.models.config import ModelConfig
from seqlib.models.registry import MODELS, ModelUnavailable
from seqlib.models.sequence_model import SequenceModel
from seqlib.tasks.base import TaskSpec


def build_model(cfg: ModelConfig | dict, spec: TaskSpec) -> SequenceModel:
    if isinstance(cfg, dict):
        cfg = ModelConfig(**cfg)
    if MODELS[cfg.name].requires_gpu and not torch.cuda.is_available():
        raise ModelUnavailable(f"model {cfg.name!r} needs a CUDA GPU (Triton kernels); skipped on this CPU")
    return SequenceModel(cfg, spec)
