"""The book cites papers a reader can follow: every {cite} key of a chapter or a book page is an entry
of ``references.bib``, the bibliography page lists them, and no page cites the project's internal notes
(``tasks.md §1.4``, ``griffin.md``, ...) or its issue tracker ("issue 6"), which are in neither the
repository nor the site. The executed pages under ``book/runs/`` are copies of the chapters and are
checked through them."""

from __future__ import annotations

import html
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from seqlib.provenance import REPO

SOURCES = sorted([*(REPO / "chapters").glob("*.py"), *(REPO / "book").glob("*.md"),
                  *(REPO / "book" / "tasks").glob("*.md")])
BIB = REPO / "references.bib"

CITE = re.compile(r"\{cite(?::[a-z]+)?\}`([^`]+)`")
LINK_TARGET = re.compile(r"\]\([^)]*\)")  # a Markdown link's target: a link to a page of the book is fine
INTERNAL = [
    (re.compile(r"\b\w+\.md\s*§"), "a section of a note (`X.md §N`)"),
    (re.compile(r"\b(?:griffin|tasks|fla|book)\.md\b"), "one of the project's reference notes"),
    (re.compile(r"reference notes|project's notes"), "the project's reference notes"),
    (re.compile(r"\b[Ii]ssues? #?\d+"), "the project's issue tracker"),
]


def bib_keys(text: str) -> set[str]:
    return set(re.findall(r"^@\w+\{([^,\s]+),", text, flags=re.M))


def cited_keys(text: str) -> list[str]:
    return [key.strip() for keys in CITE.findall(text) for key in keys.split(",")]


def internal_citations(text: str) -> list[str]:
    """``line: what`` for every citation of an internal note or issue in ``text`` (link targets aside)."""
    found = []
    for number, line in enumerate(text.splitlines(), 1):
        line = LINK_TARGET.sub("]()", line)
        found += [f"line {number}: {what}: {m.group(0)!r}" for pattern, what in INTERNAL for m in pattern.finditer(line)]
    return found


def test_the_patterns_catch_internal_citations_and_spare_links():
    assert internal_citations("(`tasks.md` §1.4 of the project's reference notes)")
    assert internal_citations("as `griffin.md` §2.3 says") and internal_citations("see fla.md")
    assert internal_citations("the goals of issue 6") and internal_citations("Issue #12 asks")
    assert not internal_citations("[The tasks](../tasks.md) and [MQAR](tasks/mqar.md)")
    assert cited_keys("{cite:p}`a2020,b2021` and {cite}`c` and {cite:t}`d`") == ["a2020", "b2021", "c", "d"]


def test_the_bibliography_is_configured_and_listed():
    config = yaml.safe_load((REPO / "_config.yml").read_text())
    assert config["bibtex_bibfiles"] == ["references.bib"]
    page = (REPO / "book" / "references.md").read_text()
    assert "```{bibliography}" in page and ":all:" in page
    keys = bib_keys(BIB.read_text())
    assert len(keys) == BIB.read_text().count("\n@"), "an entry of references.bib has no key or a repeated one"


@pytest.mark.parametrize("source", SOURCES, ids=lambda p: p.relative_to(REPO).as_posix())
def test_every_citation_is_in_the_bibliography(source: Path):
    missing = sorted(set(cited_keys(source.read_text())) - bib_keys(BIB.read_text()))
    assert not missing, f"{source.name} cites keys that references.bib lacks: {missing}"


@pytest.mark.parametrize("source", SOURCES, ids=lambda p: p.relative_to(REPO).as_posix())
def test_no_page_cites_the_internal_notes(source: Path):
    found = internal_citations(source.read_text())
    assert not found, (f"{source.name} cites what a reader cannot follow; cite the paper (references.bib) "
                       "or the code base by repository and file instead:\n  " + "\n  ".join(found))


def test_citations_read_author_year_in_round_brackets(tmp_path):
    """A page built with the book's configuration (``_config.yml``, ``book/ext``) cites "(De et al., 2024)"
    with {cite:p} and "De et al. (2024)" with {cite:t}."""
    for name in ("_config.yml", "references.bib"):
        shutil.copy(REPO / name, tmp_path / name)
    (tmp_path / "book").mkdir()
    shutil.copytree(REPO / "book" / "ext", tmp_path / "book" / "ext")
    (tmp_path / "book" / "assets").symlink_to(REPO / "book" / "assets")
    (tmp_path / "_toc.yml").write_text("format: jb-book\nroot: page\n")
    (tmp_path / "page.md").write_text("# Page\n\nAs shown {cite:p}`de2024griffin`; as {cite:t}`de2024griffin` show.\n\n"
                                      "```{bibliography}\n```\n")
    build = subprocess.run([str(Path(sys.executable).parent / "jupyter-book"), "build", str(tmp_path), "-W", "-n",
                            "--keep-going"], capture_output=True, text=True, timeout=300)
    assert build.returncode == 0, build.stdout[-3000:] + build.stderr[-2000:]
    text = html.unescape(re.sub(r"<[^>]+>", "", (tmp_path / "_build" / "html" / "page.html").read_text()))
    assert "As shown (De et al., 2024);" in text and "as De et al. (2024) show" in text, \
        re.search(r"As shown.{0,80}", text, re.S).group(0)


def test_the_papers_the_book_names_are_cited():
    cited = {key for source in SOURCES for key in cited_keys(source.read_text())}
    for key in ("de2024griffin", "arora2023zoology", "deletang2023chomsky", "liu2023flipflop",
                "grazzi2024negative", "hashemi2025tropical", "vaswani2017attention", "hochreiter1997lstm",
                "cho2014gru", "okpekpe2025recall"):
        assert key in cited, f"no page cites {key}"


def test_what_the_pages_show_from_the_library_cites_no_internal_note():
    """Pages show the scoring cards' threshold sources (Results) and the library functions the chapters
    print with ``show_source``: neither may cite an internal note."""
    import inspect

    from seqlib.tasks import get_task, list_tasks

    found = [f"{name}: {hit}" for name in list_tasks()
             for hit in internal_citations(get_task(name).scoring.threshold_source)]
    shown = {m for path in (REPO / "chapters").glob("*.py") for m in re.findall(r"show_source\(([\w.]+)\)", path.read_text())}
    namespace = {}
    for path in (REPO / "chapters").glob("*.py"):  # the names a chapter imports, resolved as it does
        for line in re.findall(r"^from (seqlib[\w.]*) import ([\w, ]+)$", path.read_text(), flags=re.M):
            module = __import__(line[0], fromlist=["_"])
            namespace |= {n.strip(): getattr(module, n.strip()) for n in line[1].split(",") if hasattr(module, n.strip())}
    for name in sorted(shown):
        head, *rest = name.split(".")
        if head not in namespace:
            continue  # a local of the chapter (e.g. the task's class)
        obj = namespace[head]
        for part in rest:
            obj = getattr(obj, part)
        found += [f"show_source({name}): {hit}" for hit in internal_citations(inspect.getsource(obj))]
    assert not found, "\n".join(found)
