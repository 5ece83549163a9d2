"""Training to convergence (issue 16, point 2): the stopping rules of ``optim`` (solved, plateau, the
step cap), why a run ended and whether it fit its training distribution (``train.stop_reason``,
``train.fit``), the refusal of a rule on an out-of-distribution split, unchanged config hashes, the
stacked trainer's agreement with runs alone, and the pages' count of fitted seeds."""

from __future__ import annotations

import hashlib
import json

import pytest
from test_book_report import record as page_record
from test_book_report import rows as page_rows
from test_engine_train import DP
from test_stack import CHOMSKY, alone, assert_same_run, configs, stacked

from seqlib import train as trainer
from seqlib.book import report
from seqlib.config import (
    HASHED_WHEN_SET,
    UNHASHED,
    ConfigError,
    ExperimentConfig,
    canonical_json,
    distribution_shift,
    in_distribution_splits,
    load_config,
    out_of_distribution,
)
from seqlib.provenance import REPO
from seqlib.tasks import get_task, list_tasks
from seqlib.train import plateaued, run_one

EVERY, STEPS = 2, 20  # an evaluation every 2 steps, 10 at most
FLIPFLOP = {"seq_len": 8}


def scripted(monkeypatch, values, metric="accuracy"):
    """The selection split scores ``values[k]`` at its k-th evaluation (whole split and one length
    slice; flip-flop's glitch rate with accuracy 1 - glitch rate)."""
    left = iter(values)

    def fake(model, task, cfg, split, device, dtype):
        v = next(left)
        named = {"glitch_rate": v, "accuracy": 1 - v} if metric == "glitch_rate" else {metric: v}
        return [{"split": split, "slice_key": key, "slice_value": at, "metric": m, "value": x, "n": 8}
                for m, x in named.items() for key, at in (("all", "all"), ("length", "5"))]

    monkeypatch.setattr(trainer, "eval_rows", fake)


def run(tiny_config, tmp_path, task="parity_check", params=None, run_kw=None, **optim):
    cfg = tiny_config(tmp_path, "hawk", task, params, steps=STEPS, run_kw={"eval_every": EVERY, **(run_kw or {})},
                      **optim)
    return alone(cfg)


def ended(record) -> tuple:
    t = record.train
    return t["stop_reason"], t["steps_done"], t["fit"], t["stopped_early"]


# --------------------------------------------------------------------------- the rules, by hand


def test_solved_stops_at_the_evaluation_that_reaches_the_threshold(tiny_config, tmp_path, monkeypatch):
    """Parity's card: the val length mean >= 0.9. 0.95 at the third evaluation (step 6) stops the run."""
    scripted(monkeypatch, [0.2, 0.5, 0.95] + [1.0] * 7)
    rec = run(tiny_config, tmp_path, stop_at_solve=True)
    assert ended(rec) == ("solved", 6, True, True)
    assert rec.train["select_metric"] == "length_mean_accuracy"
    assert rec.train["select_curve"] == [[2, 0.2], [4, 0.5], [6, 0.95]]


def test_without_the_rule_the_same_values_train_to_the_cap(tiny_config, tmp_path, monkeypatch):
    scripted(monkeypatch, [0.2, 0.5, 0.95] + [1.0] * 7)
    assert ended(run(tiny_config, tmp_path)) == ("cap", STEPS, True, False)


def test_solved_in_the_cards_direction(tiny_config, tmp_path, monkeypatch):
    """Flip-flop's card: the glitch rate, lower is better, solved at 0: the third evaluation."""
    scripted(monkeypatch, [0.3, 0.1, 0.0] + [0.0] * 7, metric="glitch_rate")
    rec = run(tiny_config, tmp_path, "flipflop", FLIPFLOP, stop_at_solve=True)
    assert ended(rec) == ("solved", 6, True, True) and rec.train["select_metric"] == "glitch_rate"


def test_the_cap_unsolved_did_not_fit(tiny_config, tmp_path, monkeypatch):
    scripted(monkeypatch, [0.5] * 10)
    assert ended(run(tiny_config, tmp_path, stop_at_solve=True)) == ("cap", STEPS, False, False)


