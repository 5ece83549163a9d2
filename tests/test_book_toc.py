"""The table of contents is generated from the run grid: the committed one is current, and each kind
of grid entry lands in its part."""

from __future__ import annotations

import subprocess
import sys

import yaml

from seqlib.book.toc import REFERENCES, render, toc
from seqlib.provenance import REPO


def test_the_committed_toc_is_the_grid_s():
    assert (REPO / "_toc.yml").read_text() == render(REPO / "params" / "grid.yaml"), \
        "_toc.yml is stale: run `python -m seqlib.book.toc`"


def test_entries_go_to_their_parts_in_grid_order():
    grid = yaml.safe_load("""
runs:
  - chapter: b_concept
  - chapter: summary
    reads_results: true
  - chapter: zz_tasks
    task: zz
    train: true
    models: [griffin, newmodel]
  - chapter: a_concept
""")
    parts = {p["caption"]: p["chapters"] for p in toc(grid)["parts"]}
    assert parts["Concepts"] == [{"file": "book/runs/b_concept"}, {"file": "book/runs/a_concept"}]
    assert parts["Results"] == [{"file": "book/runs/summary"}]
    assert parts["Tasks"] == [{"file": "book/tasks"}, {"file": "book/tasks/zz", "sections": [
        {"file": "book/runs/zz/griffin", "title": "Griffin"}, {"file": "book/runs/zz/newmodel", "title": "newmodel"}]}]


def test_the_bibliography_closes_the_book():
    parts = toc(yaml.safe_load("runs:\n  - chapter: only\n"))["parts"]
    assert parts[-1] == {"caption": "References", "chapters": [{"file": REFERENCES}]}
    assert "{bibliography}" in (REPO / f"{REFERENCES}.md").read_text()


def test_check_fails_on_a_stale_toc(tmp_path):
    grid = tmp_path / "grid.yaml"
    grid.write_text("runs:\n  - chapter: only\n")
    out = tmp_path / "_toc.yml"
    out.write_text("format: jb-book\n")

    def check():
        return subprocess.run([sys.executable, "-m", "seqlib.book.toc", "--grid", str(grid), "--out", str(out),
                               "--check"], capture_output=True, text=True)

    stale = check()
    assert stale.returncode == 1 and "is stale" in stale.stderr
    subprocess.run([sys.executable, "-m", "seqlib.book.toc", "--grid", str(grid), "--out", str(out)], check=True)
    assert check().returncode == 0
    assert "book/runs/only" in out.read_text()
