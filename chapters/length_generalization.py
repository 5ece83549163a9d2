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
# {cite:p}`deletang2023chomsky`, MQAR's `test_length` split goes to four times the training length
# with proportionally more pairs, selective copying and induction heads are evaluated far beyond
# their training length (Griffin §6.2 {cite:p}`de2024griffin`), and the DP tasks double the number
# of items {cite:p}`hashemi2025tropical`. This chapter collects those curves from the results store:
# accuracy against length, per task and model, with the longest training length marked. Nothing is
# trained here. The page shows the records of its own profile, the one in the provenance line; under
# *The curves* a line counts them and says whether they are results.

# %% tags=["parameters"]
profile = "smoke"  # whose records to show: "full" (GPU), "smoke" (CPU), "tiny" (tests)
seed = 0  # unused: nothing is trained here

# %% tags=["hide-input"]
from pathlib import Path

import altair as alt
import pandas as pd
from IPython.display import Markdown, display

from seqlib.book.chapter import RESULT_PROFILES, setup, show_table
from seqlib.book.plots import bottom_legend, facet_columns
from seqlib.book.report import inside_beyond, length_curves, log_binned, profile_records
from seqlib.config import load_config
from seqlib.tasks import get_task, list_tasks

setup(profile, seed=seed)

# %% [markdown]
# ## Where each task keeps its lengths
#
# Evaluation slices every split by the per-example metadata of the task (`seqlib.evaluate`); every
# task names its length `length` (the number of items for the DP tasks). Each task's scoring card
# (`Task.scoring`) says which splits form its curve and its training lengths; a curve is drawn
# against the training length of the task parameters its own runs were trained with. Here the
# cards of the tasks at their default parameters:

# %%
cards = {t: get_task(t).scoring for t in list_tasks()}
pd.DataFrame([{"task": t, "splits": list(c.curve_splits), "training lengths": c.train_lengths}
              for t, c in cards.items() if c.curve_splits]).set_index("task")

# %% [markdown]
# ## The curves
#
# Per (task, model): the learning rate with the best mean over seeds of each run's selection score,
# on its in-distribution `val` split (`seqlib.book.report.select_lr`, the choice of every page; a
# record without `val` is chosen on `test`, at the training length), then the mean over seeds at
# each length. Lengths are on a log scale; the dashed line is the longest training length. Click a
# model in the legend to pick it out; hover a point for its value. To keep the page light, a point
# is the mean over the lengths of one bin, four bins per doubling (never across the training
# boundary); the table after the chart uses every length.

# %% tags=["hide-input"]
store = Path(load_config("mqar", "hawk", profile).run.results_dir)
runs = profile_records(store, profile).ok
curves = length_curves(runs)
if curves.empty:
    display(Markdown(f"**The results store `{store}` holds no `{profile}` run with a length split yet.** "
                     "Run the task chapters (`make run-all`); this page then draws their curves."))
else:
    devices = sorted({r.provenance.device_name for r in runs})
    display(Markdown(f"The curves below come from {curves[['task', 'model']].drop_duplicates().shape[0]} "
                     f"(task, model) pairs of the `{profile}` profile, out of {len(runs)} successful runs in "
                     f"`{store}` (devices: {', '.join(devices)})."
                     + ("" if profile in RESULT_PROFILES else
                        f" **These are CPU `{profile}` runs**: small models and short runs on shortened "
                        "sequences. They check the pipeline and are not results.")))

# %% tags=["hide-input"]
if not curves.empty:
    pick = alt.selection_point(fields=["model"], bind="legend")
    base = alt.Chart(log_binned(curves))
    lines = base.mark_line(point=True).encode(
        x=alt.X("length:Q", title="length", scale=alt.Scale(type="log", base=2)),
        y=alt.Y("accuracy:Q", scale=alt.Scale(domain=[0, 1])),
        color=alt.Color("model:N", legend=bottom_legend()),
        opacity=alt.condition(pick, alt.value(1.0), alt.value(0.12)),
        tooltip=["task:N", "model:N", alt.Tooltip("length:Q", format=".0f", title="length (bin mean)"), alt.Tooltip("accuracy:Q", format=".3f"), "seeds:Q",
                 alt.Tooltip("lr:Q", format="g")],
    ).add_params(pick)
    boundary = base.mark_rule(strokeDash=[4, 4], color="black").encode(x="max(train_length):Q")
    display((lines + boundary).properties(width=230, height=160).facet(
        facet=alt.Facet("task:N", title=None), columns=facet_columns(230)).resolve_scale(x="independent"))

# %% [markdown]
# ## Inside and beyond the training lengths
#
# The same curves in numbers, one row per task and one column per model: the mean accuracy over the
# lengths beyond the training length, then the drop from the mean over the trained lengths to it
# (every length counts, not the bins of the chart).

# %%
if not curves.empty:
    table = inside_beyond(curves).round(3)
    for column, title in (("longer lengths", "mean accuracy beyond the training length"),
                          ("drop", "drop: mean accuracy on the trained lengths minus beyond them")):
        print(title)
        show_table(table[column].unstack("model"))
