"""The analysis the book's pages share, on the records of the results store (tested in
``tests/test_book_report.py``).

A page reads the records of one profile (:func:`profile_records`: the latest record per task, model,
learning rate and seed), scores every run as its task's scoring card says (:func:`run_scores`:
``Task.scoring``, so no page branches on a task's name), picks a learning rate per (task, model) on
each run's in-distribution selection split, never the headline's split where the record has another
(:func:`select_lr`, the one choice of every page and of the command line; :func:`at_chosen_lr` its
rows, :func:`choice_lines` and :func:`selection_note` its text), and summarises over seeds:
:func:`seqlib.stats.summarize_seeds` gives every page its summary row per (task, model, split, metric)
(mean, median, best, the bootstrap interval in the metric's range, the solve rate with its Wilson
interval), :func:`add_fit` how many of its seeds
fit the training distribution (:func:`fit_note` labels a row whose seeds did not), :func:`seed_cells`
its table cells, :func:`leaderboard` the headline's, :func:`pairwise` the paired tests with Holm's
correction, and :func:`length_curves` the curves. Every function takes and returns plain data frames or
:class:`~seqlib.record.RunRecord` lists, so a chapter keeps only its prose, its calls and its plots.
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterator
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path

import numpy as np
import pandas as pd

from seqlib.config import in_distribution_splits
from seqlib.evaluate import metric_scale, split_metric
from seqlib.record import RunRecord
from seqlib.results import load_records, records_frame
from seqlib.stats import GROUP, SUMMARY_KEYS, best_lr, holm, paired_test, smallest_p, summarize_seeds
from seqlib.tasks import Scoring, Task, get_task, list_tasks

RUN_KEY = ("task", "model", "lr", "seed")


@dataclass
class ProfileRecords:
    """The records of one profile in a store: the latest per :data:`RUN_KEY` (a re-run after a change
    of settings supersedes the earlier record), how many were superseded, and which other profiles
    the store also holds."""

    records: list[RunRecord]
    superseded: int = 0
    other_profiles: list[str] = field(default_factory=list)

    @property
    def ok(self) -> list[RunRecord]:
        return [r for r in self.records if r.status == "ok"]


def latest(records: list[RunRecord]) -> list[RunRecord]:
    """One record per :data:`RUN_KEY`: the one that finished last."""
    newest = {}
    for r in sorted(records, key=lambda r: r.provenance.end_time or ""):
        newest[tuple(getattr(r, k) for k in RUN_KEY)] = r
    return list(newest.values())


def profile_records(store: str | Path, profile: str) -> ProfileRecords:
    """The records of the registered tasks in ``store`` made by ``profile`` (:func:`latest` of them)."""
    known = set(list_tasks())
    records = [r for r in load_records(store) if r.task in known]
    mine = [r for r in records if r.profile == profile]
    kept = latest(mine)
    others = sorted({r.profile for r in records if r.profile is not None} - {profile})
    return ProfileRecords(kept, len(mine) - len(kept), others)


@cache
def _task(task: str, params: str) -> Task:
    return get_task(task, **json.loads(params))


def task_of(record: RunRecord) -> Task:
    """The task instance a record ran (its own task parameters)."""
    return _task(record.task, json.dumps(record.config["task"]["params"], sort_keys=True))


def scoring(record: RunRecord) -> Scoring:
    """The scoring card of the task instance a record ran."""
    return task_of(record).scoring


SCORE_COLUMNS = ["task", "model", "profile", "lr", "seed", "run_id", "status", "split", "slice_key", "metric",
                 "value", "label", "higher_is_better"]


def run_scores(records: list[RunRecord], split: str | None = None, metric: str | None = None) -> pd.DataFrame:
    """One row per successful run: ``metric`` on ``split`` (by default its scoring card's headline, e.g.
    the Chomsky length mean) as a whole-split metric row, as :func:`seqlib.stats.summarize_seeds` reads
    it; ``length_mean_<m>`` metrics as :func:`seqlib.evaluate.split_metric` computes them. Columns
    :data:`SCORE_COLUMNS` (``label`` and ``higher_is_better`` from the card)."""
    rows = []
    for r in records:
        if r.status != "ok":
            continue
        card = scoring(r)
        on, name = split or card.split, metric or card.metric
        rows.append({"task": r.task, "model": r.model, "profile": r.profile, "lr": r.lr, "seed": r.seed,
                     "run_id": r.run_id, "status": "ok", "split": on, "slice_key": "all", "metric": name,
                     "value": split_metric(r.metrics, on, name), "label": card.label,
                     "higher_is_better": card.higher_is_better})
    return pd.DataFrame(rows, columns=SCORE_COLUMNS)


def selection(record: RunRecord) -> tuple[str, str]:
    """(split, metric) that a record's learning rate is chosen on: its own selection split
    (``train.select_split``) and metric (``train.select_metric``, else its card's), except where that
    split is its card's headline and the record holds another in-distribution split
    (:func:`seqlib.config.in_distribution_splits`; ``val`` for every task): then that one, so that no
    rate is chosen on the split it is reported on while the record could say otherwise."""
    split = record.train.get("select_split")
    if split is None:
        raise ValueError(f"record {record.run_id} ({record.task} x {record.model}) has no train.select_split")
    card = scoring(record)
    metric = record.train.get("select_metric") or card.metric
    if split == card.split:
        others = [s for s in in_distribution_splits(task_of(record)) if s not in ("train", split)]
        split = next((s for s in others if not math.isnan(split_metric(record.metrics, s, metric))), split)
    return split, metric


SELECTION_COLUMNS = [*GROUP, "lr", "seed", "run_id", "select_split", "select_metric", "select_value", "split",
                     "metric", "value", "label", "higher_is_better"]


def select_lr(records: list[RunRecord]) -> pd.DataFrame:
    """The learning-rate choice of every page and of the command line. Per (task, model, profile) of the
    successful ``records``: the rate whose mean over seeds of each run's selection score (its
    :func:`selection` split and metric, in the metric's direction) is best (:func:`seqlib.stats.best_lr`),
    and every run at that rate: one row with its selection score (``select_*``) beside its card's
    headline (``split``, ``metric``, ``value``, ``label``, ``higher_is_better``). Columns
    :data:`SELECTION_COLUMNS`; a group without a selection score is left out. ``ValueError`` when the
    runs of a group are chosen on different splits or metrics (their means would not compare)."""
    rows = []
    for r in records:
        if r.status != "ok":
            continue
        card, (on, by) = scoring(r), selection(r)
        rows.append({"task": r.task, "model": r.model, "profile": r.profile, "lr": r.lr, "seed": r.seed,
                     "run_id": r.run_id, "select_split": on, "select_metric": by,
                     "select_value": split_metric(r.metrics, on, by), "split": card.split, "metric": card.metric,
                     "value": split_metric(r.metrics, card.split, card.metric), "label": card.label,
                     "higher_is_better": card.higher_is_better})
    runs = pd.DataFrame(rows, columns=SELECTION_COLUMNS)
    for key, g in runs.groupby(GROUP, dropna=False):
        if len(g[["select_split", "select_metric"]].drop_duplicates()) > 1:
            raise ValueError(f"the runs of {' x '.join(map(str, key))} are chosen on different splits or metrics: "
                             + ", ".join(f"lr {r.lr:g} seed {r.seed} on {r.select_split} {r.select_metric}"
                                         for r in g.itertuples()))
    compared = shared_seeds(runs)
    higher = [metric_scale(m)[2] for m in compared["select_metric"]]
    chosen = runs.merge(best_lr(compared, higher, value="select_value"), on=[*GROUP, "lr"])
    return chosen.sort_values([*GROUP, "seed"], kind="stable").reset_index(drop=True)


def model_sizes(records: list[RunRecord]) -> pd.DataFrame:
    """Per model of the ``ok`` records: its parameters and its decode state (the elements one sequence
    carries from token to token at the length the record measured it, ``measure.state_size``), the
    median over each task's runs, then over the tasks, with the smallest and largest task's value;
    indexed by model, in the records' order. The Results page's and every task page's table."""
    rows = [{"model": r.model, "task": r.task, "parameters": r.measure.get("num_params"),
             "state": r.measure.get("state_size"), "length": r.measure.get("state_size_seq_len")}
            for r in records if r.status == "ok"]
    frame = pd.DataFrame(rows, columns=["model", "task", "parameters", "state", "length"])
    if frame.empty:
        return pd.DataFrame(columns=["tasks", "parameters", "parameters (range)", "decode state",
                                     "decode state (range)", "at length"])
    per_task = frame.groupby(["model", "task"], sort=False)[["parameters", "state", "length"]].median()

    def spread(values: pd.Series) -> str:
        low, high = values.min(), values.max()
        return "" if pd.isna(low) or low == high else f"{low:,.0f} to {high:,.0f}"

    out = per_task.groupby(level="model", sort=False).agg(
        tasks=("parameters", "size"), parameters=("parameters", "median"), parameters_range=("parameters", spread),
        state=("state", "median"), state_range=("state", spread), length=("length", "max"))
    out[["parameters", "state", "length"]] = out[["parameters", "state", "length"]].round().astype("Int64")
    return out.rename(columns={"parameters_range": "parameters (range)", "state": "decode state",
                               "state_range": "decode state (range)", "length": "at length"})


def training_sequences(records: list[RunRecord]) -> float | None:
    """The mean over ``records`` of their training sequences (steps done x batch); None where there is no
    record or one has no step count."""
    done = [r.train.get("steps_done") for r in records]
    if not records or None in done:
        return None
    return sum(d * r.config["optim"]["batch_size"] for d, r in zip(done, records)) / len(records)


def shared_seeds(runs: pd.DataFrame) -> pd.DataFrame:
    """The rows of ``runs`` (one per run) whose seed has a selection score at every rate of its
    (task, model, profile): the rates are compared on the same seeds (a two-stage sweep's second
    stage, or a run that failed, leaves a rate with more seeds than another). A group without such a
    seed keeps every row."""
    scored = runs.dropna(subset=["select_value"])
    keep = []
    for _, g in scored.groupby(GROUP, dropna=False):
        per_rate = [set(seeds) for seeds in g.groupby("lr")["seed"].agg(list)]
        common = set.intersection(*per_rate) if per_rate else set()
        keep.append(g[g["seed"].isin(common)] if common else g)
    return pd.concat(keep) if keep else scored


def second_stage_rate(cfg) -> float | None:
    """The rate at which a two-stage sweep's other seeds run (:func:`seqlib.train.sweep_plan`): the
    :func:`select_lr` choice over the stored records of its first stage, once every one of its runs
    has a record (ok or failed); None before, or when none of them ended ok."""
    from seqlib.train import stored_record, sweep_plan

    records = [stored_record(run) for run in sweep_plan(cfg)]
    if any(r is None for r in records):
        return None
    chosen = select_lr(records)
    return None if chosen.empty else float(chosen["lr"].iloc[0])


def planned_sweep(cfg) -> list:
    """Every run of ``cfg``'s sweep that can be planned now: the first stage, and a two-stage sweep's
    second once its rate is chosen (:func:`second_stage_rate`). The one list that the chapters, the
    cells and the grid plan from."""
    from seqlib.train import second_stage_seeds, sweep_plan

    return sweep_plan(cfg, second_stage_rate(cfg) if second_stage_seeds(cfg) else None)


def at_chosen_lr(frame: pd.DataFrame, chosen: pd.DataFrame) -> pd.DataFrame:
    """The rows of ``frame`` (:func:`seqlib.results.records_frame`) of the runs :func:`select_lr` kept."""
    return frame[frame["run_id"].isin(chosen["run_id"])]


def chosen_on(chosen: pd.DataFrame) -> pd.DataFrame:
    """Per (task, model, profile) of :func:`select_lr` rows: ``select_split``, ``select_metric`` and
    ``select_mean``, the mean over seeds of the selection score at the chosen rate."""
    return chosen.groupby(GROUP, dropna=False).agg(
        select_split=("select_split", "first"), select_metric=("select_metric", "first"),
        select_mean=("select_value", "mean")).reset_index()


def selection_note(row: pd.Series) -> str:
    """The warning of a row (of :func:`select_lr` or :func:`leaderboard`) whose rate was chosen on the
    split it reports; empty otherwise."""
    if row["select_split"] != row["split"]:
        return ""
    return f"rate chosen on the reported split ({row['split']}): optimistic"


def choice_lines(chosen: pd.DataFrame) -> str:
    """One line per (task, model, profile) of :func:`select_lr` rows: the chosen rate, the split and metric
    it was chosen on with the mean over seeds there, and :func:`selection_note`."""
    lines = []
    for _, g in chosen.groupby(GROUP, dropna=False, sort=True):
        r = g.iloc[0]
        note, n = selection_note(r), int(g["select_value"].count())
        lines.append(f"{r['task']} x {r['model']}: learning rate {r['lr']:g}, chosen on {r['select_split']} "
                     f"(mean {r['select_metric']} {g['select_value'].mean():.4g} over {n} "
                     f"seed{'' if n == 1 else 's'})" + (f"; {note}" if note else ""))
    return "\n".join(lines)


NOT_FIT = "did not fit the training distribution"  # the label of a run unsolved on its own validation split


def add_fit(summary: pd.DataFrame, rows: pd.DataFrame, records: list[RunRecord]) -> pd.DataFrame:
    """``summary`` (:func:`seqlib.stats.summarize_seeds` of ``rows``) with ``fit``: how many of each row's
    seeds fit their training distribution (the record's ``train.fit``, :func:`seqlib.train.validate`);
    NaN when a record does not say (written before it was recorded, or a task without a solve line)."""
    keys = [*GROUP, "lr", "seed"]
    fit = pd.DataFrame([{"task": r.task, "model": r.model, "profile": r.profile, "lr": r.lr, "seed": r.seed,
                         "fit": r.train.get("fit")} for r in records], columns=[*keys, "fit"])
    scored = rows[rows["value"].notna()].merge(fit.drop_duplicates(keys, keep="last"), on=keys, how="left")
    counts = scored.groupby(SUMMARY_KEYS, dropna=False)["fit"].agg(
        lambda s: s.sum() if s.notna().all() else math.nan)
    return summary.merge(counts.reset_index(), on=SUMMARY_KEYS, how="left")


def fit_note(row: pd.Series) -> str:
    """The label of a summary row (:func:`add_fit`) whose seeds did not all fit: :data:`NOT_FIT` when none
    did, ``k of n seeds ...`` when k did not; empty when all did or the records do not say. A page
    draws no out-of-distribution conclusion from a labelled row's unfitted seeds."""
    fit, n = row.get("fit"), row["n_seeds"]
    if pd.isna(fit) or fit >= n:
        return ""
    return NOT_FIT if fit == 0 else f"{n - int(fit)} of {n} seeds {NOT_FIT}"


def seed_cells(summary: pd.DataFrame, fmt: str = ".3f") -> pd.DataFrame:
    """The display cells of :func:`seqlib.stats.summarize_seeds` rows: task, model, split, metric, lr,
    seeds and, as text in the format ``fmt``, ``mean [95% CI]`` (the bootstrap interval; the mean alone
    for one seed), ``median``, ``best``, and ``solved`` (``k/n at >= t [low, high]``: the seeds that
    reach the solve threshold t, with the Wilson 95% interval; blank without a threshold); with
    :func:`add_fit`'s column, ``fit`` (``k/n`` seeds that fit the training distribution, ``-`` unknown);
    with :func:`leaderboard`'s, ``selection split`` (the split the rate was chosen on, or
    :func:`selection_note` where that is the reported one) and ``selection mean`` (its mean there)."""

    def value(v) -> str:
        return "-" if pd.isna(v) else format(v, fmt)

    def mean(r) -> str:
        ci = "" if pd.isna(r["ci_low"]) else f" [{value(r['ci_low'])}, {value(r['ci_high'])}]"
        return value(r["mean"]) + ci

    def solved(r) -> str:
        if pd.isna(r["threshold"]) or r["n_seeds"] == 0:
            return ""
        at = ">=" if metric_scale(r["metric"])[2] else "<="
        return (f"{int(r['solved'])}/{r['n_seeds']} at {at} {r['threshold']:g} "
                f"[{r['solve_low']:.2f}, {r['solve_high']:.2f}]")

    def fitted(r) -> str:
        return "-" if pd.isna(r["fit"]) else f"{int(r['fit'])}/{r['n_seeds']}"

    rows = [r for _, r in summary.iterrows()]
    keys = [k for k in SUMMARY_KEYS if k != "profile"]
    return summary[[*keys, "lr"]].assign(**{
        "seeds": summary["n_seeds"], "mean [95% CI]": [mean(r) for r in rows],
        "median": [value(r["median"]) for r in rows], "best": [value(r["best"]) for r in rows],
        "solved": [solved(r) for r in rows], **({"fit": [fitted(r) for r in rows]} if "fit" in summary else {}),
        **({"selection split": [selection_note(r) or r["select_split"] for r in rows],
            "selection mean": [value(r["select_mean"]) for r in rows]} if "select_split" in summary else {})})


def _headlines(records: list[RunRecord]) -> Iterator[tuple[str, Scoring, pd.DataFrame]]:
    """Per task (sorted): its scoring card and its :func:`select_lr` rows (the headline of every model's
    runs at its chosen learning rate)."""
    cards = {r.task: scoring(r) for r in records if r.status == "ok"}
    for task, chosen in select_lr(records).groupby("task", sort=True):
        yield task, cards[task], chosen


def chosen_runs(row: pd.Series, records: list[RunRecord]) -> list[RunRecord]:
    """The successful runs a :func:`leaderboard` row summarises (its task, model and chosen rate)."""
    return [r for r in records if r.status == "ok" and (r.task, r.model, r.lr) == (row["task"], row["model"], row["lr"])]


def leaderboard(records: list[RunRecord]) -> pd.DataFrame:
    """Per (task, model): the headline at the learning rate :func:`select_lr` chose, summarised over
    seeds (:func:`seqlib.stats.summarize_seeds` with the task's card), beside the split and metric the
    rate was chosen on and their mean over the same seeds (``select_split``, ``select_metric``,
    ``select_mean``; :func:`selection_note` flags a rate chosen on the headline's own split). Columns
    :data:`seqlib.stats.SUMMARY_COLUMNS`, ``fit`` (:func:`add_fit`), the card's label and
    higher_is_better, and the three ``select_*``."""
    parts = [add_fit(summarize_seeds(chosen, card), chosen, records)
             .merge(chosen_on(chosen), on=GROUP, how="left")
             .assign(label=card.label, higher_is_better=card.higher_is_better)
             for _, card, chosen in _headlines(records)]
    return pd.concat(parts, ignore_index=True) if parts else pd.DataFrame()


def oriented(board: pd.DataFrame) -> pd.DataFrame:
    """The rows of a :func:`leaderboard` with a mean, on one scale where higher is better (``score``):
    the mean, or 1 - the mean for a score in [0, 1] where lower is better (the glitch rate); an
    unbounded one (LIS's MSE, the text task's bits per byte: :func:`seqlib.evaluate.metric_scale`)
    is left out."""
    if board.empty:
        return board.assign(score=pd.Series(dtype=float))
    bounded = board["metric"].map(lambda m: metric_scale(m)[:2] == (0.0, 1.0))
    kept = board[bounded & board["mean"].notna()].copy()
    kept["score"] = kept["mean"].where(kept["higher_is_better"], 1 - kept["mean"])
    return kept


def state_frontier(records: list[RunRecord]) -> pd.DataFrame:
    """Per (task, model) of the :func:`leaderboard`: its :func:`oriented` score beside its decode state
    (``state``: the median of ``measure.state_size`` over the pair's ``ok`` runs, at ``length``), and
    whether it is on the task's accuracy-state-size frontier (Zoology, arXiv 2312.04927, Fig. 2): no
    model of the task with at most its state scores as high (``on_frontier``). A pair none of whose
    seeds fit its training distribution (``fit`` 0, :func:`add_fit`) is never on it and bounds no one:
    its score says nothing of what its state can hold. Columns task, model, state, length, score, mean,
    label, fit, n_seeds, on_frontier, sorted by task and state."""
    board = oriented(leaderboard(records))
    columns = ["task", "model", "state", "length", "score", "mean", "label", "fit", "n_seeds", "on_frontier"]
    sizes = pd.DataFrame([{"task": r.task, "model": r.model, "state": r.measure.get("state_size"),
                           "length": r.measure.get("state_size_seq_len")} for r in records if r.status == "ok"],
                         columns=["task", "model", "state", "length"])
    if board.empty or sizes.empty:
        return pd.DataFrame(columns=columns)
    sizes = sizes.groupby(["task", "model"], as_index=False)[["state", "length"]].median()
    out = board.merge(sizes, on=["task", "model"]).dropna(subset=["state"]).sort_values(["task", "state", "model"])
    out["on_frontier"] = False
    for _, g in out[out["fit"] != 0].groupby("task"):  # NaN (the records do not say) competes
        best = -math.inf
        for _, same in g.groupby("state", sort=True):  # the smallest states first
            top = same["score"].max()
            out.loc[same.index, "on_frontier"] = (same["score"] == top) & (top > best)
            best = max(best, top)
    return out[columns].reset_index(drop=True)


def capability_cost(board: pd.DataFrame, train: dict | None, decode: dict | None) -> pd.DataFrame:
    """Per model of the :func:`leaderboard` that the efficiency benchmarks measured (``train``: the
    merged models-train record, :func:`seqlib.bench.record.merged_train_record`; ``decode``: the newest
    models-decode record): its mean :func:`oriented` score over the tasks every such model has a score
    on (``tasks``), beside its training tokens/s at the longest length measured for every one of them
    (``train T``) and its decode latency per token at the shortest context (eager, and replayed from a
    CUDA graph where the record has it). The benchmarks size every model to ~100M parameters, not to
    the tasks' budgets: the join compares architectures, not these runs. Indexed by model."""
    scores = oriented(board)
    trained = pd.DataFrame([r for r in (train or {}).get("rows", []) if r.get("tokens_per_s")],
                           columns=["model", "T", "tokens_per_s"])
    decoded = pd.DataFrame([r for r in (decode or {}).get("rows", []) if r.get("ms_per_token")])
    measured = set(trained["model"]) | set(decoded["model"] if not decoded.empty else [])
    scores = scores[scores["model"].isin(measured)]
    if scores.empty:
        return pd.DataFrame()
    models = sorted(scores["model"].unique())
    shared = [t for t, g in scores.groupby("task") if set(g["model"]) == set(models)]
    out = scores[scores["task"].isin(shared)].groupby("model")["score"].agg(["mean", "size"])
    out = out.rename(columns={"mean": "mean score", "size": "tasks"}).reindex(models)
    common_T = [T for T, g in trained.groupby("T") if set(models) & set(trained["model"]) <= set(g["model"])]
    if common_T:
        T = max(common_T)
        out["train T"] = T
        out["train tokens/s"] = trained[trained["T"] == T].set_index("model")["tokens_per_s"].reindex(models)
    if not decoded.empty:
        first = decoded[decoded["context"] == decoded["context"].min()].set_index("model")
        out["decode context"] = decoded["context"].min()
        out["decode ms/token"] = first["ms_per_token"].reindex(models)
        if "ms_per_token_graphed" in first:
            out["decode ms/token (graphed)"] = first["ms_per_token_graphed"].reindex(models)
    return out


ALPHA = 0.05  # the significance level of the pages' tests


def pairwise(records: list[RunRecord], model_a: str, model_b: str) -> pd.DataFrame:
    """Per task, ``model_a`` against ``model_b`` on the headline: the exact sign-flip test over the seeds
    both have at their chosen learning rates (:func:`seqlib.stats.paired_test`), one row per task.

    The rows are one page's family of comparisons: ``Holm p`` is :func:`seqlib.stats.holm` over the
    rows that can reach p < :data:`ALPHA`. A row with n paired seeds whose smallest possible p-value,
    2 / 2**n (:func:`seqlib.stats.smallest_p`), is not below ALPHA (5 or fewer seeds) keeps its p but
    is not tested and says so: it can never be rejected, so leaving it out of the family keeps the
    family-wise error rate (Tarone 1990, "A modified Bonferroni method for discrete data", *Biometrics*
    46) and the other rows their power."""
    rows, winners = [], []  # winners: the better model by the means of a testable row, else None
    for task, card, best in _headlines(records):
        a = best[best["model"] == model_a].set_index("seed")["value"]
        b = best[best["model"] == model_b].set_index("seed")["value"]
        row, winner = {"task": task, "score": card.label}, None
        if a.empty or b.empty:
            row["result"] = "one of the models has no run"
        else:
            res = paired_test(a, b)
            row |= {f"{model_a} mean": res.mean_a, f"{model_b} mean": res.mean_b, "paired seeds": res.n,
                    "p": res.p_value}
            if res.n < 2:
                row["result"] = "not tested: fewer than 2 paired seeds"
            elif smallest_p(res.n) >= ALPHA:
                row["result"] = (f"not tested: {res.n} paired seeds cannot give p < {ALPHA:g} (at best "
                                 f"{smallest_p(res.n):.4g}); no claim either way")
            else:
                winner = model_a if (res.mean_diff > 0) == card.higher_is_better else model_b
        rows.append(row)
        winners.append(winner)
    adjusted = holm([row["p"] if w else math.nan for row, w in zip(rows, winners)])
    for row, winner, adj in zip(rows, winners, adjusted):
        row["Holm p"] = adj
        if winner:
            row["result"] = (f"{winner} better (Holm p < {ALPHA:g})" if adj < ALPHA
                             else f"no significant difference (Holm p >= {ALPHA:g})")
    columns = ["task", "score", f"{model_a} mean", f"{model_b} mean", "paired seeds", "p", "Holm p", "result"]
    return pd.DataFrame(rows, columns=columns).set_index("task")


def length_curves(records: list[RunRecord]) -> pd.DataFrame:
    """Accuracy by length over each task's curve splits (its scoring card's ``curve_splits``), per
    (task, model) at the learning rate :func:`select_lr` chose, averaged over seeds. Columns: task,
    model, length, accuracy, seeds, lr, train_length (the longest training length on the card of the
    model's own runs). Tasks without a length axis or without accuracy (regression) are left out, and
    so is one whose headline is not a score in [0, 1] (the text task's bits per byte: its chapter draws
    its own curves over length and position)."""
    ok = [r for r in records if r.status == "ok"]
    cards = {(r.task, r.model): scoring(r) for r in ok}
    at = at_chosen_lr(records_frame(ok), select_lr(ok))
    rows = []
    for (task, model), g in at.groupby(["task", "model"], sort=True):
        card = cards[task, model]
        if metric_scale(card.metric)[:2] != (0.0, 1.0):
            continue
        g = g[g["split"].isin(card.curve_splits) & (g["slice_key"] == card.length_key)
              & (g["metric"] == "accuracy")]
        for length, cell in g.groupby(g["slice_value"].astype(int)):
            rows.append({"task": task, "model": model, "length": length, "accuracy": cell["value"].mean(),
                         "seeds": cell["seed"].nunique(), "lr": cell["lr"].iloc[0],
                         "train_length": card.train_lengths[1]})
    return pd.DataFrame(rows, columns=["task", "model", "length", "accuracy", "seeds", "lr", "train_length"])


def bits_curves(records: list[RunRecord], splits: tuple[str, ...] = ("test", "test_long")) -> pd.DataFrame:
    """Bits per byte by evaluation length (the text task's ``length`` slice of the loss over ln 2) on
    ``splits`` (the training length's and the long ones, by default the test side), per model at the
    learning rate :func:`select_lr` chose, averaged over seeds. Columns: model, length, bits, seeds, lr.
    The text chapter's curve of every model and the extrapolation findings."""
    ok = [r for r in records if r.status == "ok"]
    columns = ["model", "length", "bits", "seeds", "lr"]
    if not ok:
        return pd.DataFrame(columns=columns)
    at = at_chosen_lr(records_frame(ok), select_lr(ok))
    at = at[(at["slice_key"] == "length") & (at["metric"] == "loss") & at["split"].isin(splits)]
    at = at.assign(bits=at["value"] / math.log(2), length=at["slice_value"].astype(int))
    return (at.groupby(["model", "length"], as_index=False)
            .agg(bits=("bits", "mean"), seeds=("seed", "nunique"), lr=("lr", "first"))[columns])


EXTRAPOLATION_TOLERANCE = 0.01  # a relative change of bits per byte that counts as holding


def extrapolation(curves: pd.DataFrame, tolerance: float = EXTRAPOLATION_TOLERANCE) -> pd.DataFrame:
    """Per model of :func:`bits_curves`: bits per byte at its shortest length (the training length: the
    ``test`` windows) and at its longest, the relative change between them, and whether it
    ``improves`` (falls by more than ``tolerance``), ``holds`` or ``breaks`` (rises by more) past the
    training context; a model evaluated at one length only is left out."""
    rows = []
    for model, g in curves.sort_values("length").groupby("model", sort=False):
        if len(g) < 2:
            continue
        first, last = g.iloc[0], g.iloc[-1]
        change = last["bits"] / first["bits"] - 1
        rows.append({"model": model, "train_length": int(first["length"]), "train_bits": first["bits"],
                     "longest": int(last["length"]), "longest_bits": last["bits"], "change": change,
                     "trend": "improves" if change < -tolerance else "breaks" if change > tolerance else "holds"})
    return pd.DataFrame(rows, columns=["model", "train_length", "train_bits", "longest", "longest_bits", "change",
                                       "trend"])


def log_binned(curves: pd.DataFrame, per_octave: int = 4) -> pd.DataFrame:
    """``curves`` averaged over log-spaced length bins (``per_octave`` per doubling) for drawing; a
    bin never mixes lengths inside and beyond the training length."""
    keys = ["task", "model", "seeds", "lr", "train_length"]
    binned = curves.assign(bin=np.floor(np.log2(curves["length"]) * per_octave),
                           inside=curves["length"] <= curves["train_length"])
    return binned.groupby(keys + ["inside", "bin"], as_index=False)[["length", "accuracy"]].mean()


def inside_beyond(curves: pd.DataFrame) -> pd.DataFrame:
    """Per (task, model): mean accuracy over the lengths up to the training length, over the longer
    ones, and the drop between them."""
    inside = curves["length"] <= curves["train_length"]
    table = (curves.assign(where=inside.map({True: "trained lengths", False: "longer lengths"}))
             .groupby(["task", "model", "where"])["accuracy"].mean().unstack("where"))
    table = table.reindex(columns=["trained lengths", "longer lengths"])
    table["drop"] = table["trained lengths"] - table["longer lengths"]
    return table
