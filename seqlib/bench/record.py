"""Benchmark records: one JSON file per benchmark run under ``results/bench/`` (``SEQLIB_BENCH_DIR``),
named ``<kind>-<UTC time>.json``, holding the numbers with the device, commit, time and versions."""

from __future__ import annotations

import datetime as _dt
import json
import os
import sys
from pathlib import Path

import torch

from seqlib.provenance import this_process

BENCH_DIR = Path(os.environ.get("SEQLIB_BENCH_DIR", "results/bench"))


def environment() -> dict:
    """This process's :class:`~seqlib.provenance.Provenance` under the benchmark records' keys:
    ``device`` (the GPU's name), ``commit``, ``dirty``, ``hostname``, ``time`` (UTC) and ``versions``."""
    prov = this_process()
    return {"device": prov.device_name, "commit": prov.commit or "unknown", "dirty": prov.dirty,
            "hostname": prov.hostname, "time": prov.start_time, "versions": prov.versions}


def no_cuda(name: str) -> bool:
    """True, after saying so on stderr, when there is no CUDA GPU for the ``name`` benchmark."""
    if torch.cuda.is_available():
        return False
    print(f"{name} benchmark needs a CUDA GPU", file=sys.stderr)
    return True


def save_record(kind: str, record: dict, path: Path | None = None) -> Path:
    """Write ``record`` with the environment as JSON (to ``path`` if given, to update a partial one)."""
    stamp = _dt.datetime.now(_dt.timezone.utc).strftime("%Y%m%dT%H%M%S")
    path = path or BENCH_DIR / f"{kind}-{stamp}.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps({"kind": kind, **environment(), **record}, indent=1))
    return path


def latest_record(kind: str, bench: Path = BENCH_DIR) -> dict | None:
    """The newest ``kind`` record under ``bench`` (their names carry their UTC time), or None."""
    files = sorted(Path(bench).glob(f"{kind}-*.json"))
    return json.loads(files[-1].read_text()) if files else None


def merged_train_record(bench: Path = BENCH_DIR) -> dict | None:
    """Every models-train record merged: the newest record's fields, with the newest row per (model, T)
    over all of them (a row with a measurement beats one without), each row naming its record and commit;
    ``files`` lists the records. None without a record."""
    files = sorted(Path(bench).glob("models-train-*.json"))
    if not files:
        return None
    rows = {}
    for f in files:
        rec = json.loads(f.read_text())
        for r in rec["rows"]:
            if "tokens_per_s" in r or (r["model"], r["T"]) not in rows:
                rows[(r["model"], r["T"])] = {**r, "record": f.name, "commit": rec["commit"][:10]}
    last = json.loads(files[-1].read_text())
    return {**last, "rows": list(rows.values()), "files": [f.name for f in files]}
