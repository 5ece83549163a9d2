"""The models a grid runs (seqlib.book.grid with params/grid.yaml's ``profile_models`` and ``skip``): a
grid on a CPU skips a GPU-only model with the reason and executes the others, a profile runs only the
models it names, a skipped pair never runs, and a plan counts every model its profile runs, GPU-only
ones too, wherever it is made."""

from __future__ import annotations

import pytest
import test_book_grid as toy
import torch
import yaml

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


SUBTASKS = """\
runs:
  - chapter: task
    task: family
    train: true
    params: {subtasks: [parity_check, even_pairs, cycle_navigation]}
    models: [hawk, lstm]
    profile_subtasks:
      tiny: {models: [lstm], subtasks: [cycle_navigation, parity_check], why: "the test's
        reason"}
"""


def test_a_profile_runs_fewer_subtasks_for_some_models_and_their_pages_say_why(book):
    (book / "grid.yaml").write_text(SUBTASKS)
    runs = {r.params["model"]: r for r in load_grid(book / "grid.yaml", book / "chapters", book / "runs", "tiny")}
    assert runs["hawk"].trains == ["parity_check", "even_pairs", "cycle_navigation"]
    assert "subtasks_why" not in runs["hawk"].params
    assert runs["lstm"].trains == runs["lstm"].params["subtasks"] == ["parity_check", "cycle_navigation"]  # entry order
    assert runs["lstm"].params["subtasks_why"] == "the test's reason"
    planned = {m: sorted({c.task.name for c in cfgs}) for m, cfgs in
               ((out.stem, cfgs) for out, cfgs in planned_runs(list(runs.values())).items())}
    assert planned == {"hawk": ["cycle_navigation", "even_pairs", "parity_check"],
                       "lstm": ["cycle_navigation", "parity_check"]}
    other = load_grid(book / "grid.yaml", book / "chapters", book / "runs", "smoke")  # not its profile
    assert all(r.trains == ["parity_check", "even_pairs", "cycle_navigation"] for r in other)


@pytest.mark.parametrize("change, problem", [
    ("subtasks: [cycle_navigation, parity_check]", "subtasks: [bucket_sort]"),
    ("models: [lstm]", "models: [gru]"),
    ('why: "the test\'s\n        reason"', 'why: " "'),
])
def test_bad_profile_subtasks_are_refused_for_every_profile(book, change, problem):
    (book / "grid.yaml").write_text(SUBTASKS.replace(change, problem))
    with pytest.raises(ValueError, match="profile_subtasks.tiny"):
        load_grid(book / "grid.yaml", book / "chapters", book / "runs", "smoke")


def test_the_line_a_family_page_opens_with():
    from seqlib.book.chapter import tasks_run_line

    assert tasks_run_line("R `parity_check`", 1, 15) == "**This page runs 1 of the 15 tasks**: R `parity_check`."
    line = tasks_run_line("`knapsack`", 1, why="the budget")
    assert line == "**This page runs 1 task**: `knapsack`. In this profile this model runs only these: the budget"


CELLS_ONLY = """\
runs:
  - chapter: task
    task: parity_check
    train: true
    models: [hawk, lstm, gru]
    profile_cells_only:
      tiny: {models: [gru], why: "the test's reason"}
    cells:
      wide: {set: {model.d_model: 48}, profiles: {tiny: {}}}
"""


def test_a_cells_only_model_has_no_page_but_trains_in_the_entry_cells(book):
    """profile_cells_only: under its profile the model has no page and no runs of its own; its cell runs
    train with the entry's first page and every page shows them; its missing page says why; another
    profile gives it a page."""
    from seqlib.book.grid import planned_training, shown_configs
    from seqlib.book.toc import missing_pages

    (book / "grid.yaml").write_text(CELLS_ONLY)
    runs = load_grid(book / "grid.yaml", book / "chapters", book / "runs", "tiny")
    assert [r.params["model"] for r in runs] == ["hawk", "lstm"] and runs[0].adopts == ("gru",) and not runs[1].adopts
    plans = planned_runs(runs)
    names = [name for name, _ in planned_training(runs, plans)]
    assert sorted(n.split("/")[0] + "/" + n.split("/")[1] for n in names if n.startswith("parity_check:")) == [
        "parity_check:wide/gru", "parity_check:wide/hawk", "parity_check:wide/lstm"]
    assert not any(n.startswith("parity_check/gru/") for n in names)  # no runs of its own
    assert {cfg.model.name for cell, cfg in shown_configs(runs[1], plans, runs) if cell} == {"hawk", "lstm", "gru"}
    why = missing_pages(yaml.safe_load(CELLS_ONLY), yaml.safe_load(CELLS_ONLY)["runs"][0], book / "runs", "tiny")
    assert "trains it in this chapter's cells only: the test's reason" in why["gru"]
    other = load_grid(book / "grid.yaml", book / "chapters", book / "runs", "smoke")
    assert [r.params["model"] for r in other] == ["hawk", "lstm", "gru"] and not any(r.adopts for r in other)


@pytest.mark.parametrize("change, problem, message", [
    ("models: [gru], why", "models: [mamba2], why", "which the entry does not list"),
    ('why: "the test\'s reason"', 'why: " "', "must be {models"),
    ("profiles: {tiny: {}}", "profiles: {smoke: {}}", "no cell of the profile trains"),
    ("models: [gru], why", "models: [hawk, lstm, gru], why", "every model is cells only"),
])
def test_bad_profile_cells_only_is_refused(book, change, problem, message):
    (book / "grid.yaml").write_text(CELLS_ONLY.replace(change, problem))
    with pytest.raises(ValueError, match=message):
        load_grid(book / "grid.yaml", book / "chapters", book / "runs", "tiny")


def test_only_some_chapters_plan_and_an_unknown_one_is_refused(book):
    """--only: the runs of the chapters named, nothing else; a chapter the grid lacks is a usage error."""
    toy.chapter(book / "chapters" / "other.ipynb", "print(task, model)")
    (book / "grid.yaml").write_text(CELLS_ONLY + "  - chapter: other\n    task: even_pairs\n    train: true\n"
                                    "    models: [hawk]\n")
    both, only = toy.grid(book, "--plan"), toy.grid(book, "--plan", "--only", "other")
    assert both.returncode == only.returncode == 0, both.stderr + only.stderr
    assert ", 3 runs, " in both.stdout and ", 1 runs, " in only.stdout
    assert "parity_check" not in only.stdout.split("unestimated jobs")[1].split("total")[0]
    bad = toy.grid(book, "--plan", "--only", "nope")
    assert bad.returncode == 2 and "--only: ['nope'] are no chapters" in bad.stderr
