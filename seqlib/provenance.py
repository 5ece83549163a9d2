"""Where a result came from: :class:`Provenance`, one for run records, executed notebooks and
benchmark records, collected for this process by :func:`this_process`.

:func:`collect` is what an executed chapter shows first (``seqlib.book.chapter.setup``);
:func:`code_hash` is the grid runner's fingerprint of the code a run depends on.
"""

from __future__ import annotations

import hashlib
import json
import os
import platform
import subprocess
from dataclasses import asdict, dataclass
from datetime import datetime, timezone
from importlib import metadata
from pathlib import Path

import torch

REPO = Path(__file__).resolve().parents[1]

# executed notebooks and run records: writing them does not make the code "dirty"
OUTPUT_PATHS = ("book/runs", "results")

# the distributions whose versions every provenance names (``None``: not installed)
PACKAGES = ("triton", "fla-core", "flash-linear-attention")


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


def now() -> str:
    """The UTC time, ISO 8601 to the second."""
    return datetime.now(timezone.utc).isoformat(timespec="seconds")


def package_version(dist: str) -> str | None:
    try:
        return metadata.version(dist)
    except metadata.PackageNotFoundError:
        return None


@dataclass
class Provenance:
    """Where and with what something was produced.

    ``device``: the torch device (``cuda``, ``cpu``); ``device_name``: the GPU's name, or the CPU's
    description; ``versions``: python, torch, cuda and ``PACKAGES`` (``None``: not installed; a
    schema-1 run record names only python, torch, triton and flash-linear-attention); times are UTC
    ISO 8601, ``end_time`` ``None`` until the work ends.
    """

    commit: str | None
    dirty: bool | None
    device: str
    device_name: str
    versions: dict[str, str | None]
    hostname: str
    start_time: str
    end_time: str | None = None

    @property
    def short_commit(self) -> str:
        """Short commit with ``-dirty`` when the code differed from it; ``unknown`` outside git."""
        if self.commit is None:
            return "unknown"
        return self.commit[:7] + ("-dirty" if self.dirty else "")

    def to_dict(self) -> dict:
        return asdict(self)


def this_process(device: str | None = None) -> Provenance:
    """The provenance of this process on ``device`` (default: ``cuda`` if available, else ``cpu``),
    starting now."""
    device = device or ("cuda" if torch.cuda.is_available() else "cpu")
    if device.startswith("cuda") and torch.cuda.is_available():
        device_name = torch.cuda.get_device_name(torch.device(device))
    else:
        device_name = f"cpu ({platform.processor() or platform.machine()}, {os.cpu_count()} cores, " \
                      f"{torch.get_num_threads()} threads)"
    commit, dirty = git_state()
    versions = {"python": platform.python_version(), "torch": torch.__version__, "cuda": torch.version.cuda,
                **{dist: package_version(dist) for dist in PACKAGES}}
    return Provenance(commit=commit, dirty=dirty, device=device, device_name=device_name, versions=versions,
                      hostname=platform.node(), start_time=now())


def collect(profile: str, **params) -> dict:
    """What an executed notebook shows first: its ``profile``, ``params`` and ``provenance``."""
    return {"profile": profile, "params": params, "provenance": this_process()}


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
