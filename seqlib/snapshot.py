"""Snapshots of runs in progress: a run or a stack of runs stopped from outside (a GPU call's time
limit, a killed Dask worker) goes on from its last validation when it starts again where its store is.

At each validation that does not end the run, :func:`seqlib.train.execute` writes
``<results_dir>/.partial/<task>/<model>/<config hash>.pt`` (a hidden folder, which the records' loader
skips; ``*.pt`` is git-ignored): the model's and optimisers' states, the schedules, the step, the
record's training curves so far and the time and tokens trained. The training data depend only on
(seed, step) (:func:`seqlib.objective.derive_seed`), so the resumed run sees the batches it would
have seen, and on a CPU its record equals the uninterrupted run's. A snapshot is used only by a run of
the same configuration hash under the same code (:func:`seqlib.provenance.code_hash`), else it is
discarded with a message; the run's record says where it resumed (``measure.resumed``). A run that
ends, in success or failure, removes its snapshot.

A stack (:func:`seqlib.stack.execute_stack`) does the same for the runs still in it at a validation:
``.partial/stacks/<key>.pt``, the key a hash of those runs' configuration hashes, so it is found by
the job that trains exactly the runs of the stack not yet recorded (a run that ended wrote its record
and leaves the next job): their parameters, AdamW moments and curves, the step and their tokens.
"""

from __future__ import annotations

import contextlib
import functools
import hashlib
import io
import sys
from collections.abc import Callable, Iterator
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
    snap = _load(snapshot_file(cfg), device, cfg.hash(), lambda s: s.get("config_hash"))
    if snap is None:
        return None
    model.load_state_dict(snap["model"])
    for o, state in zip(opt.optimizers, snap["optimizers"], strict=True):
        o.load_state_dict(state)
    for s, state in zip(opt.schedulers, snap["schedulers"], strict=True):
        s.load_state_dict(state)
    torch.set_rng_state(snap["rng"].cpu())  # loaded onto the run's device with the rest
    return {"train": snap["train"], "trained": snap["trained"]}


def save_or_warn(cfg: ExperimentConfig, model: torch.nn.Module, opt, train: dict, trained: dict) -> None:
    """:func:`save`; a store that cannot take it (full, read-only) costs the snapshot, not the run."""
    _warned(lambda: save(cfg, model, opt, train, trained), f"{cfg.task.name}/{cfg.model.name}")


def _warned(write, what: str) -> None:
    try:
        write()
    except OSError as e:
        print(f"warning: no snapshot of {what} ({type(e).__name__}: {e})", file=sys.stderr)


def stack_file(cfgs: list[ExperimentConfig]) -> Path:
    """Where a stack of the runs ``cfgs`` (in any order) keeps its snapshot."""
    key = hashlib.sha256(",".join(sorted(c.hash() for c in cfgs)).encode()).hexdigest()[:16]
    return Path(cfgs[0].run.results_dir) / PARTIAL / "stacks" / f"{key}.pt"


def save_stack(cfgs: list[ExperimentConfig], state: dict) -> None:
    """Write the snapshot of the stack of the runs ``cfgs`` (``state``: per-run tensors and values in
    the order of ``cfgs``, and the step), warning instead where the store cannot take it."""
    def write():
        buf = io.BytesIO()
        torch.save({"runs": [c.hash() for c in cfgs], "code": _code(), **state}, buf)
        atomic_write_bytes(stack_file(cfgs), buf.getvalue())

    _warned(write, f"a stack of {len(cfgs)} {cfgs[0].task.name}/{cfgs[0].model.name} runs")


def restore_stack(cfgs: list[ExperimentConfig]) -> dict | None:
    """The snapshot of the stack of exactly the runs ``cfgs``, its per-run entries reordered as
    ``cfgs``, or None (none, unreadable, other code)."""
    snap = _load(stack_file(cfgs), torch.device("cpu"), {c.hash() for c in cfgs},
                 lambda s: set(s.get("runs", ())))
    if snap is None:
        return None
    order = [snap["runs"].index(c.hash()) for c in cfgs]

    def reordered(v):
        if isinstance(v, dict):
            return {k: reordered(x) for k, x in v.items()}
        return [v[j] for j in order] if isinstance(v, list) else v[order] if isinstance(v, torch.Tensor) else v

    return {k: reordered(v) for k, v in snap.items() if k not in ("runs", "code")}


def remove_stack(cfgs: list[ExperimentConfig]) -> None:
    """The stack of ``cfgs`` has ended (or lost runs): its snapshot goes."""
    _unlink(stack_file(cfgs), Path(cfgs[0].run.results_dir) / PARTIAL)


def _load(path: Path, device: torch.device, expected, runs_of) -> dict | None:
    """The snapshot at ``path`` if it is of the ``expected`` runs (``runs_of(snapshot)``) and of this
    code, else None (said on stderr where a file was there)."""
    if not path.exists():
        return None
    try:
        snap = torch.load(path, map_location=device, weights_only=True)
    except Exception as e:  # noqa: BLE001 - a torn or foreign file: start afresh
        print(f"warning: the snapshot {path} cannot be read ({type(e).__name__}: {e}); starting afresh",
              file=sys.stderr)
        return None
    if runs_of(snap) != expected or snap.get("code") != _code():
        what = "configuration" if runs_of(snap) != expected else "code (seqlib changed since)"
        print(f"warning: the snapshot {path} is of another {what}; starting afresh", file=sys.stderr)
        return None
    return snap


def remove(cfg: ExperimentConfig) -> None:
    """The run has ended: its snapshot goes, and the folders it leaves empty."""
    _unlink(snapshot_file(cfg), Path(cfg.run.results_dir) / PARTIAL)


@contextlib.contextmanager
def until_ended(remove_it: Callable[[], None]) -> Iterator[None]:
    """The training of a run or stack: its snapshot goes (``remove_it()``) when the block ends, in
    success or failure (an ``Exception``), and stays when the block is stopped from outside
    (``KeyboardInterrupt``, ``SystemExit``; a kill runs nothing), so that it goes on next time."""
    try:
        yield
    except Exception:
        remove_it()
        raise
    remove_it()


def _unlink(path: Path, top: Path) -> None:
    """Remove ``path`` and the folders up to ``top`` that it leaves empty."""
    path.unlink(missing_ok=True)
    folder = path.parent
    while folder.is_relative_to(top):
        try:
            folder.rmdir()
        except OSError:  # not empty (another snapshot) or gone
            break
        folder = folder.parent
