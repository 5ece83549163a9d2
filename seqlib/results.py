"""Results store: one JSON record per run, written atomically, loaded as a tidy DataFrame.

Layout: ``<results_dir>/<task>/<model>/<run_id>.json`` (+ ``<run_id>.pt``, the checkpoint), where
``run_id`` is the first 16 hex digits of the run's config hash (:meth:`ExperimentConfig.hash`).
A record is written to a temporary file in the same directory, fsynced, then ``os.replace``d into
place, so a reader sees either no record or a whole one; a crash can leave only a ``.tmp`` file,
which :func:`load_records` reports as partial.

Record fields (``SCHEMA`` = 1): ``schema, run_id, config_hash, status`` ("ok" | "failed" | "skipped"),
``reason`` (why failed/skipped), ``task, model, profile, lr, seed``, ``config`` (the resolved
config), ``provenance`` (git commit + dirty flag, device name, python/torch/triton/fla versions,
start/end time), ``measure`` (see :mod:`seqlib.measure`), ``train`` (steps, early stop, loss and
eval curves) and ``metrics`` (a list of ``{split, slice_key, slice_value, metric, value, n}``).
"""

from __future__ import annotations

import json
import os
import platform
import sys
import tempfile
import warnings
from datetime import datetime, timezone
from importlib import metadata
from pathlib import Path
from typing import Any

import pandas as pd

from seqlib.provenance import git_state

SCHEMA = 1
STATUSES = ("ok", "failed", "skipped")
REQUIRED = ("schema", "run_id", "config_hash", "status", "task", "model", "lr", "seed", "config", "provenance")
TMP_SUFFIX = ".tmp"
RUN_COLUMNS = ["run_id", "config_hash", "task", "model", "profile", "lr", "seed", "status", "reason"]
MEASURE_COLUMNS = ["num_params", "state_size", "tokens_per_s", "step_time_s", "peak_memory_bytes",
                   "wall_time_s", "steps_done"]
METRIC_COLUMNS = ["split", "slice_key", "slice_value", "metric", "value", "n"]
PROVENANCE_COLUMNS = ["git_commit", "git_dirty", "device_name", "start_time"]


_UMASK = os.umask(0)
os.umask(_UMASK)


class ResultsError(RuntimeError):
    """A corrupt or partial record in strict mode."""


def run_id(config_hash: str) -> str:
    return config_hash[:16]


def record_path(results_dir: str | Path, task: str, model: str, config_hash: str) -> Path:
    return Path(results_dir) / task / model / f"{run_id(config_hash)}.json"


def now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="seconds")


def package_version(dist: str) -> str | None:
    try:
        return metadata.version(dist)
    except metadata.PackageNotFoundError:
        return None


def provenance(device: str) -> dict[str, Any]:
    """Everything needed to say where and with what a run was produced (start time included)."""
    import torch

    commit, dirty = git_state()
    if device.startswith("cuda") and torch.cuda.is_available():
        device_name = torch.cuda.get_device_name(torch.device(device))
    else:
        device_name = f"cpu ({platform.processor() or platform.machine()}, {os.cpu_count()} cores, " \
                      f"{torch.get_num_threads()} threads)"
    return {
        "git_commit": commit,
        "git_dirty": dirty,
        "device": device,
        "device_name": device_name,
        "python": sys.version.split()[0],
        "torch": torch.__version__,
        "triton": package_version("triton"),
        "fla": package_version("flash-linear-attention") or package_version("fla"),
        "hostname": platform.node(),
        "start_time": now(),
        "end_time": None,
    }


def atomic_write_bytes(path: Path, data: bytes) -> None:
    """Write ``data`` to ``path`` via a temp file in the same directory, fsync, then ``os.replace``."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=TMP_SUFFIX)
    try:
        os.fchmod(fd, 0o666 & ~_UMASK)  # mkstemp creates 0600; give the record the usual permissions
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def write_record(results_dir: str | Path, record: dict) -> Path:
    """Validate the record's shape and write it atomically; returns its path."""
    problem = _problem(record)
    if problem:
        raise ValueError(f"refusing to write an invalid record: {problem}")
    path = record_path(results_dir, record["task"], record["model"], record["config_hash"])
    atomic_write_bytes(path, (json.dumps(record, sort_keys=True, allow_nan=True, separators=(",", ":")) + "\n").encode())
    return path


def read_record(results_dir: str | Path, task: str, model: str, config_hash: str) -> dict | None:
    """The stored record of this config, or None when there is none (a corrupt one raises)."""
    path = record_path(results_dir, task, model, config_hash)
    if not path.exists():
        return None
    return _load_one(path)