@pytest.mark.parametrize("delta, evaluation", [(0.0, 8), (0.05, 5)])
def test_plateau_stops_after_n_evaluations_without_improvement(tiny_config, tmp_path, monkeypatch, delta, evaluation):
    """N = 3 on 0.3, 0.5, 0.52, 0.53, 0.54, 0.54, ...: with delta 0, evaluation 8 is the first whose last
    three (0.54) do not beat the best before them (0.54); with delta 0.05 evaluation 5 (0.54 <= 0.5 + 0.05)."""
    scripted(monkeypatch, [0.3, 0.5, 0.52, 0.53, 0.54] + [0.54] * 5)
    rec = run(tiny_config, tmp_path, plateau_evals=3, plateau_delta=delta)
    assert ended(rec) == ("plateau", evaluation * EVERY, False, True)


def test_plateau_after_n_flat_evaluations(tiny_config, tmp_path, monkeypatch):
    scripted(monkeypatch, [0.3] + [0.5] * 9)
    assert ended(run(tiny_config, tmp_path, plateau_evals=3)) == ("plateau", 5 * EVERY, False, True)


def test_early_stop_accuracy_keeps_its_meaning(tiny_config, tmp_path, monkeypatch):
    scripted(monkeypatch, [0.2, 0.7] + [0.0] * 8)
    assert ended(run(tiny_config, tmp_path, early_stop_accuracy=0.6)) == ("early_stop_accuracy", 4, False, True)


def test_plateaued_by_hand():
    assert not plateaued([0.5, 0.5, 0.5], 3, 0.0, True)  # not more than N values yet
    assert plateaued([0.5, 0.5, 0.5, 0.5], 3, 0.0, True)
    assert not plateaued([0.5, 0.5, 0.5, 0.51], 3, 0.0, True)
    assert plateaued([0.5, 0.5, 0.5, 0.51], 3, 0.01, True)
    assert plateaued([0.5, 0.4, 0.4, 0.4], 2, 0.0, False)  # lower is better: 0.4 is not below 0.4
    assert not plateaued([0.5, 0.5, 0.4], 1, 0.0, False)
    assert plateaued([0.5, float("nan"), float("nan")], 2, 0.0, True)  # no value is no improvement


def test_a_task_without_a_threshold_has_no_fit(tiny_config, tmp_path):
    """LIS is scored by its MSE, which has no solve line: a real run ends at the cap, fit unknown."""
    rec = run(tiny_config, tmp_path, "lis", DP)
    assert rec.status == "ok" and ended(rec) == ("cap", STEPS, None, False)
    assert rec.train["select_metric"] == "loss" and len(rec.train["select_curve"]) == STEPS // EVERY


def test_a_curve_on_an_out_of_distribution_split_says_nothing_of_fit(tiny_config, tmp_path, monkeypatch):
    """Without a rule the selection split may be parity's test lengths; solved there or not, it is
    not the training distribution."""
    scripted(monkeypatch, [1.0] * 10)
    rec = run(tiny_config, tmp_path, run_kw={"select_split": "test"})
    assert ended(rec) == ("cap", STEPS, None, False)


# --------------------------------------------------------------------------- refused before training


@pytest.mark.parametrize("task, rule, split, problem", [
    ("parity_check", "optim.stop_at_solve=true", "test", "its length 13..20 lies outside the training length 1..12"),
    ("flipflop", "optim.plateau_evals=3", "val_sparse", "its p_i is 0.98, the training split's 0.8"),
    ("knapsack", "optim.early_stop_accuracy=0.9", "test_value", "its value_scale is 2, the training split's 1"),
    ("mqar", "optim.stop_at_solve=true", "test_length", "its length 64..256 lies outside the training length 64"),
    ("mqar", "optim.stop_at_solve=true", "test_value",
     "task 'mqar' does not declare it in distribution (its in-distribution splits: train, test, val)"),
])
def test_a_rule_on_an_out_of_distribution_split_is_refused(task, rule, split, problem):
    with pytest.raises(ConfigError) as err:
        load_config(task, "hawk", "smoke", [rule, f"run.select_split={split}"])
    msg = str(err.value)
    assert f"would stop on split {split!r} of task {task!r}, which is out of the training distribution" in msg
    assert problem in msg and f"--set {rule}" in msg and f"--set run.select_split={split}" in msg
    assert "set run.select_split to an in-distribution split (" in msg and "val" in msg
    no_rule = ["optim.early_stop_accuracy=null", f"run.select_split={split}"]  # MQAR's tasks.yaml sets one
    load_config(task, "hawk", "smoke", no_rule)  # without a rule the curve may be drawn on any split
    load_config(task, "hawk", "smoke", [rule, "run.select_split=val"])


