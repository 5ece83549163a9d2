"""The models a grid runs (seqlib.book.grid with params/grid.yaml's ``profile_models`` and ``skip``): a
grid on a CPU skips a GPU-only model with the reason and executes the others, a profile runs only the
models it names, a skipped pair never runs, and a plan counts every model its profile runs, GPU-only
ones too, wherever it is made."""

from __future__ import annotations

import pytest
import test_book_grid as toy
import torch

from seqlib.book.grid import load_grid, planned_runs

pytestmark = pytest.mark.book

GRID = """\
profile_models:
  tiny: {models: [hawk, mamba2], why: "the test's profile"}
runs:
  - chapter: task
    task: TASK
    TRAIN
    models: [hawk, mamba2, lstm]
    skip: {gru: "the test's reason"}
"""


@pytest.fixture
def book(tmp_path):
    (tmp_path / "chapters").mkdir()
    toy.chapter(tmp_path / "chapters" / "task.ipynb", "print(task, model)")
    return tmp_path


@pytest.mark.skipif(torch.cuda.is_available(), reason="checks the CPU behaviour")
def test_a_cpu_grid_skips_gpu_only_models_with_the_reason(book):
    (book / "grid.yaml").write_text(GRID.replace("TASK", "toy").replace("    TRAIN\n", ""))
    done = toy.grid(book)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "seqbook grid: skipped mamba2 on toy: model 'mamba2' needs a CUDA GPU" in done.stdout
    assert sorted(p.name for p in (book / "runs" / "toy").glob("*.ipynb")) == ["hawk.ipynb"]  # lstm: not in tiny
    assert toy.outputs(book / "runs" / "toy" / "hawk.ipynb") == "toy hawk\n"


def test_a_plan_counts_the_gpu_only_runs_of_its_profile(book):
    (book / "grid.yaml").write_text(GRID.replace("TASK", "parity_check").replace("TRAIN", "train: true"))
    plan = toy.grid(book, "--plan")
    assert plan.returncode == 0, plan.stdout + plan.stderr
    assert "profile tiny (0 GPU(s) visible" in plan.stdout or torch.cuda.is_available()
    assert ", 2 runs, " in plan.stdout and "skipped" not in plan.stdout  # hawk's page and mamba2's
    runs = load_grid(book / "grid.yaml", book / "chapters", book / "runs", "tiny")
    planned = [cfg.model.name for cfgs in planned_runs(runs).values() for cfg in cfgs]
    assert planned == ["hawk", "mamba2"]  # one run each in tiny; a record may hold hawk's, never mamba2's on a CPU
    row = next(line.split() for line in plan.stdout.splitlines() if line.startswith("parity_check"))
    assert int(row[2]) >= 1 and row[-1] == row[2]  # every job unestimated: the store is empty
