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
# # Language modelling on real text: bits per byte
#
# This page is one execution of the chapter for the model in the provenance line.
#
# This page opens with what the stored runs found, for every model of the chapter (generated from
# the records), then states the corpus, the protocol and the runs of its model: the learning curve,
# bits per byte in and past the training context, per position and per source, and the model at
# the chapter's second budget.

# %% tags=["parameters"]
model = "hawk"  # any name of `python -m seqlib list`
task = "text"
profile = "smoke"  # "book" or "full" on a GPU, "smoke" on a CPU, "tiny" in the tests
seed = 0  # draws the example window; the training seeds and learning rates are the profile's
stored_only = False  # the grid runner sets True: show the stored records, train nothing

# %% tags=["hide-input"]
import math

import altair as alt
import pandas as pd
from IPython.display import Markdown, display

from seqlib import corpus
from seqlib.book.cells import by_cell, entry_plan, scores
from seqlib.book.chapter import (
    load_tasks,
    loss_chart,
    profile_note,
    settings,
    setup,
    show_doc,
    show_runs,
    show_table,
)
from seqlib.book.findings import show_findings, store_of
from seqlib.book.plots import bottom_legend
from seqlib.book.report import at_chosen_lr, bits_curves, choice_lines, profile_records, seed_cells, select_lr
from seqlib.evaluate import POSITION_KEY
from seqlib.results import records_frame
from seqlib.stats import summarize_seeds
from seqlib.tasks import get_task
from seqlib.tasks.text import DOC

setup(profile, model=model, task=task, seed=seed)

# %% tags=["hide-input"]
show_findings(task, model, profile)

# %% [markdown]
# ## The corpus
#
# No internet reaches the machines this book runs on, so the text comes from two Debian packages,
# pinned by version and by the sha256 of their `.deb` (`seqlib.corpus`, built by `make corpus`):
# the Collaborative International Dictionary of English (GCIDE, its 1913 Webster entries and
# later additions) and the reStructuredText sources of the Python 3.11 documentation. A document is
# a dictionary entry or a documentation file, and each goes whole to train, val or test by a hash
# of its name: no split sees a line of another's documents. The table is this machine's corpus, read
# from its manifest.

# %%
manifest = corpus.load_manifest()
packages = pd.DataFrame(manifest["packages"]).set_index("source")[["package", "version", "licence"]]
packages["licence"] = packages["licence"].str.split(" \\(").str[0]
sizes = pd.DataFrame({split: {"bytes": info["bytes"], **{f"{s} documents": n for s, n in info["documents"].items()}}
                      for split, info in manifest["splits"].items()}).T
display(packages)
display(sizes)
print(f"split rule: {manifest['split_rule']}\ncorpus sha256: {manifest['corpus_sha256']}")

# %% [markdown]
# ## The protocol

# %%
show_doc(get_task(task))

# %% [markdown]
# ## The configuration of this run
#
# The engine resolves `params/*.yaml` with the profile's overlays (`seqlib.config.load_config`): the
# model is sized to the profile's parameter budget (the `book` profile: about 5M parameters, eight
# blocks), trains on windows of the training length and is evaluated on `val` and `test` windows of
# that length and, for extrapolation, on the long splits' lengths.

# %%
configs, tasks = load_tasks([task], model, profile)
cfg, the_task = configs[task], tasks[task]
settings(cfg, **{"bytes per step": cfg.optim.batch_size * the_task.seq_len,
                 "bytes seen": cfg.optim.batch_size * the_task.seq_len * cfg.optim.steps})

# %% [markdown]
# ## A window, as text
#
# The first 300 bytes of one `val` window (the document token, which starts each document, is shown
# as `¶`; other bytes decode as UTF-8, with replacement characters where a window cuts a character).

# %%
window = the_task.sample("val", 1, seed=seed).inputs[0].tolist()[:300]
pieces = bytes(t if t != DOC else 0 for t in window).split(b"\0")  # the document token: no byte of the corpus
print("¶".join(piece.decode("utf-8", errors="replace") for piece in pieces))

# %% [markdown]
# ## Training and evaluation
#
# `run_sweep` trains one run per learning rate and seed of the profile and stores each record in
# the results store. A configuration that already has a finished record is not trained again: the
# stored record is shown, with the commit and device that produced it.

