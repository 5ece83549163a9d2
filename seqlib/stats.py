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

Bounded, bimodal per-seed scores (an accuracy in [0, 1] that is either near chance or near 1) make the
t-interval of :func:`mean_ci` leave the metric's range (e.g. [0.23, 1.48]). For them:

* :func:`bootstrap_ci`: the percentile bootstrap of the mean (or median) over seeds, inside the metric's
  range by construction; it under-covers with few seeds (see its docstring).
* :func:`wilson_interval` and :func:`solve_rate`: the share of seeds that reach the task's solve threshold,
  with the Wilson score interval.
* :func:`seed_summary`: mean, median, best and worst over seeds (the Chomsky paper, Delétang et al. 2023,
  reports the best of its seeds; the book shows best and median), the bootstrap interval and the solve rate.
* :func:`paired_test`: an exact sign-flip permutation test (or the Wilcoxon signed-rank test) of the paired
  difference over the seeds two models share. With n seeds the smallest two-sided p-value is 2 / 2**n:
  0.0625 for 5 seeds, so 5 seeds can never reach p < 0.05; 6 seeds reach 0.03125.
* :func:`holm`: Holm's step-down adjustment of a page's p-values for multiple comparisons.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
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


def _finite(values) -> np.ndarray:
    """The non-NaN values of a sequence or of a ``seed -> value`` mapping, as floats."""
    if isinstance(values, Mapping):
        values = list(values.values())
    x = np.asarray(values, dtype=float).ravel()
    return x[~np.isnan(x)]


def bootstrap_ci(values, low: float | None = 0.0, high: float | None = 1.0, confidence: float = 0.95,
                 n_boot: int = 10_000, seed: int = 0, stat: str = "mean") -> tuple[float, float, float]:
    """(estimate, low, high): the percentile bootstrap interval of the mean or median over seeds.

    The percentile interval (Efron & Tibshirani 1993, *An Introduction to the Bootstrap*, ch. 13): resample
    the seeds with replacement ``n_boot`` times (``numpy.random.default_rng(seed)``, so the interval is
    reproducible) and take the ``(1 - confidence) / 2`` and ``(1 + confidence) / 2`` quantiles of the
    resampled statistic, widened where needed to contain the estimate. A mean or median of resampled
    values lies between the smallest and largest value, so the interval stays inside the metric's range
    ``[low, high]``; values outside it raise ``ValueError`` (pass None for an unbounded side).
    NaN values are dropped; NaN bounds for fewer than 2 values.

    With few seeds it under-covers (Hesterberg 2015, "What teachers should know about the bootstrap",
    *The American Statistician* 69): the resampled means spread like s * sqrt((n - 1) / n) / sqrt(n),
    narrower than the standard error s / sqrt(n); there is no widening like Student's t for small n; and
    the interval never leaves [min, max] of the values.
    With 5 seeds it is two of the at most 126 possible resampled means: for [0, 0, 1, 1, 1] it is
    [0.2, 1.0], the range of the resampled means once the 1% of all-zero resamples is cut off.
    """
    if stat not in ("mean", "median"):
        raise ValueError(f"stat must be 'mean' or 'median', not {stat!r}")
    x = _finite(values)
    if (low is not None and np.any(x < low)) or (high is not None and np.any(x > high)):
        raise ValueError(f"values outside the metric's range [{low}, {high}]: {x.tolist()}")
    if len(x) == 0:
        return math.nan, math.nan, math.nan
    reduce = np.mean if stat == "mean" else np.median
    estimate = float(reduce(x))
    if len(x) < 2:
        return estimate, math.nan, math.nan
    resampled = reduce(x[np.random.default_rng(seed).integers(0, len(x), size=(n_boot, len(x)))], axis=1)
    lo, hi = np.quantile(resampled, [(1 - confidence) / 2, (1 + confidence) / 2])
    return estimate, min(float(lo), estimate), max(float(hi), estimate)


def wilson_interval(successes: int, n: int, confidence: float = 0.95) -> tuple[float, float, float]:
    """(p_hat, low, high): the Wilson score interval for a binomial proportion (Wilson 1927, "Probable
    inference, the law of succession, and statistical inference", *JASA* 22), with z the normal quantile:

        (p_hat + z²/2n ± z · sqrt(p_hat (1 - p_hat) / n + z²/4n²)) / (1 + z²/n).

    Unlike the Wald interval it stays inside [0, 1] and is not empty at 0 or n successes; Brown, Cai &
    DasGupta (2001, *Statistical Science* 16) recommend it for small n. NaN for n = 0.
    """
    if not 0 <= successes <= n:
        raise ValueError(f"need 0 <= successes <= n, got successes={successes}, n={n}")
    if n == 0:
        return math.nan, math.nan, math.nan
    p = successes / n
    z2 = float(sps.norm.ppf((1 + confidence) / 2)) ** 2
    centre = (p + z2 / (2 * n)) / (1 + z2 / n)
    half = math.sqrt(z2 * (p * (1 - p) / n + z2 / (4 * n * n))) / (1 + z2 / n)
    return p, max(0.0, centre - half), min(1.0, centre + half)


def solve_rate(values, threshold: float,
               higher_is_better: bool = True) -> tuple[int, int, float, float, float]:
    """(k, n, rate, low, high): the k of n seeds whose score reaches ``threshold`` (``>=``, or ``<=`` when
    lower is better, as :meth:`seqlib.tasks.scoring.ScoringCard.solves`), with the Wilson interval of k / n
    (:func:`wilson_interval`). NaN values are dropped."""
    x = _finite(values)
    k = int(np.sum(x >= threshold if higher_is_better else x <= threshold))
    return (k, len(x), *wilson_interval(k, len(x)))


