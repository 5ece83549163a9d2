"""The one learning-rate choice (seqlib.book.report.select_lr) on hand-made records: chosen on each run's
in-distribution selection split, the headline reported at that rate beside it, a choice on the reported
split flagged, and every caller (leaderboard, pairwise, length curves, the flip-flop page's rows, the
command line) at the same rates."""

from __future__ import annotations

import pytest
from test_book_report import record, rows

from seqlib import cli
from seqlib.book import report
from seqlib.provenance import REPO
from seqlib.results import records_frame, write_record
from seqlib.stats import best_over_lr

# parity_check x hawk, two rates x two seeds; the card's headline is the test length mean.
# val:  1e-3 -> 0.9, 0.8 (mean 0.85)   3e-3 -> 0.6, 0.7 (mean 0.65): 1e-3 is best on val
# test: 1e-3 -> 0.3, 0.5 (mean 0.40)   3e-3 -> 0.9, 0.9 (mean 0.90): 3e-3 is best on test
VAL = {1e-3: [0.9, 0.8], 3e-3: [0.6, 0.7]}
TEST = {1e-3: [0.3, 0.5], 3e-3: [0.9, 0.9]}


def sweep(model="hawk", select="val", val=VAL, test=TEST, **kw):
    return [record(model=model, lr=lr, seed=s, select=select,
                   metrics=rows("test", {5: test[lr][s]}, whole=test[lr][s])
                   + (rows("val", {2: val[lr][s]}, whole=val[lr][s]) if val else []), **kw)
            for lr in test for s in range(2)]


def test_the_rate_best_on_val_is_chosen_and_test_is_reported_there():
    recs = sweep()
    chosen = report.select_lr(recs)
    assert set(chosen["lr"]) == {1e-3} and chosen["seed"].tolist() == [0, 1]
    assert chosen["value"].tolist() == [0.3, 0.5] and chosen["select_value"].tolist() == [0.9, 0.8]
    assert (chosen["select_split"] == "val").all() and (chosen["split"] == "test").all()
    # the rule on the reported split, the mutant this choice replaces, takes the other rate
    assert set(best_over_lr(report.run_scores(recs), "test", "length_mean_accuracy")["lr"]) == {3e-3}
    row = report.leaderboard(recs).iloc[0]
    assert row["lr"] == 1e-3 and row["mean"] == pytest.approx(0.4) and row["select_mean"] == pytest.approx(0.85)
    assert (row["split"], row["select_split"], row["select_metric"]) == ("test", "val", "length_mean_accuracy")
    assert report.selection_note(row) == ""
    cells = report.seed_cells(report.leaderboard(recs)).iloc[0]
    assert (cells["selection split"], cells["selection mean"], cells["mean [95% CI]"]) == (
        "val", "0.850", "0.400 [0.300, 0.500]")
    assert report.choice_lines(chosen) == ("parity_check x hawk: learning rate 0.001, chosen on val "
                                           "(mean length_mean_accuracy 0.85 over 2 seeds)")


def test_a_record_selected_on_the_reported_split_is_flagged():
    """No val in the records (the older stored MQAR and copying records): chosen on test, and said so."""
    recs = sweep(select="test", val=None)
    chosen = report.select_lr(recs)
    assert set(chosen["lr"]) == {3e-3} and (chosen["select_split"] == "test").all()
    row = report.leaderboard(recs).iloc[0]
    assert report.selection_note(row) == "rate chosen on the reported split (test): optimistic"
    assert report.seed_cells(report.leaderboard(recs))["selection split"].tolist() == [report.selection_note(row)]
    assert report.choice_lines(chosen).endswith("over 2 seeds); rate chosen on the reported split (test): optimistic")


def test_a_record_that_selected_on_test_but_holds_val_is_chosen_on_val():
    """A run that selected on the headline's split (no run.select_split) but was evaluated on val."""
    chosen = report.select_lr(sweep(select="test"))
    assert set(chosen["lr"]) == {1e-3} and (chosen["select_split"] == "val").all()


def test_the_record_s_own_selection_metric_and_its_direction():
    """select_metric says loss: the lowest mean val loss (3e-3: 0.2), although 1e-3 has the better
    val accuracy."""
    recs = sweep()
    for r in recs:
        r.train["select_metric"] = "loss"
        r.metrics += rows("val", {}, whole={1e-3: 0.9, 3e-3: 0.2}[r.lr], metric="loss")
    chosen = report.select_lr(recs)
    assert set(chosen["lr"]) == {3e-3} and (chosen["select_metric"] == "loss").all()
    assert chosen["value"].tolist() == [0.9, 0.9]


