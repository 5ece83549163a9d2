"""The book's shared analysis (seqlib.book.report) on hand-made records with hand-computed answers, and on
the committed store (the leaderboard the Results page showed before the structure change)."""

from __future__ import annotations

import hashlib
import math

import pandas as pd
import pytest

from seqlib.book import report
from seqlib.provenance import REPO, Provenance
from seqlib.record import RunRecord
from seqlib.results import records_frame, write_record
from seqlib.stats import summarize_seeds

CHOMSKY = {"train_max_length": 4, "max_test_length": 8}


def record(task="parity_check", model="hawk", lr=1e-3, seed=0, metrics=(), end="2026-01-01T00:00:00",
           profile="full", params=None, status="ok", select=None) -> RunRecord:
    """A record whose run selected on ``select`` (by default its card's headline split, as the older
    stored records of MQAR and the copying tasks did)."""
    digest = hashlib.sha256(f"{task}{model}{lr}{seed}{end}{profile}{params}{select}".encode()).hexdigest()
    prov = Provenance(commit="c" * 40, dirty=False, device="cpu", device_name="cpu", versions={},
                      hostname="h", start_time=end, end_time=end)
    config = {"task": {"name": task, "params": CHOMSKY if params is None else params}, "run": {"profile": profile}}
    rec = RunRecord(run_id=digest[:16], config_hash=digest, task=task, model=model, lr=lr, seed=seed,
                    config=config, provenance=prov, status=status, reason=None if status == "ok" else "x",
                    metrics=list(metrics), train={"steps_done": 1, "loss_curve": [], "eval_curve": []})
    rec.train["select_split"] = select or report.scoring(rec).split
    return rec


def rows(split, per_length: dict[int, float], whole: float | None = None, metric="accuracy"):
    out = [{"split": split, "slice_key": "length", "slice_value": str(k), "metric": metric, "value": v, "n": 4}
           for k, v in per_length.items()]
    if whole is not None:
        out.append({"split": split, "slice_key": "all", "slice_value": "all", "metric": metric, "value": whole, "n": 16})
    return out


def test_latest_keeps_the_record_that_finished_last_per_run():
    old = record(end="2026-01-01T00:00:00", metrics=rows("test", {5: 0.1}))
    new = record(end="2026-02-01T00:00:00", metrics=rows("test", {5: 0.9}))
    other_seed = record(seed=1, end="2025-01-01T00:00:00")
    kept = report.latest([new, old, other_seed])
    assert sorted((r.seed, r.provenance.end_time) for r in kept) == [(0, "2026-02-01T00:00:00"),
                                                                      (1, "2025-01-01T00:00:00")]


def test_profile_records_reads_one_profile_and_counts_the_superseded(tmp_path):
    for r in (record(end="2026-01-01T00:00:00"), record(end="2026-02-01T00:00:00"), record(seed=1),
              record(profile="smoke", seed=2)):
        write_record(tmp_path, r)
    stored = report.profile_records(tmp_path, "full")
    assert len(stored.records) == 2 and stored.superseded == 1 and stored.other_profiles == ["smoke"]
    assert all(r.profile == "full" for r in stored.records)


def test_run_scores_use_the_scoring_card():
    """A Chomsky run's headline is the test accuracy averaged over its lengths (each length weighs the
    same), not the pooled whole-split accuracy; a flip-flop run's is the sparse glitch rate."""
    chomsky = record(metrics=rows("test", {5: 1.0, 6: 0.5, 7: 0.0}, whole=0.9))
    flip = record(task="flipflop", params={}, metrics=[
        {"split": "val_sparse", "slice_key": "all", "slice_value": "all", "metric": "glitch_rate", "value": 0.25,
         "n": 8}])
    scores = report.run_scores([chomsky, flip, record(status="failed")]).set_index("task")
    assert scores.loc["parity_check", "value"] == pytest.approx(0.5)
    assert scores.loc["parity_check", "metric"] == "length_mean_accuracy"
    assert scores.loc["flipflop", ["split", "metric", "value"]].tolist() == ["val_sparse", "glitch_rate", 0.25]
    assert not scores.loc["flipflop", "higher_is_better"]
    assert len(scores) == 2  # the failed run has no score


