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

CHOMSKY = {"train_max_length": 4, "max_test_length": 8}


def record(task="parity_check", model="hawk", lr=1e-3, seed=0, metrics=(), end="2026-01-01T00:00:00",
           profile="full", params=None, status="ok") -> RunRecord:
    digest = hashlib.sha256(f"{task}{model}{lr}{seed}{end}{profile}{params}".encode()).hexdigest()
    prov = Provenance(commit="c" * 40, dirty=False, device="cpu", device_name="cpu", versions={},
                      hostname="h", start_time=end, end_time=end)
    config = {"task": {"name": task, "params": CHOMSKY if params is None else params}, "run": {"profile": profile}}
    return RunRecord(run_id=digest[:16], config_hash=digest, task=task, model=model, lr=lr, seed=seed,
                     config=config, provenance=prov, status=status, reason=None if status == "ok" else "x",
                     metrics=list(metrics), train={"steps_done": 1, "loss_curve": [], "eval_curve": []})


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
    assert row["metric"] == "accuracy, length mean" and row["higher_is_better"]


def test_split_cells_show_mean_interval_and_count():
    frame = pd.DataFrame({"split": ["test", "test", "val"], "slice_key": "all", "metric": "accuracy",
                          "value": [0.5, 0.7, 0.9]})
    cells = report.split_cells(frame, ["accuracy", "loss"])
    # t(0.975, 1) = 12.706; sd = 0.1414; half-width = 12.706 * 0.1414 / sqrt(2) = 1.2706
    assert cells.loc["test", "accuracy"] == "0.600 [-0.671, 1.871] (n=2)"
    assert cells.loc["val", "accuracy"] == "0.900 (n=1)"
    assert math.isnan(cells.loc["val", "loss"])


def test_pairwise_pairs_seeds_at_each_model_s_rate():
    recs = [record(model=m, seed=s, metrics=rows("test", {5: v}))
            for m, vals in (("hawk", (0.9, 0.8, 0.85)), ("lstm", (0.5, 0.45, 0.4))) for s, v in enumerate(vals)]
    table = report.pairwise(recs, "hawk", "lstm")
    row = table.loc["parity_check"]
    assert row["common seeds"] == 3 and row["hawk mean"] == pytest.approx(0.85) and row["lstm mean"] == pytest.approx(0.45)
    # differences 0.4, 0.35, 0.45: mean 0.4, sd 0.05, t = 0.4 / (0.05 / sqrt 3) = 13.86 with 2 df, p = 0.0052
    assert row["t"] == pytest.approx(13.856, abs=1e-3) and row["p"] == pytest.approx(0.0052, abs=1e-4)
    assert row["result"] == "different at 5%"
    missing = report.pairwise(recs, "hawk", "gru")
    assert missing.loc["parity_check", "result"] == "one of the models has no run"


def test_length_curves_follow_the_card_and_the_run_s_own_training_length():
    recs = [record(metrics=rows("test", {5: 1.0, 8: 0.0}, whole=0.5) + rows("val", {2: 1.0}, whole=1.0)),
            record(model="lstm", params={"train_max_length": 6, "max_test_length": 8},
                   metrics=rows("test", {7: 0.25}, whole=0.25))]
    curves = report.length_curves(recs).set_index(["model", "length"])
    assert curves.loc[("hawk", 2), "accuracy"] == 1.0 and curves.loc[("hawk", 8), "accuracy"] == 0.0
    assert curves.loc[("hawk", 5), "train_length"] == 4 and curves.loc[("lstm", 7), "train_length"] == 6
    table = report.inside_beyond(report.length_curves(recs[:1]))
    assert table.loc[("parity_check", "hawk")].tolist() == [1.0, 0.5, 0.5]


def test_log_bins_never_mix_trained_and_longer_lengths():
    curves = pd.DataFrame({"task": "t", "model": "m", "seeds": 1, "lr": 1e-3, "train_length": 40,
                           "length": [38, 39, 40, 41, 42], "accuracy": [1.0, 1.0, 1.0, 0.0, 0.0]})
    binned = report.log_binned(curves)
    assert set(binned[binned["inside"]]["accuracy"]) == {1.0}
    assert set(binned[~binned["inside"]]["accuracy"]) == {0.0}


def test_the_committed_leaderboard_is_what_the_results_page_showed():
    """Cells read off the Results page executed at 78383de from the same 258 records (before the
    scoring cards and the report existed): the refactor left the numbers as they were."""
    stored = report.profile_records(REPO / "results", "full")
    board = report.leaderboard(stored.records).set_index(["task", "model"])
    expected = {("mqar", "griffin"): (0.814, 0.012, 3), ("parity_check", "lstm"): (0.854, 0.629, 3),
                ("flipflop", "transformer"): (0.143, 0.085, 3), ("lis", "hawk"): (0.066, None, 1),
                ("induction_heads", "hawk"): (0.999, 0.001, 3), ("bucket_sort", "transformer"): (0.957, None, 1)}
    for key, (mean, half, seeds) in expected.items():
        row = board.loc[key]
        assert round(row["mean"], 3) == mean and row["n_seeds"] == seeds, key
        if half is not None:
            assert round((row["ci_high"] - row["ci_low"]) / 2, 3) == half, key
    assert len(stored.records) == len(records_frame(stored.records).drop_duplicates("run_id"))