def flipflop(model="hawk"):
    """val's glitch rate is lowest at 1e-3 (0.0), val_sparse's at 3e-3 (0.05 against 0.2)."""
    glitch = {1e-3: {"val": 0.0, "val_sparse": 0.2}, 3e-3: {"val": 0.1, "val_sparse": 0.05}}
    return [record(task="flipflop", model=model, params={}, lr=lr, seed=s, select="val",
                   metrics=[row for split, v in glitch[lr].items()
                            for row in rows(split, {}, whole=v + 0.01 * s, metric="glitch_rate")])
            for lr in glitch for s in range(2)]


def test_flipflop_page_and_results_choose_one_rate():
    recs = flipflop()
    board = report.leaderboard(recs).iloc[0]
    page = report.at_chosen_lr(records_frame(recs), report.select_lr(recs))  # the flip-flop page's rows
    assert board["lr"] == 1e-3 and set(page["lr"]) == {1e-3}
    sparse = page[(page["split"] == "val_sparse") & (page["slice_key"] == "all")]["value"]
    assert board["mean"] == pytest.approx(sparse.mean()) == pytest.approx(0.205)
    assert (board["select_split"], board["select_mean"]) == ("val", pytest.approx(0.005))


def test_pairwise_compares_at_the_chosen_rates():
    """hawk at 1e-3 (test 0.3, 0.5), lstm chosen on val at 3e-3 (test 0.9, 0.9)."""
    recs = sweep("hawk") + sweep("lstm", val={1e-3: [0.1, 0.1], 3e-3: [0.6, 0.7]})
    row = report.pairwise(recs, "hawk", "lstm").loc["parity_check"]
    assert (row["hawk mean"], row["lstm mean"], row["paired seeds"]) == (pytest.approx(0.4), pytest.approx(0.9), 2)


def test_length_curves_are_drawn_at_the_chosen_rate():
    curves = report.length_curves(sweep())
    assert set(curves["lr"]) == {1e-3}
    assert curves.set_index("length").loc[5, "accuracy"] == pytest.approx(0.4)


def test_runs_chosen_on_different_splits_or_without_one_are_refused():
    recs = sweep()
    recs[-1].train["select_split"] = "test"
    recs[-1].metrics = rows("test", {5: 0.9})  # no val to fall back on
    with pytest.raises(ValueError, match=r"parity_check x hawk x full are chosen on different splits .* "
                                         r"lr 0.003 seed 1 on test length_mean_accuracy"):
        report.select_lr(recs)
    del recs[0].train["select_split"]
    with pytest.raises(ValueError, match=rf"record {recs[0].run_id} \(parity_check x hawk\) has no train.select_split"):
        report.select_lr(recs[:1])


def test_the_command_line_reports_at_the_same_rates(tmp_path, capsys):
    for r in sweep() + sweep("lstm", select="test", val=None):
        write_record(tmp_path, r)
    assert cli.main(["results", "--dir", str(tmp_path), "--best", "test", "--metric", "accuracy"]) == 0
    out = capsys.readouterr().out.splitlines()
    hawk, lstm = (next(line.split() for line in out if f" {m} " in line) for m in ("hawk", "lstm"))
    assert hawk[3:7] == ["0.001", "val", "length_mean_accuracy", "0.85"] and "optimistic" not in " ".join(hawk)
    assert lstm[3:6] == ["0.003", "test", "length_mean_accuracy"] and " ".join(lstm).endswith(
        "rate chosen on the reported split (test): optimistic")
    cli._print_best(sweep())
    assert capsys.readouterr().out.startswith(
        "  chosen lr 0.001 on val (length_mean_accuracy mean 0.850): accuracy, length mean on test mean 0.400")


def test_the_committed_records_say_what_they_were_chosen_on():
    """The committed full profile: MQAR, the copying and the DP records hold no val (they selected on
    test) and are flagged; the Chomsky tasks and flip-flop are chosen on val, flip-flop reporting val_sparse."""
    board = report.leaderboard(report.profile_records(REPO / "results", "full").records)
    flagged = board[[bool(report.selection_note(r)) for _, r in board.iterrows()]]
    assert set(flagged["task"]) == {"mqar", "selective_copying", "induction_heads", "knapsack", "subset_sum",
                                    "min_coin_change", "lis", "balanced_partition"}
    assert (flagged["select_split"] == "test").all()
    rest = board[~board.index.isin(flagged.index)]
    assert (rest["select_split"] == "val").all() and (rest["split"] != "val").all()
    assert set(rest.loc[rest["task"] == "flipflop", "split"]) == {"val_sparse"}


