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
# # Dynamic-programming tasks
#
# This page is one execution of the chapter for the model in the provenance line. The instances
# are sets of numbers fed as feature rows, as in the reference; a causal model reads them in order.
#
# This page opens with what the stored runs found, for every model of the chapter (generated from
# the records, with the headline figure), then states the task, the protocol and the runs of its
# model.

# %% tags=["parameters"]
model = "hawk"  # any name of `python -m seqlib list`
task = "dp"  # the task family; the registry tasks it runs are `subtasks`
subtasks = ["knapsack", "subset_sum", "min_coin_change", "lis", "balanced_partition"]
profile = "smoke"  # "full" on a GPU, "smoke" on a CPU, "tiny" in the tests
seed = 0  # draws the example instances; the training seeds and learning rates are the profile's
stored_only = False  # the grid runner sets True: show the stored records, train nothing
subtasks_why = ""  # the grid's reason where this profile runs fewer of the tasks for this model

# %% tags=["hide-input"]
import altair as alt
import numpy as np
import pandas as pd
from IPython.display import Markdown, display

from seqlib.book.chapter import (
    load_tasks,
    loss_chart,
    profile_note,
    setup,
    show_doc,
    show_runs,
    show_settings,
    show_source,
    show_table,
    tasks_run_line,
)
from seqlib.book.findings import show_findings
from seqlib.book.plots import bottom_legend, facet_columns
from seqlib.book.report import at_chosen_lr, choice_lines, seed_cells, select_lr
from seqlib.evaluate import constant_baselines
from seqlib.results import records_frame
from seqlib.stats import summarize_seeds
from seqlib.tasks.dp import DPTask

setup(profile, model=model, task=task, subtasks=subtasks, seed=seed)
if subtasks_why:  # the grid runs fewer of the chapter's tasks for this model in this profile
    display(Markdown(tasks_run_line(", ".join(f"`{t}`" for t in subtasks), len(subtasks), why=subtasks_why)))

# %% tags=["hide-input"]
show_findings(task, model, profile)

# %% [markdown]
# ## The task
#
# Knapsack, subset sum, coin change, longest increasing subsequence and balanced partition are
# solved exactly by dynamic programs whose steps are max-plus (tropical) operations.
# {cite:t}`hashemi2025tropical` use them to test whether an attention layer can carry such reasoning
# beyond the instance sizes and value ranges it was trained on, along three out-of-distribution axes:
# more items, larger values and adversarial noise (their code: `Baran-phys/Tropical-Attention`,
# `dataloaders.py` for the instances, `experiment.py` for training and metrics). We have not
# transcribed their results table, so this page compares nothing with published numbers.

# %% [markdown]
# ## The protocol
#
# The common part, from the docstring of `DPTask`:

# %%
show_doc(DPTask)

# %% [markdown]
# ## The configuration of this run
#
# The engine resolves `params/*.yaml` with the profile's overlays (`seqlib.config.load_config`).
# The CPU profiles skip the checkpoint, and no run here prints a progress bar (neither changes the
# configuration hash).

# %%
configs, tasks = load_tasks(subtasks, model, profile)
show_settings({name: {
    "head": "pointer (one bit per item)" if tasks[name].pointer else "pooled (one answer)",
    "loss": tasks[name].loss,
    "items: train / test_length": f"{tasks[name].num_items} / {tasks[name].ood_num_items}",
    "value scale of test_value": tasks[name].ood_value_scale,
    "model": str(c.model.model_dump(exclude_defaults=True)),
    "steps x batch": f"{c.optim.steps} x {c.optim.batch_size}",
    "learning rates": str(c.optim.lrs), "seeds": str(c.optim.seeds),
    "evaluation instances per split": c.run.eval_size,
} for name, c in configs.items()})

# %% [markdown]
# ## The tasks, with a decoded instance each
#
# One training instance per task, drawn with the page's seed, as the model reads it: one feature
# row per line. For the pointer tasks the items come twice, the second time with `flag = 1`, and
# the target (which items the optimal answer takes) sits on those answer rows.

# %%
FIELDS = {"knapsack": ["value", "weight", "capacity"], "subset_sum": ["x", "target sum"],
          "min_coin_change": ["coin", "target sum"], "lis": ["x", "position feature"],
          "balanced_partition": ["x"]}


def decode(t, batch) -> pd.DataFrame:
    x = batch.inputs[0].numpy()
    names = FIELDS.get(t.name, [])
    names = names + ["flag"] * (x.shape[1] - len(names)) if t.pointer else names + [f"f{k}" for k in range(len(names), x.shape[1])]
    rows = pd.DataFrame(np.round(x, 3), columns=names[:x.shape[1]])
    if t.pointer:
        rows["target"] = np.where(batch.mask[0].numpy(), batch.targets[0].numpy(), np.nan)
    rows.index.name = "row"
    return rows


for name, t in tasks.items():
    show_doc(t, f"### `{name}`")
    batch = t.sample("train", 1, seed=seed)
    show_table(decode(t, batch))
    if not t.pointer:
        print(f"target: {batch.targets[0].item():g}")

# %% [markdown]
# ## Training and evaluation
#
# `run_sweep` trains one run per learning rate and seed of the profile, for each task, and stores
# every record in the results store, where the [Results](../results.ipynb) and
# [Length generalization](../length_generalization.ipynb) chapters read it. A configuration that
# already has a finished record is not trained again: the stored record is shown, with the commit
# and device that produced it.

