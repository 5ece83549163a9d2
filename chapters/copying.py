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
# # Selective copying and induction heads
#
# This page is one execution of the chapter for the model in the provenance line.
#
# This page opens with what the stored runs found, for every model of the chapter (generated from
# the records, with the headline figure), then states the task, the protocol and the runs of its
# model.

# %% tags=["parameters"]
model = "hawk"  # any name of `python -m seqlib list`
task = "copying"  # the task family; the registry tasks it runs are `subtasks`
subtasks = ["selective_copying", "induction_heads"]
profile = "smoke"  # "full" on a GPU, "smoke" on a CPU, "tiny" in the tests
seed = 0  # draws the example batches; the training seeds and learning rates are the profile's
stored_only = False  # the grid runner sets True: show the stored records, train nothing
subtasks_why = ""  # the grid's reason where this profile runs fewer of the tasks for this model

# %% tags=["hide-input"]
import altair as alt
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
    show_table,
    tasks_run_line,
)
from seqlib.book.findings import show_findings
from seqlib.book.report import at_chosen_lr, choice_lines, seed_cells, select_lr
from seqlib.results import records_frame
from seqlib.stats import summarize_seeds

setup(profile, model=model, task=task, subtasks=subtasks, seed=seed)
if subtasks_why:  # the grid runs fewer of the chapter's tasks for this model in this profile
    display(Markdown(tasks_run_line(", ".join(f"`{t}`" for t in subtasks), len(subtasks), why=subtasks_why)))

# %% tags=["hide-input"]
show_findings(task, model, profile)

# %% [markdown]
# ## The task
#
# The two synthetic tasks of the Griffin paper, §6.2 and App. H {cite:p}`de2024griffin`.
# **Selective copying** (the task of Mamba, §4.1.1 {cite:p}`gu2023mamba`; also in the MAD suite
# {cite:p}`poli2024mad`, whose generators are in `athms/mad-lab`, `mad/data/instances.py`)
# scatters a few data tokens among blanks; after a copy token the model must write them out in
# order, so it has to keep the tokens and skip the blanks. **Induction heads**
# {cite:p}`olsson2022induction` shows a trigger token once, followed by a value, then the trigger
# again at the end: the model must recall what followed it. Both are trained at one length and also
# tested at longer ones. Griffin §6.2 reports that Hawk extrapolates on induction heads to sequences
# "orders of magnitude" longer than those it was trained on, Griffin too, and MQA with RoPE not; the
# [Copying](../../tasks/copying.md) page compares our runs with that.

# %% [markdown]
# ## The configuration of this run
#
# The engine resolves `params/*.yaml` with the profile's overlays (`seqlib.config.load_config`).
# The CPU profiles shorten the sequences and the extrapolation lengths, skip the checkpoint, and no
# run here prints a progress bar (neither of the last two changes the configuration hash).

# %%
configs, tasks = load_tasks(subtasks, model, profile)
show_settings({name: {
    "task parameters": str(c.task.params),
    "train length": tasks[name].seq_len,
    "test_length lengths": str(tasks[name].test_lengths),
    "model": str(c.model.model_dump(exclude_defaults=True)),
    "steps x batch": f"{c.optim.steps} x {c.optim.batch_size}",
    "learning rates": str(c.optim.lrs), "seeds": str(c.optim.seeds),
    "evaluation examples per split": c.run.eval_size,
} for name, c in configs.items()})

# %% [markdown]
# ## The protocols, with a decoded example each
#
# One training example per task, drawn with the page's seed, at the profile's length. Blanks are
# `_`, the copy token `C`, the induction trigger `T`; a scored position is written `[input→target]`.