def test_the_splits_the_tasks_mark_out_of_distribution():
    def marked(name, **params):
        task = get_task(name, **params)
        return sorted(s for s in task.splits if s != "train" and out_of_distribution(task, s))

    assert marked("parity_check") == ["test"]
    assert marked("flipflop") == ["val_dense", "val_sparse"]
    assert marked("knapsack") == ["test_length", "test_value"]
    assert marked("selective_copying") == ["test_length"]
    # the value splits draw their ids from parts of the ranges: only the declaration says so
    assert marked("mqar") == ["test_length", "test_value", "train_value"]
    mqar = get_task("mqar")
    assert distribution_shift(mqar, "test_value") is None and out_of_distribution(mqar, "val") is None


@pytest.mark.parametrize("name", list_tasks())
def test_the_declared_splits_agree_with_what_the_samples_show(name):
    """Every task declares train and val in distribution among its splits, and no declared split differs
    from train in its lengths or constant metadata (seqlib.config.distribution_shift)."""
    task = get_task(name)
    assert {"train", "val"} <= set(task.in_distribution) <= set(task.splits), task.in_distribution
    assert [s for s in task.in_distribution if distribution_shift(task, s)] == []
    assert all(out_of_distribution(task, s) for s in set(task.splits) - set(task.in_distribution))
    assert in_distribution_splits(task) == task.in_distribution


def test_a_task_that_declares_nothing_is_judged_by_its_samples(tampered):
    """A wrapper (the tests' Tampered) declares no splits: what its samples show decides, so MQAR's
    test_value passes for in distribution there, as before the declarations."""
    parity = tampered(load_config("parity_check", "hawk", "smoke"), lambda b: b, run_seed=0)
    assert parity.in_distribution is None and in_distribution_splits(parity) == ("train", "val")
    assert out_of_distribution(parity, "test").startswith("its length 13..20 lies outside")
    mqar = tampered(load_config("mqar", "hawk", "smoke"), lambda b: b, run_seed=0)
    assert out_of_distribution(mqar, "test_value") is None and out_of_distribution(mqar, "test_length")


def test_the_trainers_refuse_before_the_first_step(tiny_config, tmp_path):
    cfgs = configs(tiny_config, tmp_path, "hawk", "parity_check", CHOMSKY, stop_at_solve=True,
                   run_kw={"select_split": "test"})
    for rec in [run_one(cfgs[0], force=True).record, *stacked(cfgs)]:
        assert rec.status == "failed" and rec.reason.startswith("ConfigError: optim.stop_at_solve: would stop")
        assert rec.train.get("steps_done", 0) == 0


def test_stop_at_solve_needs_a_threshold_and_plateau_delta_its_rule():
    with pytest.raises(ConfigError, match="task 'lis' has no solve threshold on its scoring card"):
        load_config("lis", "hawk", "smoke", ["optim.stop_at_solve=true"])
    with pytest.raises(ConfigError, match=r"plateau_delta \(0.1\) is set but plateau_evals is not"):
        load_config("lis", "hawk", "smoke", ["optim.plateau_delta=0.1"])


# --------------------------------------------------------------------------- hashes


def old_hash(cfg: ExperimentConfig) -> str:
    """The hash as it was computed before the fields of HASHED_WHEN_SET existed."""
    data = cfg.model_dump(mode="json")
    for section, keys in (UNHASHED | HASHED_WHEN_SET).items():
        for key in keys:
            del data[section][key]
    return hashlib.sha256(canonical_json(data).encode()).hexdigest()


