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
# # The Chomsky hierarchy
#
# This page is one execution of the chapter for the model in the provenance line; the line under it
# names the tasks it runs (the `subtasks` parameter; any of the fifteen can be named).
#
# This page opens with what the stored runs found, for every model of the chapter (generated from
# the records, with the headline figure), then states the task, the protocol and the runs of its
# model.

# %% tags=["parameters"]
model = "hawk"  # any name of `python -m seqlib list`
task = "chomsky"  # the task family; the registry tasks it runs are `subtasks`
subtasks = ["parity_check", "reverse_string", "duplicate_string"]  # one per level: R, DCF, CS
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
from seqlib.book.plots import bottom_legend, facet_columns
from seqlib.book.report import choice_lines, run_scores, seed_cells, select_lr
from seqlib.evaluate import constant_baselines, length_mean, scaled_accuracy
from seqlib.results import records_frame
from seqlib.stats import summarize_seeds
from seqlib.tasks.chomsky import CHOMSKY_TASKS, ChomskyTask

setup(profile, model=model, task=task, subtasks=subtasks, seed=seed)
if subtasks == "all":
    subtasks = [t.name for t in CHOMSKY_TASKS]
levels, by_level = {t.name: t.level for t in CHOMSKY_TASKS}, {}
for name in subtasks:
    by_level.setdefault(levels.get(name, "?"), []).append(f"`{name}`")
display(Markdown(tasks_run_line("; ".join(f"{level} {', '.join(names)}" for level, names in by_level.items()),
                                len(subtasks), len(CHOMSKY_TASKS), subtasks_why)))

# %% tags=["hide-input"]
show_findings(task, model, profile)

# %% [markdown]
# ## The task
#
# {cite:t}`deletang2023chomsky` sort fifteen algorithmic tasks by the memory structure that solves
# them, following the Chomsky hierarchy: **regular** (R, a finite state is enough), **deterministic
# context-free** (DCF, a stack) and **context-sensitive** (CS, a tape). A model trains on inputs of
# length 1 to 40 and is scored on lengths 41 to 500, so the score measures whether it learnt the
# algorithm rather than the training lengths. Their abstract reports that RNNs and Transformers fail
# to generalize on non-regular tasks, that LSTMs solve regular and counter-language tasks, and that
# only networks with structured memory (a stack or a tape) generalize on context-free and
# context-sensitive ones; the per-task scores of their Table 2 are on the
# [Chomsky hierarchy](../../tasks/chomsky.md) page, marked there as not verified against the paper.
# {cite:t}`grazzi2024negative` prove that linear RNNs whose state transitions have only positive
# eigenvalues cannot solve parity, and show that allowing negative eigenvalues lets them solve it,
# which the RG-LRU, with its decays in $(0, 1)$, cannot.

# %% [markdown]
# ## The protocol
#
# Every task shares the input/output format and the length splits of the reference code
# (`google-deepmind/neural_networks_chomsky_hierarchy`: the tasks in `tasks/`, the training and the
# range evaluation in `experiments/training.py` and `experiments/range_evaluation.py`); the common
# part is the docstring of `ChomskyTask`:

# %%
show_doc(ChomskyTask)

# %% [markdown]
# The fifteen tasks, with their level and the chance accuracy that scaled accuracy subtracts:

# %%
pd.DataFrame([{"task": t.name, "level": t.level, "input symbols": t.input_size,
               "output classes": t.output_size, "chance": round(t().spec.chance, 3),
               "run on this page": t.name in subtasks} for t in CHOMSKY_TASKS]).set_index("task")

# %% [markdown]
# ## The configuration of this run
#
# The engine resolves `params/*.yaml` with the profile's overlays (`seqlib.config.load_config`);
# the paper trains on lengths up to 40 and tests up to 500, the CPU profiles shrink both. The CPU
# profiles skip the checkpoint, and no run here prints a progress bar (neither changes the
# configuration hash).