# %%
def decode(t, batch, per_line: int = 32) -> str:
    x, y, m = batch.inputs[0].tolist(), batch.targets[0].tolist(), batch.mask[0].tolist()
    special = ({t.vocab_size - 2: "_", t.vocab_size - 1: "C"} if t.name == "selective_copying"
               else {t.vocab_size - 1: "T"})
    cells = [f"[{special.get(a, a)}→{b}]" if s else str(special.get(a, a)) for a, b, s in zip(x, y, m)]
    return "\n".join(f"{p:5d} | " + " ".join(cells[p:p + per_line]) for p in range(0, len(cells), per_line))


for name, t in tasks.items():
    show_doc(t, f"### `{name}`")
    print(decode(t, t.sample("train", 1, seed=seed)))

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
loss_chart(records, width=260, height=180)

# %% [markdown]
# ## Accuracy in and beyond the training length
#
# Token accuracy on the scored positions (and the exact match of the whole answer) on `test`, at the
# training length, and on `test_length`, at the longer lengths. The learning rate is chosen on `val`,
# in distribution (`seqlib.book.report.select_lr`; its rows stand beside the others, and the line above
# the table flags a record without `val`, chosen on `test`, as optimistic); over the seeds at that
# learning rate each row shows the mean with its 95%
# percentile-bootstrap interval (inside $[0, 1]$; none for one seed), the median, the best seed and,
# for accuracy, the solve rate: the seeds at or above the card's line with the Wilson 95% interval
# {cite:p}`wilson1927` (Griffin §6.2 calls the tasks solved without a number, so the line is the
# book's, `COPYING_SOLVE_THRESHOLD` in `seqlib.tasks.scoring`; `seqlib.stats.summarize_seeds`
# computes the row).

# %%
summaries, curve_rows = [], []
chosen = select_lr(records)
for name in subtasks:
    card = tasks[name].scoring
    at = at_chosen_lr(frame[frame["task"] == name], chosen)
    if at.empty:
        continue
    whole = at[(at["slice_key"] == "all") & at["metric"].isin(["accuracy", "exact_match"])
               & at["split"].isin(["test", "test_length", *chosen["select_split"]])]
    summaries.append(summarize_seeds(whole, card))
    lengths = at[(at["slice_key"] == card.length_key) & (at["metric"] == "accuracy")]
    for length, g in lengths.groupby("slice_value"):
        curve_rows.append({"task": name, "length": int(length), "accuracy": g["value"].mean(),
                           "train_length": card.train_lengths[1], "chance": card.chance})
summary = pd.concat(summaries, ignore_index=True) if summaries else pd.DataFrame()
if summary.empty:
    print("no successful run to score")
else:
    print(choice_lines(chosen))
    show_table(seed_cells(summary).drop(columns="model").set_index(["task", "split", "metric"]))

# %% [markdown]
# Accuracy by sequence length (log scale); the dashed line is the training length, the grey line
# chance.

# %%
curve = pd.DataFrame(curve_rows)
if not curve.empty:
    base = alt.Chart(curve)
    line = base.mark_line(point=True).encode(
        x=alt.X("length:Q", title="sequence length", scale=alt.Scale(type="log", base=2)),
        y=alt.Y("accuracy:Q", scale=alt.Scale(domain=[0, 1])),
        tooltip=["task:N", "length:Q", alt.Tooltip("accuracy:Q", format=".3f")])
    boundary = base.mark_rule(strokeDash=[4, 4]).encode(x="max(train_length):Q")
    chance = base.mark_rule(color="grey").encode(y="max(chance):Q")
    display((line + boundary + chance).properties(width=260, height=180).facet(
        column=alt.Column("task:N", title=None)))

# %%
if not summary.empty:
    acc = summary[summary["metric"] == "accuracy"].pivot(index="task", columns="split", values="mean")
    acc = acc.reindex(columns=["test", "test_length"])
    parts = "; ".join(f"`{task}` {r['test']:.1%} at the training length, {r['test_length']:.1%} beyond it"
                      for task, r in acc.iterrows())
    display(Markdown(f"**In this run** `{model}` reached {parts}.{profile_note(profile)}"))
