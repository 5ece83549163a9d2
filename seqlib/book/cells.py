"""Cells: variants of a grid entry's (task, model) configurations that train as runs of their own
(issue 16, items 6-7: Zoology's MQAR cell, Zoology's width x length sweep, Griffin's window sweep).

A task entry of ``params/grid.yaml`` declares them under ``cells:`` (its MQAR entry's comment gives
the format).
A cell is a list of settings, dotted keys as ``--set`` takes them (``model.d_model: 64``), laid over
the configuration of each model of the entry under the profile (:func:`seqlib.config.load_config`):
the declaration's ``set``, then one label's settings per axis (``axes``: one cell per combination,
named ``<cell>-<label>-<label>``), then the profile's ``set``, then the model's (``model_set``). The
declaration's ``profiles`` say which profiles train it and, per axis, which labels each runs; a
profile it does not name runs none of it.

Each cell run has its own configuration hash and record. The record lies in the cells store,
``<results_dir>/cells/<task>/<model>/`` (:data:`STORE`), out of the pages that read the results
store: a cell run has the task, model, rate and seed of an entry's run, so the Results page would
take one for the other. A cell run whose configuration is one of the entry's own runs (Griffin's
window 128 on the entry's backbone) is that run, recorded where the entry's runs are. The cell of
a record is not written in it: it is derived from the configuration, by expanding the declarations
(:func:`entry_plan`).
"""

from __future__ import annotations

import itertools
import json
import math
import re
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path
from typing import Any

import pandas as pd
import yaml

from seqlib.provenance import REPO

GRID = REPO / "params" / "grid.yaml"
STORE = "cells"  # <results_dir>/cells: the cells' records, beside the task folders, never among them
CELL_KEYS = ("set", "models", "model_set", "axes", "profiles")
PROFILE_KEYS = ("set", "axes", "models", "why")
# what a cell may not change: the run's identity and where its record goes
FIXED = ("model.name", "task.name", "run.profile", "run.results_dir")
NAME = re.compile(r"[a-z][a-z0-9_]*")
LABEL = re.compile(r"[A-Za-z0-9_.]+")  # no '-': it joins the labels in a cell's name


@dataclass(frozen=True)
class Cell:
    """One expanded cell: its ``name`` (``family`` plus a label per axis), its ``labels`` (axis ->
    label), the ``settings`` laid over every model's configuration, in order, the ``model_settings``
    laid over a model's after them, the ``models`` of the entry it applies to, and ``why`` the
    profile leaves the cell's other models out (None: it leaves none out)."""

    name: str
    family: str
    labels: dict[str, str]
    settings: dict[str, Any]
    model_settings: dict[str, dict[str, Any]]
    models: tuple[str, ...]
    why: str | None = None

    def overrides(self, model: str) -> list[str]:
        """The cell's settings for ``model`` as :func:`seqlib.config.load_config` overrides (JSON is YAML)."""
        merged = {**self.settings, **self.model_settings.get(model, {})}
        return [f"{key}={json.dumps(value)}" for key, value in merged.items()]


def _settings(value: Any, where: str) -> dict[str, Any]:
    """A mapping of dotted keys to values (``None``: none), checked for the keys no cell may set."""
    if value is None:
        return {}
    if not isinstance(value, dict) or not all(isinstance(k, str) and k for k in value):
        raise ValueError(f"{where}: settings must map dotted keys (model.d_model) to values, got {value!r}"[:400])
    fixed = sorted(k for k in value if k in FIXED or any(k.startswith(f"{f}.") for f in FIXED))
    if fixed:
        raise ValueError(f"{where}: a cell cannot set {fixed}: it varies a run of the entry's task and model, "
                         f"recorded in the cells store (the keys {list(FIXED)} are fixed)")
    return dict(value)


def _names(value: Any, where: str, what: str, allowed: list[str] | None = None,
           pattern: re.Pattern = NAME) -> list[str]:
    """A non-empty list of distinct names, each matching ``pattern`` (and in ``allowed`` if given)."""
    if not isinstance(value, list) or not value or not all(isinstance(v, str) for v in value):
        raise ValueError(f"{where}: {what} must be a non-empty list of names, got {value!r}"[:400])
    bad = [v for v in value if not pattern.fullmatch(v) or (allowed is not None and v not in allowed)]
    if bad or len(set(value)) != len(value):
        known = f" (known: {allowed})" if allowed is not None else ""
        raise ValueError(f"{where}: {what} {value}: unknown, malformed or repeated {bad or value}{known}"[:400])
    return value