# %%
configs, tasks = load_tasks(subtasks, model, profile)
show_settings({name: {
    "level": tasks[name].level,
    "train lengths": f"1..{tasks[name].train_max_length}",
    "test lengths": f"{tasks[name].train_max_length + 1}..{tasks[name].max_test_length}",
    "model": str(c.model.model_dump(exclude_defaults=True)),
    "steps x batch": f"{c.optim.steps} x {c.optim.batch_size}",
    "learning rates": str(c.optim.lrs), "seeds": str(c.optim.seeds),
    "evaluation examples per split": c.run.eval_size,
} for name, c in configs.items()})

# %% [markdown]
# ### These are not Delétang et al.'s models
#
# {cite:t}`deletang2023chomsky` train architectures of their own: a Transformer encoder of 5
# layers, width 64 and 8 heads with the best of five position encodings per task, and an RNN and
# an LSTM of 256 hidden units, each for 1M steps at batch 128, the best of 10 seeds and 3 rates
# (these settings are read from their released code and our notes on the paper; they are not yet
# checked against the paper's pages). Every model on this page instead shares the book's backbone
# (embedding, RMSNorms, MLP, head), sized to the family's parameter budget, and trains far
# shorter: a comparison with their Table 2 compares the task and the metric, not the architecture
# or the budget. The share of their training this page's runs get:

# %%
DELETANG_SEQUENCES = 1_000_000 * 128  # their steps x batch (the reference code's configuration)
display(Markdown(", ".join(sorted({
    f"{c.optim.steps:,} steps x {c.optim.batch_size} = {c.optim.steps * c.optim.batch_size / DELETANG_SEQUENCES:.2%} "
    f"of their training sequences, at a budget of {f'{c.param_budget:,}' if c.param_budget else 'no fixed number of'} "
    "parameters"
    for c in configs.values()})) + f" (profile `{profile}`)."))

# %% [markdown]
# ## The tasks, with a decoded example each
#
# One training example per task, drawn with the page's seed. The input string is followed by the
# *empty* tokens (`·`) on which the model writes its answer; a scored position is written
# `[·→target]`.

# %%
def decode(batch, i: int, empty: int) -> str:
    x, y, m = batch.inputs[i].tolist(), batch.targets[i].tolist(), batch.mask[i].tolist()
    cells = [("·" if a == empty else str(a)) for a in x]
    return " ".join(f"[{c}→{b}]" if s else c for c, b, s in zip(cells, y, m))


for name, t in tasks.items():
    show_doc(t, f"### `{name}` ({t.level})")
    batch = t.sample("train", 1, seed=seed)
    print(f"length {int(batch.meta['length'][0])}: " + decode(batch, 0, t.empty_token))

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
#
# The training loss per task (only the answer positions count; click a legend entry to pick a run).

# %%
loss_chart(records, width=220, height=180)

# %% [markdown]
# ## Scores
#
# The score is the accuracy on the test lengths averaged over those lengths (each length weighs the
# same), as the reference code's `experiments/example.py` computes it per run; the paper reports the
# maximum over seeds and learning rates and counts 90% as generalising (both per third-party
# summaries of the paper, not verified against it). We pick the learning rate on `val`, never on
# the test lengths: the rate whose runs score best on average over seeds on their own selection
# split (`seqlib.book.report.select_lr`; a run without `val` is chosen on the reported split and the
# line under the table says so). Over the seeds at that rate we show the mean with its 95%
# percentile-bootstrap interval {cite:p}`efron1993bootstrap` (inside $[0, 1]$; none for one seed),
# the median, the best seed (the paper's kind of number) and the solve rate: the seeds that reach
# the 90% line, with the Wilson 95% interval {cite:p}`wilson1927` (`seqlib.stats.summarize_seeds`).
# Scaled accuracy is $(\text{acc} - \text{chance})/(1 - \text{chance})$ of the mean: 0 at chance, 1
# when perfect (the metric of {cite:t}`grazzi2024negative`, §5.1). `val` is in distribution (the
# training lengths). The last column is the floor: the best constant answer (always the same symbol)
# on the test lengths, scored the same way by the evaluator (`seqlib.evaluate.constant_baselines`);
# where the outputs are not balanced, or end with a terminator symbol, it differs from chance.

