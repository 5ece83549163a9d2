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
# # MQAR: multi-query associative recall
#
# This page is one execution of the chapter, for the model named in the provenance line below. It
# shows the protocol as `seqlib` implements it, a decoded batch, then trains and evaluates the
# model with the engine (`seqlib.train.run_sweep`) and shows what the run recorded.
#
# This page opens with what the stored runs found, for every model of the chapter (generated from
# the records, with the headline figure), then states the task, the protocol and the runs of its
# model.

# %% tags=["parameters"]
model = "hawk"  # any name of `python -m seqlib list`
task = "mqar"
profile = "smoke"  # "full" on a GPU, "smoke" on a CPU, "tiny" in the tests
seed = 0  # draws the example batch; the training seeds and learning rates are the profile's
stored_only = False  # the grid runner sets True: show the stored records, train nothing

# %% tags=["hide-input"]
import altair as alt
import pandas as pd
from IPython.display import Markdown, display

from seqlib.book.chapter import (
    curve_frame,
    load_tasks,
    profile_note,
    settings,
    setup,
    show_doc,
    show_runs,
    show_source,
)
from seqlib.book.findings import show_findings
from seqlib.book.plots import bottom_legend
from seqlib.book.report import at_chosen_lr, choice_lines, seed_cells, select_lr
from seqlib.results import records_frame
from seqlib.stats import summarize_seeds
from seqlib.tasks import get_task

setup(profile, model=model, task=task, seed=seed)

# %% tags=["hide-input"]
show_findings(task, model, profile)

# %% [markdown]
# ## The task
#
# A context lists key-value pairs; later, each key comes back once as a query and the model must
# answer with the value that followed it. Multi-query associative recall (MQAR) is the task Zoology
# ({cite:t}`arora2023zoology`, §3) uses to separate attention, which can look the pair up, from
# gated convolutions and recurrences, which must have stored it in a fixed-size state. Zoology's
# Figure 2 has attention near 1.0 at every width while the gated convolutions need the width to grow
# with the sequence length (the values, read from the figure, are on the [MQAR](../../tasks/mqar.md)
# page).

# %% [markdown]
# ## The protocol
#
# The generator follows Zoology's `multiquery_ar` (`HazyResearch/zoology`,
# `zoology/data/multiquery_ar.py`). Its docstring states the protocol and every deviation from the
# reference:

# %%
show_doc(get_task(task))

# %% [markdown]
# ## The configuration of this run
#
# The engine resolves `params/defaults.yaml`, `params/models.yaml` and `params/tasks.yaml` with the
# profile's overlays (`seqlib.config.load_config`). The CPU profiles skip the checkpoint, and no run
# here prints a progress bar (both settings leave the configuration hash unchanged).

# %%
configs, tasks = load_tasks([task], model, profile)
cfg, the_task = configs[task], tasks[task]
settings(cfg, **{"early stop at accuracy": cfg.optim.early_stop_accuracy,
                 "evaluation examples per split": cfg.run.eval_size, "results store": cfg.run.results_dir})

# %% [markdown]
# ## A batch, decoded
#
# Two training examples drawn with the page's seed. Keys are ids below $V/2$, values ids from
# $V/2$ up; the filler between the pairs and the queries is random (`random_non_queries`). A scored
# position is written `[key→value]`: the model reads the key and must output the value there.
# Everything else is unscored.

# %%
batch = the_task.sample("train", 2, seed=seed)


def decode(batch, i: int, per_line: int = 16) -> str:
    """Example ``i`` as lines of ``per_line`` tokens; scored positions as ``[input→target]``."""
    x, y, m = batch.inputs[i].tolist(), batch.targets[i].tolist(), batch.mask[i].tolist()
    cells = [f"[{a}→{b}]" if s else str(a) for a, b, s in zip(x, y, m)]
    return "\n".join(f"{p:4d} | " + " ".join(cells[p:p + per_line]) for p in range(0, len(cells), per_line))


print(decode(batch, 0))
pos = batch.mask[0].nonzero().flatten()
pd.DataFrame({"position": pos.tolist(), "input (query key)": batch.inputs[0, pos].tolist(),
              "target (its value)": batch.targets[0, pos].tolist()})

# %% [markdown]
# ## Training and evaluation
#
# `run_sweep` trains one run per learning rate and seed of the profile and stores each record in
# the results store, where the [Results](../results.ipynb) and
# [Length generalization](../length_generalization.ipynb) chapters read it. A run whose
# configuration already has a finished record is not trained again: the stored record is shown,
# with the commit and device that produced it.

# %%
records = show_runs(configs, tasks, stored_only, stopped_early=True)
frame = records_frame(records)

