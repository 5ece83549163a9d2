"""Sphinx extension: one profile per built site, and the profile named on the pages.

Before anything is read, the executed pages under ``book/runs`` (a link to ``_build/pages/<profile>``
in a staging tree, see :mod:`seqlib.book.pages`) must all come from one profile, else the build
fails naming both. The profile becomes the MyST substitution ``{{ pages_profile }}``.
"""

from __future__ import annotations

from pathlib import Path

from sphinx.errors import ExtensionError

from seqlib.book.pages import COMMITTED, PagesError, site_profile


def check_pages(app, config) -> None:
    try:
        profile = site_profile(Path(app.srcdir) / COMMITTED)
    except PagesError as err:
        raise ExtensionError(str(err)) from err
    config.myst_substitutions = {**(config.myst_substitutions or {}), "pages_profile": profile or "none"}


def setup(app):
    app.connect("config-inited", check_pages)
    return {"parallel_read_safe": True, "parallel_write_safe": True}
