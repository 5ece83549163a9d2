"""Statistics for bounded per-seed scores (seqlib.stats): bootstrap, Wilson, solve rate, seed summary,
the per-(task, model, split, metric) summary rows, paired tests and Holm, against values worked by hand.

Throughout, z = Φ⁻¹(0.975) = 1.959964 and z² = 3.841459.
"""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest

from seqlib.stats import (
    SIGNFLIP_DRAWS,
    best_lr,
    bootstrap_ci,
    holm,
    paired_test,
    seed_summary,
    smallest_p,
    solve_rate,
    summarize_seeds,
    wilson_interval,
)
from seqlib.tasks import Scoring

NAN = math.nan


def _nan_equal(got, want) -> bool:
    return all((math.isnan(g) and math.isnan(w)) or g == pytest.approx(w, abs=1e-12) for g, w in zip(got, want))


# ---------------------------------------------------------------------------------------------- Wilson


@pytest.mark.parametrize(
    "k, n, want",
    [
        # 0/5: p̂ = 0, z²/n = 0.768292, denominator 1 + z²/n = 1.768292.
        # centre = (0 + z²/10) / 1.768292 = 0.384146 / 1.768292 = 0.217241;
        # half = z·sqrt(0 + z²/100) / 1.768292 = (z²/10) / 1.768292 = 0.217241  ->  [0.0000, 0.4345].
        (0, 5, (0.0, 0.0, 0.4345)),
        # 5/5: the mirror image of 0/5 (p̂ -> 1 - p̂)  ->  [1 - 0.4345, 1] = [0.5655, 1.0000].
        (5, 5, (1.0, 0.5655, 1.0)),
        # 3/10: p̂ = 0.3, z²/n = 0.384146, denominator 1.384146.
        # centre = (0.3 + 0.192073) / 1.384146 = 0.492073 / 1.384146 = 0.355506;
        # inside the root: 0.3·0.7/10 + z²/400 = 0.021 + 0.009604 = 0.030604, sqrt = 0.174939;
        # half = 1.959964 · 0.174939 / 1.384146 = 0.342874 / 1.384146 = 0.247715
        # ->  [0.355506 - 0.247715, 0.355506 + 0.247715] = [0.1078, 0.6032].
        (3, 10, (0.3, 0.1078, 0.6032)),
    ],
)
def test_wilson_interval_matches_the_formula_worked_by_hand(k, n, want):
    assert wilson_interval(k, n) == pytest.approx(want, abs=5e-5)


def test_wilson_interval_of_no_trials_is_nan_and_bad_counts_raise():
    assert all(math.isnan(v) for v in wilson_interval(0, 0))
    with pytest.raises(ValueError):
        wilson_interval(6, 5)


def test_solve_rate_counts_seeds_at_or_over_the_threshold():
    # 0.95, 0.9 (== threshold counts) and 1.0 reach 0.9; 0.89 does not; NaN is dropped: k = 3, n = 4.
    k, n, rate, lo, hi = solve_rate([0.95, 0.9, 0.89, NAN, 1.0], threshold=0.9)
    assert (k, n, rate) == (3, 4, 0.75)
    assert (lo, hi) == wilson_interval(3, 4)[1:]
    # lower is better (a glitch rate, solved at 0): 0.0 and 0.0 reach it, 0.02 does not.
    assert solve_rate([0.0, 0.02, 0.0], threshold=0.0, higher_is_better=False)[:3] == (2, 3, 2 / 3)
    assert _nan_equal(solve_rate([], threshold=0.9), (0, 0, NAN, NAN, NAN))


# ------------------------------------------------------------------------------------------- bootstrap


def test_bootstrap_interval_stays_in_0_1_where_the_t_interval_does_not():
    scores = [0, 0, 1, 1, 1]
    # The t-interval the pages used to show: mean 0.6, s = sqrt(0.3) = 0.5477, se = 0.5477 / sqrt(5) =
    # 0.2449, t(0.975, 4) = 2.7764, half-width 0.6801  ->  [-0.0801, 1.2801], outside [0, 1] on both sides.
    # Bootstrap: a resampled mean is k/5 with k ~ Binomial(5, 0.6). P(k = 0) = 0.4^5 = 0.0102 < 0.025 <
    # P(k <= 1) = 0.0870, so the 2.5% quantile is 1/5 = 0.2; P(k <= 4) = 1 - 0.6^5 = 0.9222 < 0.975, so the
    # 97.5% quantile is 5/5 = 1.0. With 10,000 resamples the quantiles sit far from those boundaries.
    est, lo, hi = bootstrap_ci(scores)
    assert (est, lo, hi) == pytest.approx((0.6, 0.2, 1.0))
    assert 0 <= lo <= est <= hi <= 1


