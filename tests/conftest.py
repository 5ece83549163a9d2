"""Shared test fixtures: tiny run configurations (``tiny_config``) and a task wrapper that alters
chosen training batches (``tampered``)."""

from __future__ import annotations

import os
from collections.abc import Callable

import pytest

from seqlib.config import ExperimentConfig, OptimConfig, RunConfig, TaskConfig
from seqlib.models import ModelConfig
from seqlib.objective import derive_seed
from seqlib.tasks import get_task
from seqlib.tasks.base import Batch, Task


def make_tiny_config(results_dir, model: str = "hawk", task: str = "parity_check", params: dict | None = None,
                model_kw: dict | None = None, run_kw: dict | None = None, **optim) -> ExperimentConfig:
    params = {"train_max_length": 6, "max_test_length": 8} if params is None else params
    optim = {"steps": 4, "batch_size": 8, "warmup_steps": 1, "lr": 3e-3, **optim}
    run = {"device": "cpu", "progress": False, "eval_size": 16, "eval_batch_size": 16, "eval_every": 1000,
           "results_dir": str(results_dir), **(run_kw or {})}
    model_kw = {"d_model": 16, "n_layers": 3, "num_heads": 2, "window": 8, **(model_kw or {})}
    return ExperimentConfig(model=ModelConfig(name=model, **model_kw), task=TaskConfig(name=task, params=params),
                            optim=OptimConfig(**optim), run=RunConfig(**run))


class Tampered(Task):
    """The configured task, with ``change(batch)`` applied to the training batch of (run seed, step)."""

    def __init__(self, cfg: ExperimentConfig, change: Callable[[Batch], Batch], run_seed: int,
                 steps: tuple[int, ...] | None = None):
        self.inner = get_task(cfg.task.name, **cfg.task.params)
        self.name, self.splits = self.inner.name, self.inner.splits
        self.change = change
        self.hit = {derive_seed("train", run_seed, s) for s in steps} if steps is not None else None

    @property
    def spec(self):
        return self.inner.spec

    @property
    def scoring(self):
        return self.inner.scoring

    def lengths(self, split):
        return self.inner.lengths(split)

    def sample(self, split, n, seed, **kw):
        batch = self.inner.sample(split, n, seed, **kw)
        if split == "train" and (self.hit is None or seed in self.hit):
            batch = self.change(batch)
        return batch


@pytest.fixture
def tiny_config():
    """``tiny_config(results_dir, model, task, params, model_kw=, run_kw=, **optim)``: a run small
    enough to train in a second on a CPU."""
    return make_tiny_config


@pytest.fixture
def tampered():
    """The :class:`Tampered` task wrapper."""
    return Tampered


def pytest_runtest_logreport(report):
    """With ``SEQLIB_TEST_REPORT=FILE`` each failure is appended to FILE as it happens, by the process
    that reports it (the controller under pytest-xdist): a GPU call cut short by its time limit keeps
    what failed and why, which pytest prints only at the end of the session."""
    path = os.environ.get("SEQLIB_TEST_REPORT")
    if path and report.failed and not os.environ.get("PYTEST_XDIST_WORKER"):
        with open(path, "a") as f:
            f.write(f"==== {report.nodeid} ({report.when})\n{report.longreprtext}\n")
