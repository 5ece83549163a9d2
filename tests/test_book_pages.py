"""One profile per built site (seqlib.book.pages, book/ext/seqbook_pages.py): a profile other than the
committed one executes into its own git-ignored folder, the grid never writes over another profile's
pages, and the build fails when the pages of two profiles would mix."""

from __future__ import annotations

import importlib.util
import json
import subprocess
from pathlib import Path
from types import SimpleNamespace

import pytest
import test_book_grid as toy
from sphinx.errors import ExtensionError

from seqlib.book import pages
from seqlib.book.toc import main as toc_main
from seqlib.provenance import REPO

book = toy.book  # the toy book fixture of the grid tests


def page(path: Path, profile: str | None) -> Path:
    """A minimal executed notebook whose papermill parameters carry ``profile``."""
    path.parent.mkdir(parents=True, exist_ok=True)
    params = {} if profile is None else {"profile": profile}
    path.write_text(json.dumps({"cells": [], "metadata": {"papermill": {"parameters": params}},
                                "nbformat": 4, "nbformat_minor": 5}))
    return path


@pytest.fixture
def root(tmp_path: Path) -> Path:
    """A repository-like tree: a grid file naming ``full`` as the committed profile, book/ files."""
    (tmp_path / "params").mkdir()
    (tmp_path / "params" / "grid.yaml").write_text("pages_profile: full\nruns: []\n")
    for name in ("_config.yml", "_toc.yml", "book/intro.md", "book/tasks/mqar.md"):
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / name).write_text(name)
    return tmp_path


def test_only_the_committed_profile_writes_book_runs(root):
    grid = root / "params" / "grid.yaml"
    assert pages.committed_profile(grid) == "full"
    assert pages.pages_dir("full", grid, root) == root / "book" / "runs"
    assert pages.pages_dir("smoke", grid, root) == root / "_build" / "pages" / "smoke"
    assert pages.pages_dir("tiny", grid, root) == root / "_build" / "pages" / "tiny"
    grid.write_text("runs: []\n")  # a grid that names no committed profile never writes book/runs
    assert pages.committed_profile(grid) is None
    assert pages.pages_dir("full", grid, root) == root / "_build" / "pages" / "full"
    grid.write_text("pages_profile: [full]\nruns: []\n")
    with pytest.raises(pages.PagesError, match="must name a profile"):
        pages.committed_profile(grid)


def test_the_repository_names_its_committed_profile_and_its_pages_have_it():
    """The committed pages (book/runs) are all of the grid's ``pages_profile``: a smoke page committed
    among them fails here."""
    profile = pages.committed_profile()
    assert pages.site_profile(REPO / pages.COMMITTED, profile) == profile
    ignored = subprocess.run(["git", "check-ignore", "-q", "_build/pages/smoke/x.ipynb"], cwd=REPO)
    assert ignored.returncode == 0, "the other profiles' pages must be git-ignored"


def test_site_profile_refuses_a_mix_a_missing_profile_and_another_profile(tmp_path):
    page(tmp_path / "a.ipynb", "full")
    page(tmp_path / "t" / "b.ipynb", "full")
    page(tmp_path / "t" / ".b.tmp.ipynb", "smoke")  # hidden scratch files are not pages
    assert pages.site_profile(tmp_path) == "full"
    assert pages.site_profile(tmp_path, "full") == "full"
    with pytest.raises(pages.PagesError, match="expected only smoke"):
        pages.site_profile(tmp_path, "smoke")
    page(tmp_path / "t" / "c.ipynb", "smoke")
    with pytest.raises(pages.PagesError, match=r"full: 2 page\(s\).*smoke: 1 page\(s\), e.g. t/c.ipynb"):
        pages.site_profile(tmp_path)
    page(tmp_path / "t" / "c.ipynb", None)
    with pytest.raises(pages.PagesError, match="carry no profile"):
        pages.site_profile(tmp_path)
    assert pages.site_profile(tmp_path / "absent") is None


