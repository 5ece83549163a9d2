"""Altair charts that stay interactive in the offline book and in JupyterLab, and fit the page's column
(:data:`COLUMN_PX`: wrapped facets, legends below, :func:`headline_chart`).

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


# ---- charts that fit the page ---------------------------------------------------------------------------
# The content column of a page in a 1280-px window (sphinx-book-theme) is 688 px, 676 beside the
# window's scrollbar: a chart's panels, axes and legend must fit it (the site test checks every output),
# so wide charts wrap their facets.
COLUMN_PX = 676
AXIS_PX = 70  # what a panel adds to its width: the y axis with its labels, and the gap to the next panel


def facet_columns(panel_width: int, room: int = COLUMN_PX) -> int:
    """How many facet panels ``panel_width`` px wide fit side by side in ``room`` px (at least one)."""
    return max(1, room // (panel_width + AXIS_PX))


def bottom_legend(columns: int = 3, title: str | None = None):
    """A legend under the chart, ``columns`` entries a row, so it takes none of the column's width."""
    import altair as alt

    return alt.Legend(orient="bottom", columns=columns, title=title, labelLimit=200)


def headline_chart(board, highlight: str | None = None, width: int = 380):
    """Each task's headline per model, from :func:`seqlib.book.report.leaderboard` rows: the mean over seeds
    as a point and its 95% bootstrap interval as a bar (none for one seed), the models of a task on rows
    of their own; one panel per score, each with its own scale. A legend click picks a model;
    ``highlight`` (a model) starts picked. ``None`` without a score to draw."""
    import altair as alt

    data = board.dropna(subset=["mean"])
    if data.empty:
        return None
    one = data["ci_low"].isna()  # one seed: the bar collapses onto the point (no empty layer, no NaN)
    data = data.assign(
        score=[f"{label} ({'higher' if up else 'lower'} is better)"
               for label, up in zip(data["label"], data["higher_is_better"])],
        low=data["ci_low"].where(~one, data["mean"]), high=data["ci_high"].where(~one, data["mean"]),
        interval=[f"none ({n} seed)" if o else f"[{lo:.4g}, {hi:.4g}]"
                  for o, n, lo, hi in zip(one, data["n_seeds"], data["ci_low"], data["ci_high"])])
    data = data[["task", "model", "score", "mean", "low", "high", "interval", "n_seeds", "lr"]]
    pick = alt.selection_point(fields=["model"], bind="legend",
                               **({"value": [{"model": highlight}]} if highlight else {}))
    color = alt.Color("model:N", scale=alt.Scale(domain=sorted(data["model"].unique())), legend=bottom_legend())
    opacity = alt.condition(pick, alt.value(1.0), alt.value(0.2))
    panels = []
    for score, rows in data.groupby("score", sort=False):  # a panel per score: its own scales, no facet
        base = alt.Chart(rows, title=alt.Title(score, anchor="start", fontSize=12)).encode(
            y=alt.Y("task:N", title=None), yOffset=alt.YOffset("model:N"), color=color, opacity=opacity)
        interval = base.mark_rule(strokeWidth=2).encode(x=alt.X("low:Q", title=None), x2="high:Q")
        point = base.mark_point(filled=True, size=40).encode(
            x=alt.X("mean:Q", title=None),
            tooltip=["task:N", "model:N", "score:N", alt.Tooltip("mean:Q", format=".4g"),
                     alt.Tooltip("interval:N", title="95% interval"), "n_seeds:Q", alt.Tooltip("lr:Q", format="g")])
        panels.append((interval + (point.add_params(pick) if not panels else point)).properties(
            width=width, height={"step": 4, "for": "offset"}))
    return alt.vconcat(*panels).resolve_scale(color="shared")


def frontier_chart(frontier, panel_width: int = 220, height: int = 170):
    """One panel per task of :func:`seqlib.book.report.state_frontier`: each model's score against its
    decode state (log scale), the frontier's models marked and joined by a line (a panel without a
    frontier has no line: an empty layer's infinite extent is a Vega warning); a legend click picks a
    model."""
    import altair as alt

    pick = alt.selection_point(fields=["model"], bind="legend")
    color = alt.Color("model:N", scale=alt.Scale(domain=sorted(frontier["model"].unique())), legend=bottom_legend())
    panels = []
    for task, rows in frontier.groupby("task", sort=True):  # a panel per task: its own scales, no facet
        base = alt.Chart(rows, title=alt.Title(task, fontSize=12)).encode(
            x=alt.X("state:Q", scale=alt.Scale(type="log"), title="decode state (elements)"),
            y=alt.Y("score:Q", title="score (higher is better)"))
        points = base.mark_point(size=60).encode(
            color=color, shape=alt.Shape("on_frontier:N", title="on the frontier"),
            opacity=alt.condition(pick, alt.value(1.0), alt.value(0.2)),
            tooltip=["task:N", "model:N", "label:N", alt.Tooltip("mean:Q", format=".4g"), "state:Q", "length:Q",
                     "n_seeds:Q", "fit:N", "on_frontier:N"])
        panel = points.add_params(pick) if not panels else points
        if rows["on_frontier"].any():
            panel = base.transform_filter(alt.datum.on_frontier).mark_line(color="gray", strokeDash=[4, 3]) + panel
        panels.append(panel.properties(width=panel_width, height=height))
    return alt.concat(*panels, columns=facet_columns(panel_width)).resolve_scale(color="shared", shape="shared")


def capability_chart(cost, panel_width: int = 300, height: int = 200):
    """Capability against cost (:func:`seqlib.book.report.capability_cost`): each model's mean score
    beside its training tokens/s and, where measured, its decode latency per token (log scales), one
    panel each; a legend click picks a model. None where the table has neither cost."""
    import altair as alt

    rows = cost.reset_index()
    costs = [(c, t) for c, t in (("train tokens/s", "training tokens/s (higher is cheaper)"),
                                 ("decode ms/token", "decode ms per token (lower is cheaper)")) if c in rows]
    if not costs:
        return None
    pick = alt.selection_point(fields=["model"], bind="legend")
    color = alt.Color("model:N", scale=alt.Scale(domain=sorted(rows["model"])), legend=bottom_legend())
    panels = []
    for column, title in costs:
        data = rows.dropna(subset=[column, "mean score"]).rename(columns={column: "cost"})
        chart = alt.Chart(data, title=alt.Title(title, fontSize=12)).mark_point(size=70, filled=True).encode(
            x=alt.X("cost:Q", scale=alt.Scale(type="log"), title=column),
            y=alt.Y("mean score:Q", title="mean score over the shared tasks"), color=color,
            opacity=alt.condition(pick, alt.value(1.0), alt.value(0.2)),
            tooltip=["model:N", alt.Tooltip("mean score:Q", format=".3f"), "tasks:Q", alt.Tooltip("cost:Q", format=".4g")])
        panels.append((chart.add_params(pick) if not panels else chart).properties(width=panel_width, height=height))
    return alt.concat(*panels, columns=facet_columns(panel_width)).resolve_scale(color="shared")
