"""The `book` profile (params/*.yaml, ``profiles.book``), what the committed book runs: every (task,
model) of the grid resolves with at least four log-spaced rates (the text chapter two: its own
budget), selects on an in-distribution val split that no page reports, is sized to its family's
parameter budget; the headline tasks have six seeds and train first; Chomsky's test has 128
sequences at every k-th length (k <= 5); and adding the profile left the stored `full` runs'
configurations as they were."""

from __future__ import annotations

from collections import Counter

import numpy as np
import pytest

from seqlib import train
from seqlib.book.grid import load_grid, planned_runs, planned_training
from seqlib.config import load_config
from seqlib.evaluate import eval_plan
from seqlib.models.sizing import TOLERANCE, count_params, match_budget
from seqlib.provenance import REPO
from seqlib.tasks import get_task
from seqlib.tasks.chomsky import ChomskyTask

SIX = 6  # the fewest seeds at which an exact paired sign-flip test can reach p < 0.05 (2/64)


def grid_runs(profile: str):
    return load_grid(REPO / "params" / "grid.yaml", REPO / "chapters", REPO / "book" / "runs", profile)


@pytest.fixture(scope="module")
def book() -> tuple[list, dict, dict]:
    """The book grid's runs, their planned configurations (:func:`planned_runs`) and these per
    (task, model) of a trained pair (one per rate and seed), planned as before any record (the store's
    first stages would plan their second stages)."""
    runs = grid_runs("book")
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(train, "stored_record", lambda cfg: None)
        plans = planned_runs(runs)
    pairs: dict = {}
    for cfg in (cfg for cfgs in plans.values() for cfg in cfgs):
        pairs.setdefault((cfg.task.name, cfg.model.name), []).append(cfg)
    return runs, plans, pairs


@pytest.fixture(scope="module")
def configs(book) -> dict:
    """(task, model) -> one planned book configuration (they differ only in rate and seed)."""
    return {pair: cfgs[0] for pair, cfgs in book[2].items()}


def task_of(cfg):
    return get_task(cfg.task.name, **cfg.task.params)


# the language-modelling chapter's own budget (issue 22: about 40 GPU-minutes for 26 models at two
# budgets) holds two rates, a factor of about 3.3 apart, on seed 0, and two more seeds at the chosen one
OWN_RATES = {"text": 2}


def test_every_pair_sweeps_four_log_spaced_rates(book):
    for pair, cfgs in book[2].items():
        lrs = sorted({c.optim.lr for c in cfgs})
        steps = np.diff(np.log(lrs))
        assert len(lrs) >= OWN_RATES.get(pair[0], 4) and np.ptp(steps) < 0.01 * steps.min(), (pair, lrs)
    assert {pair[0] for pair in book[2]} >= set(OWN_RATES)


def test_selection_is_on_an_in_distribution_val_split_that_no_page_reports(configs):
    for task_name in sorted({t for t, _ in configs}):
        cfg = configs[task_name, "hawk"]
        task = task_of(cfg)
        split = train.select_split(cfg, task)
        assert split == "val" != task.scoring.split, task_name
        if task_name == "text":  # held-out documents, not another seed stream (tests/test_corpus.py, test_tasks_text.py)
            continue
        # val is the training distribution on its own seed stream: given train's stream it draws
        # train's examples, and without it others
        own = task.sample("val", 4, seed=1)
        task.split_seed = lambda s, seed, stream=task.split_seed: stream("train" if s == "val" else s, seed)
        same = task.sample("val", 4, seed=1)
        del task.split_seed
        ref = task.sample("train", 4, seed=1)
        assert np.array_equal(same.inputs, ref.inputs) and np.array_equal(same.targets, ref.targets), task_name
        assert not np.array_equal(own.inputs, ref.inputs), task_name
    flipflop = task_of(configs["flipflop", "hawk"])  # the check tells a split of another distribution apart
    flipflop.split_seed = lambda s, seed, stream=flipflop.split_seed: stream("train" if s == "val_dense" else s, seed)
    assert not np.array_equal(flipflop.sample("val_dense", 4, seed=1).inputs, flipflop.sample("train", 4, seed=1).inputs)


