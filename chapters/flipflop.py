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
# # Flip-flop: remembering one bit without glitches
#
# This page is one execution of the chapter for the model in the provenance line.
#
# This page opens with what the stored runs found, for every model of the chapter (generated from
# the records, with the headline figure), then states the task, the protocol and the runs of its
# model.

# %% tags=["parameters"]
model = "hawk"  # any name of `python -m seqlib list`
task = "flipflop"
profile = "smoke"  # "full" on a GPU, "smoke" on a CPU, "tiny" in the tests
seed = 0  # draws the example batch; the training seeds and learning rates are the profile's
stored_only = False  # the grid runner sets True: show the stored records, train nothing

# %% tags=["hide-input"]
import altair as alt
from IPython.display import Markdown, display

from seqlib.book.chapter import (
    load_tasks,
    loss_chart,
    profile_note,
    settings,
    setup,
    show_doc,
    show_runs,
)
from seqlib.book.findings import show_findings
from seqlib.book.report import at_chosen_lr, choice_lines, seed_cells, select_lr
from seqlib.results import records_frame
from seqlib.stats import summarize_seeds
from seqlib.tasks import get_task
from seqlib.tasks.flipflop import IGNORE, ONE, READ, WRITE, ZERO

setup(profile, model=model, task=task, seed=seed)

# %% tags=["hide-input"]
show_findings(task, model, profile)

# %% [markdown]
# ## The task
#
# A flip-flop language {cite:p}`liu2023flipflop` writes bits, ignores noise and reads back the last
# written bit. The rule is trivial, yet in the words of the paper's abstract Transformers trained on
# it "suffer from a long tail of sporadic reasoning errors", *glitches*; what the paper reports in
# detail (a near-zero error in distribution, rare errors on sequences with much rarer or much more
# frequent instructions, a one-layer LSTM that extrapolates perfectly) is on the
# [Flip-flop](../../tasks/flipflop.md) page, taken from third-party summaries and marked there as not
# verified against the paper. The score is therefore the **glitch rate**, the fraction of read bits
# predicted wrongly, reported per split and never averaged across splits: errors are rare, and an
# average over the splits would hide the sparse one. The splits follow the distributions on the card
# of the authors' dataset (`synthseq/flipflop` on Hugging Face).

# %% [markdown]
# ## The protocol

# %%
show_doc(get_task(task))

# %% [markdown]
# ## The configuration of this run
#
# The engine resolves `params/*.yaml` with the profile's overlays (`seqlib.config.load_config`).
# The full profile follows the App. B.2 recipe and evaluates far more sparse sequences than the
# other splits, since glitches are rare; the CPU profiles shorten the sequences and evaluate the
# sparse split on as many sequences as the other splits (their `params/tasks.yaml` overlay clears
# `eval_size_per_split` with an empty mapping); the table gives this run's numbers. The CPU
# profiles also skip the checkpoint, and no run here prints a progress bar (neither changes the
# configuration hash).

# %%
configs, tasks = load_tasks([task], model, profile)
cfg, the_task = configs[task], tasks[task]
settings(cfg, **{"evaluation sequences per split": {s: cfg.run.eval_size_per_split.get(s, cfg.run.eval_size)
                                                    for s in the_task.splits}})

# %% [markdown]
# ## A batch, decoded
#
# The first 64 tokens of two sequences: one from `train` (FFL(0.8)) and one from `val_dense`
# (FFL(0.1)). Instructions are `w`, `r`, `i`, each followed by its bit; the targets are the next
# token, scored only where the instruction is `r`, written `[r→bit]`.

# %%
NAMES = {WRITE: "w", READ: "r", IGNORE: "i", ZERO: "0", ONE: "1"}


def decode(batch, i: int, tokens: int = 64) -> str:
    x, y, m = batch.inputs[i].tolist(), batch.targets[i].tolist(), batch.mask[i].tolist()
    cells = [f"[r→{NAMES[b]}]" if s else NAMES[a] for a, b, s in zip(x, y, m)][:tokens]
    return "".join(c if c.startswith("[") else c + ("" if k % 2 == 0 else " ") for k, c in enumerate(cells))


