"""seqlib: the sequence mixers, models, tasks and training engine behind the seqbook.

Start with ``seqlib.build_model(ModelConfig(name="griffin"), spec)``; models are listed by
``seqlib.list_models()`` and tasks by ``seqlib.tasks.list_tasks()``. Names are imported lazily so
that ``import seqlib.tasks`` does not load the models.
"""

import importlib

__version__ = "0.1.0"
_EXPORTS = {
    "ModelConfig": "seqlib.models",
    "build_model": "seqlib.models",
    "list_models": "seqlib.models",
    "Batch": "seqlib.tasks.base",
    "TaskSpec": "seqlib.tasks.base",
}
__all__ = sorted(_EXPORTS)


def __getattr__(name: str):
    if name in _EXPORTS:
        return getattr(importlib.import_module(_EXPORTS[name]), name)
    raise AttributeError(f"module 'seqlib' has no attribute {name!r}")
