"""kill -9 and a full disk (issue 14): a training killed mid-run or mid-write, a grid killed mid-training
or mid-notebook, and a record write on a real, nearly full tmpfs leave no half-written record or
notebook, only litter that the readers skip, no lock that blocks the next run; the next run finishes
the work and keeps what was finished before."""

from __future__ import annotations

import errno
import hashlib
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import time
import warnings
from pathlib import Path

import nbformat
import psutil
import pytest
import test_book_grid as toy
import test_grid_faults as faults
import torch

from seqlib.book.grid import LOCKS_DIR
from seqlib.provenance import REPO, code_hash
from seqlib.record import RunRecord
from seqlib.results import TMP_SUFFIX, load_records

book = toy.book  # the toy book fixture (a concept chapter and a task chapter) of the grid tests

POLL_S = 0.001  # the record-write window (temp file to rename, with an fsync) lasts milliseconds
STEPS = 300  # a tiny run of this many steps trains for a few seconds on a CPU: long enough to be killed in
TIMEOUT_S = 180
# one intra-op thread per process: the tests' processes share a small CI machine with each other (and
# other tests), and oversubscribed torch thread pools run a tiny model ~5x slower
ENV = {**os.environ, "OMP_NUM_THREADS": "1"}


# -- helpers -------------------------------------------------------------------------------------


def digest(path: Path) -> tuple[int, str]:
    return path.stat().st_mtime_ns, hashlib.sha256(path.read_bytes()).hexdigest()


def audit_store(store: Path) -> dict[Path, RunRecord]:
    """Every file in the store's record folders (``<task>/<model>/``) is a whole record (``*.json``),
    a checkpoint that loads (``*.pt``) or an atomic write's temp file (``.<name>.XXXXXXXX.tmp``), and
    :func:`load_records` reads the store (skipping, with a warning, the temp files, never reading one
    as a record) -> the records by path."""
    records, litter = {}, []
    for path in sorted(store.glob("*/*/*")):
        if path.name.startswith(".") and path.name.endswith(TMP_SUFFIX):
            litter.append(path)
        elif path.suffix == ".json":
            records[path] = RunRecord.from_json(json.loads(path.read_text()))  # raises on a half-written one
        elif path.suffix == ".pt":
            torch.load(path, weights_only=True)
        else:
            raise AssertionError(f"unexpected file {path} in the store")
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        loaded = load_records(store)
    assert sorted(r.config_hash for r in loaded) == sorted(r.config_hash for r in records.values())
    assert len(caught) == len(litter) and all("partial result record" in str(w.message) for w in caught), \
        [str(w.message) for w in caught]
    return records


def start(cmd: list[str], log: Path, cwd: Path = REPO) -> subprocess.Popen:
    """``cmd`` in its own session (its own process group), stdout and stderr to ``log``.{out,err}."""
    return subprocess.Popen(cmd, cwd=cwd, env=ENV, start_new_session=True, stdout=log.with_suffix(".out").open("w"),
                            stderr=log.with_suffix(".err").open("w"))


def rerun(cmd: list[str]) -> subprocess.CompletedProcess:
    """``cmd`` again, to its end; failing (not hanging) if it waits on something the killed run left."""
    try:
        return subprocess.run(cmd, cwd=REPO, env=ENV, capture_output=True, text=True, timeout=TIMEOUT_S)
    except subprocess.TimeoutExpired as err:
        raise AssertionError(f"the re-run did not end in {TIMEOUT_S} s (a lock of the killed run?): "
                             f"{(err.stdout or b'')[-2000:]!r}") from None


def wait_for(proc: subprocess.Popen, ready, what: str, timeout: float = TIMEOUT_S, poll: float = POLL_S) -> None:
    """Poll ``ready()`` until it holds; fail if ``proc`` ends first (the kill would not be mid-run)."""
    end = time.monotonic() + timeout
    while not ready():
        if proc.poll() is not None:
            raise AssertionError(f"the process ended (status {proc.returncode}) before {what}")
        if time.monotonic() > end:
            kill(proc)
            raise AssertionError(f"no {what} after {timeout} s")
        time.sleep(poll)


def kill(proc: subprocess.Popen) -> None:
    """SIGKILL the process group and every descendant (a Jupyter kernel runs in a session of its own):
    what a batch system does to a job that ran out of time."""
    try:
        descendants = psutil.Process(proc.pid).children(recursive=True)
    except psutil.NoSuchProcess:
        descendants = []
    os.killpg(proc.pid, signal.SIGKILL)
    for child in descendants:
        try:
            child.kill()
        except psutil.NoSuchProcess:
            pass
    proc.wait(30)
    psutil.wait_procs(descendants, timeout=30)


