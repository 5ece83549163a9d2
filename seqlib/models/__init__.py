"""Models by name: ``build_model(ModelConfig(name=...), spec)``; see ``list_models()``."""

from seqlib.models.build import build_model, unavailable
from seqlib.models.config import ModelConfig
from seqlib.models.registry import MODELS, ModelUnavailable, list_models

__all__ = ["MODELS", "ModelConfig", "ModelUnavailable", "build_model", "list_models", "unavailable"]