def test_rates_are_compared_on_the_seeds_every_rate_has():
    """A two-stage sweep's chosen rate has more seeds than the others (its second stage): the rates are
    compared on their shared seed only, and the chosen rate then reports every seed it has. On the mean
    over all of each rate's seeds, the mutant, the other rate would win (0.85 > 0.6)."""
    first = {1e-3: [0.5], 3e-3: [0.6]}  # seed 0 at both rates: 3e-3 is better
    recs = [record(lr=lr, seed=0, metrics=rows("test", {5: 0.4}, whole=0.4) + rows("val", {2: v[0]}, whole=v[0]))
            for lr, v in first.items()]
    recs += [record(lr=1e-3, seed=s, metrics=rows("test", {5: 0.4}, whole=0.4) + rows("val", {2: 0.9}, whole=0.9))
             for s in (1, 2, 3, 4, 5)]  # 1e-3's five more seeds: its mean over six is 0.833
    chosen = report.select_lr(recs)
    assert set(chosen["lr"]) == {3e-3} and chosen["seed"].tolist() == [0]
    # chosen on seed 0 where 1e-3 is better there too: every seed of 1e-3 is reported
    recs[0] = record(lr=1e-3, seed=0, metrics=rows("test", {5: 0.4}, whole=0.4) + rows("val", {2: 0.7}, whole=0.7))
    chosen = report.select_lr(recs)
    assert set(chosen["lr"]) == {1e-3} and chosen["seed"].tolist() == [0, 1, 2, 3, 4, 5]
    frame = chosen.assign(lr=[1e-3] * 5 + [3e-3])  # seed 5 alone at 3e-3: no seed at both rates
    assert len(report.shared_seeds(frame)) == 6  # nothing shared: every row is kept
    frame = chosen.assign(lr=[1e-3] * 3 + [3e-3] * 3, seed=[0, 1, 2, 0, 1, 9])
    assert sorted(report.shared_seeds(frame)["seed"].tolist()) == [0, 0, 1, 1]


def test_a_two_stage_sweep_plans_its_second_stage_from_the_stored_first(tmp_path, tiny_config):
    """sweep_plan: the sweep seeds at every rate, the others at the chosen rate only; the book's
    second_stage_rate is None until every first-stage run has a record, then select_lr's choice on val;
    run_sweep (the chapters' and the command line's) trains both stages in one call."""
    from seqlib.config import ExperimentConfig
    from seqlib.train import run_sweep, second_stage_seeds, sweep_plan

    cfg = tiny_config(tmp_path, "lstm", "parity_check", {"train_max_length": 5, "max_test_length": 8},
                      steps=4, lr_sweep=[1e-3, 1e-2], seeds=[0, 1, 2], sweep_seeds=[0],
                      run_kw={"eval_splits": ["val", "test"], "select_split": "val"})
    assert second_stage_seeds(cfg) == [1, 2]
    assert [(c.optim.lr, c.optim.seeds[0]) for c in sweep_plan(cfg)] == [(1e-3, 0), (1e-2, 0)]
    assert [(c.optim.lr, c.optim.seeds[0]) for c in sweep_plan(cfg, 1e-2)][2:] == [(1e-2, 1), (1e-2, 2)]
    with pytest.raises(ValueError, match="not one of the sweep"):
        sweep_plan(cfg, 3e-3)
    assert all(c.optim.sweep_seeds is None for c in sweep_plan(cfg, 1e-2))  # a run's hash is a run's
    assert sweep_plan(cfg)[0].hash() == cfg.model_copy(update={"optim": cfg.optim.model_copy(
        update={"sweep_seeds": None})}).for_run(1e-3, 0).hash()
    with pytest.raises(ValueError, match="sweep_seeds"):
        ExperimentConfig.model_validate({**cfg.model_dump(), "optim": {**cfg.optim.model_dump(), "sweep_seeds": [7]}})
    assert report.second_stage_rate(cfg) is None and len(report.planned_sweep(cfg)) == 2
    outcomes = run_sweep(cfg, choose=report.second_stage_rate)
    first = [o.record for o in outcomes[:2]]
    chosen = report.select_lr(first)["lr"].iloc[0]
    assert report.second_stage_rate(cfg) == chosen
    assert [(o.record.lr, o.record.seed) for o in outcomes[2:]] == [(chosen, 1), (chosen, 2)]
    assert [c.hash() for c in report.planned_sweep(cfg)] == [o.record.config_hash for o in outcomes]
    assert run_sweep(cfg)[0].reused and len(run_sweep(cfg)) == 2  # without choose: the first stage only