# -- 1. kill -9 mid-run --------------------------------------------------------------------------


def train_command(store: Path) -> list[str]:
    return [sys.executable, "-m", "seqlib", "train", "--task", "parity_check", "--model", "lstm", "--profile", "tiny",
            "--results-dir", str(store), "--set", f"optim.steps={STEPS}", "--set", "optim.seeds=[0,1]",
            "--set", "run.progress_interval=0"]


# ``seqlib train`` that SIGKILLs itself inside the write of its first record, the instant before the
# rename: its temp file is whole and fsynced but not yet the record (a kill the poll cannot time)
DIES_IN_WRITE = """\
import os, signal, sys
from seqlib import cli
rename = os.replace
def replace(src, dst):
    if str(dst).endswith(".json"):
        os.kill(os.getpid(), signal.SIGKILL)
    rename(src, dst)
os.replace = replace
sys.exit(cli.main(sys.argv[1:]))
"""


def planned_records(store: Path) -> list[Path]:
    from seqlib.config import load_config
    from seqlib.train import record_file, sweep_plan

    cfg = load_config("parity_check", "lstm", "tiny", [f"run.results_dir={store}", f"optim.steps={STEPS}",
                                                        "optim.seeds=[0,1]"])
    return [record_file(run) for run in sweep_plan(cfg)]


def progress(err: Path, seed: int) -> int:
    """The last step the progress bar of the run of ``seed`` shows on stderr (0 if none yet)."""
    with err.open("rb") as f:
        f.seek(max(0, f.seek(0, os.SEEK_END) - 1000))  # the last few updates of the bar
        tail = f.read().decode(errors="replace")
    steps = re.findall(rf"s={seed}:\s+\d+%\|[^|]*\|\s*(\d+)/{STEPS}", tail)
    return int(steps[-1]) if steps else 0


@pytest.mark.slow
@pytest.mark.parametrize("moment", ["training", "record write", "inside the write"])
def test_a_training_killed_mid_run_leaves_no_partial_record_and_the_rerun_finishes(tmp_path, moment):
    """``seqlib train`` (a sweep of two seeds) killed with SIGKILL while the second run trains, the
    instant the first record's file (or its temp file) appears, or inside the first record's write
    (before its rename): every record in the store is whole, a temp file is skipped by the readers,
    and the same command run again exits 0 with one ok record per config hash, keeping (byte for
    byte) a record finished before the kill. The CLI's run, if it held a lock, does not block the
    re-run: it waits for nothing."""
    store = tmp_path / "store"
    first, second = planned_records(store)
    command = [sys.executable, "-c", DIES_IN_WRITE, *train_command(store)[3:]] if moment == "inside the write" \
        else train_command(store)
    proc = start(command, tmp_path / "killed")
    if moment == "inside the write":
        proc.wait(TIMEOUT_S)
    elif moment == "training":
        wait_for(proc, lambda: first.exists() and progress(tmp_path / "killed.err", 1) >= 10,
                 "the second run's progress", poll=0.05)
        steps = progress(tmp_path / "killed.err", 1)
        assert steps < STEPS - 100, f"the second run was at step {steps} of {STEPS}: not mid-run"
    else:
        folder = first.parent
        wait_for(proc, lambda: folder.is_dir() and any(".json" in e.name for e in os.scandir(folder)),
                 "record file")
    if moment != "inside the write":
        kill(proc)
    assert proc.returncode == -signal.SIGKILL, "the run had ended before the kill"

    before = audit_store(store)
    assert second not in before  # killed before its end
    if moment == "training":
        assert list(before) == [first] and not list(store.glob("*/*/.*")), "no temp file mid-training"
    elif moment == "inside the write":
        assert not before and len(list(first.parent.glob(f".{first.name}.*{TMP_SUFFIX}"))) == 1  # the temp file
    kept = {path: digest(path) for path in before}

    again = rerun(train_command(store))
    assert again.returncode == 0, again.stdout + again.stderr[-3000:]
    assert re.search(rf"summary: {2 - len(kept)} ok, {len(kept)} already done, 0 skipped, 0 failed", again.stdout), \
        again.stdout
    after = audit_store(store)
    assert sorted(after) == sorted([first, second])  # exactly one record per config hash
    assert all(r.status == "ok" for r in after.values())
    assert {path: digest(path) for path in kept} == kept  # the record finished before the kill is kept as is


