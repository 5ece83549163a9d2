"""The analysis the book's pages share, on the records of the results store (tested in
``tests/test_book_report.py``).

A page reads the records of one profile (:func:`profile_records`: the latest record per task, model,
learning rate and seed), scores every run as its task's scoring card says (:func:`run_scores`:
``Task.scoring``, so no page branches on a task's name), picks a learning rate per (task, model) on a
split (:func:`at_best_lr`), and summarises over seeds (:func:`split_cells`, :func:`leaderboard`,
:func:`pairwise`, :func:`length_curves`). Every function takes and returns plain data frames or
:class:`~seqlib.record.RunRecord` lists, so a chapter keeps only its prose, its calls and its plots.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path

import numpy as np
import pandas as pd

from seqlib.evaluate import split_metric
from seqlib.record import RunRecord
from seqlib.results import load_records, records_frame
from seqlib.stats import best_over_lr, compare, mean_ci, summarize_seeds
from seqlib.tasks import Scoring, get_task, list_tasks

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
def _card(task: str, params: str) -> Scoring:
    return get_task(task, **json.loads(params)).scoring


def scoring(record: RunRecord) -> Scoring:
    """The scoring card of the task instance a record ran (its own task parameters)."""
    return _card(record.task, json.dumps(record.config["task"]["params"], sort_keys=True))


SCORE_COLUMNS = ["task", "model", "profile", "lr", "seed", "run_id", "status", "split", "slice_key", "metric",
                 "value", "label", "higher_is_better"]


def run_scores(records: list[RunRecord], split: str | None = None, metric: str | None = None) -> pd.DataFrame:
    """One row per successful run: ``metric`` on ``split`` (by default its scoring card's headline, e.g.
    the Chomsky length mean) as a whole-split metric row, so :func:`seqlib.stats.best_over_lr` picks
    on it; ``length_mean_<m>`` metrics as :func:`seqlib.evaluate.split_metric` computes them. Columns
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


def at_best_lr(frame: pd.DataFrame, split: str, metric: str, maximize: bool = True) -> pd.DataFrame:
    """The successful rows of ``frame`` (one task and model) at the learning rate whose mean ``metric``
    on ``split`` over seeds is best; empty when no run has it."""
    best = best_over_lr(frame, split, metric, maximize)
    if best.empty:
        return frame.iloc[0:0]
    return frame[(frame["status"] == "ok") & (frame["lr"] == best["lr"].iloc[0])]


def interval(values) -> str:
    """``mean [low, high] (n=k)`` over seeds (the interval only with two or more values)."""
    mean, low, high = mean_ci(values)
    ci = "" if pd.isna(low) else f" [{low:.3f}, {high:.3f}]"
    return f"{mean:.3f}{ci} (n={len(values)})"


def split_cells(rows: pd.DataFrame, metrics: list[str]) -> pd.DataFrame:
    """Whole-split ``metrics`` of ``rows`` (the runs at one learning rate) as :func:`interval` cells,
    one row per split."""
    whole = rows[(rows["slice_key"] == "all") & rows["metric"].isin(metrics)]
    cells = {}
    for (split, metric), g in whole.groupby(["split", "metric"]):
        cells.setdefault(split, {})[metric] = interval(g["value"])
    return pd.DataFrame(cells).T.reindex(columns=metrics)


def leaderboard(records: list[RunRecord]) -> pd.DataFrame:
    """Per (task, model): the headline at the learning rate chosen on it, summarised over seeds.
    Columns of :func:`seqlib.stats.summarize_seeds` plus split, metric (the card's label) and
    higher_is_better."""
    scores = run_scores(records)
    parts = []
    for _, g in scores.groupby("task", sort=True):
        card = g.iloc[0]
        best = best_over_lr(g, card["split"], card["metric"], bool(card["higher_is_better"]))
        if not best.empty:
            parts.append(summarize_seeds(best).assign(split=card["split"], metric=card["label"],
                                                      higher_is_better=bool(card["higher_is_better"])))
    return pd.concat(parts, ignore_index=True) if parts else pd.DataFrame()


def pairwise(records: list[RunRecord], model_a: str, model_b: str) -> pd.DataFrame:
    """Per task, ``model_a`` against ``model_b`` on the headline: a paired t-test over the seeds both
    have at their chosen learning rates (:func:`seqlib.stats.compare`). One row per task."""
    scores = run_scores(records)
    rows = []
    for task, g in scores.groupby("task", sort=True):
        card = g.iloc[0]
        best = best_over_lr(g, card["split"], card["metric"], bool(card["higher_is_better"]))
        a = best[best["model"] == model_a].set_index("seed")["value"]
        b = best[best["model"] == model_b].set_index("seed")["value"]
        if a.empty or b.empty:
            rows.append({"task": task, "score": card["label"], "result": "one of the models has no run"})
            continue
        res = compare(a, b, paired=True)
        row = {"task": task, "score": card["label"], f"{model_a} mean": round(res.mean_a, 4),
               f"{model_b} mean": round(res.mean_b, 4), "common seeds": min(res.n_a, res.n_b)}
        if pd.isna(res.p_value):
            row["result"] = "not tested: fewer than 2 common seeds"
        else:
            row |= {"t": round(res.statistic, 3), "p": round(res.p_value, 4),
                    "result": "different at 5%" if res.p_value < 0.05 else "no significant difference"}
        rows.append(row)
    return pd.DataFrame(rows).set_index("task") if rows else pd.DataFrame()


def length_curves(records: list[RunRecord], select_split: str = "test") -> pd.DataFrame:
    """Accuracy by length over each task's curve splits (its scoring card's ``curve_splits``), per
    (task, model) at the learning rate with the best mean accuracy on ``select_split``, averaged over
    seeds. Columns: task, model, length, accuracy, seeds, lr, train_length (the longest training
    length on the card of the model's own runs). Tasks without a length axis or without accuracy
    (regression) are left out."""
    rows = []
    by_task: dict[str, list[RunRecord]] = {}
    for r in records:
        if r.status == "ok":
            by_task.setdefault(r.task, []).append(r)
    for task in sorted(by_task):
        frame = records_frame(by_task[task])
        if not (frame["metric"] == "accuracy").any():
            continue
        for model, g in frame.groupby("model"):
            card = scoring(next(r for r in by_task[task] if r.model == model))
            at = at_best_lr(g, select_split, "accuracy") if card.curve_splits else g.iloc[0:0]
            if at.empty:
                continue
            at = at[at["split"].isin(card.curve_splits) & (at["slice_key"] == card.length_key)
                    & (at["metric"] == "accuracy")]
            for length, cell in at.groupby(at["slice_value"].astype(int)):
                rows.append({"task": task, "model": model, "length": length, "accuracy": cell["value"].mean(),
                             "seeds": cell["seed"].nunique(), "lr": cell["lr"].iloc[0],
                             "train_length": card.train_lengths[1]})
    return pd.DataFrame(rows, columns=["task", "model", "length", "accuracy", "seeds", "lr", "train_length"])


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
