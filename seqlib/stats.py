"""Statistics over seeds and learning rates, on the tidy frame of :func:`seqlib.results.load_results`.

* :func:`best_lr`: Zoology's protocol (tasks.md §1.2: "each point is the max over the LR sweep"),
  made seed-aware: per (task, model, profile) the learning rate with the best *mean* over seeds of one
  score per run. The pages and the command line choose through :func:`seqlib.book.report.select_lr`,
  on each run's own in-distribution selection split; :func:`best_over_lr` applies the rule to one
  given split, which is optimistic when it is the split reported (what Zoology and the Chomsky paper do).
* :func:`length_curve`: accuracy by example length for one split (the length-generalization curve).

Per-seed scores are bounded and often bimodal (an accuracy in [0, 1] that is either near chance or near
1): a t-interval leaves the metric's range (e.g. [0.23, 1.48] for the parity LSTM over 3 seeds). So:

* :func:`bootstrap_ci`: the percentile bootstrap of the mean (or median) over seeds, inside the metric's
  range by construction; it under-covers with few seeds (see its docstring).
* :func:`wilson_interval` and :func:`solve_rate`: the share of seeds that reach the task's solve threshold,
  with the Wilson score interval.
* :func:`seed_summary`: mean, median, best and worst over seeds (the Chomsky paper, Delétang et al. 2023,
  reports the best of its seeds; the book shows best and median), the bootstrap interval and the solve rate.
* :func:`summarize_seeds`: :func:`seed_summary` per (task, model, profile, split, metric) of a frame, in
  each metric's range (:func:`seqlib.evaluate.metric_scale`), with the solve rate on a scoring card's
  headline metric: the summary row of every page.
* :func:`paired_test`: an exact sign-flip permutation test (or the Wilcoxon signed-rank test) of the paired
  difference over the seeds two models share. With n seeds the smallest two-sided p-value is 2 / 2**n
  (:func:`smallest_p`): 0.0625 for 5 seeds, so 5 seeds can never reach p < 0.05; 6 seeds reach 0.03125.
* :func:`holm`: Holm's step-down adjustment of a page's p-values for multiple comparisons.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np
import pandas as pd
from scipy import stats as sps

from seqlib.evaluate import metric_scale
from seqlib.tasks.scoring import Scoring

GROUP = ["task", "model", "profile"]


def _whole_split(df: pd.DataFrame, split: str, metric: str) -> pd.DataFrame:
    ok = df[(df["status"] == "ok") & (df["slice_key"] == "all")]
    return ok[(ok["split"] == split) & (ok["metric"] == metric)]


def best_lr(scores: pd.DataFrame, maximize: bool | list[bool] = True, value: str = "value") -> pd.DataFrame:
    """Per (task, model, profile) of ``scores`` (one row per run): the learning rate whose mean ``value``
    over seeds is best, the highest where ``maximize`` (one flag, or one per row) and else the lowest; the
    smallest such rate on a tie. NaN values are left out, and a group without a value. Columns task,
    model, profile, lr."""
    key = scores[value] * np.where(maximize, 1.0, -1.0)
    means = scores[[*GROUP, "lr"]].assign(key=key).dropna(subset=["key"]).groupby(
        [*GROUP, "lr"], dropna=False)["key"].mean().reset_index()
    return means.loc[means.groupby(GROUP, dropna=False)["key"].idxmax(), [*GROUP, "lr"]].reset_index(drop=True)


def best_over_lr(df: pd.DataFrame, split: str, metric: str = "accuracy", maximize: bool = True) -> pd.DataFrame:
    """Per (task, model, profile): the seed rows of the learning rate whose mean ``metric`` on ``split``
    is best (:func:`best_lr`). Columns: task, model, profile, lr, seed, split, metric, value."""
    columns = [*GROUP, "lr", "seed", "split", "metric", "value"]
    sel = _whole_split(df, split, metric)
    if sel.empty:
        return pd.DataFrame(columns=columns)
    return sel.merge(best_lr(sel, maximize), on=[*GROUP, "lr"])[columns].reset_index(drop=True)


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


SUMMARY_KEYS = [*GROUP, "split", "metric"]
SUMMARY_COLUMNS = [*SUMMARY_KEYS, "lr", "n_seeds", "mean", "median", "best", "worst", "ci_low", "ci_high",
                   "threshold", "solved", "solve_rate", "solve_low", "solve_high"]


def summarize_seeds(rows: pd.DataFrame, card: Scoring | None = None) -> pd.DataFrame:
    """One :func:`seed_summary` row per (task, model, profile, split, metric) of ``rows`` (one value per
    seed at one learning rate, e.g. :func:`best_over_lr`'s frame), over the metric's range and in its
    direction (:func:`seqlib.evaluate.metric_scale`). Where ``metric`` is ``card``'s headline metric and
    the card has a solve threshold, the solve rate over seeds (on any split); otherwise ``threshold`` and
    the solve columns are NaN. Columns :data:`SUMMARY_COLUMNS` (``n_seeds`` the number of seeds with a
    value). ``ValueError`` when a group holds several learning rates or a seed twice."""
    out = []
    for key, g in rows.groupby(SUMMARY_KEYS, dropna=False, sort=True):
        row = dict(zip(SUMMARY_KEYS, key))
        if g["lr"].nunique() > 1 or g["seed"].duplicated().any():
            raise ValueError(f"{row}: need one value per seed at one learning rate, got learning rates "
                             f"{sorted(g['lr'].unique())} and seeds {sorted(g['seed'])}")
        low, high, higher = metric_scale(row["metric"])
        threshold = card.solve_threshold if card is not None and row["metric"] == card.metric else None
        s = seed_summary(g["value"], threshold, low, high, higher)
        row |= {"lr": g["lr"].iloc[0], "n_seeds": s.pop("n"), "threshold": math.nan if threshold is None
                else threshold, **s}
        out.append(row)
    return pd.DataFrame(out, columns=SUMMARY_COLUMNS)


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


def smallest_p(n: int) -> float:
    """The smallest two-sided p-value an exact sign-flip (or signed-rank) test over ``n`` paired seeds
    can give: 2 / 2**n, reached when every difference is nonzero and of one sign (only the all-+ and the
    all-- patterns are as extreme). Below 0.05 from n = 6."""
    return 2.0 / 2**n


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
