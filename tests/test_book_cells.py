"""Cells (seqlib.book.cells, issue 16 items 6-7): declarations on a grid entry expand to their own
configurations and hashes, recorded apart from the entry's runs; Zoology's MQAR cell builds its
model (2 mixer layers, no MLP, V = 8192, random_non_queries=False); the window sweep's ceiling comes
from MQAR.value_distances; bad declarations are refused before any work; the grid trains the cells
after the entry's runs and the plan counts them."""

from __future__ import annotations

import copy
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import yaml

from seqlib import train
from seqlib.book import cells as book_cells
from seqlib.book.cells import (
    STORE,
    EntryCells,
    by_cell,
    declared,
    entry_cells,
    grid_entry,
    scores,
    window_ceilings,
)
from seqlib.book.grid import load_grid, planned_runs, planned_training, stack_jobs
from seqlib.config import ConfigError, default_params_dir, known_profiles, load_config
from seqlib.models import build_model
from seqlib.provenance import REPO
from seqlib.stack import default_instances
from seqlib.tasks import get_task
from seqlib.tasks.mqar import MQAR

PROFILES = known_profiles(default_params_dir())
WHERE = "grid.yaml: entry 'mqar'"
ZOOLOGY_RATES = [1e-4, 4.64e-4, 2.15e-3, 1e-2]  # logspace(-4, -2, 4), tasks.md §1.3

# a tiny profile's cells: the tiny MQAR task is V = 256, L = 32, D = 2 (tasks.yaml), Griffin's window 8
ENTRY = {
    "chapter": "mqar", "task": "mqar", "train": True, "models": ["hawk", "griffin", "lstm"],
    "cells": {
        "narrow": {"set": {"model.n_layers": 2, "model.mlp_expansion": 0, "param_budget": None,
                           "run.eval_splits": ["val", "test"]},
                   "model_set": {"griffin": {"model.pattern": ["recurrent", "local_attention"]}},
                   "axes": {"width": {"d8": {"model.d_model": 8}, "d32": {"model.d_model": 32}},
                            "length": {"L32": {}, "L64": {"task.params.seq_len": 64, "task.params.num_kv_pairs": 4,
                                                         "optim.batch_size": 4}}},
                   "profiles": {"tiny": {"axes": {"width": ["d8", "d32"]}}, "book": {"axes": {"width": ["d32"]}}}},
        "window": {"models": ["griffin"], "axes": {"window": {"w4": {"model.window": 4}, "w8": {"model.window": 8}}},
                   "profiles": {"tiny": {}}},
    },
}


def tiny_cells(entry: dict = ENTRY, profile: str = "tiny") -> EntryCells:
    return entry_cells(entry, profile, WHERE)


def test_cells_expand_to_their_configurations_with_distinct_hashes():
    cells = tiny_cells()
    assert [c.name for c in cells.cells] == ["narrow-d8-L32", "narrow-d8-L64", "narrow-d32-L32", "narrow-d32-L64",
                                             "window-w4", "window-w8"]
    assert [c.name for c in declared(ENTRY, "book", WHERE, PROFILES)] == ["narrow-d32-L32", "narrow-d32-L64"]
    assert declared(ENTRY, "smoke", WHERE, PROFILES) == []  # a profile not named trains none
    runs = cells.runs
    groups = by_cell(runs)
    assert sorted(groups) == sorted([(c, m) for c in ("narrow-d8-L32", "narrow-d8-L64", "narrow-d32-L32",
                                                      "narrow-d32-L64") for m in ("hawk", "griffin", "lstm")]
                                    + [("window-w4", "griffin"), ("window-w8", "griffin")])
    base = {m: load_config("mqar", m, "tiny") for m in ENTRY["models"]}
    for (cell, model), cfgs in groups.items():
        cfg = cfgs[0]
        if cell.startswith("narrow"):
            d, length = int(cell.split("-")[1][1:]), int(cell.split("-")[2][1:])
            assert (cfg.model.d_model, cfg.model.n_layers, cfg.model.mlp_expansion, cfg.param_budget) == (d, 2, 0, None)
            assert cfg.task.params["seq_len"] == length and cfg.task.params["num_kv_pairs"] == (4 if length == 64 else 2)
            assert cfg.optim.batch_size == (4 if length == 64 else base[model].optim.batch_size)
            assert cfg.model.block_types == (["recurrent", "local_attention"] if model == "griffin" else [model if
                                             model == "lstm" else "recurrent"] * 2)
        else:
            assert cfg.model.window == int(cell[len("window-w"):]) and cfg.model.n_layers == base[model].model.n_layers
        # one run per rate and seed of the profile, as the entry's runs
        assert len(cfgs) == len(base[model].optim.lrs) * len(base[model].optim.seeds)
    hashes = [r.config.hash() for r in runs]
    own = {run.hash() for cfg in base.values() for run in train.sweep_plan(cfg)}
    # window-w8 is Griffin's own tiny configuration (window 8): the same run, in the entry's store
    same = [r for r in runs if r.config.hash() in own]
    assert [r.cell.name for r in same] == ["window-w8"] and same[0].config.run.results_dir == base["griffin"].run.results_dir
    others = [r for r in runs if r.config.hash() not in own]
    assert len(set(hashes)) == len(hashes) and all(
        r.config.run.results_dir == str(Path(base["hawk"].run.results_dir) / STORE) for r in others)


