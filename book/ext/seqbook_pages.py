"""Sphinx extension: one profile per built site, the profile named on the pages, and a title per
model page.

Before anything is read, the executed pages under ``book/runs`` (a link to ``_build/pages/<profile>``
in a staging tree, see :mod:`seqlib.book.pages`) must all come from one profile, else the build
fails naming both. The profile becomes the MyST substitution ``{{ pages_profile }}``.

A task chapter runs once per model into ``book/runs/<task>/<model>``, each copy headed by the
chapter's title; each is retitled "<task page title> · <model title>" (e.g. "MQAR · Griffin") as it
is read, before Sphinx collects titles, so the heading, the browser tab and the previous/next links
name the model.
"""

from __future__ import annotations

import re
from functools import cache
from pathlib import Path

from docutils import nodes
from sphinx.errors import ExtensionError

from seqlib.book.pages import COMMITTED, PagesError, site_profile
from seqlib.book.toc import model_title

MODEL_PAGE = re.compile(r"book/runs/(?P<task>[^/]+)/(?P<model>[^/]+)")


def check_pages(app, config) -> None:
    try:
        profile = site_profile(Path(app.srcdir) / COMMITTED)
    except PagesError as err:
        raise ExtensionError(str(err)) from err
    config.myst_substitutions = {**(config.myst_substitutions or {}), "pages_profile": profile or "none"}


@cache
def task_title(srcdir: str, task: str) -> str:
    """The first ``# `` heading of the task's landing page ``book/tasks/<task>.md``."""
    page = Path(srcdir) / "book" / "tasks" / f"{task}.md"
    for line in page.read_text().splitlines():
        if line.startswith("# "):
            return line[2:].strip()
    raise ExtensionError(f"{page} has no '# ' title: the pages of its models cannot be titled")


def title_model_page(app, doctree) -> None:
    match = MODEL_PAGE.fullmatch(app.env.docname)
    if match is None:
        return
    heading = next(doctree.findall(nodes.title), None)
    if heading is None:
        raise ExtensionError(f"{app.env.docname} has no title to replace")
    heading.clear()
    heading += nodes.Text(f"{task_title(app.srcdir, match['task'])} · {model_title(match['model'])}")


def setup(app):
    app.connect("config-inited", check_pages)
    app.connect("doctree-read", title_model_page, priority=100)  # before the TitleCollector (500)
    return {"parallel_read_safe": True, "parallel_write_safe": True}