# -- 2. kill -9 mid-grid -------------------------------------------------------------------------

# The grid's main, with its params and scratch folders in the toy book's temp folder: the training
# store is the temp folder's, not the repository's results/scratch/tiny (which other tests use).
IN_TEMP = """\
import sys
from pathlib import Path
import seqlib.config
from seqlib.book import grid
root = Path(sys.argv.pop(1))
seqlib.config.default_params_dir = lambda: root / "params"
grid.SCRATCH_DIR, grid.NOTEBOOK_LOCKS = root / "executing", root / "locks"
sys.exit(grid.main(sys.argv[1:]))
"""
TINY_STORE = "results_dir: results/scratch/tiny"
MODELS = ["lstm", "gru"]
SUBTASKS = ["parity_check", "even_pairs"]


def grid_command(root: Path) -> list[str]:
    return [sys.executable, "-c", IN_TEMP, str(root), "--grid", str(root / "grid.yaml"),
            "--chapters", str(root / "chapters"), "--out", str(root / "runs"), "--failed", str(root / "failed"),
            "--results", str(root / "store"), "--profile", "tiny"]


def training_book(root: Path, monkeypatch) -> list[Path]:
    """The toy book with a training chapter (2 tasks x 2 models) after the concept chapter, its params
    copied with the tiny profile's store in ``root / "store"`` -> the planned records."""
    from seqlib.book.chapter import planned_configs
    from seqlib.train import record_file

    shutil.copytree(REPO / "params", root / "params")
    defaults = root / "params" / "defaults.yaml"
    assert TINY_STORE in defaults.read_text()
    defaults.write_text(defaults.read_text().replace(TINY_STORE, f"results_dir: {root / 'store'}"))
    (root / "grid.yaml").write_text(
        f"runs:\n  - chapter: concept\n  - chapter: task\n    task: parity_check\n    train: true\n"
        f"    models: [{', '.join(MODELS)}]\n    params: {{subtasks: [{', '.join(SUBTASKS)}]}}\n")
    import seqlib.config

    monkeypatch.setattr(seqlib.config, "default_params_dir", lambda: root / "params")
    return [record_file(cfg) for model in MODELS for cfg in planned_configs(SUBTASKS, model, "tiny")]


def notebooks(out: Path) -> dict[Path, tuple[int, str]]:
    """Every file in the output folder is a finished page: no hidden (temporary) file, each notebook
    valid nbformat and stamped by the grid (not one papermill is still writing) -> their digests."""
    assert not [p for p in out.rglob(".*")], "temporary files among the pages"
    pages = {}
    for path in sorted(p for p in out.rglob("*") if p.is_file()):
        assert path.suffix == ".ipynb", path
        nb = nbformat.read(path, as_version=4)
        nbformat.validate(nb)
        assert nb.metadata["seqbook"]["code_hash"] and not nb.metadata["papermill"]["exception"], path
        pages[path] = digest(path)
    return pages


