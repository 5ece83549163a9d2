"""The code the chapters share: the preamble, showing seqlib's source, training with a progress line,
the run displays, and tables that fit the page (:func:`show_table`).

A task chapter trains one model on one or more registry tasks. Functions that take several tasks
(``configs``/``tasks`` dicts, or records of several tasks) name the task in their output; with a
single task they leave it out, as the single-task chapters (MQAR, flip-flop) always did.
"""

from __future__ import annotations

import inspect
import os
import textwrap
import warnings
from collections.abc import Mapping
from datetime import datetime

import altair as alt
import pandas as pd
import torch
from IPython.display import Markdown, display

from seqlib import provenance
from seqlib.book.configs import load_tasks, planned_configs  # noqa: F401 - the chapters import them from here
from seqlib.book.plots import COLUMN_PX, bottom_legend, enable_book_renderer, facet_columns
from seqlib.models import ModelUnavailable, build_model
from seqlib.record import RunRecord
from seqlib.train import run_sweep, second_stage_seeds, stored_record

# tqdm.auto, imported by third-party code in a kernel without ipywidgets, warns "IProgress not found" and
# falls back to its text bar, which is what the chapters want: not a warning for the reader
warnings.filterwarnings("ignore", message="IProgress not found")

# the GPU profiles whose runs are the book's results (params/defaults.yaml); the others (smoke, tiny) check
# the pipeline on a CPU, and their pages and summaries say so
RESULT_PROFILES = ("full", "book")
SMOKE_NOTE = (
    "**Produced by the CPU `{profile}` profile**: small models and short runs that check the "
    "pipeline end to end. Its numbers are not results."
)


def provenance_markdown(record: dict) -> str:
    """The provenance line an executed chapter opens with (:func:`seqlib.provenance.collect`); a page
    of a profile outside :data:`RESULT_PROFILES` says that its numbers are not results."""
    prov, profile = record["provenance"], record["profile"]
    params = ", ".join(f"`{k}={v!r}`" for k, v in record["params"].items()) or "none"
    cuda = f" (CUDA {prov.versions['cuda']})" if prov.device.startswith("cuda") else ""
    date = datetime.fromisoformat(prov.start_time).strftime("%Y-%m-%d %H:%M UTC")
    lines = [
        f"**Provenance** · profile `{profile}` · {prov.device_name}{cuda} · commit `{prov.short_commit}` · "
        f"{date} · torch {prov.versions['torch']}, Python {prov.versions['python']} · parameters {params}",
    ]
    if profile not in RESULT_PROFILES:
        lines.append(SMOKE_NOTE.format(profile=profile))
    return "\n\n".join(lines)


def setup(profile: str, **params) -> None:
    """A chapter's preamble: book renderer, provenance line, cwd at the repository root, CPU threads."""
    enable_book_renderer()
    display(Markdown(provenance_markdown(provenance.collect(profile, **params))))
    os.chdir(provenance.REPO)  # params/ and the results store are paths relative to the repository root
    if not torch.cuda.is_available():
        torch.set_num_threads(1)  # the CPU profiles' models are tiny: extra intra-op threads only contend


def show_source(obj) -> None:
    """Display the source of a function, method or class as it is in seqlib (the book never re-types it)."""
    display(Markdown(f"```python\n{textwrap.dedent(inspect.getsource(obj))}```"))


def show_doc(obj, heading: str | None = None) -> None:
    """Display the docstring of a class (of an instance's class), where seqlib states a task's protocol
    and its deviations from the reference, under an optional Markdown ``heading``."""
    doc = inspect.getdoc(obj if inspect.isclass(obj) else type(obj))
    display(Markdown(f"{heading}\n\n{doc}" if heading else doc))


# what a table's width is estimated from: a character of the theme's table font (16 px, bold in the
# index) and a cell's padding and border
CHAR_PX, CELL_PX = 10, 14


def _min_width(values) -> float:
    """The narrowest a table column can be: its longest run of characters without a space, in px."""
    return max((len(word) for v in values for word in str(v).split()), default=0) * CHAR_PX + CELL_PX


def column_groups(frame: pd.DataFrame, room: int = COLUMN_PX) -> list[list]:
    """``frame``'s columns in consecutive groups, each of which fits ``room`` px beside the index (the
    browser wraps a cell at its spaces, so a column is as narrow as its longest word); one group when
    the whole table fits."""
    index = frame.index.to_frame(index=False)
    used = sum(_min_width([name, *index[name]]) for name in index.columns) if frame.index.nlevels else 0
    groups, width = [[]], used
    for column in frame.columns:
        need = _min_width([*(column if isinstance(column, tuple) else (column,)), *frame[column]])
        if groups[-1] and width + need > room:
            groups.append([])
            width = used
        groups[-1].append(column)
        width += need
    return groups


