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
# # Results: models across tasks
#
# The leaderboard of every (model, task) pair that the task chapters trained, read from the
# results store (one JSON record per run, `seqlib.results`). Nothing is trained here. Each task
# is scored as its source scores it, with the learning rate chosen on the in-distribution `val`
# split, the best mean over seeds there (`seqlib.book.report.select_lr`, the choice of every page),
# not on the reported split as the sources choose it (Zoology's plots take the maximum over the
# learning-rate sweep {cite:p}`arora2023zoology`, and the Chomsky paper reports the best of its
# seeds and learning rates {cite:p}`deletang2023chomsky`, the latter per third-party summaries, not
# verified against the paper); the tables flag a record without `val`, chosen on the reported split,
# as optimistic. Across seeds we report the mean with its 95%
# percentile-bootstrap interval {cite:p}`efron1993bootstrap` (inside the metric's range), the
# median, the best seed and the solve rate (the seeds that reach the card's solve line, with the
# Wilson interval {cite:p}`wilson1927`; `seqlib.stats.summarize_seeds`); between two named models an
# exact sign-flip test {cite:p}`fisher1935design` over the seeds both have, Holm-corrected
# {cite:p}`holm1979` across the page's comparisons (`seqlib.book.report.pairwise`).
#
# The page shows the records of its own profile, the one in the provenance line: the first table
# below counts them, with their commits and devices, and says whether they are results.

# %% tags=["parameters"]
profile = "smoke"  # whose records to show: "full" (GPU), "smoke" (CPU), "tiny" (tests)
seed = 0  # unused: nothing is trained here
model_a = "hawk"  # the two models of the significance test
model_b = "transformer"

# %% tags=["hide-input"]
from pathlib import Path

import altair as alt
import pandas as pd
from IPython.display import Markdown, display

from seqlib.bench.record import latest_record, merged_train_record
from seqlib.book.chapter import RESULT_PROFILES, setup, show_table
from seqlib.book.plots import capability_chart, frontier_chart, headline_chart
from seqlib.book.report import (
    capability_cost,
    leaderboard,
    model_sizes,
    oriented,
    pairwise,
    profile_records,
    scoring,
    seed_cells,
    selection_note,
    state_frontier,
)
from seqlib.book.sources import against_sources
from seqlib.config import load_config
from seqlib.results import records_frame

setup(profile, seed=seed, model_a=model_a, model_b=model_b)

# %% [markdown]
# ## The records
#
# The store of a profile is its `run.results_dir` (`results/` for `smoke` and `full`; the tests'
# `tiny` profile writes to a scratch folder), one folder per task. When a configuration was
# re-run after a change of settings, only the latest record per (task, model, learning rate,
# seed) counts.

# %% tags=["hide-input"]
store = Path(load_config("mqar", "hawk", profile).run.results_dir)
stored = profile_records(store, profile)
records = stored.records
frame = records_frame(records)
if frame.empty:
    display(Markdown(f"**The results store `{store}` holds no `{profile}` record yet.** Run the task "
                     "chapters (`make run-all`) or `python -m seqlib train`; this page then shows them."))
else:
    runs = frame.drop_duplicates("run_id")
    summary = runs.groupby("status").size().rename("runs").to_frame().T
    display(summary)
    finished = sorted(r.provenance.end_time or "" for r in records)
    print(f"{len(runs)} runs of profile {profile} in {store}: {runs['task'].nunique()} tasks x "
          f"{runs['model'].nunique()} models; {stored.superseded} superseded records left out"
          + (f"; the store also holds records of the profiles {stored.other_profiles}" if stored.other_profiles else ""))
    print(f"commits {sorted(set(runs['git_commit'].str[:10]))}, devices {sorted(set(runs['device_name']))}, "
          f"runs finished {finished[0][:16]} .. {finished[-1][:16]} UTC")
    if profile not in RESULT_PROFILES:
        display(Markdown(f"**Every number below comes from the CPU `{profile}` profile**: small models "
                         "and short runs that check the pipeline. They are not results "
                         "and say nothing about the architectures."))

# %% [markdown]
# ## How each task is scored
#
# One headline per task, the metric its source reports, read from the task's scoring card
# (`Task.scoring`, in `seqlib.tasks`): accuracy on the in-distribution test split for MQAR and the
# copying tasks; for the Chomsky tasks the accuracy on the test lengths averaged over lengths; the
# flip-flop glitch rate on the sparse split (the hardest of the three; the flip-flop chapter shows
# all three); binary F1 for the DP pointer tasks, accuracy (= micro-F1) for subset sum and the mean
# squared error for LIS. The card also states from which value a task counts as solved, and who
# says so.