def test_bootstrap_median():
    # A resampled median of 5 draws from [0, 0, 1, 1, 1] is 1 when k >= 3 ones, with P(k <= 2) = 0.3174:
    # both values carry more than 2.5%, so the interval is [0, 1] around the median 1.
    assert bootstrap_ci([0, 0, 1, 1, 1], stat="median") == pytest.approx((1.0, 0.0, 1.0))
    with pytest.raises(ValueError):
        bootstrap_ci([0, 1], stat="mode")


def test_bootstrap_is_deterministic_for_a_fixed_seed():
    # Few resamples, so that the Monte Carlo noise shows between seeds (with 10,000 both seeds' quantiles
    # land on the same of the 126 possible resampled means of 5 values).
    scores = [0.12, 0.35, 0.5, 0.81, 0.97]
    assert bootstrap_ci(scores, seed=3, n_boot=100) == bootstrap_ci(scores, seed=3, n_boot=100)
    assert bootstrap_ci(scores, seed=3, n_boot=100) != bootstrap_ci(scores, seed=4, n_boot=100)


def test_bootstrap_estimate_is_inside_the_interval():
    # With one resample the interval is that resample's mean (0, 0.5 or 1); it is widened to hold 0.5.
    for seed in range(10):
        est, lo, hi = bootstrap_ci([0.0, 1.0], n_boot=1, seed=seed)
        assert lo <= est == 0.5 <= hi
    rng = np.random.default_rng(0)
    for _ in range(50):
        scores = rng.choice([0.0, 0.1, 0.5, 0.95, 1.0], size=int(rng.integers(2, 8)))
        for stat in ("mean", "median"):
            est, lo, hi = bootstrap_ci(scores, stat=stat, n_boot=200)
            assert 0 <= lo <= est <= hi <= 1


def test_bootstrap_nan_handling_and_range():
    assert _nan_equal(bootstrap_ci([]), (NAN, NAN, NAN))
    assert _nan_equal(bootstrap_ci([0.7]), (0.7, NAN, NAN))
    assert _nan_equal(bootstrap_ci([0.7, NAN]), (0.7, NAN, NAN))
    assert bootstrap_ci([NAN, 0, 0, 1, 1, 1]) == bootstrap_ci([0, 0, 1, 1, 1])
    with pytest.raises(ValueError, match="range"):
        bootstrap_ci([0.5, 1.2])  # not an accuracy: the default range [0, 1] refuses it
    est, lo, hi = bootstrap_ci([0.5, 1.2], high=None)  # an unbounded metric
    assert est == pytest.approx(0.85) and 0.5 <= lo <= hi <= 1.2


# ---------------------------------------------------------------------------------------- seed summary


def test_seed_summary_on_a_small_example():
    scores = {0: 0.2, 1: 0.95, 2: 1.0, 3: 0.5}
    s = seed_summary(scores, threshold=0.9)
    assert set(s) == {"n", "mean", "median", "best", "worst", "ci_low", "ci_high",
                      "solved", "solve_rate", "solve_low", "solve_high"}
    # mean = (0.2 + 0.95 + 1.0 + 0.5) / 4 = 2.65 / 4 = 0.6625; median = (0.5 + 0.95) / 2 = 0.725.
    assert (s["n"], s["mean"], s["median"], s["best"], s["worst"]) == pytest.approx((4, 0.6625, 0.725, 1.0, 0.2))
    assert (s["ci_low"], s["ci_high"]) == bootstrap_ci(scores)[1:]
    assert 0.2 <= s["ci_low"] <= s["mean"] <= s["ci_high"] <= 1.0
    # 0.95 and 1.0 reach 0.9: 2 of 4. Wilson 2/4: p̂ = 0.5, z²/n = 0.960365, denominator 1.960365;
    # centre = (0.5 + 0.480182) / 1.960365 = 0.5; root of 0.25/4 + z²/64 = 0.0625 + 0.060023 = 0.122523 is
    # 0.350033; half = 1.959964 · 0.350033 / 1.960365 = 0.349961  ->  [0.1500, 0.8500].
    assert (s["solved"], s["solve_rate"]) == (2, 0.5)
    assert (s["solve_low"], s["solve_high"]) == pytest.approx((0.1500, 0.8500), abs=5e-5)


