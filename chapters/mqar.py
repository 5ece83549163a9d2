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
# A context lists key-value pairs; later, each key comes back once as a query and the model must
# answer with the value that followed it. Multi-query associative recall (MQAR) is the task Zoology
# ({cite:t}`arora2023zoology`, §3) uses to separate attention, which can look the pair up, from
# gated convolutions and recurrences, which must have stored it in a fixed-size state. Zoology's
# Figure 2 has attention near 1.0 at every width while the gated convolutions need the width to grow
# with the sequence length (the values, read from the figure, are on the [MQAR](../../tasks/mqar.md)
# page).
#
# This page is one execution of the chapter, for the model named in the provenance line below. It
# shows the protocol as `seqlib` implements it, a decoded batch, then trains and evaluates the
# model with the engine (`seqlib.train.run_sweep`) and shows what the run recorded.

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
from seqlib.book.report import at_best_lr, seed_cells
from seqlib.results import records_frame
from seqlib.stats import summarize_seeds
from seqlib.tasks import get_task

setup(profile, model=model, task=task, seed=seed)

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
    color = alt.Color("run:N", title="run")
    opacity = alt.condition(pick, alt.value(1.0), alt.value(0.15))
    left = alt.Chart(loss, title="training loss").mark_line().encode(
        x="step:Q", y=alt.Y("value:Q", title="loss", scale=alt.Scale(type="log")), color=color,
        opacity=opacity, tooltip=["run:N", "step:Q", alt.Tooltip("value:Q", format=".4f")],
    ).add_params(pick).properties(width=300, height=220)
    split = records[0].train["select_split"]
    right = alt.Chart(evals, title=f"accuracy on {split}").mark_line(point=True).encode(
        x="step:Q", y=alt.Y("value:Q", title="accuracy", scale=alt.Scale(domain=[0, 1])), color=color,
        opacity=opacity, tooltip=["run:N", "step:Q", alt.Tooltip("value:Q", format=".3f")],
    ).properties(width=300, height=220)
    return left | right


curves(records)

# %% [markdown]
# ## Accuracy per split
#
# The learning rate is the one with the best mean accuracy over seeds on `test` (each point of
# Zoology's plots is the maximum of `valid/accuracy` over its learning-rate sweep, in the analysis
# code of `HazyResearch/zoology`). Over the seeds at that learning rate each row shows the mean with
# its 95% percentile-bootstrap interval {cite:p}`efron1993bootstrap` (inside the metric's range:
# $[0, 1]$, and $[0, \infty)$ for the loss; none for one seed), the median, the best seed and, for
# accuracy, the solve rate: the seeds at or above Zoology's 0.99 line (`early_stopping_threshold` in
# `zoology/config.py`) with the Wilson 95% interval {cite:p}`wilson1927`
# (`seqlib.stats.summarize_seeds`). `test_length` holds sequences of 1 to 4 times the training
# length with proportionally more pairs; `test_value` asks for ids never seen in training (it is
# meant for a model trained on `train_value`, which this page does not do, so expect chance there).

# %%
best_rows = at_best_lr(frame, "test", "accuracy") if len(records) else frame
if best_rows.empty:
    print("no successful run to show")
else:
    print(f"learning rate {best_rows['lr'].iloc[0]:g}")
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
distances = type(the_task).value_distances(the_task.sample("test", 1024, seed=seed))
window = cfg.model.window if "local_attention" in cfg.model.block_types else None
spans = sorted({the_task.seq_len // 4, the_task.seq_len // 2, 3 * the_task.seq_len // 4} | ({window} if window else set()))
display(pd.DataFrame({"distance at most": spans,
                      "share of test queries": [f"{(distances <= w).mean():.3f}" for w in spans]}).set_index("distance at most"))
if window:
    display(Markdown(f"`{model}` has local attention with window {window}: {(distances <= window).mean():.1%} "
                     f"of the test queries have their value inside one window."))

# %%
if not best_rows.empty:
    acc = best_rows[(best_rows["split"] == "test") & (best_rows["slice_key"] == "all")
                    & (best_rows["metric"] == "accuracy")]["value"].mean()
    display(Markdown(f"**In this run** `{model}` recalled {acc:.1%} of the queried values on `test` "
                     f"(chance is {the_task.spec.chance:.2%}).{profile_note(profile)}"))