@pytest.mark.book
@pytest.mark.slow
@pytest.mark.parametrize("moment", ["training", "notebooks"])
def test_a_grid_killed_mid_run_leaves_whole_files_and_the_next_grid_finishes_reusing_them(book, monkeypatch, moment):
    """``seqlib.book.grid`` (4 training runs, then 3 notebooks) killed with SIGKILL, with its process
    group and kernel, once a record is in the store and the next run is training (its lock held), or
    once a page is out and the next notebook is executing: every record is whole, no temporary
    notebook is among the pages and each page is a finished notebook; the next grid exits 0 having
    trained and executed only what was missing (taking the killed grid's locks: they died with it),
    with every planned record once and the records and pages finished before the kill unchanged."""
    planned = training_book(book, monkeypatch)
    assert len(set(planned)) == 4
    store, out = book / "store", book / "runs"
    code = code_hash()  # the pages' code hash covers seqlib/**/*.py: an edit there re-runs every page
    proc = start(grid_command(book), book / "killed")
    locks = store / LOCKS_DIR

    def running() -> list[Path]:
        """Planned runs the grid is training: their lock was taken, their record is not there yet."""
        held = {p.stem for p in locks.glob("*.lock")} if locks.is_dir() else set()
        return [p for p in planned if p.stem in held and not p.exists()]

    def executing() -> list[psutil.Process]:
        """Kernels the grid started after it placed its first page (executing the next notebook)."""
        first = [p.stat().st_mtime for p in out.rglob("*.ipynb")] if out.is_dir() else []
        if not first:
            return []
        try:
            children = psutil.Process(proc.pid).children(recursive=True)
        except psutil.Error:
            return []
        kernels = []
        for child in children:
            try:  # a kernel that has ended may linger as a zombie until its parent reaps it
                if child.status() != psutil.STATUS_ZOMBIE and "ipykernel" in " ".join(child.cmdline()) \
                        and child.create_time() > min(first):
                    kernels.append(child)
            except psutil.Error:
                pass
        return kernels

    if moment == "training":  # a record is in, and the next run holds its lock, training
        wait_for(proc, lambda: any(p.exists() for p in planned) and running(), "record, then a run in training")
        killed = running()
    else:  # a page is out, and the next one is executing (its lock held, its kernel running)
        wait_for(proc, executing, "page, then a notebook executing")
    kill(proc)
    assert proc.returncode == -signal.SIGKILL, (book / "killed.out").read_text()

    records = audit_store(store)
    assert set(records) <= set(planned)
    if moment == "training":
        assert killed and not any(p.exists() for p in killed)  # the re-run must take the killed run's lock
    else:
        assert set(records) == set(planned)  # the training came first
    pages = notebooks(out)
    assert 1 <= len(pages) < 3 if moment == "notebooks" else not pages
    kept = {path: digest(path) for path in records} | pages

    again = rerun(grid_command(book))
    if code_hash() != code:  # seqlib was edited meanwhile (a shared working tree): the pages are stale
        kept, pages = {path: digest(path) for path in records}, {}
    assert again.returncode == 0, again.stdout + again.stderr[-3000:]
    assert f"{len(planned) - len(records)} training runs to do first" in again.stdout, again.stdout
    assert f"runs: {len(pages)} up to date, {3 - len(pages)} to run" in again.stdout, again.stdout
    after = audit_store(store)
    assert sorted(after) == sorted(planned) and all(r.status == "ok" for r in after.values())
    assert len(notebooks(out)) == 3
    assert {path: digest(path) for path in kept} == kept  # finished before the kill: kept, not redone
    assert toy.outputs(out / "concept.ipynb") == "concept tiny\n"
    assert toy.outputs(out / "parity_check" / "gru.ipynb") == "parity_check gru 0\n"


@pytest.mark.book
@pytest.mark.slow
def test_a_grid_sent_sigterm_mid_run_stops_with_status_124_and_records_no_failure(book, monkeypatch):
    """A round's ``timeout`` sends SIGTERM (twice: to the grid, then to its process group): the grid stops training (exit status 124, as ``timeout``
    gives), executes no page, and the run it was training has no record (not a failure: it is trained
    next time); the records finished before stay whole."""
    planned = training_book(book, monkeypatch)
    store = book / "store"
    proc = start(grid_command(book), book / "termed")
    locks = store / LOCKS_DIR

    def training() -> list[Path]:
        held = {p.stem for p in locks.glob("*.lock")} if locks.is_dir() else set()
        return [p for p in planned if p.stem in held and not p.exists()]

    wait_for(proc, lambda: any(p.exists() for p in planned) and training(), "record, then a run in training")
    stopped = training()
    proc.send_signal(signal.SIGTERM)
    time.sleep(0.05)
    proc.send_signal(signal.SIGTERM)  # `timeout` signals the grid, then its process group: twice
    try:
        proc.wait(TIMEOUT_S)
    except subprocess.TimeoutExpired:
        kill(proc)
        raise AssertionError("the grid did not end after SIGTERM") from None
    out = (book / "termed.out").read_text()
    assert proc.returncode == 124 and "stopped by SIGTERM" in out, out + (book / "termed.err").read_text()[-3000:]
    records = audit_store(store)
    assert records and all(r.status == "ok" for r in records.values())
    assert stopped and not any(p.exists() for p in stopped)  # no failed record of the run under way
    assert not (book / "runs").exists() or not list((book / "runs").rglob("*.ipynb"))  # no page executed


# -- 3. a full disk (a real tmpfs) ---------------------------------------------------------------


