"""The book's table of contents (``_toc.yml``, jupyter-book 1.x) generated from the run grid and the
pages that exist.

``params/grid.yaml`` is the one list of the book's executed pages, so ``_toc.yml`` is written from it
(``make book`` runs ``python -m seqlib.book.toc`` first; ``--check`` exits 1 when a committed file
is stale). The parts follow from each grid entry: a task chapter (``task:``) goes under *Tasks*, as
its landing page ``book/tasks/<task>.md`` with one section per model page; a chapter that summarises
the results store (``reads_results: true``) under *Results*; every other chapter under *Concepts*.
The bibliography, ``book/references.md`` (every entry of ``references.bib``), closes the book.

A task chapter lists every model of its entry, but the strict build needs every page the table
names, and not every model has one: a profile may run only some (``profile_models`` in the grid), a
pair may be skipped (an entry's ``skip: {model: reason}``), a GPU-only model has no page until a grid
on a GPU runs it. So the sections are the model pages that exist among the pages of one profile (by
default the committed ``book/runs``, of the grid's ``pages_profile``), and a last section,
``book/tasks/<task>/without_page.md`` (generated here too), names every other model and why.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import yaml

from seqlib.book.pages import pages_dir
from seqlib.models import MODELS
from seqlib.provenance import REPO

HEADER = """\
# Generated from params/grid.yaml and the pages that exist by `python -m seqlib.book.toc` (`make book`
# runs it): do not edit. Table of contents (jupyter-book 1.x, sphinx-external-toc). Concept chapters are
# executed once into book/runs/<chapter>; task chapters once per model into book/runs/<task>/<model>.
"""
REFERENCES = "book/references"  # the bibliography page: the {bibliography} of references.bib
WITHOUT_PAGE = "without_page"  # book/tasks/<task>/without_page.md: the chapter's models without a page
GPU_ONLY = "GPU only (fla's Triton kernels): skipped by a grid on a CPU"


def model_title(model: str) -> str:
    """The title of a model's section under its task chapter: its registry title, else its name."""
    entry = MODELS.get(model)
    return entry.title if entry is not None and entry.title else model


def profile_models(grid: dict, where: str = "the grid") -> dict[str, tuple[list[str], str]]:
    """The grid's ``profile_models``: profile -> (the models it runs, why it runs no others); a model
    that no task chapter lists (a typo) is an error."""
    declared = grid.get("profile_models") or {}
    if not isinstance(declared, dict):
        raise ValueError(f"{where}: profile_models must map profiles to {{models: [...], why: ...}}")
    listed = {m for e in grid.get("runs", []) if isinstance(e, dict) for m in e.get("models") or []}
    out = {}
    for profile, spec in declared.items():
        if not (isinstance(spec, dict) and set(spec) == {"models", "why"} and isinstance(spec["models"], list)
                and isinstance(spec["why"], str) and spec["why"].strip()):
            raise ValueError(f"{where}: profile_models.{profile} must be {{models: [...], why: <reason>}}, "
                             f"got {spec!r}"[:300])
        unknown = [m for m in spec["models"] if m not in listed]
        if unknown:
            raise ValueError(f"{where}: profile_models.{profile} names {unknown}, which no task chapter lists")
        out[profile] = (spec["models"], spec["why"].strip())
    return out


def cells_only(entry: dict, profile: str | None, where: str = "the grid") -> tuple[list[str], str]:
    """A task entry's ``profile_cells_only`` under ``profile``: ``{<profile>: {models: [...], why: <reason>}}``
    -> (the models that profile trains in the entry's cells only, without a page or runs of their own,
    and why), checked for every profile (a model the entry does not list is an error)."""
    declared = entry.get("profile_cells_only") or {}
    at = f"{where}: profile_cells_only"
    if not isinstance(declared, dict):
        raise ValueError(f"{at} must map profiles to {{models: [...], why: <reason>}}")
    out = ([], "")
    for name, spec in declared.items():
        if not (isinstance(spec, dict) and set(spec) == {"models", "why"} and isinstance(spec["models"], list)
                and spec["models"] and isinstance(spec["why"], str) and spec["why"].strip()):
            raise ValueError(f"{at}.{name} must be {{models: [...], why: <reason>}}, got {spec!r}"[:300])
        unknown = [m for m in spec["models"] if m not in (entry.get("models") or [])]
        if unknown:
            raise ValueError(f"{at}.{name} names {unknown}, which the entry does not list among its models")
        if name == profile:
            out = (list(spec["models"]), " ".join(spec["why"].split()))
    return out