def test_leaderboard_picks_the_rate_by_its_mean_over_seeds():
    """lr 1e-3: seeds 0.6 and 0.6 (mean 0.6); lr 3e-3: 1.0 and 0.0 (mean 0.5, though one seed is best)."""
    recs = [record(lr=1e-3, seed=0, metrics=rows("test", {5: 0.6})), record(lr=1e-3, seed=1, metrics=rows("test", {5: 0.6})),
            record(lr=3e-3, seed=0, metrics=rows("test", {5: 1.0})), record(lr=3e-3, seed=1, metrics=rows("test", {5: 0.0}))]
    board = report.leaderboard(recs)
    assert len(board) == 1
    row = board.iloc[0]
    assert row["lr"] == 1e-3 and row["mean"] == pytest.approx(0.6) and row["n_seeds"] == 2
    assert row["metric"] == "length_mean_accuracy" and row["label"] == "accuracy, length mean"
    assert row["higher_is_better"]
    # Over the two seeds at 1e-3 (0.6, 0.6): median and best 0.6, the bootstrap interval [0.6, 0.6]; none
    # reaches the card's 0.9. Wilson 0/2: z²/n = 1.920729, centre = half = (z²/4) / (1 + z²/n) = 0.960365 /
    # 2.920729 = 0.328810  ->  [0, 0.6576].
    assert (row["median"], row["best"], row["ci_low"], row["ci_high"]) == pytest.approx((0.6, 0.6, 0.6, 0.6))
    assert (row["threshold"], row["solved"], row["solve_rate"]) == (0.9, 0, 0.0)
    assert (row["solve_low"], row["solve_high"]) == pytest.approx((0.0, 0.6576), abs=5e-5)


def test_seed_cells_format_the_summary_rows():
    frame = pd.DataFrame({"task": "parity_check", "model": "hawk", "profile": "full", "lr": 1e-3,
                          "seed": [0, 1, 2, 3, 4, 0, 0, 1], "split": ["test"] * 5 + ["val", "test", "test"],
                          "metric": ["length_mean_accuracy"] * 6 + ["loss"] * 2,
                          "value": [0, 0, 1, 1, 1, 0.95, 0.5, 1.5]})
    summary = summarize_seeds(frame, report.scoring(record()))
    cells = report.seed_cells(summary).set_index(["split", "metric"])
    assert list(cells.columns) == ["task", "model", "lr", "seeds", "mean [95% CI]", "median", "best", "solved"]
    test = cells.loc[("test", "length_mean_accuracy")]
    # The summary of [0, 0, 1, 1, 1] in tests/test_stats_bounded.py: bootstrap [0.2, 1.0], Wilson 3/5
    # [0.2307, 0.8824].
    assert test["mean [95% CI]"] == "0.600 [0.200, 1.000]" and (test["median"], test["best"]) == ("1.000", "1.000")
    assert test["solved"] == "3/5 at >= 0.9 [0.23, 0.88]" and test["seeds"] == 5
    # One seed: no interval; Wilson 1/1 [0.2065, 1].
    val = cells.loc[("val", "length_mean_accuracy")]
    assert val["mean [95% CI]"] == "0.950" and val["solved"] == "1/1 at >= 0.9 [0.21, 1.00]"
    # Not the card's metric: no solve rate; lower is better, so the best loss is the lowest.
    loss = cells.loc[("test", "loss")]
    assert loss["solved"] == "" and loss["best"] == "0.500" and loss["mean [95% CI]"].startswith("1.000 [")
    assert report.seed_cells(summary, fmt=".3g").set_index(["split", "metric"]).loc[
        ("test", "length_mean_accuracy"), "mean [95% CI]"] == "0.6 [0.2, 1]"


def headline_records(task, hawk, lstm, params=None):
    """Per-seed headline scores of two models on one task (a Chomsky length mean, or the flip-flop
    sparse glitch rate when ``params`` is {})."""
    def metrics(v):
        if task == "flipflop":
            return [{"split": "val_sparse", "slice_key": "all", "slice_value": "all", "metric": "glitch_rate",
                     "value": v, "n": 8}]
        return rows("test", {5: v})
    return [record(task=task, model=m, seed=s, params=params, metrics=metrics(v))
            for m, values in (("hawk", hawk), ("lstm", lstm)) for s, v in enumerate(values)]


