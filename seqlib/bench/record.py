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