MISSING = "–"  # how a table shows a cell without a value (never NaN)


def show_table(frame: pd.DataFrame, room: int = COLUMN_PX) -> None:
    """Display ``frame`` whole (pandas cuts nothing), a missing value as :data:`MISSING`, as several
    tables of consecutive columns, each with the index, where it is wider than the page's column
    (:func:`column_groups`)."""
    shown = frame.astype(object).where(frame.notna(), MISSING)
    with pd.option_context("display.max_rows", None, "display.max_columns", None, "display.max_colwidth", None):
        for columns in column_groups(shown, room):
            display(shown[columns])


def show_settings(per_task: Mapping[str, Mapping]) -> None:
    """A task chapter's settings per task (task -> setting -> value): the settings every task shares in
    one table, one row per task for the others (so a chapter of fifteen tasks stays in the column)."""
    table = pd.DataFrame({task: {k: str(v) for k, v in values.items()} for task, values in per_task.items()})
    shared = table.nunique(axis=1) == 1
    show_table(table[shared].iloc[:, :1].set_axis(["every task"], axis=1))
    if (~shared).any():
        show_table(table[~shared].T.rename_axis("task"))


def stored_runs(configs: Mapping) -> tuple[list[RunRecord], str | None]:
    """The stored records of every planned run, training nothing; ``(records, note)``, where
    ``note`` names the planned runs without a record (``None`` when none is missing)."""
    from seqlib.book.report import planned_sweep

    records, missing, pending = [], [], []
    for cfg in configs.values():
        runs, later = planned_sweep(cfg), second_stage_seeds(cfg)
        if later and all(r.optim.seeds[0] not in later for r in runs):
            pending.append(f"{cfg.task.name} seeds {', '.join(map(str, later))}")
        for run in runs:
            rec = stored_record(run)
            if rec is None:
                missing.append(f"{run.task.name} lr={run.optim.lr:g} seed={run.optim.seeds[0]}")
            else:
                records.append(rec)
    note = None
    if missing:
        shown = ", ".join(missing[:8]) + (f" and {len(missing) - 8} more" if len(missing) > 8 else "")
        note = (f"**{len(missing)} of the {len(records) + len(missing)} planned runs have no record yet** "
                f"({shown}): the run that executed this page trained nothing and shows what was stored. "
                "`make run-all` trains them.")
    if pending:
        note = ((note + " ") if note else "") + (
            f"**The second stage of the rate sweep has not run yet** ({'; '.join(pending)}: these seeds run "
            "only at the rate chosen on the first stage's validation scores, once every first-stage run has "
            "a record).")
    return records, note


def train_runs(configs: Mapping, tasks: Mapping, stored_only: bool = False) -> tuple[list[RunRecord], str | None]:
    """Run :func:`seqlib.train.run_sweep` for each task; ``(records, note)``.

    The model is built once for the first task to check it can run here; if it cannot, nothing is
    trained and ``note`` is a Markdown sentence saying why (``None`` otherwise). With a single task
    the model's parameter count is printed first. Each finished run prints one plain-text line.
    With ``stored_only`` (the task chapters' papermill parameter, which the grid runner sets: it
    trains every planned run before it executes the chapters) the stored records are shown instead
    and nothing is trained (:func:`stored_runs`).
    """
    first = next(iter(configs))
    model = configs[first].model.name
    try:
        net = build_model(configs[first].model, tasks[first].spec)
    except ModelUnavailable as err:
        return [], (f"**`{model}` cannot run on this machine**: {err}. Nothing was trained; the "
                    "rest of this page is empty.")
    several = len(configs) > 1
    if not several:
        print(f"{model}: {net.num_params():,} parameters")
    if stored_only:
        return stored_runs(configs)

    def report(outcome, i, n):
        rec = outcome.record
        how = "stored record reused" if outcome.reused else f"{rec.measure.get('wall_time_s', 0):.1f} s"
        prefix = f"{rec.task} " if several else ""
        print(f"{prefix}[{i + 1}/{n}] lr={rec.lr:g} seed={rec.seed}: {rec.status} ({how})")

    from seqlib.book.report import second_stage_rate

    records = []
    for name, cfg in configs.items():
        records += [o.record for o in run_sweep(cfg, task=tasks[name], on_result=report, choose=second_stage_rate)]
    return records, None


def show_runs(configs: Mapping, tasks: Mapping, stored_only: bool = False,
              stopped_early: bool = False) -> list[RunRecord]:
    """A task chapter's runs: :func:`train_runs`, then its note, :func:`runs_table` and
    :func:`show_failures` displayed; returns the records."""
    records, note = train_runs(configs, tasks, stored_only)
    if note:
        display(Markdown(note))
    table = runs_table(records, stopped_early)
    if table is not None:
        shared = [c for c in ("commit", "device") if table[c].nunique() == 1]
        if shared:
            print(f"{len(table)} runs, all by " + ", ".join(f"{c} {table[c].iloc[0]}" for c in shared))
        show_table(table.drop(columns=shared))
    show_failures(records)
    return records