def test_pairwise_tests_paired_seeds_with_holm_across_the_page():
    recs = (
        # 6 seeds, every difference +0.4: sign-flip p = 2/2^6 = 0.03125.
        headline_records("parity_check", [0.9] * 6, [0.5] * 6)
        # 6 seeds, differences five times +0.1 and once -0.1: |sum| = 0.4 = 0.1 |2k - 6| for k = 0, 1, 5, 6
        # positive signs, 1 + 6 + 6 + 1 = 14 of 64 patterns: p = 0.21875.
        + headline_records("even_pairs", [0.6] * 5 + [0.4], [0.5] * 6)
        # 7 seeds of glitch rates (lower is better), hawk below lstm on every seed: p = 2/2^7 = 0.015625.
        + headline_records("flipflop", [0.0] * 7, [0.1] * 7, params={})
        # 3 seeds, one sign: p = 2/8 = 0.25, and no 3 seeds can give p < 0.05.
        + headline_records("cycle_navigation", [0.9] * 3, [0.1] * 3)
        # only hawk
        + headline_records("reverse_string", [0.9] * 3, [])
    )
    table = report.pairwise(recs, "hawk", "lstm")
    assert list(table.columns) == ["score", "hawk mean", "lstm mean", "paired seeds", "p", "Holm p", "result"]
    # Holm over the three testable rows: sorted p 0.015625 · 3 = 0.046875, 0.03125 · 2 = 0.0625,
    # 0.21875 · 1 = 0.21875 (already increasing).
    assert table.loc[["flipflop", "parity_check", "even_pairs"], "p"].tolist() == [0.015625, 0.03125, 0.21875]
    assert table.loc[["flipflop", "parity_check", "even_pairs"], "Holm p"].tolist() == pytest.approx(
        [0.046875, 0.0625, 0.21875])
    assert table.loc["flipflop", "result"] == "hawk better (Holm p < 0.05)"  # the lower glitch rate
    # p = 0.031 alone would pass 5%; adjusted for the page's three comparisons it does not.
    assert table.loc["parity_check", "result"] == "no significant difference (Holm p >= 0.05)"
    assert table.loc["even_pairs", "result"] == "no significant difference (Holm p >= 0.05)"
    assert table.loc["parity_check", ["hawk mean", "lstm mean", "paired seeds"]].tolist() == [
        pytest.approx(0.9), pytest.approx(0.5), 6]
    few = table.loc["cycle_navigation"]
    assert few["paired seeds"] == 3 and few["p"] == 0.25 and math.isnan(few["Holm p"])
    assert few["result"] == "not tested: 3 paired seeds cannot give p < 0.05 (at best 0.25); no claim either way"
    assert table.loc["reverse_string", "result"] == "one of the models has no run"
    one = report.pairwise(headline_records("parity_check", [0.9], [0.1]), "hawk", "lstm").loc["parity_check"]
    assert one["paired seeds"] == 1 and one["result"] == "not tested: fewer than 2 paired seeds"


def test_length_curves_follow_the_card_and_the_run_s_own_training_length():
    recs = [record(metrics=rows("test", {5: 1.0, 8: 0.0}, whole=0.5) + rows("val", {2: 1.0}, whole=1.0)),
            record(model="lstm", params={"train_max_length": 6, "max_test_length": 8},
                   metrics=rows("test", {7: 0.25}, whole=0.25))]
    curves = report.length_curves(recs).set_index(["model", "length"])
    assert curves.loc[("hawk", 2), "accuracy"] == 1.0 and curves.loc[("hawk", 8), "accuracy"] == 0.0
    assert curves.loc[("hawk", 5), "train_length"] == 4 and curves.loc[("lstm", 7), "train_length"] == 6
    table = report.inside_beyond(report.length_curves(recs[:1]))
    assert table.loc[("parity_check", "hawk")].tolist() == [1.0, 0.5, 0.5]
    # bits per byte is no score in [0, 1]: the text task's accuracy by length stays on its own page
    text = record(task="text", params={"seq_len": 8, "long_lengths": [16]}, select="val",
                  metrics=rows("test_long", {16: 0.4}) + rows("val", {}, whole=2.0, metric="bits")
                  + rows("test", {8: 0.5}, whole=2.1, metric="bits"))
    assert set(report.length_curves([*recs, text])["task"]) == {"parity_check"}


def test_log_bins_never_mix_trained_and_longer_lengths():
    curves = pd.DataFrame({"task": "t", "model": "m", "seeds": 1, "lr": 1e-3, "train_length": 40,
                           "length": [38, 39, 40, 41, 42], "accuracy": [1.0, 1.0, 1.0, 0.0, 0.0]})
    binned = report.log_binned(curves)
    assert set(binned[binned["inside"]]["accuracy"]) == {1.0}
    assert set(binned[~binned["inside"]]["accuracy"]) == {0.0}