# %%
records = show_runs(configs, tasks, stored_only)
frame = records_frame(records)
ok = [r for r in records if r.status == "ok"]

# %% [markdown]
# ## Learning curve
#
# The training loss of each batch (nats per byte), and bits per byte on `val` at each evaluation
# against the bytes the run had trained on.

# %%
loss_chart(records, width=420, height=200, title="training loss (nats per byte)")

# %%
seen = the_task.seq_len * cfg.optim.batch_size
curve = pd.DataFrame([{"run": f"lr={r.lr:g} seed={r.seed}", "bytes seen": step * seen, "bits per byte": v}
                      for r in ok for step, v in r.train["select_curve"]])
if curve.empty:
    print("no successful run to show")
else:
    display(alt.Chart(curve, title="val bits per byte against bytes seen").mark_line(point=True).encode(
        x=alt.X("bytes seen:Q", scale=alt.Scale(type="log")), y=alt.Y("bits per byte:Q", scale=alt.Scale(zero=False)),
        color="run:N", tooltip=["run:N", "bytes seen:Q", alt.Tooltip("bits per byte:Q", format=".4f")],
    ).properties(width=420, height=200))

# %% [markdown]
# ## Bits per byte
#
# The learning rate is the one with the lowest mean over seeds of bits per byte on `val`
# (`seqlib.book.report.select_lr`, the choice of every page). At that rate each row shows the mean
# over seeds with its 95% percentile-bootstrap interval (none for one seed), the median and the best
# seed (`seqlib.stats.summarize_seeds`); `test` is the headline, `val` is where the rate was chosen.

# %%
chosen = select_lr(records)
best = at_chosen_lr(frame, chosen)
at = best[(best["slice_key"] == "all") & (best["metric"] == "bits") & best["split"].isin(["val", "test"])]
bits = summarize_seeds(at, the_task.scoring)
if bits.empty:
    print("no successful run to show")
else:
    print(choice_lines(chosen))
    display(seed_cells(bits, fmt=".4f").set_index("split").drop(columns=["task", "model", "metric"]))

# %% [markdown]
# ## Past the training context
#
# Bits per byte by evaluation length, at the chosen rate and averaged over seeds: the training length
# (`test`, `val`) and the long splits' lengths (`test_long`, `val_long`), every window of a length
# scored at all its positions. A model that uses the longer context gets better with length; one
# that breaks past its training length gets worse (Griffin's Fig. 5 shows the first for Hawk and
# Griffin and the second for its Transformer baseline, in the paper's setting). The second chart is
# the curve over position inside the long windows, by bucket of positions: where in a window the
# bytes are predicted better.

# %%
def bits_of(rows: pd.DataFrame) -> pd.DataFrame:
    """Mean over seeds of bits per byte (loss / ln 2 where a slice carries the loss only)."""
    rows = rows.assign(value=rows["value"].where(rows["metric"] == "bits", rows["value"] / math.log(2)))
    return rows.groupby(["split", "slice_value"], as_index=False).agg(bits=("value", "mean"), seeds=("seed", "nunique"))


by_length = bits_of(best[(best["slice_key"] == "length") & (best["metric"] == "loss")])
by_position = bits_of(best[(best["slice_key"] == POSITION_KEY) & (best["metric"] == "bits")
                           & best["split"].isin(["test", "test_long"])])
if by_length.empty:
    print("no successful run to show")
else:
    by_length["length"] = by_length["slice_value"].astype(int)
    by_length["split"] = by_length["split"].str.removesuffix("_long")
    display(alt.Chart(by_length, title="bits per byte by evaluation length").mark_line(point=True).encode(
        x=alt.X("length:Q", scale=alt.Scale(type="log", base=2)), y=alt.Y("bits:Q", scale=alt.Scale(zero=False)),
        color="split:N", tooltip=["split:N", "length:Q", alt.Tooltip("bits:Q", format=".4f"), "seeds:Q"],
    ).properties(width=420, height=200))
    by_position["start"] = by_position["slice_value"].str.split("-").str[0].astype(int)
    display(alt.Chart(by_position, title="bits per byte by position in the window (bucket start)").mark_line(
        point=True).encode(
        x=alt.X("start:Q", title="position (bucket start)", scale=alt.Scale(type="symlog")),
        y=alt.Y("bits:Q", scale=alt.Scale(zero=False)), color="split:N",
        tooltip=["split:N", "slice_value:N", alt.Tooltip("bits:Q", format=".4f"), "seeds:Q"],
    ).properties(width=420, height=200))

