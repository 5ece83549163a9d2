"""Benchmark records: one JSON file per benchmark run under ``results/bench/`` (``SEQLIB_BENCH_DIR``),
named ``<kind>-<UTC time>.json``, holding the numbers with the device, commit, time and versions."""

from __future__ import annotations

import datetime as _dt
import json
import os
import platform
import sys
from pathlib import Path

import torch

from seqlib.results import package_version

BENCH_DIR = Path(os.environ.get("SEQLIB_BENCH_DIR", "results/bench"))


def environment() -> dict:
    """Device, commit, UTC time and the versions of the packages a benchmark depends on."""
    from seqlib.provenance import git_state

    commit = git_state()[0] or "unknown"
    cuda = torch.cuda.is_available()
    return {
        "device": torch.cuda.get_device_name() if cuda else platform.processor() or "cpu",
        "commit": commit,
        "time": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
        "versions": {
            "python": platform.python_version(),
            "torch": torch.__version__,
            "cuda": torch.version.cuda,
            "triton": package_version("triton"),
            "fla-core": package_version("fla-core"),
            "flash-linear-attention": package_version("flash-linear-attention"),
        },
    }


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