def test_the_grid_trains_the_cells_after_the_entry_runs_and_once_each(tmp_path, monkeypatch):
    (tmp_path / "chapters").mkdir()
    (tmp_path / "chapters" / "mqar.ipynb").write_text("{}")
    (tmp_path / "grid.yaml").write_text(yaml.safe_dump({"runs": [ENTRY]}, sort_keys=False))
    runs = load_grid(tmp_path / "grid.yaml", tmp_path / "chapters", tmp_path / "out", "tiny")
    assert all(run.cells is runs[0].cells for run in runs)  # one expansion for the entry's pages
    monkeypatch.setattr(train, "stored_record", lambda cfg: None)  # plan every run, stored or not
    training = planned_training(runs, planned_runs(runs))
    names = [name for name, _ in training]
    first_cell = next(i for i, n in enumerate(names) if ":" in n)
    assert all(":" not in n for n in names[:first_cell]) and all(":" in n for n in names[first_cell:])
    assert names[first_cell].startswith("mqar:narrow-d8-L32/hawk/")
    assert not any(n.startswith("mqar:window-w8/") for n in names)  # the entry's own Griffin run, trained once
    assert sum(n.startswith("mqar/griffin/") for n in names) == 1
    assert len({job["config"]["run"]["results_dir"] for _, job in training}) == 2  # the store and its cells store
    labels = [label for label, _ in stack_jobs(training, 64)]
    assert labels[-1].startswith("mqar:window-w4/griffin/")


def test_zoology_cell_builds_two_mixer_layers_without_an_mlp():
    entry, where = grid_entry("mqar", "book")
    models = ["hawk", "griffin", "transformer", "lstm"]
    cells = entry_cells({**entry, "models": models}, "book", where)
    zoology = EntryCells([c for c in cells.cells if c.family == "zoology"], cells.tasks, models, "book", where)
    groups = by_cell(zoology.runs)
    assert sorted(groups) == sorted(("zoology", m) for m in models)
    for (_, model), cfgs in groups.items():
        cfg = cfgs[0]
        assert cfg.task.params["vocab_size"] == 8192 and cfg.task.params["random_non_queries"] is False
        assert (cfg.task.params["seq_len"], cfg.task.params["num_kv_pairs"]) == (256, 16)
        assert sorted(c.optim.lr for c in cfgs) == ZOOLOGY_RATES and cfg.optim.batch_size == 256
        assert cfg.param_budget is None and cfg.model.d_model == 128  # equal width, not equal parameters
        assert train.select_split(cfg, get_task(cfg.task.name, **cfg.task.params)) == "val"
        net = build_model(cfg.model, get_task(cfg.task.name, **cfg.task.params).spec)
        assert len(net.blocks) == 2
        assert all(getattr(block, "mlp_block", None) is None for block in net.blocks)  # no MLP anywhere
        kinds = {"griffin": ["recurrent", "local_attention"], "hawk": ["recurrent"] * 2,
                 "transformer": ["global_attention"] * 2, "lstm": ["lstm"] * 2}[model]
        assert cfg.model.block_types == kinds
    # the entry's own book runs are another model: three layers with MLPs, sized to a budget
    ours = load_config("mqar", "hawk", "book")
    assert ours.model.n_layers == 3 and ours.model.mlp_expansion > 0 and ours.param_budget