def _axes(value: Any, where: str) -> dict[str, dict[str, dict[str, Any]]]:
    """A declaration's ``axes``: axis name -> label -> settings."""
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise ValueError(f"{where}: axes must map axis names to {{label: settings}}, got {value!r}"[:400])
    axes = {}
    for axis, labels in value.items():
        if not (isinstance(axis, str) and NAME.fullmatch(axis)) or not isinstance(labels, dict) or not labels:
            raise ValueError(f"{where}: axis {axis!r} must be a name mapping labels to settings, got {labels!r}"[:400])
        _names(list(labels), f"{where}, axis {axis!r}", "labels", pattern=LABEL)
        axes[axis] = {label: _settings(s, f"{where}, axis {axis!r}, label {label!r}") for label, s in labels.items()}
    return axes


def declared(entry: dict, profile: str, where: str, profiles: set[str]) -> list[Cell]:
    """The cells a grid entry declares for ``profile`` (its ``cells:``), checked before any work:
    unknown keys, profiles, models, axes or labels, settings no cell may change, and a cell that
    sets nothing are errors (``ValueError``) naming the entry and the cell, whatever the profile. The
    entry's ``models`` are those the profile runs; a cell's ``models`` limit it to some of them."""
    from seqlib.models import list_models

    spec = entry.get("cells")
    if spec is None:
        return []
    if "task" not in entry or not entry.get("train"):
        raise ValueError(f"{where}: cells vary the runs the grid trains: they need task, models and train: true")
    if not isinstance(spec, dict) or not spec:
        raise ValueError(f"{where}: cells must map cell names to their declarations, got {spec!r}"[:400])
    cells = []
    for family, decl in spec.items():
        at = f"{where}, cell {family!r}"
        if not (isinstance(family, str) and NAME.fullmatch(family)):
            raise ValueError(f"{at}: a cell name is lower-case letters, digits and _, starting with a letter")
        if not isinstance(decl, dict):
            raise ValueError(f"{at}: must be a mapping with keys among {list(CELL_KEYS)}")
        unknown = sorted(set(decl) - set(CELL_KEYS))
        if unknown:
            raise ValueError(f"{at}: unknown key(s) {unknown}; a cell may hold {list(CELL_KEYS)}")
        # the cell's models are those of the entry (the profile's: seqlib.book.toc.entry_models) it names
        own = _names(decl["models"], at, "models", list_models()) if "models" in decl else list_models()
        models = [m for m in entry.get("models") or [] if m in own]
        per_model = decl.get("model_set") or {}
        if not isinstance(per_model, dict) or set(per_model) - set(own):
            raise ValueError(f"{at}: model_set must map models of the cell to settings, got {per_model!r}"[:400])
        model_settings = {m: _settings(s, f"{at}, model_set {m!r}") for m, s in per_model.items()}
        axes, base = _axes(decl.get("axes"), at), _settings(decl.get("set"), f"{at}, set")
        if not base and not axes and not model_settings:
            raise ValueError(f"{at}: the cell sets nothing, so it is the entry's own configuration")
        runs = decl.get("profiles")
        if not isinstance(runs, dict) or not runs:
            raise ValueError(f"{at}: profiles must map the profiles that train the cell to {{}} or "
                             f"{{set, axes}}, got {runs!r}"[:400])
        strange = sorted(set(runs) - profiles)
        if strange:
            raise ValueError(f"{at}: unknown profile(s) {strange}; the params files define {sorted(profiles)}")
        chosen = {}
        for name, choice in runs.items():
            choice = choice or {}
            if not isinstance(choice, dict) or set(choice) - set(PROFILE_KEYS):
                raise ValueError(f"{at}, profile {name!r}: must be {{}} or a mapping with keys among {list(PROFILE_KEYS)}")
            picks = choice.get("axes") or {}
            if not isinstance(picks, dict) or set(picks) - set(axes):
                raise ValueError(f"{at}, profile {name!r}: axes must map axes of the cell ({list(axes)}) to lists "
                                 f"of their labels, got {picks!r}"[:400])
            labels = {axis: _names(picks[axis], f"{at}, profile {name!r}, axis {axis!r}", "labels", list(axes[axis]),
                                   LABEL) if axis in picks else list(axes[axis]) for axis in axes}
            kept, why = models, None
            if "models" in choice:  # the profile trains the cell for some of its models only, and says why
                limit = _names(choice["models"], f"{at}, profile {name!r}", "models", own)
                kept = [m for m in models if m in limit]
                why = choice.get("why")
                if not (isinstance(why, str) and why.strip()):
                    raise ValueError(f"{at}, profile {name!r}: models limits the cell, so why must say why")
            chosen[name] = (labels, _settings(choice.get("set"), f"{at}, profile {name!r}, set"), kept, why)
        if profile not in chosen or not chosen[profile][2]:
            continue
        labels, extra, models, why = chosen[profile]
        for combo in itertools.product(*labels.values()):
            settings = dict(base)
            for axis, label in zip(axes, combo):
                settings |= axes[axis][label]
            cells.append(Cell("-".join([family, *combo]), family, dict(zip(axes, combo)), settings | extra,
                              model_settings, tuple(models), why))
    return cells


