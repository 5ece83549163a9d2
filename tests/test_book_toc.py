"""The table of contents is generated from the run grid and the pages that exist: the committed one is
current, each kind of grid entry lands in its part, a listed model without a page is named with the
reason on its chapter's page of models without a page, and the grid names every registry model on
every task chapter or says why not."""

from __future__ import annotations

import nbformat
import pytest
import yaml

from seqlib.book.grid import load_grid
from seqlib.book.toc import (
    GPU_ONLY,
    REFERENCES,
    WITHOUT_PAGE,
    entry_models,
    main,
    missing_pages,
    render,
    stale,
    toc,
)
from seqlib.models import MODELS
from seqlib.provenance import REPO

GRID = REPO / "params" / "grid.yaml"


def test_the_committed_toc_and_pages_without_a_page_are_current():
    assert not stale(render(GRID), REPO), "stale: run `python -m seqlib.book.toc`"


def page(pages, task, model):
    (pages / task).mkdir(parents=True, exist_ok=True)
    nbformat.write(nbformat.v4.new_notebook(), pages / task / f"{model}.ipynb")


def test_entries_go_to_their_parts_in_grid_order(tmp_path):
    grid = yaml.safe_load("""
runs:
  - chapter: b_concept
  - chapter: summary
    reads_results: true
  - chapter: zz_tasks
    task: zz
    train: true
    models: [griffin, newmodel, hawk]
  - chapter: a_concept
""")
    for model in ("hawk", "griffin", "newmodel"):
        page(tmp_path, "zz", model)
    parts = {p["caption"]: p["chapters"] for p in toc(grid, tmp_path, "full")["parts"]}
    assert parts["Concepts"] == [{"file": "book/runs/b_concept"}, {"file": "book/runs/a_concept"}]
    assert parts["Results"] == [{"file": "book/runs/summary"}]
    assert parts["Tasks"] == [{"file": "book/tasks"}, {"file": "book/tasks/zz", "sections": [
        {"file": "book/runs/zz/griffin", "title": "Griffin"}, {"file": "book/runs/zz/newmodel", "title": "newmodel"},
        {"file": "book/runs/zz/hawk", "title": "Hawk"}]}]


GRID_WITH_GAPS = """
profile_models:
  small: {models: [hawk, mamba2], why: "the small profile's reason"}
runs:
  - chapter: zz_tasks
    task: zz
    models: [hawk, griffin, hawk_neg, mamba2, gated_deltanet]
    skip: {lstm: "the skip's reason"}
"""


def test_models_without_a_page_are_named_with_the_reason(tmp_path):
    """The sections are the pages that exist; the chapter's last section names every other model, with
    why: a profile that does not run it, a skipped pair, no page executed yet, GPU only, fla's limit."""
    grid = yaml.safe_load(GRID_WITH_GAPS)
    page(tmp_path, "zz", "hawk")
    page(tmp_path, "zz", "griffin")  # a page of a model the profile does not run is not shown
    missing = missing_pages(grid, grid["runs"][0], tmp_path, "small")
    assert list(missing) == ["griffin", "hawk_neg", "mamba2", "gated_deltanet", "lstm"]
    assert missing["griffin"] == missing["hawk_neg"] == "not in the `small` profile: the small profile's reason"
    assert missing["mamba2"] == f"not executed yet; {GPU_ONLY}"
    assert missing["gated_deltanet"].startswith(f"not in the `small` profile: the small profile's reason; {GPU_ONLY}; ")
    assert missing["gated_deltanet"].endswith(MODELS["gated_deltanet"].limit) and "fla #640" in missing["gated_deltanet"]
    assert missing["lstm"] == "not run on this task: the skip's reason"
    (chapter,) = [c for p in toc(grid, tmp_path, "small")["parts"] if p["caption"] == "Tasks" for c in p["chapters"]][1:]
    assert chapter["sections"] == [{"file": "book/runs/zz/hawk", "title": "Hawk"}, {"file": f"book/tasks/zz/{WITHOUT_PAGE}"}]
    page(tmp_path, "zz", "mamba2")  # once its page exists it is a section and leaves the list
    assert "mamba2" not in missing_pages(grid, grid["runs"][0], tmp_path, "small")
    runs, not_run = entry_models(grid, grid["runs"][0], "other")  # a profile that runs every listed model
    assert runs == grid["runs"][0]["models"] and list(not_run) == ["lstm"]