def test_seed_summary_without_threshold_lower_is_better_and_empty():
    assert "solved" not in seed_summary([0.3, 0.4])
    glitches = seed_summary([0.0, 0.02, 0.0], threshold=0.0, higher_is_better=False)
    assert (glitches["best"], glitches["worst"], glitches["solved"]) == (0.0, 0.02, 2)
    empty = seed_summary([NAN])
    assert empty["n"] == 0
    assert all(math.isnan(empty[k]) for k in ("mean", "median", "best", "worst", "ci_low", "ci_high"))


# ------------------------------------------------------------------------------------- summary rows


def card(metric="accuracy", threshold=0.9, higher=True) -> Scoring:
    return Scoring(train_lengths=(1, 1), curve_splits=(), chance=None, threshold_source="test", metric=metric,
                   solve_threshold=threshold, higher_is_better=higher)


def frame(cells: dict, lr=1e-3) -> pd.DataFrame:
    """``{(split, metric): per-seed values}`` as one task's and model's rows."""
    return pd.DataFrame([{"task": "t", "model": "m", "profile": "p", "lr": lr, "seed": seed, "split": split,
                          "metric": metric, "value": v}
                         for (split, metric), values in cells.items() for seed, v in enumerate(values)])


def test_summary_rows_by_hand():
    rows = frame({("test", "accuracy"): [0, 0, 1, 1, 1], ("val", "accuracy"): [0.95, NAN],
                  ("test", "exact_match"): [0.2, 0.4]})
    s = summarize_seeds(rows, card()).set_index(["split", "metric"])
    test = s.loc[("test", "accuracy")]
    # mean 0.6, median 1, best 1, worst 0; the bootstrap interval [0.2, 1.0] of
    # test_bootstrap_interval_stays_in_0_1_where_the_t_interval_does_not.
    assert (test["n_seeds"], test["mean"], test["median"], test["best"], test["worst"]) == (5, 0.6, 1.0, 1.0, 0.0)
    assert (test["ci_low"], test["ci_high"]) == pytest.approx((0.2, 1.0))
    # 3 of 5 seeds reach 0.9. Wilson 3/5: p̂ = 0.6, z²/n = 0.768292, denominator 1.768292;
    # centre = (0.6 + 0.384146) / 1.768292 = 0.556553; root of 0.24/5 + z²/100 = 0.048 + 0.038415 = 0.086415
    # is 0.293964; half = 1.959964 · 0.293964 / 1.768292 = 0.325828  ->  [0.2307, 0.8824].
    assert (test["threshold"], test["solved"], test["solve_rate"]) == (0.9, 3, 0.6)
    assert (test["solve_low"], test["solve_high"]) == pytest.approx((0.2307, 0.8824), abs=5e-5)
    # val: the NaN seed does not count; one seed gives no interval; 0.95 reaches 0.9 on any split.
    val = s.loc[("val", "accuracy")]
    assert (val["n_seeds"], val["mean"], val["solved"]) == (1, 0.95, 1)
    assert math.isnan(val["ci_low"]) and math.isnan(val["ci_high"])
    # exact_match is not the card's metric: no threshold, no solve rate.
    em = s.loc[("test", "exact_match")]
    assert em["mean"] == pytest.approx(0.3) and em["best"] == 0.4
    assert all(math.isnan(em[c]) for c in ("threshold", "solved", "solve_rate", "solve_low", "solve_high"))
    assert set(s["lr"]) == {1e-3} and set(s.reset_index()["task"]) == {"t"}


def test_summary_rows_follow_the_metric_s_range_and_direction():
    rows = frame({("val_sparse", "glitch_rate"): [0.0, 0.02, 0.0], ("test", "loss"): [0.5, 1.2],
                  ("test", "length_mean_accuracy"): [0.5, 0.7]})
    s = summarize_seeds(rows, card("glitch_rate", 0.0, higher=False)).set_index("metric")
    # A glitch rate: lower is better, so the best seed is the lowest; solved means no glitch: 2 of 3.
    # Wilson 2/3: p̂ = 0.6667, z²/n = 1.280486, denominator 2.280486; centre = (0.6667 + 0.640243) /
    # 2.280486 = 0.573084; root of (2/9)/3 + z²/36 = 0.074074 + 0.106707 = 0.180781 is 0.425184;
    # half = 1.959964 · 0.425184 / 2.280486 = 0.365424  ->  [0.2077, 0.9385].
    glitch = s.loc["glitch_rate"]
    assert (glitch["best"], glitch["worst"], glitch["solved"]) == (0.0, 0.02, 2)
    assert (glitch["solve_low"], glitch["solve_high"]) == pytest.approx((0.2077, 0.9385), abs=5e-5)
    # A loss has no upper bound (1.2 is allowed) and is lower-better.
    loss = s.loc["loss"]
    assert (loss["mean"], loss["best"], loss["worst"]) == (pytest.approx(0.85), 0.5, 1.2)
    assert 0.5 <= loss["ci_low"] <= loss["ci_high"] <= 1.2
    # A length mean has its metric's range and direction.
    assert s.loc["length_mean_accuracy", "best"] == 0.7
    with pytest.raises(ValueError, match="range"):  # an accuracy above 1 is no accuracy
        summarize_seeds(frame({("test", "accuracy"): [0.5, 1.2]}))
    with pytest.raises(KeyError, match="no scale"):
        summarize_seeds(frame({("test", "bleu"): [0.5, 0.7]}))


