"""Snapshots of a run in progress: a run stopped from outside (a GPU call's time limit, a killed Dask
worker) goes on from its last validation when the same run starts again where its store is.

At each validation that does not end the run, :func:`seqlib.train.execute` writes
``<results_dir>/.partial/<task>/<model>/<config hash>.pt`` (a hidden folder, which the records' loader
skips; ``*.pt`` is git-ignored): the model's and optimisers' states, the schedules, the step, the
record's training curves so far and the time and tokens trained. The training data depend only on
(seed, step) (:func:`seqlib.objective.derive_seed`), so the resumed run sees the batches it would
have seen, and on a CPU its record equals the uninterrupted run's. A snapshot is used only by a run of
the same configuration hash under the same code (:func:`seqlib.provenance.code_hash`), else it is
discarded with a message; the run's record says where it resumed (``measure.resumed``). A run that
ends, in success or failure, removes its snapshot.
"""

from __future__ import annotations

import functools
import io
import sys
from pathlib import Path

import torch

from seqlib.config import ExperimentConfig
from seqlib.provenance import code_hash
from seqlib.results import atomic_write_bytes

PARTIAL = ".partial"


def snapshot_file(cfg: ExperimentConfig) -> Path:
    """Where the run ``cfg`` keeps its snapshot while in progress."""
    return Path(cfg.run.results_dir) / PARTIAL / cfg.task.name / cfg.model.name / f"{cfg.hash()}.pt"


@functools.cache
def _code() -> str:
    return code_hash()


def save(cfg: ExperimentConfig, model: torch.nn.Module, opt, train: dict, trained: dict) -> None:
    """Write the snapshot of ``cfg`` after ``train["steps_done"]`` steps (``opt``: the run's
    :class:`seqlib.train.Optimizers`; ``trained``: its train time and tokens so far)."""
    buf = io.BytesIO()
    torch.save({"config_hash": cfg.hash(), "code": _code(), "model": model.state_dict(),
                "optimizers": [o.state_dict() for o in opt.optimizers],
                "schedulers": [s.state_dict() for s in opt.schedulers],
                "train": train, "trained": trained, "rng": torch.get_rng_state()}, buf)
    atomic_write_bytes(snapshot_file(cfg), buf.getvalue())


def restore(cfg: ExperimentConfig, model: torch.nn.Module, opt, device: torch.device) -> dict | None:
    """Load the snapshot of ``cfg`` into ``model`` and ``opt`` -> ``{"train": ..., "trained": ...}``, or
    None when there is none (or it cannot be used: unreadable, another configuration or code)."""
    path = snapshot_file(cfg)
    if not path.exists():
        return None
    try:
        snap = torch.load(path, map_location=device, weights_only=True)
    except Exception as e:  # noqa: BLE001 - a torn or foreign file: start the run afresh
        print(f"warning: the snapshot {path} cannot be read ({type(e).__name__}: {e}); starting afresh",
              file=sys.stderr)
        return None
    if snap.get("config_hash") != cfg.hash() or snap.get("code") != _code():
        what = "configuration" if snap.get("config_hash") != cfg.hash() else "code (seqlib changed since)"
        print(f"warning: the snapshot {path} is of another {what}; starting afresh", file=sys.stderr)
        return None
    model.load_state_dict(snap["model"])
    for o, state in zip(opt.optimizers, snap["optimizers"], strict=True):
        o.load_state_dict(state)
    for s, state in zip(opt.schedulers, snap["schedulers"], strict=True):
        s.load_state_dict(state)
    torch.set_rng_state(snap["rng"])
    return {"train": snap["train"], "trained": snap["trained"]}


def save_or_warn(cfg: ExperimentConfig, model: torch.nn.Module, opt, train: dict, trained: dict) -> None:
    """:func:`save`; a store that cannot take it (full, read-only) costs the snapshot, not the run."""
    try:
        save(cfg, model, opt, train, trained)
    except OSError as e:
        print(f"warning: no snapshot of {cfg.task.name}/{cfg.model.name} ({type(e).__name__}: {e})", file=sys.stderr)


def remove(cfg: ExperimentConfig) -> None:
    """The run has ended: its snapshot goes, and the folders it leaves empty."""
    path = snapshot_file(cfg)
    path.unlink(missing_ok=True)
    top = Path(cfg.run.results_dir) / PARTIAL
    for folder in (path.parent, path.parent.parent, top):
        try:
            folder.rmdir()
        except OSError:  # not empty (another run's snapshot) or gone
            break