def test_the_page_of_models_without_a_page_is_written_and_removed_with_its_gaps(tmp_path):
    (tmp_path / "grid.yaml").write_text(GRID_WITH_GAPS)
    (tmp_path / "book" / "tasks").mkdir(parents=True)
    (tmp_path / "book" / "tasks" / "zz.md").write_text("# The ZZ task\n")
    pages, generated = tmp_path / "pages", tmp_path / "book" / "tasks" / "zz" / f"{WITHOUT_PAGE}.md"
    files = render(tmp_path / "grid.yaml", tmp_path, "small", pages)
    text = files[generated]
    assert text.startswith("# The ZZ task · models without a page\n")
    assert "names 6 models; 0 of them have a page among these `small` pages" in text
    # one row per reason, naming its models
    assert ("| Griffin (`griffin`), Hawk, A_t in (−1, 1) (`hawk_neg`) | not in the `small` profile: the small "
            "profile's reason |") in text
    assert "| Hawk (`hawk`) | not executed yet |" in text
    assert f"| Mamba-2 (`mamba2`) | not executed yet; {GPU_ONLY} |" in text
    assert "| LSTM (`lstm`) | not run on this task: the skip's reason |" in text
    for path, content in files.items():
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(content)
    assert stale(files, tmp_path) == []
    for model in ("hawk", "mamba2"):
        page(pages, "zz", model)
    (tmp_path / "grid.yaml").write_text(GRID_WITH_GAPS.replace("    skip: {lstm: \"the skip's reason\"}\n", "")
                                        .replace("[hawk, griffin, hawk_neg, mamba2, gated_deltanet]", "[hawk, mamba2]"))
    files = render(tmp_path / "grid.yaml", tmp_path, "small", pages)
    assert list(files) == [tmp_path / "_toc.yml"]  # every listed model has a page: no page of the others
    assert stale(files, tmp_path) == [tmp_path / "_toc.yml", generated]  # the old one is left over


@pytest.mark.parametrize("old,new,message", [
    ("{lstm: \"the skip's reason\"}", "{lstm: \"\"}", "skip must map models to the reason each is not run"),
    ("{lstm: \"the skip's reason\"}", "{hawk: \"listed too\"}", r"\['hawk'\] both listed and skipped"),
    ("[hawk, mamba2]", "[hawk, mamba3]", r"profile_models.small names \['mamba3'\], which no task chapter lists"),
    ("why: \"the small profile's reason\"", "reason: x", "profile_models.small must be {models"),
])
def test_bad_gaps_name_the_problem(old, new, message):
    grid = yaml.safe_load(GRID_WITH_GAPS.replace(old, new))
    with pytest.raises(ValueError, match=message):
        entry_models(grid, grid["runs"][0], "small")


def test_every_task_chapter_names_every_registry_model_or_says_why_not():
    """Issue 17: every architecture the book names (the registry's models) on every task chapter, or
    a stated reason per skipped pair; under the book profile the grid runs every listed one, with a
    page or (profile_cells_only) in the entry's cells, trained with its first page."""
    grid = yaml.safe_load(GRID.read_text())
    entries = [e for e in grid["runs"] if "task" in e]
    assert len(entries) == 6
    for entry in entries:
        named = [*entry["models"], *(entry.get("skip") or {})]
        assert sorted(named) == sorted(MODELS), (entry["chapter"], set(MODELS) ^ set(named))
    runs = load_grid(GRID, REPO / "chapters", REPO / "book" / "runs", "book")
    book = {(run.params["task"], model) for run in runs if "model" in run.params
            for model in (run.params["model"], *run.adopts)}
    assert book == {(e["task"], m) for e in entries for m in e["models"]}
    assert {m for run in runs for m in run.adopts} == set(next(e for e in entries if e["task"] == "mqar")["profile_cells_only"]["book"]["models"])


def test_the_bibliography_closes_the_book(tmp_path):
    parts = toc(yaml.safe_load("runs:\n  - chapter: only\n"), tmp_path, None)["parts"]
    assert parts[-1] == {"caption": "References", "chapters": [{"file": REFERENCES}]}
    assert "{bibliography}" in (REPO / f"{REFERENCES}.md").read_text()


def test_check_fails_on_a_stale_toc_or_a_leftover_page(tmp_path, capsys):
    grid = tmp_path / "grid.yaml"
    grid.write_text("runs:\n  - chapter: only\n")
    out = tmp_path / "_toc.yml"
    out.write_text("format: jb-book\n")
    leftover = tmp_path / "book" / "tasks" / "gone" / f"{WITHOUT_PAGE}.md"
    leftover.parent.mkdir(parents=True)
    leftover.write_text("# an earlier grid's chapter\n")

    def run(*extra):
        return main(["--grid", str(grid), "--out", str(out), *extra])

    assert run("--check") == 1
    assert "stale" in (err := capsys.readouterr().err) and "gone" in err
    assert run() == 0 and not leftover.exists()
    assert run("--check") == 0
    assert "book/runs/only" in out.read_text()
    grid.write_text("runs:\n  - chapter: only\n    task: t\n    models: [hawk]\n    skip: {lstm: ''}\n")
    assert run() == 2 and "skip must map models to the reason" in capsys.readouterr().err