@pytest.mark.parametrize("task", ["mqar", "parity_check", "flipflop", "knapsack"])
@pytest.mark.parametrize("profile", ["smoke", "full"])
def test_default_configs_keep_their_hashes(task, profile):
    cfg = load_config(task, "hawk", profile)
    assert cfg.hash() == old_hash(cfg)
    explicit = load_config(task, "hawk", profile, ["optim.stop_at_solve=false", "optim.plateau_delta=0"])
    assert explicit.hash() == cfg.hash()
    for rule in ("optim.stop_at_solve=true", "optim.plateau_evals=5"):
        assert load_config(task, "hawk", profile, [rule, "run.select_split=val"]).hash() != cfg.hash()
    with_delta = ["optim.plateau_evals=5", "optim.plateau_delta=0.01", "run.select_split=val"]
    assert load_config(task, "hawk", profile, with_delta).hash() != load_config(task, "hawk", profile, with_delta[::2]).hash()


def test_a_stored_record_keeps_its_hash():
    """A record written before the stopping fields existed: its config has none of them."""
    stored = next(r for r in (json.loads(p.read_text()) for p in sorted((REPO / "results" / "mqar" / "griffin").glob("*.json")))
                  if r["schema"] == 1)  # one of the records committed before (schema 1)
    assert not set(HASHED_WHEN_SET["optim"]) & set(stored["config"]["optim"])
    assert ExperimentConfig.model_validate(stored["config"]).hash() == stored["config_hash"]


# --------------------------------------------------------------------------- stacked = alone


def test_the_stack_stops_as_runs_alone(tiny_config, tmp_path):
    """A plateau rule on real evaluations (val every 3 steps, N = 2), one instance with its own cap of
    9 steps: each instance ends at the step and for the reason its run alone does."""
    cfgs = configs(tiny_config, tmp_path, "hawk", "parity_check", CHOMSKY, plateau_evals=2,
                   run_kw={"eval_every": 3})
    cfgs[1] = cfgs[1].model_copy(update={"optim": cfgs[1].optim.model_copy(update={"steps": 9})})
    runs = [alone(c) for c in cfgs]
    got = stacked(cfgs)
    assert [ended(r) for r in got] == [ended(r) for r in runs]
    assert {r.train["stop_reason"] for r in runs} == {"plateau", "cap"}
    for a, b in zip(runs, got):
        assert_same_run(a, b)
        assert [s for s, _ in a.train["select_curve"]] == [s for s, _ in b.train["select_curve"]]


# --------------------------------------------------------------------------- the pages


def test_the_leaderboard_counts_the_seeds_that_fit():
    recs = [page_record(seed=s, metrics=page_rows("test", {5: v})) for s, v in enumerate([0.95, 0.6, 0.5])]
    for r, fit in zip(recs, [True, False, False]):
        r.train["fit"] = fit
    row = report.leaderboard(recs).iloc[0]
    assert (row["n_seeds"], row["fit"]) == (3, 1)
    assert report.fit_note(row) == f"2 of 3 seeds {report.NOT_FIT}"
    assert report.seed_cells(report.leaderboard(recs))["fit"].tolist() == ["1/3"]
    for r in recs:
        r.train["fit"] = False
    assert report.fit_note(report.leaderboard(recs).iloc[0]) == report.NOT_FIT == "did not fit the training distribution"
    for r in recs:
        r.train["fit"] = True
    assert report.fit_note(report.leaderboard(recs).iloc[0]) == ""


def test_records_that_do_not_say_whether_they_fit():
    """Records from before ``train.fit``: the count is unknown, and no row is labelled."""
    recs = [page_record(seed=s, metrics=page_rows("test", {5: 0.5})) for s in range(2)]
    recs[0].train["fit"] = False
    row = report.leaderboard(recs).iloc[0]
    assert row["n_seeds"] == 2 and row["fit"] != row["fit"] and report.fit_note(row) == ""
    assert report.seed_cells(report.leaderboard(recs))["fit"].tolist() == ["-"]