@pytest.fixture
def tiny_disk(tmp_path):
    """A 64 KiB tmpfs mounted in ``tmp_path`` (needs root or CAP_SYS_ADMIN: skipped otherwise),
    unmounted afterwards."""
    disk = tmp_path / "disk"
    disk.mkdir()
    try:
        mounted = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=64k,mode=0755", "tmpfs", str(disk)],
                                 capture_output=True, text=True, timeout=30)
    except (OSError, subprocess.SubprocessError) as err:
        pytest.skip(f"cannot mount a tmpfs: {err}")
    if mounted.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs (root or CAP_SYS_ADMIN needed): {mounted.stderr.strip()}")
    try:
        yield disk
    finally:
        if subprocess.run(["umount", str(disk)], capture_output=True).returncode != 0:
            subprocess.run(["umount", "-l", str(disk)], capture_output=True)


def fill(disk: Path, leave: int) -> Path:
    """Fill ``disk`` with a file outside the record folders until a write fails, then free ``leave``
    bytes (a page: smaller than a record)."""
    filler = disk / "filler"
    with filler.open("wb", buffering=0) as f:  # unbuffered: nothing is left to flush at close
        try:
            while True:
                f.write(b"\0" * 4096)
        except OSError as err:
            assert err.errno == errno.ENOSPC, err
    os.truncate(filler, filler.stat().st_size - leave)
    return filler


@pytest.fixture
def one_thread():
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.mark.book
def test_a_record_write_on_a_full_tmpfs_fails_that_run_and_keeps_the_earlier_record(tiny_disk, one_thread):
    """A real full disk (a 64 KiB tmpfs with 4 KiB left, less than a record): the grid's training job
    trains, its record write fails with ENOSPC, and it reports a failed, unrecorded run naming the
    error; the record already in the store is byte-identical, no partial or temp file is left, and
    once space is freed the same run trains and records."""
    from seqlib.book import grid as grid_module
    from seqlib.config import ExperimentConfig
    from seqlib.train import record_file

    earlier = faults.tiny_config(tiny_disk)
    done = grid_module.train(earlier.model_dump(mode="json"))
    assert done["status"] == "ok" and not done["reused"], done
    kept = record_file(earlier).read_bytes()

    raw = earlier.model_dump(mode="json")
    cfg = ExperimentConfig.model_validate({**raw, "optim": {**raw["optim"], "seeds": [7], "steps": 200}})
    assert cfg.hash() != earlier.hash()
    filler = fill(tiny_disk, leave=4096)
    failed = grid_module.train(cfg.model_dump(mode="json"))
    assert failed["status"] == "failed" and failed["unrecorded"], failed
    assert "could not write the record" in failed["error"] and "No space left on device" in failed["error"], failed
    assert record_file(earlier).read_bytes() == kept
    files = sorted(p for p in tiny_disk.rglob("*") if p.is_file() and p.parent.name != grid_module.LOCKS_DIR)
    assert files == [filler, record_file(earlier)], [p.name for p in files]  # nothing partial, no temp file
    assert [r.config_hash for r in load_records(tiny_disk, strict=True)] == [earlier.hash()]

    filler.unlink()
    again = grid_module.train(cfg.model_dump(mode="json"))
    assert again["status"] == "ok" and not again["reused"], again
    assert sorted(r.config_hash for r in load_records(tiny_disk, strict=True)) == sorted([earlier.hash(), cfg.hash()])


@pytest.mark.slow
def test_a_training_killed_after_a_validation_resumes_there_and_ends_as_if_never_killed(tmp_path):
    """``seqlib train`` SIGKILLed once its run has written a snapshot (seqlib.snapshot: at a validation,
    every 50 steps here): the same command again resumes at that validation and records what the
    uninterrupted run records (curves, evaluations), and leaves no snapshot behind."""
    def command(store: Path) -> list[str]:
        return [*train_command(store), "--set", "optim.seeds=[0]", "--set", "run.eval_every=50"]

    store, whole_store = tmp_path / "store", tmp_path / "whole"
    snapshots = store / ".partial" / "parity_check" / "lstm"
    proc = start(command(store), tmp_path / "killed")
    wait_for(proc, lambda: any(snapshots.glob("*.pt")), "a snapshot", poll=0.01)
    kill(proc)
    assert not list(store.glob("*/*/*.json"))  # killed before its record
    for where in (store, whole_store):
        done = rerun(command(where))
        assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-2000:]
    (resumed,), (whole,) = (load_records(where) for where in (store, whole_store))
    assert resumed.train["loss_curve"] == whole.train["loss_curve"] and resumed.metrics == whole.metrics
    assert resumed.train["eval_curve"] == whole.train["eval_curve"]
    assert resumed.measure["resumed"]["from_step"] in range(50, STEPS, 50) and "resumed" not in whole.measure
    assert not (store / ".partial").exists()