def _problem(record: Any) -> str | None:
    if not isinstance(record, dict):
        return f"top level is {type(record).__name__}, not an object"
    missing = [k for k in REQUIRED if k not in record]
    if missing:
        return f"missing field(s) {missing}"
    if record["schema"] != SCHEMA:
        return f"schema {record['schema']!r}, expected {SCHEMA}"
    if record["status"] not in STATUSES:
        return f"status {record['status']!r} not in {STATUSES}"
    if record["status"] == "ok" and not isinstance(record.get("metrics"), list):
        return "status ok but no metrics list"
    return None


def _load_one(path: Path) -> dict:
    try:
        record = json.loads(path.read_text())
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as e:
        raise ResultsError(f"corrupt result record {path}: {e}") from e
    problem = _problem(record)
    if problem:
        raise ResultsError(f"corrupt result record {path}: {problem}")
    return record


def load_records(results_dir: str | Path, strict: bool = False) -> list[dict]:
    """All records in ``results_dir/<task>/<model>/``. A corrupt record, a leftover temp file (an
    interrupted write) or a stray file there is reported with its name: a warning by default,
    :class:`ResultsError` if ``strict``. Files elsewhere under ``results_dir`` are not looked at."""
    root = Path(results_dir)
    records = []
    for path in sorted(root.glob("*/*/*")):  # <task>/<model>/<file>: other files (benchmarks) are not runs
        if not path.is_file() or path.suffix == ".pt":
            continue
        try:
            if path.name.endswith(TMP_SUFFIX):
                raise ResultsError(f"partial result record {path} (an interrupted write; safe to delete)")
            if path.suffix != ".json":
                raise ResultsError(f"unexpected file {path} among the result records")
            records.append(_load_one(path))
        except ResultsError as e:
            if strict:
                raise
            warnings.warn(str(e), stacklevel=2)
    return records


def load_results(results_dir: str | Path = "results", strict: bool = False) -> pd.DataFrame:
    """All runs as one tidy DataFrame: one row per run x split x slice x metric.

    Columns: ``RUN_COLUMNS + MEASURE_COLUMNS + PROVENANCE_COLUMNS + METRIC_COLUMNS``. The whole split
    is the slice ``slice_key == "all"`` (``slice_value == "all"``); other slices come from the task's
    per-example metadata (``slice_key == "length"`` is the length-generalization curve). Slice values
    are stored as strings (mixed types across tasks); ``n`` counts the examples in the slice.
    A failed or skipped run appears as one row with NaN metric fields, so nothing disappears silently.
    """
    return records_frame(load_records(results_dir, strict=strict))


def records_frame(records: list[dict]) -> pd.DataFrame:
    """The tidy frame of :func:`load_results` from records already in memory."""
    rows = []
    for rec in records:
        base = {k: rec.get(k) for k in RUN_COLUMNS}
        base["profile"] = rec.get("config", {}).get("run", {}).get("profile")
        measure = rec.get("measure") or {}
        for k in MEASURE_COLUMNS:
            base[k] = measure.get(k)
        base["steps_done"] = (rec.get("train") or {}).get("steps_done")
        prov = rec.get("provenance") or {}
        for k in PROVENANCE_COLUMNS:
            base[k] = prov.get(k)
        metrics = rec.get("metrics") or [{}]
        rows += [{**base, **{k: m.get(k) for k in METRIC_COLUMNS}} for m in metrics]
    columns = RUN_COLUMNS + MEASURE_COLUMNS + PROVENANCE_COLUMNS + METRIC_COLUMNS
    df = pd.DataFrame(rows, columns=columns)
    df["value"] = pd.to_numeric(df["value"], errors="coerce")
    return df


def runs_table(df: pd.DataFrame, metric: str = "accuracy") -> pd.DataFrame:
    """One row per run: its identity, measurements and ``metric`` on each split (whole split)."""
    keys = [c for c in RUN_COLUMNS + MEASURE_COLUMNS if c != "reason"] + ["reason"]
    runs = df.drop_duplicates("run_id")[keys].set_index("run_id")
    sel = df[(df["slice_key"] == "all") & (df["metric"] == metric)]
    wide = sel.pivot_table(index="run_id", columns="split", values="value", aggfunc="first")
    wide.columns = [f"{metric}:{c}" for c in wide.columns]
    return runs.join(wide).reset_index().sort_values(["task", "model", "lr", "seed"], kind="stable")