def test_headline_tasks_have_six_seeds_and_train_first(book, monkeypatch):
    """MQAR and parity run six seeds in a two-stage sweep (seed 0 at every rate, the other five at the
    rate chosen on it); their runs are the grid's first round, and before any record the plan counts
    their second stages (five seeds per model) at a stand-in rate."""
    from seqlib.book.chapter import load_tasks
    from seqlib.book.grid import (
        GRID,
        headline_tasks,
        last_tasks,
        load_order,
        next_round,
        pending_second_stages,
    )

    runs, plans, pairs = book
    monkeypatch.setattr(train, "stored_record", lambda cfg: None)  # plan every run, stored or not
    headlines = headline_tasks(runs)
    assert {"mqar", "parity_check"} <= headlines
    for run in (r for r in runs if r.trains and set(r.trains) & headlines):
        for name, cfg in load_tasks(run.trains, run.params["model"], "book")[0].items():
            if name in headlines:
                assert len(cfg.optim.seeds) >= SIX and cfg.optim.sweep_seeds == [0], name
                assert {c.optim.seeds[0] for c in pairs[name, cfg.model.name]} == {0}  # stage 2 waits
    order = load_order(GRID, runs)
    first = next_round(planned_training(runs, plans, order=order), set(), order)
    tier = {name.split("/")[0].split("-")[0] for name, _ in first}  # a cell's runs by its family
    assert headlines <= tier <= set(order.tiers[0])  # the first tier: MQAR and parity with the others
    assert {name.split("seed=")[1] for name, _ in first} == {"0"}  # the second stages wait for the first
    pending = pending_second_stages(runs)
    staged = headlines | last_tasks(runs)  # the text chapter's second stage too, though it trains last
    paged = {t: len({r.params["model"] for r in runs if t in r.trains}) for t in staged}  # MQAR: the zoo has no page
    assert paged["mqar"] < paged["parity_check"]
    assert Counter(name.split("/")[0] for name, _ in pending) == {
        t: len(train.second_stage_seeds(load_config(t, "hawk", "book"))) * paged[t] for t in staged}


def test_chomsky_test_has_128_sequences_at_every_kth_length(configs):
    for (task_name, model), cfg in configs.items():
        task = task_of(cfg)
        if not isinstance(task, ChomskyTask) or model != "hawk":
            continue
        lengths = task.lengths("test")
        assert (lengths.start, task.max_test_length) == (41, 500) and lengths.step <= 5, task_name
        assert lengths[-1] > 500 - lengths.step, task_name  # the range is covered to its end
        plan = eval_plan(task, "test", train.eval_size(cfg, "test"), cfg.run.eval_batch_size)
        assert [n for _, n in plan] == [128] * len(lengths) or min(n for _, n in plan) >= 128, task_name


def test_flipflop_sparse_split_is_at_least_full_profile_size():
    book, full = (load_config("flipflop", "hawk", p) for p in ("book", "full"))
    assert train.eval_size(book, "val_sparse") >= train.eval_size(full, "val_sparse") >= 16384


def test_every_native_model_is_sized_to_its_task_budget(book, configs):
    runs = book[0]
    for (task_name, model), cfg in configs.items():
        assert cfg.param_budget and cfg.param_budget == configs[task_name, "hawk"].param_budget, (task_name, model)
    # a chapter's tasks differ in their input and output sizes only: size every model on its largest
    for tasks in {tuple(run.trains) for run in runs if run.trains}:
        spec = {t: task_of(configs[t, "hawk"]).spec for t in tasks}
        task_name = max(tasks, key=lambda t: (spec[t].vocab_size or spec[t].feature_dim or 0, spec[t].num_outputs))
        for model in {m for t, m in configs if t == task_name}:
            cfg = configs[task_name, model]
            got = count_params(match_budget(cfg.model, spec[task_name], cfg.param_budget), spec[task_name])
            assert abs(got - cfg.param_budget) <= TOLERANCE * cfg.param_budget, (task_name, model, got)


def test_the_stored_full_runs_keep_their_configurations():
    """Stored results are keyed by the hash of the resolved full-profile configuration: every run that a
    committed `full` page shows still finds its record (a profile change that touched `full` would not;
    a chapter without a committed page yet, the text chapter, has no record to lose)."""
    missing = [f"{c.task.name}/{c.model.name} lr={c.optim.lr:g} seed={c.optim.seeds[0]}"
               for page, cfgs in planned_runs(grid_runs("full")).items() if page.exists()
               for c in cfgs if train.stored_record(c) is None]
    assert not missing, f"{len(missing)} full-profile runs lost their records, e.g. {missing[:3]}"