# %% tags=["hide-input"]
cards = {}
for r in records:
    cards.setdefault(r.task, scoring(r))
if cards:
    show_table(pd.DataFrame([{"task": t, "split": c.split, "score": c.label,
                           "better": "higher" if c.higher_is_better else "lower",
                           "solved at": "" if c.solve_threshold is None else f"{c.solve_threshold:g}",
                           "threshold from": c.threshold_source} for t, c in sorted(cards.items())]).set_index("task"))
board = leaderboard(records)
if not board.empty:
    cells = seed_cells(board).set_index(["task", "model"])
    table = cells["mean [95% CI]"].unstack("model")
    per_task = board.drop_duplicates("task").set_index("task")
    table.insert(0, "score", per_task["label"])
    table.insert(1, "better", per_task["higher_is_better"].map({True: "higher", False: "lower"}))
    print("mean over seeds [95% bootstrap interval, where there are >= 2 seeds]")
    show_table(table)
    flagged = board[[bool(selection_note(r)) for _, r in board.iterrows()]]
    if not flagged.empty:
        per_task_flag = flagged.drop_duplicates("task")
        display(Markdown(f"**{len(flagged)} of {len(board)} (task, model) pairs** have no `val` in their records, "
                         "so their learning rate was chosen on the split reported here, which is optimistic: "
                         + ", ".join(f"`{r.task}` ({r.split})" for r in per_task_flag.itertuples()) + "."))
    print("per (task, model) over the seeds at the chosen learning rate: the split it was chosen on and "
          "the mean there, beside the headline's mean, median, best seed and solve rate (k of n seeds at "
          "the solve line, Wilson 95% interval)")
    show_table(cells[["lr", "selection split", "selection mean", "mean [95% CI]", "seeds", "median", "best", "solved"]])

# %% [markdown]
# ## The leaderboard as a heat map
#
# Every score on one scale where higher is better, one row per task: the glitch rate enters as
# $1 - $ glitch rate, and the unbounded LIS error is left out. Hover a cell for the raw score, the
# seeds and the chosen learning rate.

# %% tags=["hide-input"]
if not board.empty:
    heat = oriented(board)
    heat["text"] = heat["score"].map(lambda v: f"{v:.2f}")
    base = alt.Chart(heat).encode(
        x=alt.X("model:N", title=None, axis=alt.Axis(labelAngle=-40)), y=alt.Y("task:N", title=None))
    rect = base.mark_rect().encode(
        color=alt.Color("score:Q", scale=alt.Scale(domain=[0, 1], scheme="viridis"), title="score"),
        tooltip=["task:N", "model:N", "label:N", alt.Tooltip("mean:Q", format=".4f"), "n_seeds:Q",
                 alt.Tooltip("lr:Q", format="g"), "profile:N"])
    text = base.mark_text(fontSize=10).encode(
        text="text:N", color=alt.condition(alt.datum.score > 0.6, alt.value("black"), alt.value("white")))
    display((rect + text).properties(title=f"tasks x models ({profile} profile)", width=alt.Step(60),
                                      height=alt.Step(22)))

# %% [markdown]
# ## Scores with their intervals
#
# The same scores, one point per model and task, with the 95% percentile-bootstrap interval over
# seeds as a bar where there are at least two seeds (a single seed gives no interval; with few seeds
# the interval is too narrow, see `seqlib.stats.bootstrap_ci`); one panel per score, each on its own
# scale (`seqlib.book.plots.headline_chart`, the figure every task chapter opens with). Click a model
# in the legend to highlight it.

# %% tags=["hide-input"]
if not board.empty:
    display(headline_chart(board))

# %% [markdown]
# ## Against the published results
#
# Our score next to what the source reports for the same task and a comparable model, for the
# comparisons the book makes. Each published value names its paper and its table, figure or section;
# the last column says how far it is checked. Delétang et al.'s per-task scores (Table 2)
# {cite:p}`deletang2023chomsky` and Grazzi et al.'s scaled accuracies {cite:p}`grazzi2024negative`
# come from third-party quotes of those tables, and Liu et al.'s run counts
# {cite:p}`liu2023flipflop` from third-party summaries: none of these is verified against the paper,
# so they are shown for orientation, not as baselines our runs must reach. Zoology's values
# {cite:p}`arora2023zoology` are read by eye from its Figure 2; Griffin's {cite:p}`de2024griffin` are
# statements of its §6.2 and App. H, without numbers. Hawk and Griffin are in none of these sources
# except Griffin's own §6.2 (Grazzi et al.'s theorem covers them: a prediction, not a run).
#
# Each row is marked from the records (`seqlib.book.sources.against_sources`): **agrees** when our
# runs do what the source reports (solve the task, at the card's solve line, or fail it), **disagrees**
# when they do the opposite, **not comparable** when there is no run, the source reports nothing this
# model can be held to, or our runs did not even fit their training distribution (then they say
# nothing about longer lengths). Delétang et al. and Grazzi et al. report the best of their seeds, so
# our best seed is compared; Liu et al. count runs, so every seed must. `our budget` is the share of
# the source's training sequences our chosen runs had: a disagreement at a small share is first of all
# a question of budget.
#
# Two families of comparisons are on their task pages, not here: MQAR's cells against Zoology's
# Figure 2, the recall-state frontier of Zoology's README plot and Based's window sweep
# {cite:p}`arora2024based` (the [MQAR](../tasks/mqar.md) page), and Griffin's language-modelling
# claims, quality at a matched budget and extrapolation past the training context (the
# [text](../tasks/text.md) page).

