"""``make lab`` works as root (the default user on GPU nodes and in containers): JupyterLab refuses
to start as root without ``--allow-root``, so the target adds it when ``id -u`` is 0, and only then."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest

from seqlib.provenance import REPO


@pytest.mark.parametrize("uid, flagged", [("0", True), ("1000", False)])
def test_make_lab_allows_root_only_as_root(tmp_path: Path, uid: str, flagged: bool):
    fake = tmp_path / "id"
    fake.write_text(f"#!/bin/sh\necho {uid}\n")
    fake.chmod(0o755)
    env = dict(os.environ, PATH=f"{tmp_path}{os.pathsep}{os.environ['PATH']}")
    proc = subprocess.run(["make", "-n", "lab"], cwd=REPO, env=env, capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stderr
    (line,) = [ln for ln in proc.stdout.splitlines() if "jupyter lab" in ln]
    assert ("--allow-root" in line) is flagged, line