def test_a_pattern_must_be_the_models_own_mixers_within_its_layers():
    from seqlib.models import ModelConfig

    assert ModelConfig(name="griffin", n_layers=4, pattern=["local_attention", "recurrent"]).block_types == [
        "local_attention", "recurrent", "local_attention", "recurrent"]
    for bad, message in ((["global_attention"], "its own mixers"), ([], "non-empty"),
                         (["recurrent", "recurrent", "local_attention"], "more blocks than n_layers=2")):
        with pytest.raises(ValueError, match=message):
            ModelConfig(name="griffin", n_layers=2, pattern=bad)


def test_the_window_ceiling_comes_from_value_distances(monkeypatch):
    task = get_task("mqar", vocab_size=256, seq_len=32, num_kv_pairs=2)
    monkeypatch.setattr(MQAR, "value_distances", staticmethod(lambda batch: np.array([1, 3, 3, 8, 20])))
    assert task.window_ceiling([2, 3, 8, 32]) == {2: 0.2, 3: 0.6, 8: 0.8, 32: 1.0}
    cells = tiny_cells()
    table = window_ceilings(cells.runs)
    assert table[["cell", "model", "window"]].values.tolist() == [["window-w4", "griffin", 4], ["window-w8", "griffin", 8]]
    assert table["predicted ceiling"].tolist() == [0.6, 0.8]
    for bad in ([], [0], [2.5]):
        with pytest.raises(ValueError):
            task.window_ceiling(bad)


def test_the_window_ceiling_of_the_book_cells_by_hand():
    entry, where = grid_entry("mqar", "book")
    cells = entry_cells({**entry, "models": ["griffin"]}, "book", where)
    window = EntryCells([c for c in cells.cells if c.family == "window"], cells.tasks, ["griffin"], "book", where)
    table = window_ceilings(window.runs)
    cfg = window.runs[0].config
    task = get_task(cfg.task.name, **cfg.task.params)
    distances = MQAR.value_distances(task.sample("test", 1024, 0))
    assert table["window"].tolist() == [16, 32, 64, 128]
    assert table["predicted ceiling"].tolist() == [float((distances <= w).mean()) for w in (16, 32, 64, 128)]


def record_of(cfg, val: float, test: float, state: int):
    rec = train.new_record(cfg)
    rec.status, rec.reason = "ok", None
    rec.metrics = [{"split": s, "slice_key": "all", "slice_value": "all", "metric": "accuracy", "value": v, "n": 8}
                   for s, v in (("val", val), ("test", test))]
    rec.train = {"steps_done": 6, "select_split": "val", "loss_curve": [], "eval_curve": []}
    rec.measure = {"num_params": 1000, "state_size": state, "state_size_seq_len": cfg.task.params["seq_len"]}
    return rec


def test_scores_choose_the_rate_on_val_and_report_test(monkeypatch):
    runs = [r for r in tiny_cells().runs if r.cell.name == "narrow-d8-L64" and r.config.model.name == "hawk"]
    lrs = [r.config.optim.lr for r in runs]
    assert len(lrs) == 1  # tiny: one rate; add a second run at another rate by hand
    second = runs[0].config.for_run(lrs[0] * 10, 0)
    records = {runs[0].config.hash(): record_of(runs[0].config, 0.2, 0.9, 64),
               second.hash(): record_of(second, 0.7, 0.3, 64)}
    monkeypatch.setattr(train, "stored_record", lambda cfg: records.get(cfg.hash()))
    got = scores({("narrow-d8-L64", "hawk"): [runs[0].config, second],
                  ("narrow-d32-L64", "hawk"): [runs[0].config.for_run(1.0, 5)]})
    chosen, empty = got.iloc[0], got.iloc[1]
    # val picks the second rate (0.7 > 0.2) though the first has the better test accuracy
    assert (chosen["lr"], chosen["select_value"], chosen["value"], chosen["recorded"]) == (lrs[0] * 10, 0.7, 0.3, 2)
    assert (chosen["family"], chosen["d_model"], chosen["n_layers"], chosen["mlp_width"], chosen["state_size"],
            chosen["seq_len"]) == ("narrow", 8, 2, 0, 64, 64)
    assert empty["recorded"] == 0 and np.isnan(empty["value"]) and empty["runs"] == 1


