"""Statistics over seeds and learning rates, on the tidy frame of :func:`seqlib.results.load_results`.

* :func:`mean_ci`: mean and a two-sided 95% confidence interval from the t distribution with n-1
  degrees of freedom (``scipy.stats.t``); NaN bounds for a single seed (no spread to estimate).
* :func:`best_over_lr`: Zoology's protocol (tasks.md §1.2: "each point is the max over the LR sweep"),
  made seed-aware: per (task, model, profile) the learning rate with the best *mean* over seeds on the
  selection split/metric, then every seed at that learning rate. Selecting on the split you report is
  optimistic (what Zoology and the Chomsky paper do); pass a validation split to avoid it.
* :func:`compare`: a two-sided test that two models' per-seed scores differ. Default: Welch's unequal-
  variance t-test (``scipy.stats.ttest_ind(equal_var=False)``), for independent seeds. ``paired=True``:
  the paired t-test (``scipy.stats.ttest_rel``) over seeds common to both, valid here because a seed
  fixes the training data order for every model (train batches are drawn from ``(seed, step)``).
  Both need at least two seeds per side; otherwise the p-value is NaN.
* :func:`length_curve`: accuracy by example length for one split (the length-generalization curve).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import pandas as pd
from scipy import stats as sps

GROUP = ["task", "model", "profile"]


def mean_ci(values, confidence: float = 0.95) -> tuple[float, float, float]:
    """(mean, low, high): the t-distribution CI of the mean; NaN bounds when fewer than 2 values."""
    x = np.asarray(values, dtype=float)
    x = x[~np.isnan(x)]
    if len(x) == 0:
        return math.nan, math.nan, math.nan
    mean = float(x.mean())
    if len(x) < 2:
        return mean, math.nan, math.nan
    half = float(sps.t.ppf(0.5 + confidence / 2, df=len(x) - 1) * x.std(ddof=1) / math.sqrt(len(x)))
    return mean, mean - half, mean + half


def _whole_split(df: pd.DataFrame, split: str, metric: str) -> pd.DataFrame:
    ok = df[(df["status"] == "ok") & (df["slice_key"] == "all")]
    return ok[(ok["split"] == split) & (ok["metric"] == metric)]


def best_over_lr(df: pd.DataFrame, split: str, metric: str = "accuracy", maximize: bool = True) -> pd.DataFrame:
    """Per (task, model, profile): the seed rows of the learning rate whose mean ``metric`` on ``split``
    is best. Columns: task, model, profile, lr, seed, value."""
    sel = _whole_split(df, split, metric)
    if sel.empty:
        return pd.DataFrame(columns=[*GROUP, "lr", "seed", "value"])
    means = sel.groupby([*GROUP, "lr"], dropna=False)["value"].mean().reset_index()
    pick = means.loc[(means.groupby(GROUP, dropna=False)["value"].idxmax() if maximize
                      else means.groupby(GROUP, dropna=False)["value"].idxmin())][[*GROUP, "lr"]]
    return sel.merge(pick, on=[*GROUP, "lr"])[[*GROUP, "lr", "seed", "value"]].reset_index(drop=True)


def summarize_seeds(best: pd.DataFrame) -> pd.DataFrame:
    """Mean, 95% CI and seed count per (task, model, profile) of a :func:`best_over_lr` frame."""
    rows = []
    for key, g in best.groupby(GROUP, dropna=False):
        mean, low, high = mean_ci(g["value"])
        rows.append({**dict(zip(GROUP, key)), "lr": g["lr"].iloc[0], "mean": mean, "ci_low": low,
                     "ci_high": high, "n_seeds": len(g)})
    return pd.DataFrame(rows, columns=[*GROUP, "lr", "mean", "ci_low", "ci_high", "n_seeds"])


@dataclass(frozen=True)
class Comparison:
    test: str
    mean_a: float
    mean_b: float
    statistic: float
    p_value: float
    n_a: int
    n_b: int


def compare(a: pd.Series | dict, b: pd.Series | dict, paired: bool = False) -> Comparison:
    """Two-sided test of equal means of two models' per-seed scores (``seed -> value`` mappings).

    Welch's t-test by default; with ``paired`` the paired t-test over the seeds both share.
    """
    a, b = pd.Series(a, dtype=float).dropna(), pd.Series(b, dtype=float).dropna()
    if paired:
        common = a.index.intersection(b.index)
        a, b = a[common], b[common]
        test = "paired t-test"
        res = sps.ttest_rel(a, b) if len(common) >= 2 else None
    else:
        test = "Welch t-test"
        res = sps.ttest_ind(a, b, equal_var=False) if min(len(a), len(b)) >= 2 else None
    stat, p = (float(res.statistic), float(res.pvalue)) if res is not None else (math.nan, math.nan)
    return Comparison(test, float(a.mean()), float(b.mean()), stat, p, len(a), len(b))


def length_curve(df: pd.DataFrame, split: str, metric: str = "accuracy") -> pd.DataFrame:
    """``metric`` by example length on ``split``: columns task, model, lr, seed, length, value, n."""
    ok = df[(df["status"] == "ok") & (df["slice_key"] == "length")]
    sel = ok[(ok["split"] == split) & (ok["metric"] == metric)].copy()
    sel["length"] = sel["slice_value"].astype(int)
    return sel[["task", "model", "lr", "seed", "length", "value", "n"]].sort_values(
        ["task", "model", "lr", "seed", "length"]).reset_index(drop=True)