def settings(cfg, **extra) -> pd.DataFrame:
    """The settings of a task chapter's run configuration as a one-column table (``extra`` rows last)."""
    rows = {
        "task parameters": cfg.task.params,
        "model": cfg.model.model_dump(exclude_defaults=True),
        "steps x batch": f"{cfg.optim.steps} x {cfg.optim.batch_size}",
        "learning rates": cfg.optim.lrs,
        "seeds": cfg.optim.seeds,
        **extra,
    }
    return pd.DataFrame({"value": {k: str(v) for k, v in rows.items()}})


def tasks_run_line(listing: str, n: int, total: int | None = None, why: str = "") -> str:
    """The line a family chapter's page opens with: the ``n`` (of its ``total``) tasks it runs
    (``listing``), and, where the grid runs fewer for this model in this profile (grid.yaml's
    ``profile_subtasks``, the page's ``subtasks_why``), why."""
    counted = f"{n} of the {total} tasks" if total is not None else f"{n} task{'s' * (n != 1)}"
    line = f"**This page runs {counted}**: {listing}."
    return line + (f" In this profile this model runs only these: {why}" if why else "")


def profile_note(profile: str) -> str:
    """The sentence a task chapter's summary ends with when its numbers are not the book's results."""
    if profile in RESULT_PROFILES:
        return ""
    return f" These numbers come from the CPU `{profile}` profile: they check the pipeline and are not results."


def _several_tasks(records: list[RunRecord]) -> bool:
    return len({r.task for r in records}) > 1


def runs_table(records: list[RunRecord], stopped_early: bool = False) -> pd.DataFrame | None:
    """One row per run, indexed by (task,) lr and seed: status, steps, time, and the commit, device and id
    that made it.

    ``stopped_early`` adds that column (for tasks with early stopping); ``None`` without records.
    """
    several = _several_tasks(records)
    rows = []
    for r in records:
        row = {"task": r.task} if several else {}
        row |= {"lr": f"{r.lr:g}", "seed": r.seed, "status": r.status, "steps": r.train.get("steps_done")}
        if stopped_early:
            row["stopped early"] = r.train.get("stopped_early")
        row |= {
            "train s": round(r.measure.get("wall_time_s") or float("nan"), 1),
            "commit": (r.provenance.commit or "?")[:10] + ("-dirty" if r.provenance.dirty else ""),
            "device": r.provenance.device_name, "run id": r.run_id,
        }
        rows.append(row)
    return pd.DataFrame(rows).set_index((["task"] if several else []) + ["lr", "seed"]) if rows else None


def show_failures(records: list[RunRecord]) -> None:
    """Display the reason and the traceback's tail of every run that did not finish ``ok``."""
    several = _several_tasks(records)
    for r in records:
        if r.status != "ok":
            who = r.task if several else "Run"
            display(Markdown(f"**{who} lr={r.lr:g} seed={r.seed} {r.status}**: `{r.reason}`"))
            if r.traceback:
                print(r.traceback[-2000:])


def curve_frame(records: list[RunRecord], curve: str = "loss_curve") -> pd.DataFrame:
    """A training curve (``loss_curve`` or ``eval_curve``) of the successful runs: columns task, run,
    step, value."""
    return pd.DataFrame([{"task": r.task, "run": f"lr={r.lr:g} seed={r.seed}", "step": s, "value": v}
                         for r in records if r.status == "ok" for s, v in r.train[curve]],
                        columns=["task", "run", "step", "value"])


def loss_chart(records: list[RunRecord], width: int = 220, height: int = 180, title: str | None = None):
    """Training loss per run on a log scale, one panel per task, as many panels a row as fit the page's
    column (:func:`seqlib.book.plots.facet_columns`), the legend below; a legend click picks a run.

    ``None`` when no run succeeded.
    """
    loss = curve_frame(records).rename(columns={"value": "loss"})
    if loss.empty:
        return None
    several = loss["task"].nunique() > 1
    pick = alt.selection_point(fields=["run"], bind="legend")
    chart = alt.Chart(loss, **({"title": title} if title else {})).mark_line().encode(
        x="step:Q", y=alt.Y("loss:Q", scale=alt.Scale(type="log")), color=alt.Color("run:N", legend=bottom_legend()),
        opacity=alt.condition(pick, alt.value(1.0), alt.value(0.15)),
        tooltip=(["task:N"] if several else []) + ["run:N", "step:Q", alt.Tooltip("loss:Q", format=".4f")],
    ).add_params(pick).properties(width=width, height=height)
    return chart.facet(facet=alt.Facet("task:N", title=None), columns=facet_columns(width)) if several else chart
