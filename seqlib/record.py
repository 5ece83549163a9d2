"""A run's record: :class:`RunRecord`, and its JSON form (``SCHEMA`` 2; schema-1 records are upgraded
when read).

Fields: ``run_id`` (the first 16 hex digits of ``config_hash``, :meth:`ExperimentConfig.hash`),
``status`` ("ok" | "failed" | "skipped") and ``reason`` (why failed/skipped), ``task, model, lr, seed``,
``config`` (the resolved config, as JSON; ``profile`` is its ``run.profile``), ``provenance``
(:class:`~seqlib.provenance.Provenance`), ``measure`` (see :mod:`seqlib.measure`), ``train`` (steps
done, loss and eval curves, why training stopped and whether the run fit its training distribution:
:func:`seqlib.train.validate`), ``metrics`` (a list of ``{split, slice_key, slice_value,
metric, value, n}``) and ``traceback`` (of a failed run).

Schema 1 differs in two ways: its provenance is flat (``git_commit, git_dirty, device, device_name,
python, torch, triton, fla, hostname, start_time, end_time``), and MQAR's length slice is
``input_seq_len``, the DP tasks' ``num_items`` (``length`` since schema 2, as for every task).
"""

from __future__ import annotations

from dataclasses import dataclass, field, fields
from typing import Any

from seqlib.provenance import Provenance

SCHEMA = 2
STATUSES = ("ok", "failed", "skipped")
REQUIRED = ("schema", "run_id", "config_hash", "status", "task", "model", "lr", "seed", "config", "provenance")
DP_TASKS = ("knapsack", "subset_sum", "min_coin_change", "lis", "balanced_partition")
# schema 1 -> 2: the slice key that was each task's length
LENGTH_KEYS_V1 = {"mqar": "input_seq_len", **{task: "num_items" for task in DP_TASKS}}


class RecordError(ValueError):
    """A record's JSON that is not a valid run record."""


@dataclass
class RunRecord:
    """One run (task, model, lr, seed): what it was, where it ran, what it measured."""

    run_id: str
    config_hash: str
    task: str
    model: str
    lr: float
    seed: int
    config: dict[str, Any]
    provenance: Provenance
    status: str = "failed"
    reason: str | None = "did not finish"
    measure: dict[str, Any] = field(default_factory=dict)
    train: dict[str, Any] = field(default_factory=dict)
    metrics: list[dict[str, Any]] = field(default_factory=list)
    traceback: str | None = None
    schema: int = SCHEMA

    @property
    def profile(self) -> str | None:
        return self.config.get("run", {}).get("profile")

    def problem(self) -> str | None:
        """Why this record is invalid, or None."""
        if self.schema != SCHEMA:
            return f"schema {self.schema!r}, expected {SCHEMA}"
        if self.status not in STATUSES:
            return f"status {self.status!r} not in {STATUSES}"
        if self.status == "ok" and not isinstance(self.metrics, list):
            return "status ok but no metrics list"
        return None

    def to_json(self) -> dict[str, Any]:
        """The record as JSON data (schema 2)."""
        data = {f.name: getattr(self, f.name) for f in fields(self)}
        return data | {"provenance": self.provenance.to_dict()}

    @classmethod
    def from_json(cls, data: Any) -> RunRecord:
        """The record of stored JSON data (schema 1 or 2); :class:`RecordError` says what is wrong."""
        if not isinstance(data, dict):
            raise RecordError(f"top level is {type(data).__name__}, not an object")
        data = dict(data)
        if data.get("schema") == 1:
            data = _upgrade_v1(data)
        missing = [k for k in REQUIRED if k not in data]
        unknown = sorted(data.keys() - {f.name for f in fields(cls)})
        if missing or unknown:
            raise RecordError(f"missing field(s) {missing}" if missing else f"unknown field(s) {unknown}")
        if not isinstance(data["provenance"], dict):
            raise RecordError("provenance is not an object")
        try:
            record = cls(**data | {"provenance": Provenance(**data["provenance"])})
        except TypeError as e:
            raise RecordError(f"provenance: {e}") from e
        problem = record.problem()
        if problem:
            raise RecordError(problem)
        return record


def _upgrade_v1(data: dict[str, Any]) -> dict[str, Any]:
    """A schema-1 record's data as schema 2: provenance regrouped, the length slice named ``length``."""
    old = data.get("provenance")
    if isinstance(old, dict):
        versions = {"python": old.get("python"), "torch": old.get("torch"), "triton": old.get("triton"),
                    "flash-linear-attention": old.get("fla")}
        data["provenance"] = {"commit": old.get("git_commit"), "dirty": old.get("git_dirty"),
                              "device": old.get("device"), "device_name": old.get("device_name"),
                              "versions": versions, "hostname": old.get("hostname"),
                              "start_time": old.get("start_time"), "end_time": old.get("end_time")}
    length_key = LENGTH_KEYS_V1.get(data.get("task"))
    if length_key and isinstance(data.get("metrics"), list):
        data["metrics"] = [m | {"slice_key": "length"} if isinstance(m, dict) and m.get("slice_key") == length_key
                           else m for m in data["metrics"]]
    return data | {"schema": SCHEMA}