# %% tags=["hide-input"]
if not board.empty:
    show_table(against_sources(board, records).set_index(["task", "model"]))  # the sources and their checks in full

# %% [markdown]
# ## Is one model better than the other?
#
# A two-sided exact sign-flip test of the mean paired difference over the seeds both models share (a
# seed fixes the training data order for every model, so the scores pair up), per task, at each
# model's chosen learning rate (`seqlib.stats.paired_test`). The tasks are this page's family of
# comparisons: `Holm p` is Holm's adjustment over the rows that can reach $p < 0.05$
# (`seqlib.stats.holm`). With $n$ paired seeds the smallest possible p-value is $2/2^n$, so 5 or fewer
# seeds can never give $p < 0.05$: such a row is not tested and claims no difference either way.

# %% tags=["hide-input"]
if not board.empty:
    display(Markdown(f"`{model_a}` vs `{model_b}` ({profile} profile):"))
    show_table(pairwise(records, model_a, model_b))

# %% [markdown]
# ## Runs that did not finish
#
# Failed runs (with the error they stopped on) and skipped ones (a model that cannot run on the
# machine, for example a GPU-only kernel on a CPU) stay in the store and are listed here.

# %%
if not frame.empty:
    bad = frame.drop_duplicates("run_id")
    bad = bad[bad["status"] != "ok"][["task", "model", "lr", "seed", "status", "reason", "run_id"]]
    print("every run finished" if bad.empty else f"{len(bad)} runs did not finish:")
    if not bad.empty:
        show_table(bad.set_index(["task", "model", "lr", "seed"]))

# %% [markdown]
# ## Score against state size
#
# Zoology (Arora et al. 2023, Fig. 2) reads MQAR as a trade-off between recall and the memory a model
# carries per sequence: each task's panel puts every model's headline score (the heat map's scale) at
# its decode state, the elements carried from token to token at the length its records measured
# (log scale; attention's grows with the length). A model is on the frontier (its own mark, joined by the
# dashed line) when no model with at most its state scores as high (`seqlib.book.report.state_frontier`).
# A model none of whose seeds fit its training distribution (`fit` in the tooltip) says nothing about
# what its state could hold: it is never on the frontier and bounds no other model.

# %% tags=["hide-input"]
frontier = state_frontier(records)
if frontier.empty:
    print("No score with a measured decode state: nothing to plot.")
else:
    display(frontier_chart(frontier))
    on = frontier[frontier["on_frontier"]].groupby("task")["model"].agg(", ".join)
    show_table(on.rename("on the frontier, smallest state first").to_frame())

# %% [markdown]
# ## Capability and cost
#
# The models that the Efficiency chapter's benchmarks measured, each with its mean score over the
# tasks every one of them has a score on, beside its training throughput and its decode latency per
# token from those benchmarks (`seqlib.book.report.capability_cost`): the figure puts the score
# against each cost, the table gives the numbers. The benchmarks size every model
# to about 100M parameters on one H200, not to the tasks' budgets, so the columns compare the
# architectures' costs at that size, not the cost of these runs.

# %% tags=["hide-input"]
cost = capability_cost(board, merged_train_record(store / "bench"), latest_record("models-decode", store / "bench"))
if cost.empty:
    print("No model of the leaderboard has a benchmark record: nothing to join.")
else:
    chart = capability_chart(cost)
    if chart is not None:
        display(chart)
    show_table(cost.round(3))

# %% [markdown]
# ## Model sizes
#
# The parameter count and the decode state (the memory a model carries from one token to the next,
# at the length the records measured it) of each model, as its records measured them: the median
# over the tasks, with their range, since the sizes differ per task through the task's vocabulary,
# head and budget (`seqlib.book.report.model_sizes`, which every task page's opening shows too).

# %%
if not frame.empty:
    show_table(model_sizes(records))
