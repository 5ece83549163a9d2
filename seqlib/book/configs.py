"""The configurations a task chapter shows, without the notebook stack (a training round imports them
on a GPU node that has no IPython or Altair): each registry task's resolved configuration and task
object (:func:`load_tasks`), and every planned run (:func:`planned_configs`)."""

from __future__ import annotations

from collections.abc import Iterable

from seqlib.config import load_config
from seqlib.tasks import get_task


def load_tasks(names: Iterable[str], model: str, profile: str):
    """``(configs, tasks)``: the resolved configuration and task object per registry task name.

    Every run prints no progress bar and, outside the ``full`` profile, skips the checkpoint (neither
    changes the configuration hash).
    """
    base = ["run.progress=false"] + ([] if profile == "full" else ["run.save_checkpoint=false"])
    configs = {name: load_config(name, model, profile, base) for name in names}
    tasks = {name: get_task(c.task.name, **c.task.params) for name, c in configs.items()}
    return configs, tasks


def planned_configs(names: Iterable[str], model: str, profile: str) -> list:
    """Every run (one configuration per task, lr and seed) that a task chapter training ``names``
    with ``model`` under ``profile`` shows: what the grid runner trains before the chapters run."""
    from seqlib.book.report import planned_sweep

    configs, _ = load_tasks(names, model, profile)
    return [run for cfg in configs.values() for run in planned_sweep(cfg)]
