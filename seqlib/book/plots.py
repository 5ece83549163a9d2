"""Altair charts that stay interactive in the offline book and in JupyterLab.

Altair's own ``html`` renderer loads vega from a CDN, which the book must not do. The ``seqbook``
renderer emits two representations of each chart:

* ``text/html``: a ``<div>`` and a one-line ``vegaEmbed(...)`` call. The book's pages load the
  vendored vega, vega-lite and vega-embed scripts (``book/assets/vendor/``, listed in
  ``_config.yml``), so the chart renders with no network;
* ``application/vnd.vegalite.v6+json`` with the spec, for front ends that render Vega-Lite 6.

JupyterLab 4.6 renders Vega-Lite only up to v5 and prefers ``text/html`` anyway, where
``vegaEmbed`` is not defined. So the renderer is switched on only for runs that go into the book
(the grid runner sets ``SEQBOOK_BOOK_RUN=1``); interactively, Altair's default renderer stays.
"""

from __future__ import annotations

import json
import os
import uuid

# nbformat only accepts JSON data under "+json" MIME types (Altair 6.3 writes "...v6.json")
VEGALITE_MIME_TYPE = "application/vnd.vegalite.v6+json"
EMBED_OPTIONS = {"actions": False, "renderer": "svg"}


def book_renderer(spec: dict, **metadata) -> dict:
    spec = {k: v for k, v in spec.items() if k != "$schema"}  # the schema URL is the page's only http string
    div = f"vega-{uuid.uuid4().hex[:12]}"
    # "</" inside a <script> would end it early; JSON allows the escaped form
    spec_js = json.dumps(spec).replace("</", "<\\/")
    html = (
        f'<div id="{div}" class="vega-chart"></div>'
        f'<script>vegaEmbed("#{div}", {spec_js}, {json.dumps(EMBED_OPTIONS)})'
        ".catch(console.error);</script>"
    )
    return {"text/html": html, VEGALITE_MIME_TYPE: spec}


BOOK_RUN_ENV = "SEQBOOK_BOOK_RUN"


def enable_book_renderer() -> None:
    """In a run for the book, render every Altair chart of this kernel with :func:`book_renderer`."""
    import altair as alt  # here, so that the grid runner (which reads BOOK_RUN_ENV) does not load Altair

    alt.renderers.register("seqbook", book_renderer)
    if os.environ.get(BOOK_RUN_ENV) == "1":
        alt.renderers.enable("seqbook")
