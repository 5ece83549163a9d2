"""Chapters are jupytext pairs in sync, and the committed chapter notebooks carry no outputs."""

from __future__ import annotations

from pathlib import Path

import nbformat
import pytest

jupytext = pytest.importorskip("jupytext", reason="the book toolchain (jupytext) is not installed here")

REPO = Path(__file__).resolve().parents[1]
CHAPTERS = sorted((REPO / "chapters").glob("*.py"))

pytestmark = pytest.mark.book


def cells(nb) -> list[tuple[str, str]]:
    return [(c.cell_type, c.source.strip()) for c in nb.cells]


@pytest.mark.parametrize("source", CHAPTERS, ids=lambda p: p.stem)
def test_pair_in_sync_and_without_outputs(source: Path):
    notebook = source.with_suffix(".ipynb")
    assert notebook.exists(), f"{notebook.name} missing: run `jupytext --sync {source.relative_to(REPO)}`"
    ipynb = nbformat.read(notebook, as_version=4)
    assert cells(jupytext.read(source)) == cells(ipynb), f"{source.name} and {notebook.name} differ: jupytext --sync"
    for cell in ipynb.cells:
        if cell.cell_type == "code":
            assert not cell.outputs and cell.execution_count is None, f"{notebook.name} has outputs: nbstripout"


@pytest.mark.parametrize("source", CHAPTERS, ids=lambda p: p.stem)
def test_chapter_has_a_title_and_a_parameters_cell(source: Path):
    nb = jupytext.read(source)
    assert nb.cells[0].cell_type == "markdown" and nb.cells[0].source.startswith("# "), "first cell must be an H1"
    tagged = [c for c in nb.cells if "parameters" in c.metadata.get("tags", [])]
    assert len(tagged) == 1 and "profile" in tagged[0].source and "seed" in tagged[0].source