# %%
summaries, floors, choices = [], {}, []
for name in subtasks:
    runs, card = [r for r in records if r.task == name], tasks[name].scoring  # the card: test length mean
    chosen = select_lr(runs)  # the rate best on each run's selection split (val), as on every page
    if chosen.empty:
        continue
    choices.append(choice_lines(chosen))
    at = [r for r in runs if r.run_id in set(chosen["run_id"])]
    per_seed = pd.concat([run_scores(at, split, card.metric) for split in ("val", "test")])
    summaries.append(summarize_seeds(per_seed, card))
    floor = constant_baselines(tasks[name], ("test",), n=configs[name].run.eval_size, seed=seed)
    floors[name] = round(max(length_mean(g, "test") for _, g in floor.groupby("answer")), 3)
summary = pd.concat(summaries, ignore_index=True) if summaries else pd.DataFrame()
if summary.empty:
    print("no successful run to score")
else:
    scores = seed_cells(summary).drop(columns=["model", "metric"])
    scores.insert(1, "level", scores["task"].map(lambda t: tasks[t].level))
    scores["scaled (mean)"] = [round(scaled_accuracy(m, tasks[t].spec.chance), 3)
                               for t, m in zip(summary["task"], summary["mean"])]
    scores["best constant (test)"] = scores["task"].map(floors).where(scores["split"] == "test", "")
    show_table(scores.set_index(["task", "split"]))
    print("\n".join(choices))

# %% [markdown]
# ## Accuracy by length
#
# Accuracy at each input length, over `val` (lengths seen in training) and `test` (longer ones), at
# the chosen learning rate and averaged over seeds. The dashed line is the longest training length;
# the grey line is chance. A model that learnt the algorithm stays flat across the line.

# %%
curve_rows = []
for entry in summary.drop_duplicates("task").itertuples() if not summary.empty else []:
    sel = frame[(frame["task"] == entry.task) & (frame["lr"] == entry.lr) & (frame["slice_key"] == "length")
                & (frame["metric"] == "accuracy") & frame["split"].isin(["val", "test"])]
    for (split, length), g in sel.groupby(["split", "slice_value"]):
        curve_rows.append({"task": entry.task, "split": split, "length": int(length), "accuracy": g["value"].mean(),
                           "train_max": tasks[entry.task].scoring.train_lengths[1],
                           "chance": tasks[entry.task].scoring.chance})
curve = pd.DataFrame(curve_rows)
if not curve.empty:
    base = alt.Chart(curve)
    line = base.mark_line(point=True).encode(
        x=alt.X("length:Q", title="input length"), y=alt.Y("accuracy:Q", scale=alt.Scale(domain=[0, 1])),
        color=alt.Color("split:N", sort=["val", "test"], legend=bottom_legend()),
        tooltip=["task:N", "split:N", "length:Q", alt.Tooltip("accuracy:Q", format=".3f")])
    boundary = base.mark_rule(strokeDash=[4, 4]).encode(x="max(train_max):Q")
    chance = base.mark_rule(color="grey").encode(y="max(chance):Q")
    display((line + boundary + chance).properties(width=180, height=150).facet(
        facet=alt.Facet("task:N", title=None), columns=facet_columns(180)))

# %%
if not summary.empty:
    test = summary[summary["split"] == "test"]
    parts = [f"`{r.task}` {r.mean:.1%} (scaled {scaled_accuracy(r.mean, tasks[r.task].spec.chance):.2f}; "
             f"best seed {r.best:.1%}; {r.solved:.0f} of {r.n_seeds} seeds at {r.threshold:.0%} or more)"
             for r in test.itertuples()]
    display(Markdown(f"**In this run** `{model}` scored on the test lengths: {'; '.join(parts)}.{profile_note(profile)}"))
