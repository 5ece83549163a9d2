"""Where an executed chapter came from: profile, device, commit, date and parameters.

:func:`collect` is what an executed chapter shows first (``seqlib.book.chapter.setup``);
:func:`code_hash` is the grid runner's fingerprint of the code a run depends on.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import os
import platform
import subprocess
from pathlib import Path

import torch

REPO = Path(__file__).resolve().parents[1]

# executed notebooks and run records: writing them does not make the code "dirty"
OUTPUT_PATHS = ("book/runs", "results")


def git_state() -> tuple[str | None, bool | None]:
    """(commit, dirty) of the checkout, or (None, None) outside git.

    ``dirty``: tracked code or configuration differs from the commit (outputs under ``OUTPUT_PATHS``
    do not count). Where the tree travels without its git history (a lent GPU machine), set
    ``SEQLIB_COMMIT`` to the commit it was copied from; dirty is then unknown (None).
    """
    if os.environ.get("SEQLIB_COMMIT"):
        return os.environ["SEQLIB_COMMIT"], None
    exclude = [f":(exclude){p}" for p in OUTPUT_PATHS]
    try:
        commit = subprocess.run(["git", "rev-parse", "HEAD"], cwd=REPO, capture_output=True, text=True,
                                check=True, timeout=10).stdout.strip()
        status = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no", "--", ".", *exclude],
                                cwd=REPO, capture_output=True, text=True, check=True, timeout=10).stdout
    except (OSError, subprocess.SubprocessError):
        return None, None
    return commit, bool(status.strip())


def git_commit() -> str:
    """Short commit with ``-dirty`` when the code differs from it; ``unknown`` outside git."""
    commit, dirty = git_state()
    if commit is None:
        return "unknown"
    return commit[:7] + ("-dirty" if dirty else "")


def device() -> str:
    if torch.cuda.is_available():
        return f"{torch.cuda.get_device_name(0)} (CUDA {torch.version.cuda}, {torch.cuda.device_count()} visible)"
    return f"CPU {platform.machine()}, {os.cpu_count()} cores"


def collect(profile: str, **params) -> dict:
    """The provenance record of this process: profile, device, commit, date, versions, parameters."""
    return {
        "profile": profile,
        "device": device(),
        "commit": git_commit(),
        "date": dt.datetime.now(dt.timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
        "torch": torch.__version__,
        "python": platform.python_version(),
        "params": params,
    }


def _code_bytes(path: Path) -> bytes:
    """A file's bytes; for a notebook only its cells' types and sources, so outputs, execution
    counts and metadata (which git filters strip differently in each checkout) never count."""
    if path.suffix != ".ipynb":
        return path.read_bytes()
    cells = json.loads(path.read_text()).get("cells", [])
    return json.dumps([[c.get("cell_type"), "".join(c.get("source", ""))] for c in cells]).encode()


def code_hash(*paths: Path) -> str:
    """sha256 over the given files and every ``seqlib/**/*.py``: a run is stale when any of them changes."""
    digest = hashlib.sha256()
    files = {Path(p).resolve() for p in paths} | set((REPO / "seqlib").rglob("*.py"))
    for path in sorted(files, key=lambda f: f.relative_to(REPO).as_posix() if f.is_relative_to(REPO) else str(f)):
        digest.update(_code_bytes(path))
    return digest.hexdigest()[:16]
