# ---
# jupyter:
#   jupytext:
#     formats: ipynb,py:percent
#     text_representation:
#       extension: .py
#       format_name: percent
#       format_version: '1.3'
#       jupytext_version: 1.19.6
#   kernelspec:
#     display_name: Python 3 (ipykernel)
#     language: python
#     name: python3
# ---

# %% [markdown]
# # Length generalization
#
# Does a model that learnt a task on short sequences still solve it on longer ones? Several task
# chapters test exactly that: the Chomsky tasks train on lengths up to 40 and test up to 500
# (Delétang et al. 2023), MQAR's `test_length` split goes to four times the training length with
# proportionally more pairs, selective copying and induction heads are evaluated far beyond their
# training length (Griffin §6.2), and the DP tasks double the number of items (Hashemi et al. 2025).
# This chapter collects those curves from the results store: accuracy against length, per task and
# model, with the longest training length marked. Nothing is trained here.
#
# Executed by the CPU grid, the page shows `smoke` runs, which check the pipeline and are **not
# results**.

# %% tags=["parameters"]
profile = "smoke"  # whose records to show: "full" (GPU), "smoke" (CPU), "tiny" (tests)
seed = 0  # unused: nothing is trained here

# %% tags=["hide-input"]
import inspect
from pathlib import Path

import altair as alt
import numpy as np
import pandas as pd
from IPython.display import Markdown, display

from seqlib.book.chapter import setup
from seqlib.config import load_config
from seqlib.results import load_records, records_frame
from seqlib.stats import best_over_lr
from seqlib.tasks import TASKS, list_tasks

setup(profile, seed=seed)

# %% [markdown]
# ## Where each task keeps its lengths
#
# Evaluation slices every split by the per-example metadata of the task (`seqlib.evaluate`). The
# length is `length` for the Chomsky and copying tasks, `input_seq_len` for MQAR and `num_items`
# for the DP tasks. The training length comes from each record's own task parameters, so a curve
# is always drawn against the boundary its run was trained with.

# %%
def length_spec(task: str, params: dict) -> tuple[list[str], str, int] | None:
    """(splits, slice key, longest training length) of a task, or None if it has no length split."""
    defaults = {k: p.default for k, p in inspect.signature(TASKS[task].__init__).parameters.items()
                if p.default is not inspect.Parameter.empty}
    value = {**defaults, **params}
    if "train_max_length" in value:
        return ["val", "test"], "length", value["train_max_length"]
    if task == "mqar":
        return ["test_length"], "input_seq_len", value["seq_len"]
    if task in ("selective_copying", "induction_heads"):
        return ["test", "test_length"], "length", value["seq_len"]
    if "num_items" in value:
        return ["test", "test_length"], "num_items", value["num_items"]
    return None


pd.DataFrame([{"task": t, "splits": s[0], "length slice": s[1], "default training length": s[2]}
              for t in list_tasks() if (s := length_spec(t, {})) is not None]).set_index("task")

# %% [markdown]
# ## The curves
#
# Per (task, model): the learning rate with the best mean accuracy over seeds on the task's
# selection split (`test` for most tasks, the test lengths for Chomsky), then the mean over seeds at
# each length. Lengths are on a log scale; the dashed line is the longest training length. Click a
# model in the legend to pick it out; hover a point for its value. To keep the page light, a point
# is the mean over the lengths of one bin, four bins per doubling (never across the training
# boundary); the table after the chart uses every length.

# %% tags=["hide-input"]
store = Path(load_config("mqar", "hawk", profile).run.results_dir)
records = [r for r in load_records(store) if r["task"] in list_tasks()]
records = [r for r in records if r["status"] == "ok" and r["config"]["run"]["profile"] == profile]
latest = {}
for r in sorted(records, key=lambda r: r["provenance"].get("end_time") or ""):
    latest[(r["task"], r["model"], r["lr"], r["seed"])] = r  # a re-run supersedes the earlier record
records = list(latest.values())

rows = []
for task in sorted({r["task"] for r in records}):
    task_records = [r for r in records if r["task"] == task]
    spec = length_spec(task, task_records[0]["config"]["task"]["params"])
    if spec is None:
        continue
    splits, key, train_length = spec
    frame = records_frame(task_records)
    if not (frame["metric"] == "accuracy").any():
        continue  # a regression task (LIS) has no accuracy to draw
    best = best_over_lr(frame, "test", "accuracy")
    for model, chosen in best.groupby("model"):
        at = frame[(frame["model"] == model) & (frame["lr"] == chosen["lr"].iloc[0]) & frame["split"].isin(splits)
                   & (frame["slice_key"] == key) & (frame["metric"] == "accuracy")]
        for length, g in at.groupby(at["slice_value"].astype(int)):
            rows.append({"task": task, "model": model, "length": length, "accuracy": g["value"].mean(),
                         "seeds": g["seed"].nunique(), "lr": chosen["lr"].iloc[0], "train_length": train_length})
curves = pd.DataFrame(rows)
if curves.empty:
    display(Markdown(f"**The results store `{store}` holds no `{profile}` run with a length split yet.** "
                     "Run the task chapters (`make run-all`); this page then draws their curves."))
elif profile != "full":
    display(Markdown(f"**Every curve below comes from the CPU `{profile}` profile**: small models "
                     "and short runs on shortened sequences. They check the pipeline and are not results."))

# %% tags=["hide-input"]
def log_binned(curves: pd.DataFrame, per_octave: int = 4) -> pd.DataFrame:
    """``curves`` averaged over log-spaced length bins (``per_octave`` per doubling) for drawing; a
    bin never mixes lengths inside and beyond the training length."""
    keys = ["task", "model", "seeds", "lr", "train_length"]
    binned = curves.assign(bin=np.floor(np.log2(curves["length"]) * per_octave),
                           inside=curves["length"] <= curves["train_length"])
    return binned.groupby(keys + ["inside", "bin"], as_index=False)[["length", "accuracy"]].mean()


if not curves.empty:
    pick = alt.selection_point(fields=["model"], bind="legend")
    base = alt.Chart(log_binned(curves))
    lines = base.mark_line(point=True).encode(
        x=alt.X("length:Q", title="length", scale=alt.Scale(type="log", base=2)),
        y=alt.Y("accuracy:Q", scale=alt.Scale(domain=[0, 1])),
        color=alt.Color("model:N"),
        opacity=alt.condition(pick, alt.value(1.0), alt.value(0.12)),
        tooltip=["task:N", "model:N", alt.Tooltip("length:Q", format=".0f", title="length (bin mean)"), alt.Tooltip("accuracy:Q", format=".3f"), "seeds:Q",
                 alt.Tooltip("lr:Q", format="g")],
    ).add_params(pick)
    boundary = base.mark_rule(strokeDash=[4, 4], color="black").encode(x="max(train_length):Q")
    display((lines + boundary).properties(width=250, height=170).facet(
        facet=alt.Facet("task:N", title=None), columns=2).resolve_scale(x="independent"))

# %% [markdown]
# ## Inside and beyond the training lengths
#
# The same curves in two numbers per (task, model): the mean accuracy over the lengths up to the
# training length and over the longer ones, and the drop between them.

# %%
if not curves.empty:
    inside = curves["length"] <= curves["train_length"]
    table = (curves.assign(where=inside.map({True: "trained lengths", False: "longer lengths"}))
             .groupby(["task", "model", "where"])["accuracy"].mean().unstack("where"))
    table = table.reindex(columns=["trained lengths", "longer lengths"])
    table["drop"] = table["trained lengths"] - table["longer lengths"]
    display(table.round(3))
