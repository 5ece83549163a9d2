"""Where a profile's executed pages live, and one profile per built site.

The committed pages, ``book/runs/``, belong to one profile: ``pages_profile`` in ``params/grid.yaml``.
Every other profile (``smoke`` on a CPU, ``tiny``) executes into ``_build/pages/<profile>/``
(git-ignored), so a CPU run never replaces the committed pages, and a stopped run cannot leave
pages of two profiles side by side. ``python -m seqlib.book.pages --profile P`` prints the source
folder that jupyter-book builds for P: the repository itself for the committed profile, else a
staging tree ``_build/site/<P>/`` of links to the book's files whose ``book/runs`` is P's pages
(``BOOK_PROFILE=smoke make book``), whose table of contents :mod:`seqlib.book.toc` writes for those
pages. The build's extension ``book/ext/seqbook_pages.py`` calls :func:`site_profile` and fails the build when the pages
of two profiles would mix.

A page's profile is the papermill parameter ``profile`` in its metadata. This module needs only the
standard library and PyYAML: the Pages workflow imports it without the training stack.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
from pathlib import Path

import yaml

REPO = Path(__file__).resolve().parents[2]
GRID = REPO / "params" / "grid.yaml"
COMMITTED = Path("book") / "runs"
PAGES = Path("_build") / "pages"  # <profile>/ : pages of the profiles that are not committed
SITES = Path("_build") / "site"  # <profile>/ : the staging trees that build them
SITE_FILES = ("_config.yml", "_toc.yml", "references.bib")  # a staging tree links to these and to every entry of book/ but runs/
GENERATED = ("_toc.yml", "without_page.md")  # generated for a profile's pages (seqlib.book.toc): never linked


class PagesError(RuntimeError):
    """Pages of two profiles in one folder, or a page without a profile."""


def committed_profile(grid: Path = GRID) -> str | None:
    """The profile whose pages are committed in ``book/runs`` (``pages_profile`` of the grid file); None
    for a grid file that names none (then no profile writes ``book/runs``)."""
    spec = yaml.safe_load(grid.read_text()) or {}
    profile = spec.get("pages_profile") if isinstance(spec, dict) else None
    if profile is not None and (not isinstance(profile, str) or not profile):
        raise PagesError(f"{grid}: `pages_profile:` must name a profile, got {profile!r}")
    return profile


def chosen_profile(profile: str | None, grid: Path = GRID) -> str:
    """``profile``, or (None) the committed one; :class:`PagesError` when the grid file names none."""
    profile = profile or committed_profile(grid)
    if profile is None:
        raise PagesError(f"{grid} names no `pages_profile:`; pass --profile")
    return profile


def pages_dir(profile: str, grid: Path = GRID, root: Path = REPO) -> Path:
    """The folder the grid executes ``profile``'s pages into."""
    return root / (COMMITTED if profile == committed_profile(grid) else PAGES / profile)


def page_profile(page: Path) -> str | None:
    """The ``profile`` papermill parameter of an executed notebook (None if it has none)."""
    try:
        meta = json.loads(page.read_text()).get("metadata", {})
    except (OSError, ValueError) as err:
        raise PagesError(f"unreadable page {page}: {type(err).__name__}: {err}") from err
    return (meta.get("papermill") or {}).get("parameters", {}).get("profile")


def page_profiles(folder: Path, strict: bool = True) -> dict[str | None, list[str]]:
    """Profile -> the pages of ``folder`` (relative paths, sorted) executed with it; hidden files skipped,
    and unreadable pages too unless ``strict`` (the grid reports those and executes them again)."""
    found: dict[str | None, list[str]] = {}
    for page in sorted(folder.rglob("*.ipynb")) if folder.is_dir() else []:
        rel = page.relative_to(folder)
        if any(part.startswith(".") for part in rel.parts):
            continue
        try:
            found.setdefault(page_profile(page), []).append(rel.as_posix())
        except PagesError:
            if strict:
                raise
    return found


def site_profile(folder: Path, expected: str | None = None, strict: bool = True) -> str | None:
    """The one profile of the pages in ``folder`` (None if there are none). :class:`PagesError` if they
    mix profiles, if one has none, or if it is not ``expected`` (see :func:`page_profiles` for ``strict``)."""
    found = page_profiles(folder, strict)
    if None in found:
        raise PagesError(f"{folder}: {len(found[None])} page(s) carry no profile parameter, e.g. {found[None][0]}")
    if len(found) > 1 or (expected is not None and found and expected not in found):
        shown = "; ".join(f"{p}: {len(v)} page(s), e.g. {v[0]}" for p, v in sorted(found.items()))
        want = f" (expected only {expected})" if expected else ""
        raise PagesError(f"{folder} holds pages of more than one profile or of another one{want}: {shown}. "
                         f"One built site shows one profile: the committed pages are {COMMITTED}, other "
                         f"profiles execute into {PAGES}/<profile>/")
    return next(iter(found), None)


def _link(link: Path, target: Path) -> None:
    link.parent.mkdir(parents=True, exist_ok=True)
    if link.is_symlink() or link.exists():
        link.unlink()
    link.symlink_to(os.path.relpath(target, link.parent))


def stage(profile: str, grid: Path = GRID, root: Path = REPO) -> Path:
    """The source folder jupyter-book builds for ``profile``: ``root`` for the committed profile, else
    ``_build/site/<profile>/``: links to the book's files and ``book/runs`` a link to the profile's
    pages, but for the files generated for the committed pages (``_toc.yml``, each task's
    ``without_page.md``), which ``python -m seqlib.book.toc --profile P --pages SITE/book/runs --out
    SITE/_toc.yml`` writes for P's pages (``make book`` does: a chapter's pages that the committed
    profile lacks are in it)."""
    pages = pages_dir(profile, grid, root)
    if pages == root / COMMITTED:
        return root
    if not pages.is_dir():
        raise PagesError(f"no {profile} pages in {pages}: run `PROFILE={profile} make run-all` first")
    site = root / SITES / profile
    tasks = COMMITTED.parent / "tasks"  # the task pages: linked one by one, beside the generated ones
    book = [p.relative_to(root).as_posix() for p in sorted((root / COMMITTED.parent).iterdir())
            if p.name not in (COMMITTED.name, tasks.name) and not p.name.startswith(".")]
    for name in (*SITE_FILES, *book, COMMITTED.as_posix()):
        if name not in GENERATED:
            _link(site / name, pages if name == COMMITTED.as_posix() else root / name)
    if (site / tasks).is_symlink():  # a staging tree of an earlier layout
        (site / tasks).unlink()
    shutil.rmtree(site / tasks, ignore_errors=True)
    (site / "_toc.yml").unlink(missing_ok=True)  # an earlier staging's: written again for the pages of now
    for path in sorted((root / tasks).rglob("*")) if (root / tasks).is_dir() else []:
        if path.is_file() and path.name not in GENERATED:
            _link(site / path.relative_to(root), path)
    return site


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m seqlib.book.pages", description=__doc__.split("\n")[0])
    parser.add_argument("--profile", help="the profile to build (default: the committed one)")
    parser.add_argument("--grid", type=Path, default=GRID)
    args = parser.parse_args(argv)
    try:
        profile = chosen_profile(args.profile, args.grid)
        site = stage(profile, args.grid)
        site_profile(site / COMMITTED, profile)
    except PagesError as err:
        print(f"seqbook pages: {err}", file=sys.stderr)
        return 2
    print(site)
    return 0


if __name__ == "__main__":
    sys.exit(main())