@dataclass(frozen=True)
class CellRun:
    """One run of a cell: ``cell`` and the run's configuration (one rate and seed)."""

    cell: Cell
    config: Any  # seqlib.config.ExperimentConfig


@dataclass
class EntryCells:
    """The cells of one grid entry under one profile, for its ``tasks`` (the registry tasks it
    trains) and ``models``; ``runs`` expands them once (every task's runs of a chapter share it)."""

    cells: list[Cell]
    tasks: list[str]
    models: list[str]
    profile: str
    where: str = ""

    @cached_property
    def runs(self) -> list[CellRun]:
        """Every run of every cell, cell by cell, then model, task, rate and seed (:func:`expand`)."""
        return expand(self)


def expand(entry: EntryCells) -> list[CellRun]:
    """The runs of ``entry``'s cells: per cell, model and task, :func:`seqlib.config.load_config` with
    the cell's overrides, one configuration per rate and seed (:func:`seqlib.train.sweep_plan`), written
    and shown as the entry's own runs are (:func:`seqlib.book.chapter.load_tasks`: the run fields the
    hash leaves out), each recorded in the cells store unless it is one of the entry's own runs. A
    setting the configuration refuses is a :class:`seqlib.config.ConfigError` naming the cell."""
    from seqlib.book.configs import load_tasks
    from seqlib.book.report import planned_sweep
    from seqlib.config import UNHASHED, ConfigError, load_config
    from seqlib.train import second_stage_seeds, sweep_plan

    bases = {model: load_tasks(entry.tasks, model, entry.profile)[0] for model in entry.models}
    own = {model: {run.hash() for cfg in cfgs.values() for run in planned_sweep(cfg)} for model, cfgs in bases.items()}
    runs = []
    for cell in entry.cells:
        for model in (m for m in entry.models if m in cell.models):
            for task in entry.tasks:
                base = bases[model][task]
                try:
                    cfg = load_config(task, model, entry.profile, cell.overrides(model))
                except ConfigError as err:
                    raise ConfigError(f"{entry.where}, cell {cell.name!r}, model {model!r}, task {task!r}: {err}") from None
                written = {key: getattr(base.run, key) for key in UNHASHED["run"]}
                cells_store = str(Path(base.run.results_dir) / STORE)
                if second_stage_seeds(cfg):  # its rate would be chosen on the cell's own records
                    raise ConfigError(f"{entry.where}, cell {cell.name!r}, model {model!r}, task {task!r}: a cell "
                                      f"runs one stage: seeds {cfg.optim.seeds} with sweep_seeds "
                                      f"{cfg.optim.sweep_seeds}; set optim.seeds (or optim.sweep_seeds) alike")
                for run in sweep_plan(cfg):
                    store = base.run.results_dir if run.hash() in own[model] else cells_store
                    run = run.model_copy(update={"run": run.run.model_copy(update={**written, "results_dir": store})})
                    runs.append(CellRun(cell, run))
    return runs


def grid_entry(task: str, profile: str, grid: Path = GRID) -> tuple[dict, str]:
    """The entry of ``grid`` that trains ``task``, with the models ``profile`` runs in its cells (as
    :func:`seqlib.book.grid.load_grid` reads it), and the label errors name it by."""
    from seqlib.book.toc import entry_models

    spec = yaml.safe_load(grid.read_text()) or {}
    for entry in spec.get("runs", []):
        if entry.get("task") == task and entry.get("train"):
            models = entry_models(spec, entry, profile, str(grid), cells=True)[0]  # cells-only models too
            return {**entry, "models": models}, f"{grid}: entry {entry['chapter']!r}"
    raise ValueError(f"{grid}: no entry trains task {task!r}")


def entry_cells(entry: dict, profile: str, where: str) -> EntryCells | None:
    """The :class:`EntryCells` of a grid entry under ``profile`` (None: it declares none for it)."""
    if entry.get("cells") is None:
        return None
    from seqlib.config import default_params_dir, known_profiles

    cells = declared(entry, profile, where, known_profiles(default_params_dir()))
    if not cells:
        return None
    params = entry.get("params") or {}
    tasks = list(params.get("subtasks") or [entry["task"]])
    return EntryCells(cells, tasks, list(entry["models"]), profile, where)