def entry_models(grid: dict, entry: dict, profile: str | None, where: str = "the grid",
                 cells: bool = False) -> tuple[list[str], dict]:
    """The models a task chapter ``entry`` runs under ``profile`` (its ``models`` that the profile runs,
    in order) and ``{model: why not}`` for the others: the ones the profile leaves out, those it trains
    in the entry's cells only (:func:`cells_only`; with ``cells``, those count as run: the models of the
    entry's cells) and the entry's ``skip`` pairs. A skip without a reason, or of a listed model, is an
    error."""
    listed, skip = entry.get("models") or [], entry.get("skip") or {}
    where = f"{where}: entry {entry.get('chapter')!r}"
    if not isinstance(listed, list) or not all(isinstance(m, str) for m in listed):
        raise ValueError(f"{where}: models must be a list of model names, got {listed!r}"[:300])
    if not isinstance(skip, dict) or not all(isinstance(why, str) and why.strip() for why in skip.values()):
        raise ValueError(f"{where}: skip must map models to the reason each is not run, got {skip!r}"[:300])
    if set(skip) & set(listed):
        raise ValueError(f"{where}: {sorted(set(skip) & set(listed))} both listed and skipped")
    runs, why = profile_models(grid, where).get(profile, (listed, ""))
    left_out = {m: f"not in the `{profile}` profile: {why}" for m in listed if m not in runs}
    only, only_why = cells_only(entry, profile, where)
    if not cells:
        left_out |= {m: f"the `{profile}` profile trains it in this chapter's cells only: {only_why}"
                     for m in only if m not in left_out}
    return [m for m in listed if m not in left_out], {
        **left_out, **{m: f"not run on this task: {' '.join(r.split())}" for m, r in skip.items()}}


def missing_pages(grid: dict, entry: dict, pages: Path, profile: str | None) -> dict[str, str]:
    """``{model: why it has no page}`` for every model of the task chapter ``entry`` without a page
    among ``pages`` (the ones not run, as :func:`entry_models` says, and the ones run but not executed)."""
    runs, not_run = entry_models(grid, entry, profile)
    skip = entry.get("skip") or {}
    out = {}
    for model in [*(entry.get("models") or []), *skip]:
        if model in runs and (pages / entry["task"] / f"{model}.ipynb").exists():
            continue
        known = MODELS.get(model)
        gpu = known is not None and known.requires_gpu and model not in skip
        why = [not_run.get(model, "not executed yet"), GPU_ONLY if gpu else None, known and known.limit]
        out[model] = "; ".join(r for r in why if r)
    return out


def task_title(root: Path, task: str) -> str:
    """The first ``# `` heading of the chapter's landing page ``book/tasks/<task>.md`` (else the task)."""
    page = root / "book" / "tasks" / f"{task}.md"
    lines = page.read_text().splitlines() if page.exists() else []
    return next((line[2:].strip() for line in lines if line.startswith("# ")), task)


def without_page(title: str, profile: str | None, listed: int, missing: dict[str, str]) -> str:
    """The Markdown of a chapter's page of models without a page: one row per reason, naming its models."""
    def label(model: str) -> str:
        title = model_title(model)
        return f"{title} (`{model}`)" if title != model else f"`{model}`"

    grouped: dict[str, list[str]] = {}
    for model, why in missing.items():
        grouped.setdefault(why, []).append(label(model))
    rows = "\n".join(f"| {', '.join(models)} | {why.replace('|', '/')} |" for why, models in grouped.items())
    return (f"# {title} · models without a page\n\n"
            f"<!-- Generated from params/grid.yaml and the {profile} pages by `python -m seqlib.book.toc`: "
            "do not edit. -->\n\n"
            f"The chapter's entry in `params/grid.yaml` names {listed} models; {listed - len(missing)} of them "
            f"have a page among these `{profile}` pages. The others, and why:\n\n"
            f"| Models | Why they have no page |\n|---|---|\n{rows}\n")