# %% [markdown]
# ## Every model past the training context
#
# The same curve for every model of the chapter whose runs are stored under this profile (this
# page's model in the legend's first click), each at its own chosen rate and averaged over its seeds:
# Griffin's Fig. 5 in miniature. A model's curve ends where its evaluation ended.

# %%
stored = [r for r in profile_records(store_of(profile, task, model), profile).records if r.task == task]
curves = bits_curves(stored)
if curves.empty:
    print("no stored run of this chapter under this profile")
else:
    pick = alt.selection_point(fields=["model"], bind="legend", value=[{"model": model}])
    display(alt.Chart(curves, title="test bits per byte by evaluation length, every model").mark_line(
        point=True).encode(
        x=alt.X("length:Q", scale=alt.Scale(type="log", base=2)), y=alt.Y("bits:Q", scale=alt.Scale(zero=False)),
        color=alt.Color("model:N", legend=bottom_legend()), opacity=alt.condition(pick, alt.value(1.0), alt.value(0.25)),
        tooltip=["model:N", "length:Q", alt.Tooltip("bits:Q", format=".4f"), "seeds:Q"],
    ).add_params(pick).properties(width=420, height=240))

# %% [markdown]
# ## Per source
#
# The dictionary's entries are short and formulaic; the documentation is long prose with code. Bits
# per byte of the `test` windows by the source each window starts in.

# %%
sources = bits_of(best[(best["slice_key"] == "source") & (best["metric"] == "loss") & (best["split"] == "test")])
if sources.empty:  # the evaluator keeps no slice that splits the windows as the length does: one source
    print("no source slice: every evaluated test window started in one source" if ok else "no successful run to show")
else:
    show_table(sources.rename(columns={"slice_value": "source"}).drop(columns="split"))

# %% [markdown]
# ## The second budget
#
# The grid's `large` cell trains the same model at about four times the parameters (the `book`
# profile: about 20M) on the same bytes, seed 0 at one rate: a scaling point, not a rate choice.
# Its record lies in the cells store; the row says what it built and scored.

# %%
cell = scores({key: cfgs for key, cfgs in by_cell(entry_plan(task, profile)).items() if key[1] == model})
if cell.empty:
    print(f"the {profile} profile trains no second budget")
else:
    show_table(cell[["cell", "runs", "recorded", "d_model", "n_layers", "num_params", "lr", "split", "metric", "value"]])

# %%
if not bits.empty:
    test = bits[bits["split"] == "test"].iloc[0]
    longest = by_length[by_length["split"] == "test"].sort_values("length")
    trend = (f"; at {longest['length'].iloc[-1]:,} bytes, {longest['bits'].iloc[-1]:.4f} bits per byte against "
             f"{longest['bits'].iloc[0]:.4f} at the training length {longest['length'].iloc[0]:,}"
             if len(longest) > 1 else "")
    display(Markdown(f"**In this run** `{model}` reached {test['mean']:.4f} bits per byte on `test` "
                     f"(mean of {test['n_seeds']} seed(s) at lr {test['lr']:g}){trend}.{profile_note(profile)}"))

# %% [markdown]
# ## Downstream benchmarks
#
# LAMBADA, HellaSwag, PIQA and the other zero-shot benchmarks of the language-modelling literature
# need their data sets, which cannot be fetched here, so this book reports none. The hook that
# scores them is `python -m seqlib downstream` (`seqlib.downstream`): given a JSON-lines file of
# `{"context": ..., "choices": [...], "answer": i}` items it scores a stored run of this task by
# the log-likelihood of each choice's bytes after the context (accuracy by the total and by the
# per-byte log-likelihood; for a one-choice item, whether greedy decoding writes it). LAMBADA becomes
# one-choice items (the passage up to its last word, then that word); a multiple-choice benchmark
# keeps its endings as the choices. A user with internet would convert a benchmark to that form and
# run, for example:
#
# ```bash
# python -m seqlib downstream --run <run id> --items lambada.jsonl --json lambada-scores.json
# ```
