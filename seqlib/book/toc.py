"""The book's table of contents (``_toc.yml``, jupyter-book 1.x) generated from the run grid.

``params/grid.yaml`` is the one list of the book's executed pages, so ``_toc.yml`` is written from it
(``make book`` runs ``python -m seqlib.book.toc`` first; ``--check`` exits 1 when the committed file
is stale). The parts follow from each grid entry: a task chapter (``task:``) goes under *Tasks*, as
its landing page ``book/tasks/<task>.md`` with one section per model page; a chapter that summarises
the results store (``reads_results: true``) under *Results*; every other chapter under *Concepts*.
The bibliography, ``book/references.md`` (every entry of ``references.bib``), closes the book.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import yaml

from seqlib.models import MODELS
from seqlib.provenance import REPO

HEADER = """\
# Generated from params/grid.yaml by `python -m seqlib.book.toc` (`make book` runs it): do not edit.
# Table of contents (jupyter-book 1.x, sphinx-external-toc). Concept chapters are executed once into
# book/runs/<chapter>; task chapters once per model into book/runs/<task>/<model> (see params/grid.yaml).
"""
REFERENCES = "book/references"  # the bibliography page: the {bibliography} of references.bib


def model_title(model: str) -> str:
    """The title of a model's section under its task chapter: its registry title, else its name."""
    entry = MODELS.get(model)
    return entry.title if entry is not None and entry.title else model


def toc(grid: dict) -> dict:
    """The ``_toc.yml`` mapping of a parsed grid file."""
    concepts, tasks, results = [], [{"file": "book/tasks"}], []
    for entry in grid.get("runs", []):
        if "task" in entry:
            task = entry["task"]
            tasks.append({"file": f"book/tasks/{task}", "sections": [
                {"file": f"book/runs/{task}/{m}", "title": model_title(m)} for m in entry["models"]]})
        else:
            (results if entry.get("reads_results") else concepts).append({"file": f"book/runs/{entry['chapter']}"})
    return {"format": "jb-book", "root": "book/intro", "parts": [
        {"caption": "Introduction", "chapters": [{"file": "book/rerun"}]},
        {"caption": "Concepts", "numbered": True, "chapters": concepts},
        {"caption": "Tasks", "chapters": tasks},
        {"caption": "Results", "chapters": results},
        {"caption": "References", "chapters": [{"file": REFERENCES}]},
    ]}


def render(grid_path: Path) -> str:
    """The text of ``_toc.yml`` for the grid file at ``grid_path``."""
    grid = yaml.safe_load(grid_path.read_text()) or {}
    return HEADER + yaml.safe_dump(toc(grid), sort_keys=False, allow_unicode=True, width=110)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m seqlib.book.toc", description=__doc__.split("\n")[0])
    parser.add_argument("--grid", type=Path, default=REPO / "params" / "grid.yaml")
    parser.add_argument("--out", type=Path, default=REPO / "_toc.yml")
    parser.add_argument("--check", action="store_true", help="exit 1 if --out differs from the grid's table")
    args = parser.parse_args(argv)
    text = render(args.grid)
    if args.check:
        stale = not args.out.exists() or args.out.read_text() != text
        if stale:
            print(f"{args.out} is stale: run `python -m seqlib.book.toc` (it is generated from {args.grid})",
                  file=sys.stderr)
        return 1 if stale else 0
    if not args.out.exists() or args.out.read_text() != text:
        args.out.write_text(text)
        print(f"wrote {args.out} from {args.grid}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