def toc(grid: dict, pages: Path, profile: str | None) -> dict:
    """The ``_toc.yml`` mapping of a parsed grid file, for the pages of ``profile`` in ``pages``."""
    concepts, tasks, results = [], [{"file": "book/tasks"}], []
    for entry in grid.get("runs", []):
        if "task" in entry:
            task = entry["task"]
            runs, _ = entry_models(grid, entry, profile)
            missing = missing_pages(grid, entry, pages, profile)
            sections = [{"file": f"book/runs/{task}/{m}", "title": model_title(m)} for m in runs if m not in missing]
            sections += [{"file": f"book/tasks/{task}/{WITHOUT_PAGE}"}] if missing else []
            tasks.append({"file": f"book/tasks/{task}", **({"sections": sections} if sections else {})})
        else:
            (results if entry.get("reads_results") else concepts).append({"file": f"book/runs/{entry['chapter']}"})
    return {"format": "jb-book", "root": "book/intro", "parts": [
        {"caption": "Introduction", "chapters": [{"file": "book/rerun"}]},
        {"caption": "Concepts", "numbered": True, "chapters": concepts},
        {"caption": "Tasks", "chapters": tasks},
        {"caption": "Results", "chapters": results},
        {"caption": "References", "chapters": [{"file": REFERENCES}]},
    ]}


def render(grid_path: Path, root: Path = REPO, profile: str | None = None, pages: Path | None = None) -> dict[Path, str]:
    """Every generated file, path -> text: ``root/_toc.yml`` and each task chapter's page of models
    without a page, for the pages of ``profile`` (default: the grid's ``pages_profile``) in ``pages``
    (default: where that profile's pages go under ``root``, :func:`seqlib.book.pages.pages_dir`)."""
    grid = yaml.safe_load(grid_path.read_text()) or {}
    profile = profile or grid.get("pages_profile")
    pages = pages or pages_dir(profile, grid_path, root)
    files = {root / "_toc.yml": HEADER + yaml.safe_dump(toc(grid, pages, profile), sort_keys=False,
                                                         allow_unicode=True, width=110)}
    for entry in (e for e in grid.get("runs", []) if "task" in e):
        missing = missing_pages(grid, entry, pages, profile)
        if missing:
            listed = len(entry.get("models") or []) + len(entry.get("skip") or {})
            files[root / "book" / "tasks" / entry["task"] / f"{WITHOUT_PAGE}.md"] = without_page(
                task_title(root, entry["task"]), profile, listed, missing)
    return files


def stale(files: dict[Path, str], root: Path) -> list[Path]:
    """The generated files that differ from ``files`` (missing, changed, or left over from an earlier grid)."""
    leftover = set(root.glob(f"book/tasks/*/{WITHOUT_PAGE}.md")) - set(files)
    return sorted(p for p, text in files.items() if not p.exists() or p.read_text() != text) + sorted(leftover)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m seqlib.book.toc", description=__doc__.split("\n")[0])
    parser.add_argument("--grid", type=Path, default=REPO / "params" / "grid.yaml")
    parser.add_argument("--out", type=Path, default=REPO / "_toc.yml",
                        help="the table of contents; its folder is the book's root, where book/tasks/ lies")
    parser.add_argument("--profile", help="whose pages the book shows (default: the grid's pages_profile)")
    parser.add_argument("--pages", type=Path, help="where those pages are (default: where the grid puts them)")
    parser.add_argument("--check", action="store_true", help="exit 1 if a generated file is stale")
    args = parser.parse_args(argv)
    root = args.out.parent
    try:
        files = render(args.grid, root, args.profile, args.pages)
    except (OSError, ValueError, yaml.YAMLError) as err:
        print(f"seqbook toc: {err}", file=sys.stderr)
        return 2
    files = {args.out: files.pop(root / "_toc.yml"), **files}
    outdated = stale(files, root)
    if args.check:
        if outdated:
            print(f"stale: {', '.join(map(str, outdated))}: run `python -m seqlib.book.toc` (they are generated "
                  f"from {args.grid} and the pages)", file=sys.stderr)
        return 1 if outdated else 0
    for path in outdated:
        if path in files:
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(files[path])
            print(f"wrote {path}")
        else:
            path.unlink()
            print(f"removed {path} (its chapter has a page for every model)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