def seed_summary(values, threshold: float | None = None, low: float | None = 0.0, high: float | None = 1.0,
                 higher_is_better: bool = True) -> dict:
    """One model's scores over seeds: n, mean, median, best, worst, the bootstrap interval of the mean
    (``ci_low``, ``ci_high``; :func:`bootstrap_ci`) and, given a solve ``threshold``, ``solved`` (the count),
    ``solve_rate``, ``solve_low`` and ``solve_high`` (:func:`solve_rate`). Best is the maximum, or the
    minimum when lower is better; NaN values are dropped."""
    x = _finite(values)
    mean, ci_low, ci_high = bootstrap_ci(x, low=low, high=high)
    if len(x) == 0:
        median = top = bottom = math.nan
    else:
        median, top, bottom = float(np.median(x)), float(x.max()), float(x.min())
    best, worst = (top, bottom) if higher_is_better else (bottom, top)
    out = {"n": len(x), "mean": mean, "median": median, "best": best, "worst": worst,
           "ci_low": ci_low, "ci_high": ci_high}
    if threshold is not None:
        k, _, rate, lo, hi = solve_rate(x, threshold, higher_is_better)
        out.update(solved=k, solve_rate=rate, solve_low=lo, solve_high=hi)
    return out


@dataclass(frozen=True)
class PairedComparison:
    test: str
    mean_a: float
    mean_b: float
    mean_diff: float
    statistic: float
    p_value: float
    n: int


SIGNFLIP_EXACT_MAX = 16  # up to this many seeds every one of the 2**n sign patterns is enumerated
SIGNFLIP_DRAWS = 100_000  # random sign patterns beyond that


def _signflip_p(d: np.ndarray) -> float:
    """Two-sided p-value of the sign-flip test: the share of sign patterns whose |mean| reaches the
    observed one (a relative tolerance absorbs the rounding of equal sums)."""
    n = len(d)
    if n <= SIGNFLIP_EXACT_MAX:
        signs = 1 - 2 * ((np.arange(2**n)[:, None] >> np.arange(n)) & 1)
    else:
        signs = np.random.default_rng(0).choice([-1, 1], size=(SIGNFLIP_DRAWS, n))
    reached = np.abs(signs @ d) >= abs(d.sum()) - 1e-9 * np.abs(d).sum()
    if n <= SIGNFLIP_EXACT_MAX:
        return float(reached.mean())
    return float((reached.sum() + 1) / (SIGNFLIP_DRAWS + 1))


def paired_test(a: pd.Series | dict, b: pd.Series | dict, method: str = "signflip") -> PairedComparison:
    """Two-sided paired test that model a's and model b's per-seed scores (``seed -> value`` mappings)
    differ, over the seeds both share (a seed fixes the training data order for every model).

    ``"signflip"``: the sign-flip permutation test of the mean difference (Fisher 1935, *The Design of
    Experiments*, ch. III): under the null each seed's difference is as likely negated, so p is the share of
    the 2**n sign patterns whose |mean| reaches the observed |mean|, enumerated for n <= 16 and otherwise
    estimated from B = 100,000 random patterns (fixed seed) as (r + 1) / (B + 1), r of them reaching it
    (Phipson & Smyth 2010, *Stat. Appl. Genet. Mol. Biol.* 9). The statistic is the mean difference.
    ``"wilcoxon"``: the Wilcoxon signed-rank test (Wilcoxon 1945, *Biometrics Bulletin* 1), via
    ``scipy.stats.wilcoxon(zero_method="wilcox")`` (zero differences dropped); p = 1 when every
    difference is zero. The statistic is scipy's (the smaller signed-rank sum).

    Exact p-values are multiples of 1 / 2**(n-1): with 5 seeds the smallest is 0.0625. NaN p for n < 2.
    """
    if method not in ("signflip", "wilcoxon"):
        raise ValueError(f"method must be 'signflip' or 'wilcoxon', not {method!r}")
    a, b = pd.Series(a, dtype=float).dropna(), pd.Series(b, dtype=float).dropna()
    common = a.index.intersection(b.index)
    a, b = a[common], b[common]
    d = (a - b).to_numpy()
    mean_diff = float(d.mean()) if len(d) else math.nan
    if len(d) < 2:
        stat, p = math.nan, math.nan
    elif method == "signflip":
        stat, p = mean_diff, _signflip_p(d)
    elif not np.any(d):
        stat, p = 0.0, 1.0
    else:
        res = sps.wilcoxon(d, zero_method="wilcox")
        stat, p = float(res.statistic), float(res.pvalue)
    test = "sign-flip test" if method == "signflip" else "Wilcoxon signed-rank test"
    return PairedComparison(test, float(a.mean()), float(b.mean()), mean_diff, stat, p, len(d))


def holm(p_values) -> np.ndarray:
    """Holm's step-down adjusted p-values (Holm 1979, "A simple sequentially rejective multiple test
    procedure", *Scand. J. Statist.* 6), in the order given: the i-th smallest of the m p-values becomes
    max over j <= i of min(1, (m - j + 1) · p_(j)). NaN stays NaN and does not count towards m. Rejecting
    where the adjusted value is below alpha controls the family-wise error rate at alpha."""
    p = np.asarray(p_values, dtype=float)
    out = np.full(p.shape, math.nan)
    idx = np.flatnonzero(~np.isnan(p))
    order = idx[np.argsort(p[idx], kind="stable")]
    m = len(order)
    out[order] = np.minimum(1.0, np.maximum.accumulate((m - np.arange(m)) * p[order]))
    return out
