"""seqlib: the sequence mixers, models, tasks and training engine behind the seqbook.

Start with ``seqlib.models.build_model(ModelConfig(name="griffin"), spec)``; the models are
listed by ``seqlib.models.list_models()``.
"""

from seqlib.models import ModelConfig, build_model, list_models
from seqlib.tasks.base import Batch, TaskSpec

__version__ = "0.1.0"
__all__ = ["Batch", "ModelConfig", "TaskSpec", "build_model", "list_models"]