BAD = [
    ({"cells": {"x": {"sett": {}}}}, r"cell 'x': unknown key\(s\) \['sett'\]"),
    ({"cells": {"x": {"set": {"model.d_model": 8}, "profiles": {"tinny": {}}}}}, r"unknown profile\(s\) \['tinny'\]"),
    ({"cells": {"x": {"set": {"model.d_model": 8}}}}, "profiles must map"),
    ({"cells": {"x": {"set": {"model.d_model": 8}, "models": ["mamba9"], "profiles": {"tiny": {}}}}}, "models"),
    ({"cells": {"x": {"models": ["hawk"], "model_set": {"gru": {"model.d_model": 8}}, "profiles": {"tiny": {}}}}},
     "model_set"),
    ({"cells": {"x": {"axes": {"w": {"a-b": {"model.d_model": 8}}}, "profiles": {"tiny": {}}}}}, "labels"),
    ({"cells": {"x": {"axes": {"w": {"a": {"model.d_model": 8}}}, "profiles": {"tiny": {"axes": {"w": ["b"]}}}}}},
     "unknown, malformed or repeated"),
    ({"cells": {"x": {"axes": {"w": {"a": {"model.d_model": 8}}}, "profiles": {"tiny": {"axes": {"v": ["a"]}}}}}},
     "axes must map axes of the cell"),
    ({"cells": {"x": {"set": {"model.name": "gru"}, "profiles": {"tiny": {}}}}}, "cannot set"),
    ({"cells": {"x": {"set": {"run.results_dir": "elsewhere"}, "profiles": {"tiny": {}}}}}, "cannot set"),
    ({"cells": {"x": {"profiles": {"tiny": {}}}}}, "sets nothing"),
    ({"cells": {"X y": {"set": {"model.d_model": 8}, "profiles": {"tiny": {}}}}}, "a cell name"),
    ({"cells": {"x": {"set": {"model.d_model": 8}, "profiles": {"tiny": {"seed": 1}}}}}, "profile 'tiny'"),
    ({"train": False, "cells": {"x": {"set": {"model.d_model": 8}, "profiles": {"tiny": {}}}}}, "train: true"),
    ({"cells": {"x": {"set": {"model.d_model": 8}, "profiles": {"tiny": {"models": ["hawk"]}}}}}, "why must say why"),
    ({"cells": {"x": {"set": {"model.d_model": 8}, "profiles": {"book": {"models": ["mamba9"], "why": "w"}}}}},
     "profile 'book': models"),
]


def test_a_profile_trains_a_cell_for_some_models_and_says_why():
    entry = copy.deepcopy(ENTRY)
    entry["cells"]["narrow"]["profiles"]["tiny"] |= {"models": ["hawk", "gru"], "why": "the budget"}
    narrow = [c for c in declared(entry, "tiny", WHERE, PROFILES) if c.family == "narrow"]
    assert narrow and all((c.models, c.why) == (("hawk",), "the budget") for c in narrow)  # gru: not the entry's
    book = [c for c in declared(entry, "book", WHERE, PROFILES) if c.family == "narrow"]
    assert book and all((c.models, c.why) == (("hawk", "griffin", "lstm"), None) for c in book)  # other profiles


@pytest.mark.parametrize(("change", "message"), BAD)
def test_bad_cell_declarations_are_refused(change, message):
    entry = {**copy.deepcopy(ENTRY), **change}
    for profile in ("tiny", "smoke"):  # whatever the profile runs
        with pytest.raises(ValueError, match=message):
            declared(entry, profile, WHERE, PROFILES)


def test_a_setting_the_configuration_refuses_names_the_cell():
    entry = {**ENTRY, "cells": {"x": {"set": {"model.d_model": -1}, "profiles": {"tiny": {}}}}}
    with pytest.raises(ConfigError, match=r"(?s)cell 'x', model 'hawk', task 'mqar': .*model.d_model"):
        _ = tiny_cells(entry).runs


@pytest.mark.book
def test_the_grid_refuses_bad_cells_before_any_work(tmp_path):
    (tmp_path / "chapters").mkdir()
    (tmp_path / "chapters" / "mqar.ipynb").write_text("{}")
    cmd = [sys.executable, "-m", "seqlib.book.grid", "--grid", str(tmp_path / "grid.yaml"), "--chapters",
           str(tmp_path / "chapters"), "--out", str(tmp_path / "runs"), "--profile", "tiny", "--plan"]
    for cells, message in (({"x": {"sett": {}}}, "unknown key(s) ['sett']"),
                           ({"x": {"set": {"optim.batch_size": 0}, "profiles": {"tiny": {}}}}, "cell 'x', model 'lstm'")):
        (tmp_path / "grid.yaml").write_text(yaml.safe_dump({"runs": [{**ENTRY, "models": ["lstm"], "cells": cells}]}, sort_keys=False))
        proc = subprocess.run(cmd, capture_output=True, text=True, timeout=300, cwd=REPO)
        assert proc.returncode == 2 and message in proc.stderr, proc.stdout + proc.stderr
        assert "task  " not in proc.stdout  # no plan was printed