# %% [markdown]
# ## Training curves
#
# The loss on each training batch (only the scored positions count), and the accuracy on the
# selection split at each evaluation (`run.eval_every`; the CPU profiles evaluate once, at the end).

# %%
def curves(records) -> alt.Chart | None:
    loss, evals = curve_frame(records, "loss_curve"), curve_frame(records, "eval_curve")
    if loss.empty:
        return None
    pick = alt.selection_point(fields=["run"], bind="legend")
    color = alt.Color("run:N", legend=bottom_legend(title="run"))
    opacity = alt.condition(pick, alt.value(1.0), alt.value(0.15))
    left = alt.Chart(loss, title="training loss").mark_line().encode(
        x="step:Q", y=alt.Y("value:Q", title="loss", scale=alt.Scale(type="log")), color=color,
        opacity=opacity, tooltip=["run:N", "step:Q", alt.Tooltip("value:Q", format=".4f")],
    ).add_params(pick).properties(width=260, height=220)
    split = records[0].train["select_split"]
    right = alt.Chart(evals, title=f"accuracy on {split}").mark_line(point=True).encode(
        x="step:Q", y=alt.Y("value:Q", title="accuracy", scale=alt.Scale(domain=[0, 1])), color=color,
        opacity=opacity, tooltip=["run:N", "step:Q", alt.Tooltip("value:Q", format=".3f")],
    ).properties(width=260, height=220)
    return left | right


curves(records)

# %% [markdown]
# ## Accuracy per split
#
# The learning rate is the one with the best mean accuracy over seeds on `val`, in distribution and
# never the headline (`seqlib.book.report.select_lr`; the line above the table names the split, and
# flags a record without `val`, chosen on `test`, as optimistic). Each point of Zoology's plots is
# instead the maximum over its learning-rate sweep of `valid/accuracy`, its test set (in the
# analysis code of `HazyResearch/zoology`). Over the seeds at that learning rate each row shows the
# mean with its 95% percentile-bootstrap interval {cite:p}`efron1993bootstrap` (inside the metric's
# range: $[0, 1]$, and $[0, \infty)$ for the loss; none for one seed), the median, the best seed and, for
# accuracy, the solve rate: the seeds at or above Zoology's 0.99 line (`early_stopping_threshold` in
# `zoology/config.py`) with the Wilson 95% interval {cite:p}`wilson1927`
# (`seqlib.stats.summarize_seeds`). `test_length` holds sequences of 1 to 4 times the training
# length with proportionally more pairs; `test_value` asks for ids never seen in training (it is
# meant for a model trained on `train_value`, which this page does not do, so expect chance there).

# %%
chosen = select_lr(records)
best_rows = at_chosen_lr(frame, chosen)
if best_rows.empty:
    print("no successful run to show")
else:
    print(choice_lines(chosen))
    whole = best_rows[(best_rows["slice_key"] == "all") & best_rows["metric"].isin(["accuracy", "exact_match", "loss"])]
    display(seed_cells(summarize_seeds(whole, the_task.scoring)).drop(columns=["task", "model", "lr"])
            .set_index(["split", "metric"]))

# %% [markdown]
# ## Accuracy by sequence length
#
# The `test_length` split by its sequence length (the `length` slice); the dashed line is
# the training length. Recall over longer contexts with more pairs asks a recurrent model to store
# more in the same state; attention's cost grows with the context instead.

# %%
def by_length(rows: pd.DataFrame, split: str, key: str, train_length: int, metric: str = "accuracy"):
    sel = rows[(rows["split"] == split) & (rows["slice_key"] == key) & (rows["metric"] == metric)].copy()
    if sel.empty:
        return None
    sel["length"] = sel["slice_value"].astype(int)
    curve = sel.groupby("length", as_index=False)["value"].mean()
    line = alt.Chart(curve).mark_line(point=True).encode(
        x=alt.X("length:Q", title="sequence length", scale=alt.Scale(type="log", base=2)),
        y=alt.Y("value:Q", title=metric, scale=alt.Scale(domain=[0, 1])),
        tooltip=["length:Q", alt.Tooltip("value:Q", format=".3f")],
    )
    rule = alt.Chart(pd.DataFrame({"length": [train_length]})).mark_rule(strokeDash=[4, 4]).encode(x="length:Q")
    return (line + rule).properties(width=360, height=220, title=f"{metric} on {split} by length")


by_length(best_rows, "test_length", the_task.scoring.length_key, the_task.scoring.train_lengths[1])

# %% [markdown]
# ## How far back the answers lie
#
# A query is answered by the value that followed its key in the context, and `value_distances`
# measures how many tokens back that value lies for every query of a `test` batch. A local
# attention layer with window $W$ reads the value from the query only when the distance is at most
# $W$; Zoology's slot law puts most queries close to the context, so the share within $W$ is the
# accuracy of a model that recalls inside its window and nowhere else. Stacked windows can relay
# information further (layer $\ell$ sees $\ell W$ tokens back), and a recurrent layer could carry
# it across any distance, if its state holds it.