# %%
records = show_runs(configs, tasks, stored_only)
frame = records_frame(records)

# %% [markdown]
# ## Training curves

# %%
loss_chart(records, width=150, height=150)

# %% [markdown]
# ## Scores per split
#
# The reference's metrics (`_eval_one_epoch` in `Baran-phys/Tropical-Attention`, `experiment.py`):
# binary F1 over the answer rows for the pointer tasks (with the exact match of the whole answer
# beside it), micro-F1 for the pooled decision task (subset sum, where it equals accuracy) and the
# mean squared error for the regression task (LIS). The learning rate is chosen by that metric on
# `val`, in distribution (`seqlib.book.report.select_lr`; its rows stand beside the others, and the
# line above the table flags a record without `val`, chosen on `test`, as optimistic). Over the seeds
# at that learning rate each row shows the mean with its 95%
# percentile-bootstrap interval (inside the metric's range: $[0, 1]$, and $[0, \infty)$ for the MSE;
# none for one seed), the median, the best seed and, for F1 and accuracy, the solve rate: the seeds
# at or above the card's line with the Wilson 95% interval {cite:p}`wilson1927` (Hashemi et al.
# state no solve threshold, so the line is the book's, `DP_SOLVE_THRESHOLD` in
# `seqlib.tasks.scoring`; the MSE has none; `seqlib.stats.summarize_seeds` computes the row).
# `test_length` has twice the items and `test_value` twice the value range.

# %%
SPLITS = ["test", "test_length", "test_value"]
summaries = []
chosen = select_lr(records)
for name in subtasks:
    card = tasks[name].scoring  # the headline: F1, accuracy (= micro-F1) or the squared error (loss)
    at = at_chosen_lr(frame[frame["task"] == name], chosen)
    if at.empty:
        continue
    shown = [card.metric] + (["exact_match"] if tasks[name].pointer else [])
    summaries.append(summarize_seeds(at[(at["slice_key"] == "all") & at["metric"].isin(shown)
                                        & at["split"].isin([*SPLITS, *chosen["select_split"]])], card))
summary = pd.concat(summaries, ignore_index=True) if summaries else pd.DataFrame()
scores = pd.DataFrame(columns=["task", "metric", *SPLITS])  # the means, one row per (task, metric)
if summary.empty:
    print("no successful run to score")
else:
    mse = {"metric": {"loss": "MSE"}}
    print(choice_lines(chosen))
    show_table(seed_cells(summary).drop(columns="model").replace(mse).set_index(["task", "split", "metric"]))
    scores = (summary.replace(mse).pivot_table(index=["task", "metric"], columns="split", values="mean")
              .reindex(columns=SPLITS).round(3).reset_index())

# %%
if not scores.empty:
    bounded = scores[scores["metric"] != "MSE"].melt(id_vars=["task", "metric"], value_vars=["test", "test_length", "test_value"],
                                                      var_name="split", value_name="score")
    display(alt.Chart(bounded, title="F1, exact match and accuracy per split").mark_bar().encode(
        x=alt.X("split:N", title=None, sort=["test", "test_length", "test_value"]), xOffset="metric:N",
        y=alt.Y("score:Q", scale=alt.Scale(domain=[0, 1])), color=alt.Color("metric:N", legend=bottom_legend()),
        tooltip=["task:N", "metric:N", "split:N", alt.Tooltip("score:Q", format=".3f")],
    ).properties(width=150, height=120).facet(facet=alt.Facet("task:N", title=None), columns=facet_columns(150)))

# %% [markdown]
# ## Against constant answers
#
# A score needs its floor. `constant_baselines` (in `seqlib.evaluate`) scores constant answers with
# the same evaluator on the same splits: always 0 and always 1 (the best constant for F1), and for
# LIS the split's mean (the best constant for the squared error). A model has learned something
# about a split only where it beats the best constant row of its metric.

# %%
show_source(constant_baselines)
floors = []
for name in subtasks:
    metric = tasks[name].scoring.metric
    label = "MSE" if metric == "loss" else metric
    table = constant_baselines(tasks[name], ("test", "test_length", "test_value"), n=configs[name].run.eval_size,
                               seed=seed)
    whole = table[(table["slice_key"] == "all") & (table["metric"] == metric)]
    for answer, g in whole.groupby(whole["answer"].str.replace(r"^the \S+ mean.*", "the split's mean", regex=True)):
        floors.append({"task": name, "metric": label, "answer": answer}
                      | {r["split"]: round(r["value"], 3) for _, r in g.iterrows()})
    mine = scores[(scores["task"] == name) & (scores["metric"] == label)] if not scores.empty else scores
    if not mine.empty:
        floors.append({"task": name, "metric": label, "answer": f"{model} (this page)"}
                      | mine[["test", "test_length", "test_value"]].iloc[0].to_dict())
show_table(pd.DataFrame(floors).set_index(["task", "metric", "answer"]))

# %%
if not scores.empty:
    parts = "; ".join(f"`{r.task}` {r.metric} {r.test:.3f}" for r in scores.itertuples() if r.metric != "exact_match")
    display(Markdown(f"**In this run** `{model}` scored on `test`: {parts}.{profile_note(profile)}"))