def test_the_plan_counts_the_cells(tmp_path, monkeypatch):
    import test_book_plan as plan_tests

    from seqlib.book.plan import estimate
    from seqlib.results import write_record

    store, bench = tmp_path / "results", tmp_path / "results" / "bench"
    measured = record_of(load_config("mqar", "lstm", "tiny").for_run(1e-3, 0), 0.5, 0.5, 64)  # one GPU run
    measured.provenance.device, measured.provenance.commit = "cuda", plan_tests.A
    measured.measure |= {"step_time_s": 0.05, "train_time_s": 10.0, "wall_time_s": 10.5, "train_tokens": 6 * 8 * 32}
    measured.train["eval_curve"] = [[6, 0.5]]
    write_record(store, measured)
    plan_tests.write_sweep(bench, "20260101T000000", [plan_tests.row("mqar", "lstm", 16, 4.0, loop=25.0)])
    (tmp_path / "chapters").mkdir()
    (tmp_path / "chapters" / "mqar.ipynb").write_text("{}")
    entry = {**ENTRY, "models": ["lstm"]}
    (tmp_path / "grid.yaml").write_text(yaml.safe_dump({"runs": [entry]}, sort_keys=False))
    runs = load_grid(tmp_path / "grid.yaml", tmp_path / "chapters", tmp_path / "out", "tiny")
    monkeypatch.setattr(train, "stored_record", lambda cfg: None)
    jobs = stack_jobs(planned_training(runs, planned_runs(runs)), 64)
    est = estimate(jobs, store, bench)
    cells = [f"mqar:{c}" for c in ("narrow-d8-L32", "narrow-d8-L64", "narrow-d32-L32", "narrow-d32-L64")]
    assert list(est.tasks) == ["mqar", *cells]  # the window cells are Griffin's: not in an lstm grid
    steps = load_config("mqar", "lstm", "tiny").optim.steps
    for label in cells:
        row = est.tasks[label]
        # one run (tiny: one rate, one seed), K = 1: steps x the loop's 1/25 s, whatever the cell's shape
        assert (row["jobs"], row["runs"], row["steps"], row["unknown"]) == (1, 1, steps, 0)
        assert row["train"] * 3600 == pytest.approx(steps / 25.0)
    total = sum(r["train"] + r["eval"] for r in est.tasks.values())
    assert est.tasks[cells[-1]]["done"] == pytest.approx(total)  # trained last


def test_the_repository_grid_declares_the_issue_cells():
    """full: Zoology's 4 x 4 sweep and the 5 windows; book: widths 64-256 at two lengths, for every
    model of the entry, and Zoology's cell."""
    (full_entry, where), (entry, _) = grid_entry("mqar", "full"), grid_entry("mqar", "book")
    full = {c.name: c for c in declared(full_entry, "full", where, PROFILES)}
    book = {c.name: c for c in declared(entry, "book", where, PROFILES)}
    sweep = [n for n in full if n.startswith("sweep-")]
    assert len(sweep) == 16 and {full[n].labels["width"] for n in sweep} == {"d64", "d128", "d256", "d512"}
    assert {(full[n].settings["task.params.seq_len"], full[n].settings["task.params.num_kv_pairs"]) for n in sweep} == {
        (64, 4), (128, 8), (256, 16), (512, 64)}
    assert all(full[n].settings["optim.lr_sweep"] == ZOOLOGY_RATES for n in sweep)
    assert {full[n].settings["model.window"] for n in full if n.startswith("window-")} == {16, 32, 64, 128, 256}
    widths = {book[n].settings["model.d_model"] for n in book if n.startswith("sweep-")}
    lengths = {book[n].settings["task.params.seq_len"] for n in book if n.startswith("sweep-")}
    assert {64, 128, 256} <= widths and len(lengths) >= 2 and "zoology" in book
    assert set(book["zoology"].models) == set(entry["models"])  # every architecture at Zoology's point
    # the sweep: the book's own models (vmapped stacks); the zoo (run by run) is left out, and the cell says why
    zoo = {m for m in entry["models"] if default_instances(load_config("mqar", m, "book")) == "loop"}
    assert zoo and all(set(c.models) == set(entry["models"]) - zoo and "zoo" in c.why
                       for n, c in book.items() if n.startswith("sweep-"))
    assert book_cells.GRID == REPO / "params" / "grid.yaml"