def test_summary_rows_need_one_value_per_seed_at_one_rate():
    two_rates = pd.concat([frame({("test", "accuracy"): [0.5]}, lr=1e-3), frame({("test", "accuracy"): [0.7]}, lr=3e-3)])
    with pytest.raises(ValueError, match="one value per seed at one learning rate"):
        summarize_seeds(two_rates)
    twice = pd.concat([frame({("test", "accuracy"): [0.5]}), frame({("test", "accuracy"): [0.7]})])
    with pytest.raises(ValueError, match="one value per seed"):
        summarize_seeds(twice)
    assert summarize_seeds(twice.iloc[0:0]).empty


def test_best_lr_takes_the_best_mean_in_each_group_s_direction():
    """Model a: 1e-3 -> 0.9, 0.1 (mean 0.5; the best seed), 3e-3 -> 0.6, 0.6 (mean 0.6). Model b, lower is
    better: 1e-3 -> 0.2, 0.4 (0.3), 3e-3 -> 0.1, NaN (0.1: the NaN seed does not count). Model c: 1e-3 and
    3e-3 tie at 0.5: the smaller rate. Model d has no value at all and no rate."""
    values = {("a", 1e-3): [0.9, 0.1], ("a", 3e-3): [0.6, 0.6], ("b", 1e-3): [0.2, 0.4], ("b", 3e-3): [0.1, NAN],
              ("c", 1e-3): [0.5, 0.5], ("c", 3e-3): [0.5, 0.5], ("d", 1e-3): [NAN, NAN]}
    scores = pd.DataFrame([{"task": "t", "model": m, "profile": "p", "lr": lr, "seed": s, "value": v}
                           for (m, lr), vs in values.items() for s, v in enumerate(vs)])
    picked = best_lr(scores, (scores["model"] != "b").tolist()).set_index("model")["lr"]
    assert picked.to_dict() == {"a": 3e-3, "b": 3e-3, "c": 1e-3}
    assert best_lr(scores, True).set_index("model")["lr"].to_dict() == {"a": 3e-3, "b": 1e-3, "c": 1e-3}
    assert best_lr(scores.rename(columns={"value": "v"}), value="v").equals(best_lr(scores))
    assert best_lr(scores.iloc[0:0]).empty


# ---------------------------------------------------------------------------------------- paired tests


def test_smallest_p_is_reached_by_differences_of_one_sign():
    # All n differences positive: only the all-+ and all-- patterns reach |sum|, p = 2 / 2**n.
    assert (smallest_p(5), smallest_p(6)) == (0.0625, 0.03125)
    for n in (2, 5, 6, 7):
        assert paired_test(dict.fromkeys(range(n), 1.0), dict.fromkeys(range(n), 0.0)).p_value == smallest_p(n)


def _zeros(n: int) -> dict:
    return dict.fromkeys(range(n), 0.0)


def test_signflip_exact_p_for_1_2_3():
    # Differences [1, 2, 3], mean 2. The 8 sign patterns have sums ±6, ±4, ±2, 0, 0 (means ±2, ±4/3,
    # ±2/3, 0, 0): |mean| >= 2 only for +++ and ---, so p = 2/8 = 0.25.
    r = paired_test({0: 1.0, 1: 2.0, 2: 3.0}, _zeros(3))
    assert (r.mean_diff, r.statistic, r.p_value, r.n) == (2.0, 2.0, 0.25, 3)
    assert r.test == "sign-flip test"