def test_the_committed_leaderboard_is_what_the_results_page_showed():
    """Cells read off the Results page executed at 78383de from the same 258 records (before the
    scoring cards and the report existed): the refactor left the means and seed counts as they were;
    the intervals are now the bootstrap's, inside [0, 1], beside the median, best and solve rate."""
    stored = report.profile_records(REPO / "results", "full")
    board = report.leaderboard(stored.records).set_index(["task", "model"])
    expected = {("mqar", "griffin"): (0.814, 3), ("parity_check", "lstm"): (0.854, 3),
                ("flipflop", "transformer"): (0.143, 3), ("lis", "hawk"): (0.066, 1),
                ("induction_heads", "hawk"): (0.999, 3), ("bucket_sort", "transformer"): (0.957, 1)}
    for key, (mean, seeds) in expected.items():
        row = board.loc[key]
        assert round(row["mean"], 3) == mean and row["n_seeds"] == seeds, key
        if seeds > 1:
            assert 0 <= row["ci_low"] <= row["mean"] <= row["ci_high"] <= 1, key
    # parity_check x LSTM, seeds at 3e-3: 1.0, 0.5616, 1.0 (the t-interval was 0.854 ± 0.629, up to 1.48).
    # Median and best 1.0; 2 of 3 seeds reach 0.9 (Wilson 2/3: [0.2077, 0.9385]); a bootstrap resample is
    # all 0.5616 with probability (1/3)^3 = 0.037 > 0.025, so the interval is [0.5616, 1.0], min to max.
    lstm = board.loc[("parity_check", "lstm")]
    assert (lstm["median"], lstm["best"], lstm["solved"]) == (1.0, 1.0, 2)
    assert (lstm["ci_low"], lstm["ci_high"]) == pytest.approx((0.5616, 1.0), abs=1e-4)
    assert (lstm["solve_low"], lstm["solve_high"]) == pytest.approx((0.2077, 0.9385), abs=5e-5)
    assert len(stored.records) == len(records_frame(stored.records).drop_duplicates("run_id"))


def test_model_sizes_by_hand():
    """Per model the median over its tasks of each task's median run, with the range where tasks differ;
    failed runs are left out."""
    def sized(task, model, params, state, seed=0, status="ok"):
        rec = record(task=task, model=model, seed=seed, status=status)
        rec.measure = {"num_params": params, "state_size": state, "state_size_seq_len": 40}
        return rec

    recs = [sized("parity_check", "hawk", 100, 10), sized("parity_check", "hawk", 300, 10, seed=1),  # task median 200
            sized("even_pairs", "hawk", 400, 10), sized("cycle_navigation", "hawk", 600, 30),
            sized("parity_check", "lstm", 50, 8), sized("even_pairs", "lstm", 9999, 99, status="failed")]
    sizes = report.model_sizes(recs)
    assert sizes.index.tolist() == ["hawk", "lstm"]
    hawk, lstm = sizes.loc["hawk"], sizes.loc["lstm"]
    assert (hawk["tasks"], hawk["parameters"], hawk["parameters (range)"]) == (3, 400, "200 to 600")
    assert (hawk["decode state"], hawk["decode state (range)"], hawk["at length"]) == (10, "10 to 30", 40)
    assert (lstm["tasks"], lstm["parameters"], lstm["parameters (range)"], lstm["decode state"]) == (1, 50, "", 8)
    assert report.model_sizes([]).empty


def test_state_frontier_by_hand():
    """Parity: A (state 10, 0.5) and B (100, 0.9) are on the frontier, C (50, 0.4) is not (A scores
    more with less state), D ties B's state with less; flip-flop's glitch rate enters as 1 - rate."""
    def scored(task, model, value, state, split="test"):
        key = {5: value} if task == "parity_check" else None
        rec = record(task=task, model=model, params=None if key else {}, metrics=rows(split, key) if key else [
            {"split": "val", "metric": "glitch_rate", "slice_key": "all", "slice_value": "all", "value": value,
             "n": 10}, {"split": "val_sparse", "metric": "glitch_rate", "slice_key": "all", "slice_value": "all",
                        "value": value, "n": 10}])
        rec.measure = {"num_params": 1, "state_size": state, "state_size_seq_len": 40}
        return rec

    unfit = scored("parity_check", "E", 1.0, 5)  # the best score at the least state, but it did not fit
    unfit.train["fit"] = False
    recs = [scored("parity_check", "A", 0.5, 10), scored("parity_check", "B", 0.9, 100),
            scored("parity_check", "C", 0.4, 50), scored("parity_check", "D", 0.7, 100), unfit,
            scored("flipflop", "A", 0.2, 10), scored("flipflop", "B", 0.1, 100)]
    front = report.state_frontier(recs).set_index(["task", "model"])
    assert front.loc["parity_check", "on_frontier"].to_dict() == {"E": False, "A": True, "C": False, "B": True,
                                                                  "D": False}
    assert front.loc[("parity_check", "C"), "state"] == 50 and front.loc[("parity_check", "B"), "score"] == 0.9
    flip = front.loc["flipflop"]
    assert flip["score"].to_dict() == pytest.approx({"A": 0.8, "B": 0.9}) and flip["on_frontier"].all()
    assert report.state_frontier([]).empty