def test_stage_links_the_book_and_the_profiles_pages(root):
    grid = root / "params" / "grid.yaml"
    assert pages.stage("full", grid, root) == root
    with pytest.raises(pages.PagesError, match="make run-all"):
        pages.stage("smoke", grid, root)
    page(root / "_build" / "pages" / "smoke" / "mqar" / "hawk.ipynb", "smoke")
    page(root / "book" / "runs" / "mqar" / "hawk.ipynb", "full")
    site = pages.stage("smoke", grid, root)
    assert site == root / "_build" / "site" / "smoke"
    assert (site / "book" / "runs").resolve() == (root / "_build" / "pages" / "smoke").resolve()
    assert (site / "book" / "intro.md").read_text() == "book/intro.md"
    assert (site / "book" / "tasks" / "mqar.md").read_text() == "book/tasks/mqar.md"
    assert (site / "book" / "tasks" / "mqar.md").is_symlink() and (site / "_config.yml").is_symlink()
    assert pages.site_profile(site / "book" / "runs") == "smoke"
    assert pages.stage("smoke", grid, root) == site  # staging again replaces the links


def test_a_staged_site_lists_the_pages_of_its_profile(root):
    """A chapter whose pages only the staged profile has (the committed one has none yet) is in the staged
    site's table of contents, and its page of models without a page is the staged profile's."""
    grid = root / "params" / "grid.yaml"
    grid.write_text("pages_profile: full\nruns:\n  - {chapter: mqar, task: mqar, train: true, models: [hawk, gru]}\n")
    (root / "book" / "tasks" / "mqar" / "without_page.md").parent.mkdir(parents=True)
    (root / "book" / "tasks" / "mqar" / "without_page.md").write_text("the committed profile's")
    page(root / "_build" / "pages" / "smoke" / "mqar" / "hawk.ipynb", "smoke")

    def staged():  # as `BOOK_PROFILE=smoke make book` stages the site and writes its generated files
        site = pages.stage("smoke", grid, root)
        assert not (site / "_toc.yml").exists() and not (site / "book" / "tasks" / "mqar" / "without_page.md").exists()
        assert toc_main(["--grid", str(grid), "--profile", "smoke", "--pages", str(site / "book" / "runs"),
                         "--out", str(site / "_toc.yml")]) == 0
        return site

    site = staged()
    toc = (site / "_toc.yml").read_text()
    assert not (site / "_toc.yml").is_symlink() and "book/runs/mqar/hawk" in toc and "book/runs/mqar/gru" not in toc
    without = site / "book" / "tasks" / "mqar" / "without_page.md"
    assert not without.is_symlink() and "`gru`" in without.read_text() and "`hawk`" not in without.read_text()
    assert (root / "book" / "tasks" / "mqar" / "without_page.md").read_text() == "the committed profile's"
    page(root / "_build" / "pages" / "smoke" / "mqar" / "gru.ipynb", "smoke")
    site = staged()  # staged again: the new page is listed, nothing is left over
    assert "book/runs/mqar/gru" in (site / "_toc.yml").read_text() and not without.exists()


def load_extension():
    spec = importlib.util.spec_from_file_location("seqbook_pages", REPO / "book" / "ext" / "seqbook_pages.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_the_build_fails_if_the_pages_mix_and_names_the_profile(tmp_path):
    ext = load_extension()
    app, config = SimpleNamespace(srcdir=str(tmp_path)), SimpleNamespace(myst_substitutions={"x": 1})
    page(tmp_path / "book" / "runs" / "a.ipynb", "full")
    ext.check_pages(app, config)
    assert config.myst_substitutions == {"x": 1, "pages_profile": "full"}
    page(tmp_path / "book" / "runs" / "mqar" / "b.ipynb", "smoke")
    with pytest.raises(ExtensionError, match="more than one profile"):
        ext.check_pages(app, config)
    assert "seqbook_pages" in (REPO / "_config.yml").read_text()


def test_the_grid_never_writes_over_another_profiles_pages(book):
    """The toy grid at profile tiny into a folder that holds a full page: refused before any work, and
    the page is unchanged."""
    full = page(book / "runs" / "concept.ipynb", "full")
    before = full.read_bytes()
    proc = toy.grid(book)
    assert proc.returncode == 2, proc.stdout + proc.stderr
    assert "expected only tiny" in proc.stderr and "Traceback" not in proc.stderr
    assert full.read_bytes() == before
    assert not (book / "runs" / "toy").exists()


def test_the_grid_says_where_the_pages_went(book):
    proc = toy.grid(book, "--train-only")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert f"pages go to {book / 'runs'}" in proc.stdout