for split in ("train", "val_dense"):
    batch = the_task.sample(split, 1, seed=seed)
    print(f"{split:9s} ({int(batch.meta['num_reads'][0])} reads): {decode(batch, 0)}")
sparse = the_task.sample("val_sparse", 256, seed=seed)
print(f"val_sparse: {sparse.meta['num_reads'].mean():.2f} reads per sequence on average "
      f"(256 sequences of {the_task.seq_len} tokens)")

# %% [markdown]
# ## Training and evaluation
#
# `run_sweep` trains one run per learning rate and seed of the profile and stores each record in
# the results store, where the [Results](../results.ipynb) chapter reads it. A configuration that
# already has a finished record is not trained again: the stored record is shown, with the commit
# and device that produced it.

# %%
records = show_runs(configs, tasks, stored_only)
frame = records_frame(records)

# %% [markdown]
# ## Training curve
#
# The loss on the read bits of each training batch (click a legend entry to pick a run).

# %%
loss_chart(records, width=420, height=220, title="training loss (read bits)")

# %% [markdown]
# ## Glitch rate per split
#
# The learning rate is the one with the lowest mean glitch rate over seeds on `val`, the training
# distribution (`seqlib.book.report.select_lr`, the choice of the [Results](../results.ipynb) page
# too; a tie, e.g. no glitch at several rates, goes to the smallest rate). Over the seeds
# at that learning rate each row shows the mean with its 95% percentile-bootstrap interval (inside
# $[0, 1]$; none for one seed), the median, the best (lowest) seed and the solve rate: the seeds with
# no glitch at all (perfect extrapolation), with the Wilson 95% interval {cite:p}`wilson1927`
# (`seqlib.stats.summarize_seeds`); next to them the number of evaluated sequences per run (a
# `val_sparse` sequence holds about 3.5 read bits). Zero glitches in $n$ read bits only bounds the
# rate below about $3/n$ (the rule of three), so a glitch rate of 0 on a small evaluation is weak
# evidence.

# %%
SPLITS = ["val", "val_dense", "val_sparse"]
chosen = select_lr(records)
best = at_chosen_lr(frame, chosen)
at = best[(best["slice_key"] == "all") & (best["metric"] == "glitch_rate") & best["split"].isin(SPLITS)]
glitches = summarize_seeds(at, the_task.scoring)
if glitches.empty:
    print("no successful run to show")
else:
    print(choice_lines(chosen))
    cells = seed_cells(glitches, fmt=".3g")  # glitch rates span orders of magnitude
    table = cells.set_index("split").drop(columns=["task", "model", "metric"])
    table.insert(0, "p_i", [the_task.split_p_i[split] for split in table.index])
    table["sequences per run"] = at.groupby("split")["n"].mean().round().astype(int)
    display(table)
    base = alt.Chart(glitches, title="glitch rate per split: mean over seeds, 95% bootstrap interval").encode(
        x=alt.X("split:N", sort=SPLITS))
    bar = base.mark_bar().encode(
        y=alt.Y("mean:Q", title="glitch rate",
                scale=alt.Scale(domain=[0, max(0.5, glitches[["mean", "ci_high"]].max().max())])),
        tooltip=["split:N", alt.Tooltip("mean:Q", format=".4f"), alt.Tooltip("median:Q", format=".4f"),
                 alt.Tooltip("best:Q", format=".4f"), "n_seeds:Q"])
    display((bar + base.mark_errorbar().encode(y="ci_low:Q", y2="ci_high:Q")).properties(width=260, height=200))

# %%
if not glitches.empty:
    parts = "; ".join(f"`{r.split}` {r.mean:.3g} ({r.solved:.0f} of {r.n_seeds} seeds without a glitch)"
                      for r in glitches.itertuples())
    display(Markdown(f"**In this run** `{model}` had glitch rates {parts}.{profile_note(profile)}"))