def test_capability_cost_by_hand():
    """Hawk and the Transformer were benchmarked, the LSTM not; even_pairs lacks the Transformer, so
    the mean is over parity alone; T=4096 is the longest length both were trained at."""
    board = pd.DataFrame([
        {"task": "parity_check", "model": "hawk", "mean": 0.6, "metric": "accuracy", "label": "accuracy", "higher_is_better": True},
        {"task": "parity_check", "model": "transformer", "mean": 0.8, "metric": "accuracy", "label": "accuracy", "higher_is_better": True},
        {"task": "parity_check", "model": "lstm", "mean": 1.0, "metric": "accuracy", "label": "accuracy", "higher_is_better": True},
        {"task": "even_pairs", "model": "hawk", "mean": 0.9, "metric": "accuracy", "label": "accuracy", "higher_is_better": True}])
    train = {"rows": [{"model": "hawk", "T": 4096, "tokens_per_s": 100.0}, {"model": "transformer", "T": 4096,
                      "tokens_per_s": 90.0}, {"model": "hawk", "T": 8192, "tokens_per_s": 80.0},
                      {"model": "transformer", "T": 8192, "skipped": "time"}]}
    decode = {"rows": [{"model": "hawk", "context": 1024, "ms_per_token": 2.0, "ms_per_token_graphed": 0.5},
                       {"model": "hawk", "context": 2048, "ms_per_token": 3.0},
                       {"model": "transformer", "context": 1024, "ms_per_token": 4.0}]}
    out = report.capability_cost(board, train, decode)
    assert out.index.tolist() == ["hawk", "transformer"]
    assert out["tasks"].tolist() == [1, 1] and out["mean score"].tolist() == pytest.approx([0.6, 0.8])
    assert out["train T"].tolist() == [4096, 4096] and out["train tokens/s"].tolist() == [100.0, 90.0]
    assert out["decode ms/token"].tolist() == [2.0, 4.0] and out["decode context"].tolist() == [1024, 1024]
    assert out.loc["hawk", "decode ms/token (graphed)"] == 0.5 and pd.isna(out.loc["transformer", "decode ms/token (graphed)"])
    assert report.capability_cost(board, None, None).empty
    from seqlib.book.plots import capability_chart

    spec = capability_chart(out).to_dict()  # one panel per cost, each model a point at its cost and score
    panels = spec["concat"]
    assert [p["title"]["text"] for p in panels] == ["training tokens/s (higher is cheaper)",
                                                   "decode ms per token (lower is cheaper)"]
    points = [{(v["model"], v["cost"], v["mean score"]) for v in spec["datasets"][p["data"]["name"]]} for p in panels]
    assert points == [{("hawk", 100.0, 0.6), ("transformer", 90.0, 0.8)}, {("hawk", 2.0, 0.6), ("transformer", 4.0, 0.8)}]
    assert capability_chart(out.drop(columns=["train tokens/s", "decode ms/token"])) is None


def test_oriented_keeps_the_scores_in_0_1_and_turns_a_lower_is_better_one():
    """Accuracy as it is, the glitch rate as 1 - it; LIS's MSE and the text task's bits per byte have no
    upper bound and no place on one scale with them."""
    board = pd.DataFrame([
        {"task": "parity_check", "model": "hawk", "metric": "length_mean_accuracy", "mean": 0.7, "higher_is_better": True},
        {"task": "flipflop", "model": "hawk", "metric": "glitch_rate", "mean": 0.1, "higher_is_better": False},
        {"task": "lis", "model": "hawk", "metric": "loss", "mean": 3.0, "higher_is_better": False},
        {"task": "text", "model": "hawk", "metric": "bits", "mean": 2.1, "higher_is_better": False}])
    out = report.oriented(board)
    assert out["task"].tolist() == ["parity_check", "flipflop"] and out["score"].tolist() == pytest.approx([0.7, 0.9])