def entry_plan(task: str, profile: str, grid: Path = GRID) -> list[CellRun]:
    """Every cell run of the grid entry that trains ``task``, under ``profile`` (what its pages show)."""
    entry, where = grid_entry(task, profile, grid)
    cells = entry_cells(entry, profile, where)
    return cells.runs if cells else []


SCORE_COLUMNS = ["cell", "family", "model", "runs", "recorded", "d_model", "n_layers", "blocks", "mlp_width",
                 "window", "lr", "seeds", "select_split", "select_value", "split", "metric", "value", "num_params",
                 "state_size", "state_size_seq_len", "train_sequences"]


def scores(groups: dict[tuple[str, str], list]) -> pd.DataFrame:
    """Per (cell, model) of ``groups`` (their run configurations): how many runs have an ``ok`` record,
    and over those the model they built (the record's configuration: sized to a budget where one is
    set), the rate chosen on their selection split (:func:`seqlib.book.report.select_lr`, the choice
    of every page) with the means over its seeds of the selection score and of the task card's
    headline (``value`` on ``split``), the parameters and decode state (elements per sequence
    after ``state_size_seq_len`` tokens, the longest evaluated) the records measured, and the
    training sequences (steps done x batch) of the chosen runs, their mean; then the
    task's parameters (one column each). A group without a record has NaN there. The family is the
    cell's name up to its first ``-``."""
    from seqlib.book.report import select_lr, training_sequences
    from seqlib.models import ModelConfig
    from seqlib.models.sequence_model import mlp_width
    from seqlib.train import stored_record

    rows = []
    for (cell, model), cfgs in groups.items():
        records = [r for r in (stored_record(c) for c in cfgs) if r is not None and r.status == "ok"]
        row = {"cell": cell, "family": cell.split("-")[0], "model": model, "runs": len(cfgs), "recorded": len(records)}
        chosen = select_lr(records) if records else pd.DataFrame()
        if not chosen.empty:
            kept = next(r for r in records if r.run_id == chosen["run_id"].iloc[0])
            built = ModelConfig.model_validate(kept.measure.get("built_model") or kept.config["model"])
            row |= {"d_model": built.d_model, "n_layers": built.n_layers, "blocks": ", ".join(built.block_types),
                    "mlp_width": max(mlp_width(kind, built) for kind in built.block_types),
                    "window": built.window if "local_attention" in built.block_types else math.nan,
                    "lr": chosen["lr"].iloc[0], "seeds": len(chosen), "select_split": chosen["select_split"].iloc[0],
                    "select_value": chosen["select_value"].mean(), "split": chosen["split"].iloc[0],
                    "metric": chosen["metric"].iloc[0], "value": chosen["value"].mean(),
                    **{k: kept.measure.get(k, math.nan) for k in ("num_params", "state_size", "state_size_seq_len")},
                    "train_sequences": training_sequences([r for r in records if r.run_id in set(chosen["run_id"])])}
        rows.append(row | dict(cfgs[0].task.params))
    columns = SCORE_COLUMNS + sorted({k for row in rows for k in row} - set(SCORE_COLUMNS))
    counts = ["runs", "recorded", "d_model", "n_layers", "mlp_width", "seeds", "num_params", "state_size",
              "state_size_seq_len"]
    return pd.DataFrame(rows, columns=columns).astype(dict.fromkeys(counts, "Int64") | {"train_sequences": float})


def by_cell(runs: list[CellRun]) -> dict[tuple[str, str], list]:
    """The run configurations of ``runs`` per (cell name, model), in their order."""
    groups: dict[tuple[str, str], list] = {}
    for run in runs:
        groups.setdefault((run.cell.name, run.config.model.name), []).append(run.config)
    return groups


def window_ceilings(runs: list[CellRun], family: str = "window") -> pd.DataFrame:
    """Per (model, window) of the cells of ``family`` (MQAR's): the cell and the ceiling its task
    predicts for that window on its scoring split (:meth:`seqlib.tasks.mqar.MQAR.window_ceiling`: the
    share of queries whose value lies within the window). Computed from the generator, not from a
    record."""
    from seqlib.tasks import get_task

    rows, ceilings = [], {}
    for (cell, model), cfgs in by_cell([r for r in runs if r.cell.family == family]).items():
        cfg = cfgs[0]
        key = json.dumps(cfg.task.params, sort_keys=True)
        if key not in ceilings:
            task = get_task(cfg.task.name, **cfg.task.params)
            windows = sorted({c.config.model.window for c in runs if c.cell.family == family})
            ceilings[key] = task.window_ceiling(windows, split=task.scoring.split)
        rows.append({"cell": cell, "model": model, "window": cfg.model.window,
                     "predicted ceiling": ceilings[key][cfg.model.window]})
    return pd.DataFrame(rows, columns=["cell", "model", "window", "predicted ceiling"])
