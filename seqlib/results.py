"""Results store: one JSON record (:class:`~seqlib.record.RunRecord`) per run, written atomically,
loaded as a tidy DataFrame.

Layout: ``<results_dir>/<task>/<model>/<run_id>.json`` (+ ``<run_id>.pt``, the checkpoint), where
``run_id`` is the first 16 hex digits of the run's config hash (:meth:`ExperimentConfig.hash`).
A record is written to a temporary file in the same directory, fsynced, then ``os.replace``d into
place, so a reader sees either no record or a whole one; a crash can leave only a ``.tmp`` file,
which :func:`load_records` reports as partial.
"""

from __future__ import annotations

import json
import os
import tempfile
import warnings
from pathlib import Path

import pandas as pd

from seqlib.record import RecordError, RunRecord

TMP_SUFFIX = ".tmp"
RUN_COLUMNS = ["run_id", "config_hash", "task", "model", "profile", "lr", "seed", "status", "reason"]
MEASURE_COLUMNS = ["num_params", "state_size", "tokens_per_s", "step_time_s", "peak_memory_bytes",
                   "wall_time_s", "steps_done"]
METRIC_COLUMNS = ["split", "slice_key", "slice_value", "metric", "value", "n"]
# the frame's provenance columns and the Provenance field each comes from
PROVENANCE_COLUMNS = {"git_commit": "commit", "git_dirty": "dirty", "device_name": "device_name",
                      "start_time": "start_time"}


_UMASK = os.umask(0)
os.umask(_UMASK)


class ResultsError(RuntimeError):
    """A corrupt or partial record in strict mode."""


def run_id(config_hash: str) -> str:
    return config_hash[:16]


def record_path(results_dir: str | Path, task: str, model: str, config_hash: str) -> Path:
    return Path(results_dir) / task / model / f"{run_id(config_hash)}.json"


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


def write_record(results_dir: str | Path, record: RunRecord) -> Path:
    """Validate the record and write it atomically; returns its path."""
    problem = record.problem()
    if problem:
        raise ValueError(f"refusing to write an invalid record: {problem}")
    path = record_path(results_dir, record.task, record.model, record.config_hash)
    data = json.dumps(record.to_json(), sort_keys=True, allow_nan=True, separators=(",", ":")) + "\n"
    atomic_write_bytes(path, data.encode())
    return path


def read_record(results_dir: str | Path, task: str, model: str, config_hash: str) -> RunRecord | None:
    """The stored record of this config, or None when there is none (a corrupt one raises)."""
    path = record_path(results_dir, task, model, config_hash)
    if not path.exists():
        return None
    return _load_one(path)


def _load_one(path: Path) -> RunRecord:
    try:
        return RunRecord.from_json(json.loads(path.read_text()))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError, RecordError) as e:
        raise ResultsError(f"corrupt result record {path}: {e}") from e


def replaces(new: dict, old: dict | None) -> bool:
    """Whether the run record ``new`` (its JSON) should take the place of the stored ``old``: there is
    none; or ``new`` is ``ok`` and ``old`` is not; or both are ``ok`` or both not, and ``new`` ended
    later. An ``ok`` record is never replaced by one that is not (a failed run destroys no result).
    A file that is not a run record (a round record) is written only where there is none."""
    if old is None:
        return True
    if "status" not in new or "status" not in old:
        return False
    ok_new, ok_old = new["status"] == "ok", old["status"] == "ok"
    if ok_new != ok_old:
        return ok_new
    new_end, old_end = ((r.get("provenance") or {}).get("end_time") or "" for r in (new, old))  # ISO strings
    return new_end > old_end


def merge_archives(archives: list[str | Path], root: str | Path = ".") -> tuple[int, int]:
    """Restore the JSON files of ``.tar.gz`` archives (``scripts/gpu_node.sh round``'s records, paths
    relative to the repository) under ``root``, each where it :func:`replaces` what is there, in the
    archives' order; returns (written, kept). A lent GPU machine that stays warm between calls keeps
    its own disk, but each call replaces the repository's tracked files with the caller's copy: the
    records of the calls before, restored like this, keep the next call from training them again."""
    import tarfile

    root, written, kept = Path(root).resolve(), 0, 0
    for archive in archives:
        with tarfile.open(archive) as tar:
            for member in tar.getmembers():
                if not (member.isfile() and member.name.endswith(".json")):
                    continue
                path = (root / member.name).resolve()
                if not path.is_relative_to(root):
                    raise ResultsError(f"{archive}: {member.name} lies outside {root}")
                data = tar.extractfile(member).read()
                try:
                    old = json.loads(path.read_text()) if path.exists() else None
                except (OSError, UnicodeDecodeError, json.JSONDecodeError):
                    old = None  # a corrupt file there: the archive's takes its place
                if replaces(json.loads(data), old):
                    atomic_write_bytes(path, data)
                    written += 1
                else:
                    kept += 1
    return written, kept


def load_records(results_dir: str | Path, strict: bool = False) -> list[RunRecord]:
    """All records in ``results_dir/<task>/<model>/``. A corrupt record, a leftover temp file (an
    interrupted write) or a stray file there is reported with its name: a warning by default,
    :class:`ResultsError` if ``strict``. Files elsewhere under ``results_dir`` are not looked at, nor
    those in hidden folders (a store's ``.locks``, also the cells store's, ``cells/.locks``)."""
    root = Path(results_dir)
    records = []
    for path in sorted(root.glob("*/*/*")):  # <task>/<model>/<file>: other files (benchmarks) are not runs
        if not path.is_file() or path.suffix == ".pt" or any(p.startswith(".") for p in path.relative_to(root).parts[:2]):
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


def records_frame(records: list[RunRecord]) -> pd.DataFrame:
    """The tidy frame of :func:`load_results` from records already in memory."""
    rows = []
    for rec in records:
        base = {k: getattr(rec, k) for k in RUN_COLUMNS}
        base |= {k: rec.measure.get(k) for k in MEASURE_COLUMNS}
        base["steps_done"] = rec.train.get("steps_done")
        base |= {col: getattr(rec.provenance, name) for col, name in PROVENANCE_COLUMNS.items()}
        rows += [{**base, **{k: m.get(k) for k in METRIC_COLUMNS}} for m in rec.metrics or [{}]]
    columns = RUN_COLUMNS + MEASURE_COLUMNS + list(PROVENANCE_COLUMNS) + METRIC_COLUMNS
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