def test_signflip_with_ties_and_a_zero_difference():
    # Differences [1, 1, 1, 1, 0] (tied magnitudes and a zero): |sum| = 4 only with all four ones of one
    # sign, 2 of their 16 patterns; the zero's sign doubles both counts: p = 4/32 = 0.125.
    a = {0: 1.0, 1: 1.0, 2: 1.0, 3: 1.0, 4: 0.5}
    b = {0: 0.0, 1: 0.0, 2: 0.0, 3: 0.0, 4: 0.5}
    r = paired_test(a, b)
    assert (r.mean_diff, r.p_value, r.n) == (0.8, 0.125, 5)


def test_signflip_counts_patterns_equal_up_to_rounding():
    # Differences [0.9, 0.9, 0.9, 0.6]: only ++++ and ---- reach |sum| = 3.3, p = 2/16 = 0.125; in floats
    # the matrix product and the plain sum round 3.3 differently, which the tolerance absorbs.
    r = paired_test(dict(enumerate([0.9, 0.9, 0.9, 0.6])), _zeros(4))
    assert r.p_value == 0.125


def test_signflip_random_patterns_beyond_16_seeds():
    # 20 seeds: random patterns. Differences alternating ±1 have sum 0, which every pattern reaches:
    # p = (B + 1) / (B + 1) = 1. Twenty equal differences: hardly any pattern reaches |sum| = 20, and
    # p = (r + 1) / (B + 1) is never 0.
    assert paired_test(dict(enumerate([1.0, -1.0] * 10)), _zeros(20)).p_value == 1.0
    r = paired_test(dict(enumerate([0.5] * 20)), _zeros(20))
    assert 1 / (SIGNFLIP_DRAWS + 1) <= r.p_value < 1e-4
    assert r.p_value == paired_test(dict(enumerate([0.5] * 20)), _zeros(20)).p_value


@pytest.mark.filterwarnings("error")  # scipy warns (older versions raise) on all-zero differences
def test_wilcoxon():
    # Differences [1, 2, 3, 4, 5]: all ranks positive, W- = 0; of the 32 sign patterns only +++++ and -----
    # give min(W+, W-) = 0, so the exact p = 2/32 = 0.0625.
    r = paired_test(dict(enumerate([1.0, 2.0, 3.0, 4.0, 5.0])), _zeros(5), method="wilcoxon")
    assert (r.test, r.statistic, r.p_value) == ("Wilcoxon signed-rank test", 0.0, pytest.approx(0.0625))
    # Every difference zero: no evidence of a difference.
    same = paired_test(_zeros(4), _zeros(4), method="wilcoxon")
    assert (same.mean_diff, same.statistic, same.p_value) == (0.0, 0.0, 1.0)
    with pytest.raises(ValueError):
        paired_test(_zeros(3), _zeros(3), method="t")


def test_paired_test_uses_common_seeds_and_needs_two():
    # Seeds 0 and 1 are shared (seed 2 only in a, seed 1 NaN in b leaves only seed 0): one pair, NaN p.
    r = paired_test({0: 0.9, 1: 0.8, 2: 0.1}, {0: 0.5, 1: NAN})
    assert r.n == 1 and r.mean_diff == pytest.approx(0.4) and math.isnan(r.p_value)
    r = paired_test({0: 0.9, 1: 0.8, 2: 0.1}, {0: 0.5, 1: 0.6, 3: 0.0})
    assert (r.n, r.mean_a, r.mean_b) == (2, pytest.approx(0.85), pytest.approx(0.55))
    # Two differences [0.4, 0.2]: |sum| >= 0.6 for ++ and -- of 4 patterns, p = 0.5.
    assert r.p_value == 0.5


# ------------------------------------------------------------------------------------------------ Holm


def test_holm_by_hand():
    # m = 3 (NaN not counted). Sorted: 0.01·3 = 0.03, 0.03·2 = 0.06, 0.04·1 = 0.04 -> running max 0.06.
    # Back in input order: [0.03, 0.06, 0.06, NaN].
    assert _nan_equal(holm([0.01, 0.04, 0.03, NAN]), [0.03, 0.06, 0.06, NAN])
    # Capped at 1: 0.6·2 = 1.2 -> 1, then max(1, 0.7·1) = 1.
    assert holm([0.7, 0.6]).tolist() == [1.0, 1.0]
    # m = 3: 0.02·3 = 0.06, 0.4·2 = 0.8, 0.9·1 = 0.9 -> [0.8, 0.9, 0.06].
    assert holm([0.4, 0.9, 0.02]) == pytest.approx([0.8, 0.9, 0.06])
    assert _nan_equal(holm([NAN, NAN]), [NAN, NAN])
