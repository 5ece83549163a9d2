"""The tasks (synthetic, and byte-level text), registered by name: ``get_task("mqar", seq_len=128)``, ``list_tasks()``; each
instance carries its scoring card, ``get_task(name, **params).scoring``."""

from __future__ import annotations

from .base import Batch, Task, TaskSpec
from .chomsky import CHOMSKY_TASKS
from .copying import InductionHeads, SelectiveCopying
from .dp import DP_TASKS
from .flipflop import FlipFlop
from .mqar import MQAR
from .scoring import Scoring
from .text import Text

TASKS: dict[str, type[Task]] = {
    t.name: t for t in (MQAR, *CHOMSKY_TASKS, FlipFlop, *DP_TASKS, SelectiveCopying, InductionHeads, Text)
}


def list_tasks() -> list[str]:
    """Names of the registered tasks, sorted."""
    return sorted(TASKS)


def get_task(name: str, **params) -> Task:
    """An instance of the task registered as ``name``, built with ``params``."""
    try:
        cls = TASKS[name]
    except KeyError:
        raise ValueError(f"unknown task {name!r}; valid names: {', '.join(list_tasks())}") from None
    return cls(**params)


__all__ = ["TASKS", "Batch", "Scoring", "Task", "TaskSpec", "get_task", "list_tasks"]