# %%
show_source(type(the_task).value_distances)
show_source(type(the_task).window_ceiling)
window = cfg.model.window if "local_attention" in cfg.model.block_types else None
spans = sorted({the_task.seq_len // 4, the_task.seq_len // 2, 3 * the_task.seq_len // 4} | ({window} if window else set()))
share = the_task.window_ceiling(spans, seed=seed)
display(pd.DataFrame({"distance at most": spans,
                      "share of test queries": [f"{share[w]:.3f}" for w in spans]}).set_index("distance at most"))
if window:
    display(Markdown(f"`{model}` has local attention with window {window}: {share[window]:.1%} "
                     f"of the test queries have their value inside one window."))

# %%
if not best_rows.empty:
    acc = best_rows[(best_rows["split"] == "test") & (best_rows["slice_key"] == "all")
                    & (best_rows["metric"] == "accuracy")]["value"].mean()
    display(Markdown(f"**In this run** `{model}` recalled {acc:.1%} of the queried values on `test` "
                     f"(chance is {the_task.spec.chance:.2%}).{profile_note(profile)}"))


# %% [markdown]
# ## Cells: Zoology's model, its width × length sweep and Griffin's window
#
# The runs above are one configuration per model. `params/grid.yaml` declares *cells* on this
# chapter's entry: variants of that configuration that the grid trains as runs of their own (after
# every other task's runs), each with its own configuration hash and record, kept in a store of
# their own (`<results_dir>/cells/`) so that no other page counts them (`seqlib.book.cells`):
#
# * `zoology`: Zoology's model for MQAR ({cite:t}`arora2023zoology`, Figure 2; `HazyResearch/zoology`,
#   `zoology/model.py`): two mixer layers with no MLP (its `state_mixer` is the identity), at one
#   width, $d = 128$, for every model. Zoology compares models at an equal width, not at an equal
#   parameter budget as the `book` profile's runs above do, so the cell's models differ in
#   parameters. Its data is
#   Figure 2's ($V = 8192$, `random_non_queries=False`), its rates Zoology's four, its batch Zoology's
#   256 at $L = 256$. A 2-layer Griffin is a recurrent block then a local-attention block (its 2:1
#   pattern over two layers would hold no attention). The mixers are ours, as in the runs above:
#   multi-query attention with RoPE where Zoology's attention has one head and learned positions,
#   RMSNorm, no embedding dropout, our schedule. Its step cap is the profile's (the table below
#   gives it), set to as many training sequences as the runs above see.
# * `sweep`: Zoology's Figure 2 grid, $d \in \{64, 128, 256, 512\}$ × $(L, D) \in \{(64, 4), (128, 8),
#   (256, 16), (512, 64)\}$ with Zoology's batch per length, on Zoology's model; Based
#   ({cite:t}`arora2024based`, Figure 2) plots such runs against the state they keep.
# * `window`: Griffin's local-attention window $W \in \{16, 32, 64, 128, 256\}$ on the backbone
#   above, to test the reading of the last section: if recall stops at the window's reach, accuracy
#   follows the ceiling `window_ceiling` predicts.
#
# Each profile trains the cells `grid.yaml` names for it; the table lists this profile's, with
# every setting each lays over the runs above (step caps included) and how many of its runs have a
# record. Every cell's rate is chosen on `val` as every page
# chooses (`seqlib.book.report.select_lr`), and `test` is reported. A section whose cells have no
# record says so: the cells train on the GPU (`make run-all`), and no number below comes from
# anything but a record, except the predicted ceilings, which the generator gives.

# %%
import json

from seqlib.book.cells import by_cell, entry_plan, scores, window_ceilings
from seqlib.book.report import planned_sweep

cell_runs = entry_plan(task, profile)
cell_scores = scores(by_cell(cell_runs))
if cell_runs:
    declared = {}
    for run in cell_runs:
        declared.setdefault(run.cell.name, (run.cell, set()))[1].add(run.config.model.name)
    recorded = cell_scores.groupby("cell")[["runs", "recorded"]].sum()
    display(pd.DataFrame([{"cell": name, "sets": ", ".join(f"{k}={json.dumps(v)}" for k, v in cell.settings.items()),
                           "models": len(models), "runs": recorded.loc[name, "runs"],
                           "with a record": recorded.loc[name, "recorded"]}
                          for name, (cell, models) in declared.items()]).set_index("cell"))
    left_out = {cell.family: cell.why for cell, models in declared.values() if cell.why and model not in models}
    for family, why in left_out.items():
        display(Markdown(f"**The `{profile}` profile trains the `{family}` cells without {model}**: {why}."))
else:
    display(Markdown(f"**The `{profile}` profile trains no cells**: `params/grid.yaml` declares them for "
                     "the `full` and `book` profiles, so the sections below are empty here."))


def no_records(family: str) -> bool:
    """Whether the cells of ``family`` have no record yet (then a sentence says so)."""
    rows = cell_scores[cell_scores["family"] == family]
    if rows.empty or rows["recorded"].sum() == 0:
        planned = f"none of its {rows['runs'].sum()} runs has a record yet" if len(rows) else "this profile has none"
        display(Markdown(f"**No record of the `{family}` cells** ({planned}): they train on the GPU with "
                         "`make run-all`; nothing is shown until they do."))
        return True
    return False


# %% [markdown]
# ### Zoology's cell beside ours
#
# Per model, the rate chosen on `val` and the mean `test` accuracy over its seeds there, with the
# model each configuration built (the runs above are sized to the task's parameter budget), its
# parameters and its decode state. The row `ours` is this page's runs.

# %%
if not no_records("zoology"):
    ours = scores({("ours", model): [run for c in configs.values() for run in planned_sweep(c)]})
    both = pd.concat([ours, cell_scores[cell_scores["family"] == "zoology"]], ignore_index=True)
    display(both[both["recorded"] > 0][["cell", "model", "d_model", "n_layers", "blocks", "mlp_width", "num_params",
                                        "state_size", "lr", "seeds", "select_value", "value"]]
            .rename(columns={"select_value": "val accuracy", "value": "test accuracy"})
            .set_index(["model", "cell"]).sort_index())

# %% [markdown]
# ### Accuracy against state size
#
# Each point is one cell of the sweep and one model, or Zoology's cell (the sweep's configuration
# at $d = 128$, $L = 256$): its `test` accuracy at the rate chosen on `val`, against the decode state the model keeps after the longest sequence it was evaluated on
# (elements per sequence, Zoology's `state_size` accounting: the KV cache of attention grows with
# the sequence, a recurrent state does not). Lines join the widths of one model at one length.
# This page's model is drawn in full, the others faded.

# %%
if not no_records("sweep"):
    sweep = (cell_scores[cell_scores["family"].isin(["sweep", "zoology"]) & (cell_scores["recorded"] > 0)]
             .drop_duplicates(["model", "d_model", "seq_len"]).copy())  # full: zoology is sweep-d128-L256
    sweep["this page"] = sweep["model"] == model
    points = alt.Chart(sweep).encode(
        x=alt.X("state_size:Q", title="decode state (elements per sequence)", scale=alt.Scale(type="log")),
        y=alt.Y("value:Q", title="test accuracy", scale=alt.Scale(domain=[0, 1])),
        color=alt.Color("model:N"), detail="seq_len:N",
        opacity=alt.condition(alt.datum["this page"], alt.value(1.0), alt.value(0.3)),
        tooltip=["model:N", "cell:N", "d_model:Q", "seq_len:Q", "num_kv_pairs:Q", "state_size:Q", "lr:Q",
                 alt.Tooltip("select_value:Q", title="val accuracy", format=".3f"),
                 alt.Tooltip("value:Q", title="test accuracy", format=".3f")])
    display((points.mark_line() + points.mark_point(filled=True).encode(shape=alt.Shape("seq_len:N", title="L")))
            .properties(width=420, height=260, title="MQAR sweep: accuracy against state size"))

# %% [markdown]
# ### Griffin's window against the predicted ceiling
#
# Per window, the ceiling `window_ceiling` predicts on `test` (the share of its queries whose value
# lies within the window: what a model recalls that reads values only through one window) and, where
# the runs have records, Griffin's `test` accuracy at the rate chosen on `val`. Above the ceiling,
# the recurrent blocks carry what the window cannot reach.

# %%
ceilings = window_ceilings(cell_runs)
if not ceilings.empty:
    measured = ceilings.merge(cell_scores[["cell", "model", "recorded", "value"]], on=["cell", "model"])
    display(measured.rename(columns={"value": "test accuracy"}).set_index(["model", "window"]))
    if not no_records("window"):
        base = alt.Chart(measured).encode(x=alt.X("window:Q", scale=alt.Scale(type="log", base=2)))
        display((base.mark_line(strokeDash=[4, 4]).encode(y=alt.Y("predicted ceiling:Q", title="accuracy",
                                                                  scale=alt.Scale(domain=[0, 1])))
                 + base.mark_point(filled=True).encode(y="value:Q", color="model:N",
                                                       tooltip=["window:Q", "value:Q", "predicted ceiling:Q"]))
                .properties(width=360, height=220, title="test accuracy (points) and the predicted ceiling (dashed)"))
else:
    no_records("window")
