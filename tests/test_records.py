"""Run records: the committed schema-1 records load (upgraded to schema 2), round-trip, and keep the
tidy frame's columns; invalid ones are reported with their path."""

from __future__ import annotations

import json
import warnings
from pathlib import Path

import pytest

from seqlib.record import DP_TASKS, SCHEMA, RunRecord
from seqlib.results import ResultsError, load_records, read_record, record_path, records_frame, write_record

REPO = Path(__file__).resolve().parent.parent
STORE = REPO / "results"
COMMITTED = 330  # results/<task>/<model>/*.json at the time records became schema 2 (stored as schema 1)
FRAME_COLUMNS = ["run_id", "config_hash", "task", "model", "profile", "lr", "seed", "status", "reason",
                 "num_params", "state_size", "tokens_per_s", "step_time_s", "peak_memory_bytes", "wall_time_s",
                 "steps_done", "git_commit", "git_dirty", "device_name", "start_time",
                 "split", "slice_key", "slice_value", "metric", "value", "n"]


def _stored(task: str) -> tuple[Path, dict]:
    """The first committed schema-1 record of ``task``: its path and its JSON as stored."""
    for path in sorted(STORE.glob(f"{task}/*/*.json")):
        raw = json.loads(path.read_text())
        if raw["schema"] == 1:
            return path, raw
    raise AssertionError(f"no schema-1 record of {task} under {STORE}")


def _read(path: Path) -> RunRecord:
    raw = json.loads(path.read_text())
    return read_record(STORE, raw["task"], raw["model"], raw["config_hash"])


def test_every_committed_record_loads_strict_without_warnings():
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        records = load_records(STORE, strict=True)
    on_disk = [json.loads(p.read_text())["schema"] for p in STORE.glob("*/*/*.json")]
    assert len(records) == len(on_disk) and all(isinstance(r, RunRecord) and r.schema == SCHEMA for r in records)
    assert on_disk.count(1) == COMMITTED and set(on_disk) == {1, SCHEMA}  # the old ones unchanged on disk
    assert records_frame(records).columns.tolist() == FRAME_COLUMNS


@pytest.mark.parametrize("task, old_key", [("mqar", "input_seq_len"), *((t, "num_items") for t in DP_TASKS)])
def test_a_schema_1_length_slice_is_read_as_length(task, old_key):
    path, raw = _stored(task)
    rec = _read(path)
    renamed = [m | {"slice_key": "length"} if m["slice_key"] == old_key else m for m in raw["metrics"]]
    assert rec.metrics == renamed and renamed != raw["metrics"]
    assert old_key not in {m["slice_key"] for m in rec.metrics}


def test_other_tasks_slices_are_read_unchanged():
    path, raw = _stored("parity_check")
    assert _read(path).metrics == raw["metrics"]
    assert {"length", "output_length"} <= {m["slice_key"] for m in raw["metrics"]}
    foreign = [{**raw["metrics"][0], "slice_key": key} for key in ("input_seq_len", "num_items")]
    assert RunRecord.from_json(raw | {"metrics": foreign}).metrics == foreign  # only MQAR's and the DP tasks'


def test_schema_1_provenance_is_regrouped():
    path, raw = _stored("mqar")
    rec, old = _read(path), raw["provenance"]
    prov = rec.provenance
    assert (prov.commit, prov.dirty, prov.device, prov.device_name) == (
        old["git_commit"], old["git_dirty"], old["device"], old["device_name"])
    assert prov.versions == {"python": old["python"], "torch": old["torch"], "triton": old["triton"],
                             "flash-linear-attention": old["fla"]}
    assert (prov.start_time, prov.end_time, prov.hostname) == (old["start_time"], old["end_time"], old["hostname"])
    assert rec.profile == raw["config"]["run"]["profile"]
    row = records_frame([rec]).iloc[0]
    assert (row["git_commit"], row["device_name"], row["start_time"]) == (
        old["git_commit"], old["device_name"], old["start_time"])


def test_an_upgraded_record_round_trips_as_schema_2(tmp_path):
    rec = _read(_stored("knapsack")[0])
    path = write_record(tmp_path, rec)
    assert path == record_path(tmp_path, rec.task, rec.model, rec.config_hash)
    stored = json.loads(path.read_text())
    assert stored["schema"] == 2 and stored["provenance"]["commit"] == rec.provenance.commit
    assert read_record(tmp_path, rec.task, rec.model, rec.config_hash) == rec


@pytest.mark.parametrize("change, problem", [
    (lambda d: d | {"colour": "red"}, r"unknown field\(s\) \['colour'\]"),
    (lambda d: {k: v for k, v in d.items() if k != "seed"}, r"missing field\(s\) \['seed'\]"),
    (lambda d: d | {"schema": 3}, "schema 3, expected 2"),
    (lambda d: d | {"provenance": {**d["provenance"], "gpu": "x"}}, "provenance: .*'gpu'"),
    (lambda d: d | {"status": "ok", "metrics": None}, "status ok but no metrics list"),
])
def test_an_invalid_record_is_reported_with_its_path(tmp_path, change, problem):
    rec = _read(_stored("knapsack")[0])
    path = write_record(tmp_path, rec)
    path.write_text(json.dumps(change(rec.to_json())))
    with pytest.raises(ResultsError, match=f"corrupt result record {path}: {problem}"):
        load_records(tmp_path, strict=True)
