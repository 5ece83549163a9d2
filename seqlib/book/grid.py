"""The book's run grid: execute every (chapter, model) pair with papermill (``make run-all``).

``params/grid.yaml`` lists the runs. A concept chapter runs once, into ``book/runs/<chapter>.ipynb``;
a task chapter runs once per model, into ``book/runs/<task>/<model>.ipynb``, with the papermill
parameters ``task`` and ``model`` set. Every run also gets ``profile`` and ``seed``.

* Profile: ``full`` when CUDA is available, ``smoke`` otherwise; ``--profile``/``PROFILE=`` overrides.
* Training first: a task chapter marked ``train: true`` shows the runs of its registry tasks (the
  ``subtasks`` parameter if the grid sets one, else ``task``) for its model, every learning rate
  and seed of the profile (:func:`seqlib.book.chapter.planned_configs`). The grid trains all of them
  first, as one job per run on a CPU, so that the work spreads evenly over the workers and a run is
  the unit of resumption (:func:`seqlib.train.run_one` keeps finished records); with a GPU, runs of
  one model and task that differ in seed and rate share a job and train as one stack
  (:func:`stack_jobs`, ``--stack-size``/``STACK_SIZE``, :mod:`seqlib.stack`), each still recorded
  as its own run (``--compile-stacks``/``STACK_COMPILE=1``: a vmapped stack's forward through
  ``torch.compile``). ``--deadline S`` stops
  starting new training runs S seconds after the start (the ones under way finish), for a machine
  held for a limited time; a later call goes on where it stopped (``--train-only`` stops after the
  training, executing no chapter). The chapters then execute with the papermill parameter
  ``stored_only=True``: they show the stored records, train nothing, and list any planned run that
  has no record yet.
* Cells: a task entry's ``cells:`` (:mod:`seqlib.book.cells`) are variants of its runs (other
  widths, lengths, block patterns, windows) that train as runs of their own, recorded in
  ``<results_dir>/cells/``; the entry's pages show them (their records are in the pages' code
  hash), and the plan lists them as ``<task>:<cell>``.
* Order: the grid file's ``train_order`` lists tiers of tasks and cells that train one tier after
  another, each seed by seed; the other tasks' runs follow, then the other cells (without one, the
  tasks of several seeds come first: :class:`TrainOrder`).
* Resumable: an executed notebook records its parameters hash and code hash (the chapter and every
  ``seqlib/**/*.py``; for a task chapter also the records of its runs) in its metadata; a run whose
  stored notebook has the same two is skipped unless ``--force``/``FORCE=1``.
* Chapters that summarise the results store (``reads_results: true`` in the grid, e.g. Results,
  Length generalization and Efficiency) run after every other run has finished, and their code hash
  also covers the store's records (benchmark records under ``bench/`` included), so they re-run
  whenever a run adds or changes a record.
* A run executes into a temporary file (``_build/grid/executing/``) that replaces the stored notebook
  only when it succeeds. A failed run keeps the stored one; its notebook, with papermill's error
  banner, goes to ``_build/grid/failed/`` and the summary lists it; the exit status is 1 if any run
  failed.
* Faults and shared stores: the folders the grid writes are checked writable before any work; a
  corrupt record or stored notebook is reported and done again; a write that fails fails that run
  only; a file lock per run and per page keeps two grids from doing the same work twice; Dask keys
  are unique per grid invocation.
* Where the runs go:
  - one GPU or none: one after the other in this process;
  - several visible GPUs: a local Dask cluster with one single-threaded worker per GPU, each
    worker's ``CUDA_VISIBLE_DEVICES`` pinned to its GPU (the rest of the environment, e.g.
    ``NCCL_*``, is inherited);
  - ``--workers-per-gpu K`` (``WORKERS_PER_GPU``): K workers share each GPU. The book's models are
    small, so one training process leaves a GPU mostly idle while Python launches kernels;
  - ``--workers N`` forces a local cluster of N workers (GPUs assigned round-robin; none on a CPU);
    each worker's intra-op threads (``OMP_NUM_THREADS``) are the machine's cores over the workers;
  - ``--scheduler ADDRESS`` or ``DASK_SCHEDULER_ADDRESS``: an existing cluster. Start its workers
    with one GPU and one thread each, for example with dask-jobqueue on Slurm::

        from dask_jobqueue import SLURMCluster
        cluster = SLURMCluster(cores=8, processes=1, memory="64GB", walltime="04:00:00",
                               job_extra_directives=["--gres=gpu:1"],
                               worker_extra_args=["--nthreads", "1"],
                               python="/path/to/seqbook/.venv/bin/python")
        cluster.scale(jobs=4)
        print(cluster.scheduler_address)   # -> python -m seqlib.book.grid --scheduler tcp://...

    (``PBSCluster`` takes the same arguments with ``resource_spec="select=1:ngpus=1"``). The
    workers must see the same checkout (a shared filesystem) and its venv.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import keyword
import os
import shutil
import signal
import sys
import tempfile
import time
import uuid
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import yaml

from seqlib.book.cells import GRID, EntryCells, entry_cells
from seqlib.book.pages import COMMITTED, PagesError, pages_dir, site_profile
from seqlib.book.plots import BOOK_RUN_ENV
from seqlib.book.toc import entry_models
from seqlib.provenance import REPO, code_hash

FAILED_DIR = REPO / "_build" / "grid" / "failed"
# papermill writes a run's notebook here first (git-ignored, never among the pages; removed on any exit)
SCRATCH_DIR = REPO / "_build" / "grid" / "executing"
# Several kernels starting at once can race for the ports jupyter_client picked for them (seen with 8
# workers on one machine: zmq "Address already in use", then this error); such a start is retried.
KERNEL_DIED = "Kernel died before replying to kernel_info"
KERNEL_START_ATTEMPTS = 3
# one lock file per executed notebook, so that two grids at once do not execute the same one twice
# (git-ignored, as all of _build/); a training run's lock lies in its store (LOCKS_DIR, git-ignored)
NOTEBOOK_LOCKS = REPO / "_build" / "grid" / "locks"
LOCKS_DIR = ".locks"  # <results_dir>/.locks/<run id>.lock: beside the record folders, never in one
# runs per stacked training job on a GPU (seqlib.stack); the sweep benchmark (results/bench/sweep-*) measured
# the gain up to K = 64 on an H200. CPUs train run by run.
STACK_MAX = 64
# runs per job of a model whose instances run as a loop (an fla mixer, seqlib.stack.default_instances): a
# looped step costs K steps (no measured gain, results/mqar/deltanet), so bigger jobs only outlast a round's
# deadline (a stack of 4 DeltaNets on MQAR took 481 s at 8 processes per H200)
LOOP_STACK_MAX = 1


class StoreError(RuntimeError):
    """A folder the grid writes to cannot be written: the grid stops before any work starts."""


def check_writable(folder: Path) -> None:
    """Create ``folder`` if needed and write (then remove) a file in it; :class:`StoreError` names the
    folder if that fails (permissions, a read-only file system, a full disk). Trying a real write,
    not ``os.access``: as root, permission bits do not stop writes but a read-only mount does."""
    try:
        folder.mkdir(parents=True, exist_ok=True)
        fd, probe = tempfile.mkstemp(dir=folder, prefix=".seqbook-write-check.", suffix=".tmp")
        try:
            os.write(fd, b"seqbook")
            os.fsync(fd)
        finally:
            os.close(fd)
            Path(probe).unlink(missing_ok=True)
    except OSError as err:
        raise StoreError(f"cannot write to {folder}: {type(err).__name__}: {err}") from err


@dataclass
class Run:
    chapter: Path  # the chapter notebook papermill executes
    out: Path  # the executed notebook
    params: dict = field(default_factory=dict)
    reads_results: bool = False  # summarises the results store: runs last, re-runs when it changes
    trains: list[str] = field(default_factory=list)  # registry tasks whose runs the grid trains first
    cells: EntryCells | None = None  # the entry's cells under the profile (seqlib.book.cells), trained after
    train_last: bool = False  # the entry's runs and cells train after every other entry's (grid.yaml)
    adopts: tuple[str, ...] = ()  # models of the entry's cells without a page (profile_cells_only): trained with this run

    @property
    def params_hash(self) -> str:
        return hashlib.sha256(json.dumps(self.params, sort_keys=True).encode()).hexdigest()[:16]


ENTRY_KEYS = {"chapter", "task", "models", "params", "reads_results", "train", "train_last", "cells", "skip",
              "profile_subtasks", "profile_cells_only"}


def profile_subtasks(entry: dict, profile: str, models: list[str], where: str) -> dict[str, dict]:
    """``{model: its extra papermill parameters}`` from a task entry's ``profile_subtasks``:
    ``{<profile>: {models: [...], subtasks: [...], why: <reason>}}`` runs, under that profile, only
    those of the entry's ``subtasks`` for those models; their pages get ``subtasks`` and
    ``subtasks_why`` (checked for every profile; a model or task the entry does not list is an error)."""
    declared = entry.get("profile_subtasks") or {}
    if not isinstance(declared, dict):
        raise ValueError(f"{where}: profile_subtasks must map profiles to {{models, subtasks, why}}")
    listed = (entry.get("params") or {}).get("subtasks") or []
    out = {}
    for name, spec in declared.items():
        if not (isinstance(spec, dict) and set(spec) == {"models", "subtasks", "why"}
                and all(isinstance(spec[k], list) and spec[k] for k in ("models", "subtasks"))
                and isinstance(spec["why"], str) and spec["why"].strip()):
            raise ValueError(f"{where}: profile_subtasks.{name} must be {{models: [...], subtasks: [...], "
                             f"why: <reason>}}, got {spec!r}"[:300])
        bad = ([m for m in spec["models"] if m not in (entry.get("models") or [])]
               + [t for t in spec["subtasks"] if t not in listed])
        if bad:
            raise ValueError(f"{where}: profile_subtasks.{name} names {bad}, which the entry does not list "
                             "among its models or its params' subtasks")
        if name == profile:
            chosen = [t for t in listed if t in spec["subtasks"]]  # in the entry's order
            out = {m: {"subtasks": chosen, "subtasks_why": " ".join(spec["why"].split())}
                   for m in spec["models"] if m in models}
    return out


def load_grid(grid: Path, chapters: Path, out: Path, profile: str) -> list[Run]:
    """The runs of a grid file: ``runs: [{chapter, task?, models?, params?, train?, reads_results?, cells?}]``
    (``cells``: :func:`seqlib.book.cells.declared`, checked for every profile)."""
    spec = yaml.safe_load(grid.read_text()) or {}
    runs = []
    for entry in spec.get("runs", []):
        unknown = sorted(set(entry) - ENTRY_KEYS)
        if unknown:
            raise ValueError(f"{grid}: entry {entry.get('chapter')!r} has unknown key(s) {unknown}; "
                             f"an entry may hold {sorted(ENTRY_KEYS)}")
        chapter = chapters / f"{entry['chapter']}.ipynb"
        if not chapter.exists():
            raise FileNotFoundError(f"{grid}: chapter {entry['chapter']!r} has no notebook {chapter}")
        params = entry.get("params") or {}
        if not isinstance(params, dict):
            raise ValueError(f"{grid}: entry {entry['chapter']!r} has params {params!r}; params is a mapping")
        # papermill writes `name = value` lines into the notebook: a name that is not an identifier
        # would be code (the values are escaped, the names are not)
        bad = [repr(k) for k in params if not (isinstance(k, str) and k.isidentifier() and not keyword.iskeyword(k))]
        if bad:
            raise ValueError(f"{grid}: entry {entry['chapter']!r} has parameter name(s) {', '.join(bad)[:200]}; "
                             "a papermill parameter name must be a Python identifier")
        base = {"profile": profile, "seed": 0, **params}
        if "task" in entry:
            if not entry.get("models"):
                raise ValueError(f"{grid}: task chapter {entry['chapter']!r} lists no models")
            trains = list(base.get("subtasks") or [entry["task"]]) if entry.get("train") else []
            shown = {"stored_only": True} if trains else {}  # the grid trains them first
            # the models this profile runs (grid.yaml's profile_models; skip: pairs never run)
            where = f"{grid}: entry {entry['chapter']!r}"
            models = entry_models(spec, entry, profile, str(grid))[0]
            fewer = profile_subtasks(entry, profile, models, where)
            # the models of the entry's cells: also those the profile trains in its cells only, without a page
            cells = entry_cells({**entry, "models": entry_models(spec, entry, profile, str(grid), cells=True)[0]},
                                profile, where)
            only = [m for m in entry_models(spec, entry, profile, str(grid), cells=True)[0] if m not in models]
            untrained = [m for m in only if not any(m in cell.models for cell in (cells.cells if cells else []))]
            if untrained or (only and not models):
                raise ValueError(f"{where}: profile_cells_only.{profile}: " + (
                    f"no cell of the profile trains {untrained}" if untrained else "every model is cells only"))
            runs += [Run(chapter, out / entry["task"] / f"{model}.ipynb",
                         {**base, **shown, "task": entry["task"], "model": model, **fewer.get(model, {})},
                         trains=fewer[model]["subtasks"] if model in fewer and trains else trains, cells=cells,
                         train_last=bool(entry.get("train_last")), adopts=tuple(only) if i == 0 else ())
                     for i, model in enumerate(models)]
        elif entry.get("train") or "cells" in entry:
            raise ValueError(f"{grid}: chapter {entry['chapter']!r} has train: true or cells but no task and models")
        else:
            runs.append(Run(chapter, out / f"{entry['chapter']}.ipynb", base, bool(entry.get("reads_results"))))
    return runs


def runnable(runs: list[Run]) -> list[Run]:
    """``runs`` less those whose model cannot run on this machine (a GPU-only model on a CPU:
    :func:`seqlib.models.unavailable`), which are reported once per model with the reason."""
    from seqlib.models import MODELS, unavailable

    skipped: dict[str, list[str]] = {}
    for run in runs:
        if run.params.get("model") in MODELS and unavailable(run.params["model"]):
            skipped.setdefault(run.params["model"], []).append(run.params["task"])
    for model, tasks in skipped.items():
        print(f"seqbook grid: skipped {model} on {', '.join(tasks)}: {unavailable(model)}", flush=True)
    return [run for run in runs if run.params.get("model") not in skipped]


def files_digest(paths, root: Path | None = None) -> str:
    """A hash of the given files' names (relative to ``root`` if given) and contents; a missing
    file counts as absent."""
    h = hashlib.sha256()
    for path in sorted(paths):
        h.update((path.relative_to(root).as_posix() if root else str(path)).encode())
        if path.exists():
            h.update(hashlib.sha256(path.read_bytes()).digest())
    return h.hexdigest()[:16]


def results_digest(store: Path) -> str:
    """A hash of every run record (``<task>/<model>/*.json``) and benchmark record (``bench/*.json``)
    in the results store."""
    return files_digest({*store.glob("*/*/*.json"), *store.glob("bench/*.json")}, root=store)


def run_code_hash(run: Run, store: Path, planned: list | None = None) -> str:
    """The chapter's code hash; for a summary also the whole store's records, and for a chapter that
    shows ``planned`` runs (configurations) also their records: either re-runs when those change."""
    code = code_hash(run.chapter)
    if run.reads_results:
        return f"{code}+results:{results_digest(store)}"
    if planned:
        from seqlib.train import record_file

        return f"{code}+runs:{files_digest(record_file(cfg) for cfg in planned)}"
    return code


def stored_stamp(out: Path) -> dict:
    """``metadata.seqbook`` of the stored notebook ``out`` ({} if there is none); a notebook that cannot
    be read as JSON raises ``ValueError`` naming it."""
    if not out.exists():
        return {}
    try:
        meta = json.loads(out.read_text()).get("metadata", {}).get("seqbook", {})
    except (OSError, UnicodeDecodeError, json.JSONDecodeError, AttributeError) as err:
        raise ValueError(f"unreadable stored notebook {out}: {type(err).__name__}: {err}") from err
    return meta if isinstance(meta, dict) else {}


def is_done(run: Run, code: str, problems: list[str] | None = None) -> bool:
    """The stored notebook came from the same parameters and code. A corrupt stored notebook is not
    done: the problem goes to ``problems`` (the grid's summary) and to stderr, and the run re-executes."""
    try:
        meta = stored_stamp(run.out)
    except ValueError as err:
        message = f"{err}; executing it again"
        print(f"warning: {message}", file=sys.stderr, flush=True)
        if problems is not None:
            problems.append(message)
        return False
    return meta.get("params_hash") == run.params_hash and meta.get("code_hash") == code


def train(config: dict) -> dict:
    """Train one planned run (a resolved configuration, as JSON) unless it has a finished record ->
    a status record. Runs in this process or on a Dask worker."""
    from filelock import FileLock

    from seqlib.config import ExperimentConfig
    from seqlib.train import record_file, run_one

    cfg = ExperimentConfig.model_validate(config)
    start, path = time.monotonic(), record_file(cfg)
    try:
        # one lock per run (config hash): a second grid training the same run waits here, then
        # finds the finished record and keeps it (run_one) instead of training it again
        with FileLock(run_lock(cfg)), usable_worker():
            outcome = run_one(cfg)
    except OSError as err:  # the store cannot be written (read-only, disk full): this run fails, the grid goes on
        return unwritten(path, start, err)
    return training_status(outcome, path, start)


# the exit status of a grid worker whose CUDA context was lost (its nanny starts a fresh one)
CUDA_LOST_EXIT = 75


@contextmanager
def usable_worker():
    """Around a training job: on a Dask worker whose CUDA context an earlier job's sticky error left
    unusable (:mod:`seqlib.cuda_context`), exit the process before the job writes anything. Its nanny
    starts a fresh worker and the scheduler hands the job to a worker that can train it; in this
    process (no Dask) the error stops the grid, whose finished records stay."""
    from seqlib.cuda_context import CudaContextLost

    try:
        yield
    except CudaContextLost as err:
        try:
            from distributed import get_worker

            worker = get_worker()
        except (ImportError, ValueError):
            raise err from None
        print(f"{worker.name}: {err}; this worker exits", file=sys.stderr, flush=True)
        os._exit(CUDA_LOST_EXIT)


def train_stack(configs: list[dict], names: list[str], compiled: bool = False) -> list[tuple[str, dict]]:
    """Train the runs of one job of :func:`stack_jobs` -> ``(name, status record)`` per run: run by
    run (:func:`train`) if the job holds one, else as one stack (:func:`seqlib.stack.run_stack`)
    holding every run's lock, taken in a fixed order so that two grids cannot deadlock."""
    if len(configs) == 1:
        return [(names[0], train(configs[0]))]
    from contextlib import ExitStack

    from filelock import FileLock

    from seqlib.config import ExperimentConfig
    from seqlib.stack import run_stack
    from seqlib.train import record_file

    cfgs = [ExperimentConfig.model_validate(c) for c in configs]
    paths, start = [record_file(c) for c in cfgs], time.monotonic()
    try:
        with ExitStack() as held:
            for lock in sorted(run_lock(c) for c in cfgs):
                held.enter_context(FileLock(lock))
            held.enter_context(usable_worker())
            outcomes = run_stack(cfgs, compiled=compiled)
    except OSError as err:
        return [(name, unwritten(path, start, err)) for name, path in zip(names, paths)]
    return [(name, training_status(o, path, start)) for name, o, path in zip(names, outcomes, paths)]


def run_lock(cfg) -> str:
    """The lock file of a run: ``<results_dir>/.locks/<run id>.lock`` (the folder is created)."""
    from seqlib.train import record_file

    locks = Path(cfg.run.results_dir) / LOCKS_DIR
    locks.mkdir(parents=True, exist_ok=True)
    return str(locks / f"{record_file(cfg).stem}.lock")


def unwritten(path: Path, start: float, err: OSError) -> dict:
    return {"record": str(path), "reused": False, "status": "failed", "seconds": round(time.monotonic() - start, 1),
            "unrecorded": True, "error": f"could not write the record {path}: {type(err).__name__}: {err}"}


def training_status(outcome, path: Path, start: float) -> dict:
    """The status record of a finished training run (its :class:`seqlib.train.Outcome`)."""
    rec, seconds = outcome.record, round(time.monotonic() - start, 1)
    out = {"record": str(path), "reused": outcome.reused, "seconds": seconds,
           "status": "ok" if rec.status == "ok" else "failed"}
    if not outcome.written:
        out.update(unrecorded=True, error=rec.reason)
    elif rec.status != "ok":
        out["error"] = f"{rec.status}: {rec.reason}"
    return out


def stack_jobs(training: list[tuple[str, dict]], size: int) -> list[tuple[str, dict]]:
    """The training jobs of :func:`planned_training` as jobs of :func:`train_stack`: runs that can
    train together (:func:`seqlib.stack.stack_key`: one model and task, differing in seed and
    optimiser scalars) in stacks of at most ``size`` (:data:`LOOP_STACK_MAX` for looped instances),
    each stack where its first run was in the order; ``size`` 1, or a run that cannot stack (Muon),
    gives one job per run."""
    from seqlib.config import ExperimentConfig
    from seqlib.stack import default_instances, stack_key, stack_problem

    groups: dict[str, list[tuple[str, dict]]] = {}
    sizes: dict[str, int] = {}
    for name, job in training:
        cfg = ExperimentConfig.model_validate(job["config"])
        key = stack_key(cfg) if size > 1 and stack_problem([cfg]) is None else name
        groups.setdefault(key, []).append((name, job["config"]))
        sizes[key] = max(1, size if default_instances(cfg) == "vmap" else min(size, LOOP_STACK_MAX))
    jobs = []
    for key, members in groups.items():
        for i in range(0, len(members), sizes[key]):
            chunk = members[i : i + sizes[key]]
            label = chunk[0][0] if len(chunk) == 1 else f"{chunk[0][0].split('/lr=')[0]} (stack of {len(chunk)})"
            jobs.append((label, {"configs": [c for _, c in chunk], "names": [n for n, _ in chunk]}))
    return jobs


def check_trained(record: dict, expected: str) -> dict:
    """The status record of a training job, failed and ``unrecorded`` if its record (ok or failed) is
    not where the client expects it (e.g. a worker that does not see the client's filesystem, or one
    that wrote elsewhere)."""
    if record.get("unrecorded") or (record.get("record") == expected and Path(expected).is_file()):
        return record
    why = f" (the run: {record['error']})" if record.get("error") else ""
    return {**record, "status": "failed", "unrecorded": True,
            "error": f"no record at {expected} after the run (the worker reported {record.get('record')!r}): "
                     f"does the worker see this filesystem?{why}"}


def execute(chapter: str, out: str, failed: str, params: dict, stamp: dict) -> dict:
    """Run one notebook with papermill (in this process or on a Dask worker) -> a status record.

    ``stamp`` (parameters and code hashes) goes into the executed notebook's ``metadata.seqbook``.
    The kernel renders its charts for the offline book (``BOOK_RUN_ENV``, set for the kernel's
    start only: this process's environment is restored afterwards). One lock per output notebook
    (``NOTEBOOK_LOCKS``): while another grid executes the same notebook this one waits, then keeps
    that notebook if it has this ``stamp`` (``"reused": True``) or executes it again. A folder that
    cannot be written (read-only, disk full) fails this run only.
    """
    from filelock import FileLock, Timeout

    start = time.monotonic()
    out_path = Path(out)
    try:
        NOTEBOOK_LOCKS.mkdir(parents=True, exist_ok=True)
        name = hashlib.sha256(str(out_path.absolute()).encode()).hexdigest()[:16]
        lock = FileLock(str(NOTEBOOK_LOCKS / f"{name}.lock"))
        try:
            lock.acquire(timeout=0)
            waited = False
        except Timeout:
            lock.acquire()
            waited = True
        try:
            if waited:
                try:
                    current = stored_stamp(out_path)
                except ValueError:
                    current = {}
                if current and all(current.get(k) == v for k, v in stamp.items()):
                    return {"out": out, "seconds": round(time.monotonic() - start, 1), "status": "ok",
                            "reused": True, "device": os.environ.get("CUDA_VISIBLE_DEVICES", "")}
            return _execute(chapter, out, failed, params, stamp)
        finally:
            lock.release()
    except OSError as err:
        return {"out": out, "seconds": round(time.monotonic() - start, 1), "status": "failed",
                "device": os.environ.get("CUDA_VISIBLE_DEVICES", ""),
                "error": f"could not write {out_path} or its scratch files: {type(err).__name__}: {err}"}


def _execute(chapter: str, out: str, failed: str, params: dict, stamp: dict) -> dict:
    import nbformat
    import papermill as pm

    out_path = Path(out)
    out_path.parent.mkdir(parents=True, exist_ok=True)
    SCRATCH_DIR.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f"{out_path.stem}.", suffix=".ipynb", dir=SCRATCH_DIR)
    os.close(fd)
    start = time.monotonic()
    record = {"out": out, "seconds": 0.0, "device": os.environ.get("CUDA_VISIBLE_DEVICES", "")}
    renderer = os.environ.get(BOOK_RUN_ENV)
    os.environ[BOOK_RUN_ENV] = "1"  # the kernel inherits it: charts render for the offline book
    try:
        for attempt in range(1, KERNEL_START_ATTEMPTS + 1):
            try:
                pm.execute_notebook(chapter, tmp, parameters=params, cwd=str(Path(chapter).parent),
                                    progress_bar=False, log_output=False)
                break
            except RuntimeError as err:  # the kernel never started: retry; a failing cell is not retried
                if KERNEL_DIED not in str(err) or attempt == KERNEL_START_ATTEMPTS:
                    raise
        nb = nbformat.read(tmp, as_version=4)
        nb.metadata["seqbook"] = {"params": params, **stamp}
        for cell in nb.cells:  # the book shows the injected values, not the defaults they replace
            if "parameters" in cell.metadata.get("tags", []):
                cell.metadata["tags"] = [*cell.metadata["tags"], "remove-cell"]
        nbformat.write(nb, tmp)
        os.chmod(tmp, 0o644)  # mkstemp creates 0600
        place(Path(tmp), out_path)
        record["status"] = "ok"
    except pm.PapermillExecutionError as err:
        Path(failed).parent.mkdir(parents=True, exist_ok=True)
        place(Path(tmp), Path(failed))
        record.update(status="failed", error=f"{err.ename}: {err.evalue} (cell {err.exec_count})", notebook=failed)
    except Exception as err:  # the kernel died, a timeout, a bad notebook: record it, the grid goes on
        record.update(status="failed", error=f"{type(err).__name__}: {err}")
    finally:
        Path(tmp).unlink(missing_ok=True)
        if renderer is None:
            os.environ.pop(BOOK_RUN_ENV, None)
        else:
            os.environ[BOOK_RUN_ENV] = renderer
    record["seconds"] = round(time.monotonic() - start, 1)
    return record


def same_file_system(a: Path, b: Path) -> bool:
    return os.stat(a).st_dev == os.stat(b).st_dev


def place(src: Path, dest: Path) -> None:
    """Move ``src`` to ``dest`` atomically: a rename on one file system; across file systems a copy
    beside ``dest`` first, then the rename (a reader sees the old file or the whole new one)."""
    if not same_file_system(src, dest.parent):
        near = dest.with_name(f".{dest.name}.partial")
        shutil.copyfile(src, near)
        src.unlink()
        src = near
    os.replace(src, dest)


def visible_gpus() -> list[str]:
    import torch

    if not torch.cuda.is_available():
        return []
    visible = os.environ.get("CUDA_VISIBLE_DEVICES")
    ids = [d.strip() for d in visible.split(",") if d.strip()] if visible else []
    return ids or [str(i) for i in range(torch.cuda.device_count())]


# the local cluster listens on this machine only, its dashboard too (on a free port)
SCHEDULER_OPTIONS = {"host": "127.0.0.1", "dashboard_address": "127.0.0.1:0"}


def local_cluster(n_workers: int, gpus: list[str]):
    """A Dask cluster on this machine: ``n_workers`` single-threaded workers, worker i pinned to GPU
    i mod #GPUs, each with an equal share of the cores (``SEQLIB_CORES``) for its intra-op threads and
    its batch-generating processes (:func:`seqlib.data.default_workers`), and of its GPU's memory
    (``SEQLIB_GPU_SHARE``: the workers on that GPU, :mod:`seqlib.measure`). The workers are not daemonic
    processes, so that a job can start those (a daemonic process may have no children)."""
    import dask
    from distributed import Nanny, Scheduler, SpecCluster

    from seqlib.data import CORES_ENV
    from seqlib.measure import SHARE_ENV

    dask.config.set({"distributed.worker.daemon": False})
    threads = str(max(1, (os.cpu_count() or 1) // n_workers))
    workers = {}
    for i in range(n_workers):
        gpu = {"CUDA_VISIBLE_DEVICES": gpus[i % len(gpus)],  # and the workers that share it (seqlib.measure)
               SHARE_ENV: str(len(range(i % len(gpus), n_workers, len(gpus))))} if gpus else {}
        env = {"OMP_NUM_THREADS": threads, CORES_ENV: threads, **gpu}
        workers[f"worker-{i}"] = {"cls": Nanny, "options": {"nthreads": 1, "env": env, "host": "127.0.0.1",
                                                           "memory_limit": 0}}  # no pausing/restarts by RSS
    scheduler = {"cls": Scheduler, "options": SCHEDULER_OPTIONS}
    return SpecCluster(workers=workers, scheduler=scheduler, silence_logs=40)


def dispatch(fn, jobs: list[tuple[str, dict]], client, deadline: float | None = None):
    """Yield ``(name, status record)`` of each ``(name, kwargs)`` job as it finishes: on the Dask
    client, at most one job per worker in flight (so jobs start in the order given), or here one by
    one. No job starts after the monotonic time ``deadline``; those not started are not yielded.

    A task's key names the job, a hash of its arguments and this call (a fresh uuid): Dask merges
    tasks of one key, so on a scheduler shared by several grids (or clients) keys made of the job's
    name alone handed one grid's results to another."""
    def is_open() -> bool:
        return deadline is None or time.monotonic() < deadline

    if client is None:
        for name, job in jobs:
            if not is_open():
                return
            yield name, fn(**job)
        return
    from distributed import as_completed

    todo, names, running = iter(jobs), {}, as_completed()
    invocation = uuid.uuid4().hex

    def key(name: str, kwargs: dict) -> str:
        digest = hashlib.sha256(json.dumps(kwargs, sort_keys=True, default=str).encode()).hexdigest()[:16]
        return f"{fn.__name__}-{name}-{digest}-{invocation}"

    def submit_next() -> bool:
        job = next(todo, None) if is_open() else None
        if job is None:
            return False
        future = client.submit(fn, **job[1], key=key(*job), pure=False)
        names[future.key] = job[0]
        running.add(future)
        return True

    for _ in range(max(1, len(client.scheduler_info()["workers"]))):
        if not submit_next():
            break
    for future in running:
        yield names.pop(future.key), future.result()
        submit_next()


class Stopped(BaseException):
    """The grid was sent SIGTERM (a round's ``timeout``): it stops training and records the round. Not an
    ``Exception``: no run records it as its failure, and a run's snapshot stays (:func:`seqlib.snapshot.until_ended`)."""


# the exit status of a grid stopped by SIGTERM, as `timeout` gives
STOPPED_EXIT = 124


def stop_training(signum, frame) -> None:
    """SIGTERM's handler while training: raise :class:`Stopped` once. `timeout` signals the grid and then
    its whole process group, the grid again among it: the signals after the first are ignored while
    the grid records the round and exits."""
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    raise Stopped


def save_round(training: list[tuple[str, dict]], wall_s: float, gpus: int, workers_per_gpu: int, stack_size: int,
               store: Path, stopped: bool = False) -> Path:
    """The round record of this call's training (:func:`seqlib.book.plan.round_summary`) under ``store``/bench;
    ``stopped``: a SIGTERM ended it with jobs under way, so its wall time is more than its finished jobs'."""
    import datetime as dt

    from seqlib.bench.record import save_record
    from seqlib.book.plan import ROUND_KIND, round_summary

    bench = store / "bench"
    summary = round_summary(stack_jobs(training, stack_size), wall_s, gpus, workers_per_gpu, store, bench, stopped)
    stamp = dt.datetime.now(dt.timezone.utc).strftime("%Y%m%dT%H%M%S")
    path = save_record(ROUND_KIND, {**summary, "stack_size": stack_size}, bench / f"{ROUND_KIND}-{stamp}.json")
    speed = summary["config_steps_per_gpu_s"]
    print(f"seqbook grid: this call's training took {summary['gpu_hours']:.3f} GPU hours, the plan's estimate of "
          f"its jobs {summary['estimated_gpu_hours']:.3f} ({summary['unestimated_jobs']} unestimated)"
          + (f"; its finished runs trained {speed:.0f} config-steps per GPU-second of their share" if speed else "")
          + f": {shown_path(path)}", flush=True)
    return path


def planned_runs(runs: list[Run]) -> dict[Path, list]:
    """The configurations each ``train: true`` chapter shows (:func:`seqlib.book.chapter.planned_configs`)."""
    from seqlib.book.configs import planned_configs

    return {run.out: planned_configs(run.trains, run.params["model"], run.params["profile"])
            for run in runs if run.trains}


def shown_configs(run: Run, plans: dict[Path, list], runs: list[Run] | None = None,
                  own: bool = False) -> list[tuple]:
    """``(cell, configuration)`` of every run a chapter run shows: its planned runs (``plans``, cell
    None), then, given the grid's ``runs``, those of the other pages of its chapter entry (a task
    page's findings set its model beside them, :mod:`seqlib.book.findings`), then the runs of its
    entry's cells (:class:`seqlib.book.cells.EntryCells`: every model's, since each of the entry's
    pages shows them all; with ``own`` only its planned runs and its model's cells, which the grid
    trains with that run, and those of the models it ``adopts``: the entry's cells-only models)."""
    cells = [r for r in (run.cells.runs if run.cells else [])
             if not own or r.config.model.name in (run.params["model"], *run.adopts)]
    siblings = [] if own or not run.trains else [
        cfg for other in runs or [] if other.out != run.out and other.trains
        and (other.chapter, other.params.get("task")) == (run.chapter, run.params.get("task"))
        for cfg in plans.get(other.out, [])]
    return ([(None, cfg) for cfg in plans.get(run.out, [])] + [(None, cfg) for cfg in siblings]
            + [(r.cell, r.config) for r in cells])


def absolute_store(cfg):
    """``cfg`` with ``run.results_dir`` made absolute (against this process's working directory), so
    that a worker with another working directory writes where this client reads. ``results_dir`` is
    not hashed (``seqlib.config.UNHASHED``): the config hash, hence the run id, stays the same."""
    run = cfg.run.model_copy(update={"results_dir": str(Path(cfg.run.results_dir).absolute())})
    return cfg.model_copy(update={"run": run})


def headline_tasks(runs: list[Run]) -> set[str]:
    """The registry tasks that a ``train: true`` chapter run trains over several seeds under its
    profile: the headline comparisons, trained first (:func:`next_round`); never those of an entry
    that trains last (``train_last``, :func:`last_tasks`)."""
    from seqlib.book.configs import load_tasks

    return {task for run in runs if run.trains and not run.train_last
            for task, cfg in load_tasks(run.trains, run.params["model"], run.params["profile"])[0].items()
            if len(cfg.optim.seeds) > 1}


def last_tasks(runs: list[Run]) -> set[str]:
    """The registry tasks of the entries that train after every other (``train_last: true``)."""
    return {task for run in runs if run.train_last for task in run.trains}


@dataclass(frozen=True)
class TrainOrder:
    """The order the grid trains in (grid.yaml ``train_order``): ``tiers`` of names, each a registry
    task (its runs) or ``<task>:<cell>`` (the runs of every combination of that cell's axes), one
    tier after another; then the runs of the tasks no tier names, then the cells no tier names; the
    tasks in ``last`` (:func:`last_tasks`) after all of those, their runs before their cells."""

    tiers: tuple[tuple[str, ...], ...]
    last: frozenset[str] = frozenset()

    def place(self, at: str) -> tuple[int, int]:
        """``(class, position in its tier)`` of the runs named ``<at>/<model>/...`` (``at``: a task, or
        ``<task>:<cell>-<label>-...``, :func:`planned_training`); a lower class trains first."""
        task, _, cell = at.partition(":")
        n = len(self.tiers)
        if task in self.last:
            return n + 2 + bool(cell), 0
        name = f"{task}:{cell.split('-')[0]}" if cell else task  # a cell's family: its name has no '-'
        for i, tier in enumerate(self.tiers):
            if name in tier:
                return i, tier.index(name)
        return n + bool(cell), 0


def default_order(runs: list[Run]) -> TrainOrder:
    """One tier, the tasks trained over several seeds (:func:`headline_tasks`) in grid order."""
    headline = headline_tasks(runs)
    return TrainOrder((tuple(dict.fromkeys(t for run in runs for t in run.trains if t in headline)),),
                      frozenset(last_tasks(runs)))


def load_order(grid: Path, runs: list[Run]) -> TrainOrder:
    """The grid file's ``train_order`` (:class:`TrainOrder`): a list of tiers, each a list of names;
    without one, :func:`default_order`. A name that no entry trains or declares as a cell, a name
    listed twice and a task of an entry that trains last are errors (``ValueError``), checked before
    any work."""
    spec = yaml.safe_load(grid.read_text()) or {}
    last = frozenset(last_tasks(runs))
    declared = spec.get("train_order")
    if declared is None:
        return default_order(runs)
    if not (isinstance(declared, list) and all(
            isinstance(tier, list) and tier and all(isinstance(n, str) for n in tier) for tier in declared)):
        raise ValueError(f"{grid}: train_order must be a list of tiers, each a non-empty list of task or "
                         f"<task>:<cell> names, got {declared!r}"[:400])
    known = set()
    for entry in (e for e in spec.get("runs", []) if e.get("train") and "task" in e):
        tasks = (entry.get("params") or {}).get("subtasks") or [entry["task"]]
        known |= {*tasks, *(f"{t}:{c}" for t in tasks for c in entry.get("cells") or {})}
    names = [n for tier in declared for n in tier]
    problems = ([f"{n!r} is no task a train: true entry trains, nor one of its cells" for n in names if n not in known]
                + [f"{n!r} is listed twice" for n in sorted({n for n in names if names.count(n) > 1})]
                + [f"{n!r} belongs to an entry that trains last (train_last)" for n in names if n.split(":")[0] in last])
    if problems:
        raise ValueError(f"{grid}: train_order: {'; '.join(problems)}"[:600])
    return TrainOrder(tuple(tuple(tier) for tier in declared), last)


def next_round(training: list[tuple[str, dict]], attempted: set[str], order: TrainOrder) -> list[tuple[str, dict]]:
    """The next round of training: of the planned runs not attempted yet (:func:`planned_training`
    names), those of the first class of ``order`` present. The grid plans again after each round, so
    a task's second stage of its rate sweep (planned from the first stage's records,
    :func:`seqlib.train.sweep_plan`) trains before any task of a later class."""
    def rank(name: str) -> int:
        return order.place(name.split("/")[0])[0]

    todo = [(name, job) for name, job in training if name not in attempted]
    first = min((rank(name) for name, _ in todo), default=None)
    return [(name, job) for name, job in todo if rank(name) == first]


def pending_second_stages(runs: list[Run]) -> list[tuple[str, dict]]:
    """For the plan's estimate only: the runs of the second stages whose rate is not chosen yet, at the
    sweep's first rate in its place (their cost does not depend on it), named ``.../lr=chosen/seed=..``."""
    from seqlib.book.configs import load_tasks
    from seqlib.book.report import second_stage_rate
    from seqlib.train import second_stage_seeds

    out = []
    for run in (r for r in runs if r.trains):
        for cfg in load_tasks(run.trains, run.params["model"], run.params["profile"])[0].values():
            seeds = second_stage_seeds(cfg)
            if seeds and second_stage_rate(cfg) is None:
                out += [(f"{cfg.task.name}/{cfg.model.name}/lr=chosen/seed={seed}",
                         {"config": absolute_store(cfg.for_run(cfg.optim.lrs[0], seed)).model_dump(mode="json")})
                        for seed in seeds]
    return out


def out_of_share(record, share: int | None) -> bool:
    """Whether the stored ``record`` ran out of GPU memory within a share of the GPU (1 / its
    ``measure.device_processes``) no larger than this grid's (1 / ``share``, its workers per GPU):
    training it again here would end the same way."""
    procs = (record.measure or {}).get("device_processes")
    return (share is not None and record.status == "failed" and "OutOfMemoryError" in (record.reason or "")
            and bool(procs) and share >= procs)


def crashed(record) -> bool:
    """Whether the stored ``record`` failed with a sticky CUDA error that left its process's CUDA
    context unusable (:mod:`seqlib.cuda_context`): trained again it would likely crash again (fla's
    kernels on the H200, 2026-12-03: every PaTH and RetNet parity run of a round), at the cost of a
    worker restart."""
    from seqlib.cuda_context import LOST_NOTE

    return record.status == "failed" and LOST_NOTE in (record.reason or "")


def skipped_here(record, here) -> bool:
    """Whether the stored ``record`` was skipped (its model cannot train there) on a GPU of the name and
    with the versions of ``here`` (:func:`seqlib.provenance.this_process`): trained again here it would be
    skipped again (Gated DeltaNet on the H200 with Triton 3.6: seqlib.models.zoo); another GPU or
    another version of torch, Triton or fla tries it again."""
    return (record.status == "skipped" and record.provenance.device == here.device == "cuda"
            and record.provenance.device_name == here.device_name and record.provenance.versions == here.versions)


def planned_training(runs: list[Run], plans: dict[Path, list], problems: list[str] | None = None,
                     share: int | None = None, held: list[str] | None = None,
                     crashes: list[str] | None = None, order: TrainOrder | None = None,
                     skipped: list[str] | None = None) -> list[tuple[str, dict]]:
    """``(name, train kwargs)`` for every planned run, and every run of the runs' cells of each run's
    model (:func:`shown_configs`: a run left out leaves out its cells), without a finished record
    (each once, however many chapters show it). Order: the classes of ``order`` (:class:`TrainOrder`;
    default :func:`default_order`: the tasks swept over several seeds, the rest, the cells), and within a class seed by seed (every first seed before any second seed), then the
    tier's order (else grid order: chapters, then their tasks, then their cells as declared), each for
    every lr and model. So a grid stopped by a deadline has the first seed of the first tier's tasks,
    for every model, first. A cell's runs are named ``<task>:<cell>/<model>/lr=../seed=..``.
    Each job's configuration has an absolute ``run.results_dir`` (:func:`absolute_store`). A corrupt
    stored record counts as not finished: it is reported (stderr and ``problems``) and trained again.
    With ``share`` (workers per GPU), a run whose record ran out of memory within no more of the GPU
    (:func:`out_of_share`) is left out, its name in ``held``; with ``crashes`` (a list), a run whose
    record :func:`crashed` is left out, its name in ``crashes``; with ``skipped`` (a list), a run whose
    record was skipped on this GPU and software (:func:`skipped_here`) is left out, its name in ``skipped``."""
    from seqlib.provenance import this_process
    from seqlib.results import ResultsError
    from seqlib.train import stored_record

    here = this_process() if skipped is not None else None

    keyed, seen = [], set()
    chapters = list(dict.fromkeys(run.params["task"] for run in runs if run.out in plans))
    order = order or default_order(runs)
    shown = [(run, item) for run in runs for item in shown_configs(run, plans, own=True)]
    # the runs of the plans first: a cell run that is also a planned run (its hash) is trained as that one
    for run, (cell, cfg) in sorted(shown, key=lambda pair: pair[1][0] is not None):
        digest = cfg.hash()
        if digest in seen:
            continue
        seen.add(digest)
        try:
            old = stored_record(cfg)
        except ResultsError as err:
            message = f"{err}; training it again"
            print(f"warning: {message}", file=sys.stderr, flush=True)
            if problems is not None:
                problems.append(message)
            old = None
        if old is not None and old.status == "ok":
            continue
        at = cfg.task.name if cell is None else f"{cfg.task.name}:{cell.name}"
        name = f"{at}/{cfg.model.name}/lr={cfg.optim.lr:g}/seed={cfg.optim.seeds[0]}"
        if old is not None and out_of_share(old, share):
            if held is not None:
                held.append(name)
            continue
        if old is not None and crashes is not None and crashed(old):
            crashes.append(name)
            continue
        if old is not None and skipped is not None and skipped_here(old, here):
            skipped.append(name)
            continue
        chapter = chapters.index(run.params["task"])
        within = run.trains.index(cfg.task.name) if cell is None else len(run.trains) + run.cells.cells.index(cell)
        rank, position = order.place(at)
        key = (rank, cfg.optim.seeds[0], position, chapter, within, cfg.optim.lr)
        keyed.append((key, name, {"config": absolute_store(cfg).model_dump(mode="json")}))
    keyed.sort(key=lambda item: item[0])  # stable: the models keep their grid order
    return [(name, job) for _, name, job in keyed]


def arguments() -> argparse.ArgumentParser:
    """The grid's command line (``python -m seqlib.book.grid --help``)."""
    parser = argparse.ArgumentParser(prog="python -m seqlib.book.grid", description=__doc__.split("\n")[0])
    parser.add_argument("--grid", type=Path, default=GRID)
    parser.add_argument("--chapters", type=Path, default=REPO / "chapters")
    parser.add_argument("--out", type=Path, help="where the pages go (default: book/runs for the grid's "
                        "pages_profile, _build/pages/<profile> for any other; seqlib.book.pages)")
    parser.add_argument("--failed", type=Path, default=FAILED_DIR, help="where failed notebooks are kept")
    parser.add_argument("--results", type=Path, default=REPO / "results",
                        help="the results store that reads_results chapters summarise")
    parser.add_argument("--profile", default=os.environ.get("PROFILE") or None,
                        help="full | smoke | tiny (default: full with CUDA, smoke without; env PROFILE)")
    parser.add_argument("--force", action="store_true", default=os.environ.get("FORCE", "") not in ("", "0"),
                        help="re-execute up-to-date chapters too (env FORCE=1); finished training runs are kept")
    parser.add_argument("--workers", type=int, help="run on a local Dask cluster of this many workers")
    parser.add_argument("--workers-per-gpu", type=int, default=int(os.environ.get("WORKERS_PER_GPU") or 1),
                        help="local Dask workers sharing each GPU (env WORKERS_PER_GPU; default 1)")
    parser.add_argument("--deadline", type=float, default=float(os.environ["DEADLINE"]) if os.environ.get("DEADLINE") else None,
                        help="start no training run after this many seconds (env DEADLINE; 0: none at all); the "
                             "chapters then show what is stored, and a later call goes on")
    parser.add_argument("--plan", action="store_true",
                        help="print the training jobs per task with their estimated GPU hours, then stop (make run-all PLAN=1)")
    parser.add_argument("--train-only", action="store_true",
                        help="train the planned runs and stop, executing no chapter (e.g. before a later call)")
    parser.add_argument("--stack-size", type=int, default=int(os.environ.get("STACK_SIZE") or 0) or None,
                        help=f"training runs per stacked job (seqlib.stack; env STACK_SIZE; default {STACK_MAX} "
                             "with a GPU, 1 = run by run without)")
    parser.add_argument("--compile-stacks", action="store_true",
                        default=os.environ.get("STACK_COMPILE", "") not in ("", "0"),
                        help="run each vmapped stack's forward through torch.compile (env STACK_COMPILE=1; "
                             "seqlib.stack; the sweep's --compile measures whether it pays)")
    parser.add_argument("--retry-crashed", action="store_true",
                        default=os.environ.get("RETRY_CRASHED", "") not in ("", "0"),
                        help="train again the runs whose records failed with a CUDA error that left their "
                             "process's context unusable (env RETRY_CRASHED=1; held back by default)")
    parser.add_argument("--only", nargs="+", metavar="CHAPTER",
                        help="only the runs of these chapters' entries (e.g. --only chomsky: a round of the "
                             "state-tracking tasks); the training order is the grid's")
    parser.add_argument("--scheduler", default=os.environ.get("DASK_SCHEDULER_ADDRESS"),
                        help="address of an existing Dask scheduler (env DASK_SCHEDULER_ADDRESS)")
    return parser


def check_arguments(parser: argparse.ArgumentParser, args: argparse.Namespace) -> None:
    """Bad numbers and a missing, unreadable or malformed grid file end in a usage error (exit 2),
    before any work; ``args.grid`` becomes absolute (relative to where the grid was called from)."""
    if args.workers_per_gpu < 1:
        parser.error(f"--workers-per-gpu must be >= 1, got {args.workers_per_gpu}")
    if args.workers is not None and args.workers < 0:
        parser.error(f"--workers must be >= 1 (or 0: sequential, in this process), got {args.workers}")
    if args.stack_size is not None and args.stack_size < 1:
        parser.error(f"--stack-size must be >= 1, got {args.stack_size}")
    if args.deadline is not None and args.deadline < 0:
        parser.error(f"--deadline must be a number of seconds >= 0, got {args.deadline:g}")
    args.grid = args.grid.absolute()
    try:
        grid_spec = yaml.safe_load(args.grid.read_bytes().decode("utf-8"))
    except FileNotFoundError:
        parser.error(f"--grid: the grid file {args.grid} does not exist")
    except OSError as e:
        parser.error(f"--grid: cannot read {args.grid}: {e.strerror or e}")
    except UnicodeDecodeError as e:
        parser.error(f"--grid: {args.grid} is not a UTF-8 text file ({e.reason} at byte {e.start})")
    except yaml.YAMLError as e:
        parser.error(f"--grid: {args.grid} is not valid YAML: {' '.join(str(e).split())[:300]}")
    grid_runs = grid_spec.get("runs", []) if isinstance(grid_spec, dict) else None
    if grid_spec is not None and not (isinstance(grid_runs, list) and all(
            isinstance(e, dict) and isinstance(e.get("chapter"), str) for e in grid_runs)):
        parser.error(f"--grid: {args.grid} must be a mapping with a `runs:` list of entries, each with a chapter")


def summarize(training: list, trained: list[dict], failed_training: list[tuple[str, dict]], results: list[dict],
              names: dict, skipped: int, problems: list[str], seconds: float) -> int:
    """Print the grid's summary (training, executions, store problems) -> the exit status: 1 if a
    chapter failed or a training run left no record (nothing on disk would say why), else 0."""
    if training:
        bad = sum(r["status"] != "ok" for r in trained)
        left = len(training) - len(trained)
        lost = sum(bool(r.get("unrecorded")) for r in trained)
        print(f"seqbook grid: training {len(trained) - bad} ok, {bad} failed (recorded; the chapters show them"
              + (f"; {lost} of them could not be recorded, listed below" if lost else "") + ")"
              + (f", {left} not started before the deadline: run the grid again to go on" if left else ""))
        for name, r in failed_training:
            print(f"  FAILED training {name}: {r.get('error', '')[:500]}")
    failures = [r for r in results if r["status"] != "ok"]
    print(f"seqbook grid: {len(results) - len(failures)} ran, {skipped} up to date, {len(failures)} failed "
          f"({seconds:.0f} s)")
    for r in failures:
        print(f"  FAILED {names[r['out']]}: {r['error']}" + (f" (notebook: {r['notebook']})" if "notebook" in r else ""))
    if problems:
        print(f"seqbook grid: {len(problems)} store problem(s) met (the runs concerned were done again):")
        for problem in problems:
            print(f"  {problem}")
    unrecorded = [name for name, r in failed_training if r.get("unrecorded")]  # no record says why: fail
    return 1 if failures or unrecorded else 0


def main(argv: list[str] | None = None) -> int:
    parser = arguments()
    args = parser.parse_args(argv)
    start = time.monotonic()
    check_arguments(parser, args)
    os.chdir(REPO)  # the params files and the results store of the configurations are relative to it

    gpus = visible_gpus()
    profile = args.profile or ("full" if gpus else "smoke")
    from seqlib.config import ConfigError, check_params_files, default_params_dir, known_profiles

    try:  # every params file and profile is checked before any work, not just the selected profile
        check_params_files(default_params_dir())
        profiles = known_profiles(default_params_dir())
        default_out = pages_dir(profile, args.grid) if args.out is None else None
        args.out = (args.out or default_out).absolute()
        site_profile(args.out, profile, strict=False)  # never over another profile's pages
        runs = load_grid(args.grid, args.chapters, args.out, profile)
        order = load_order(args.grid, runs)
        if args.only:
            unknown = sorted(set(args.only) - {run.chapter.stem for run in runs})
            if unknown:
                raise ValueError(f"--only: {unknown} are no chapters of {args.grid}")
            runs = [run for run in runs if run.chapter.stem in args.only]
    except (ConfigError, ValueError, FileNotFoundError, PagesError) as e:
        parser.error(str(e))
    if profile not in profiles:
        parser.error(f"--profile: unknown profile {profile!r}; the params files in {default_params_dir()} "
                     f"define {', '.join(sorted(profiles))}")
    if not args.plan:  # a plan estimates the GPU's work wherever it is made; a run skips what cannot run here
        runs = runnable(runs)
    phases = [[r for r in runs if not r.reads_results], [r for r in runs if r.reads_results]]
    per_gpu = len(gpus) * args.workers_per_gpu
    n_workers = args.workers if args.workers is not None else (per_gpu if per_gpu > 1 else 0)
    where = (f"Dask scheduler {args.scheduler}" if args.scheduler
             else f"local Dask cluster, {n_workers} workers" if n_workers else "sequential, in this process")
    plans = planned_runs(runs)
    problems: list[str] = []  # store faults met on the way (corrupt records or notebooks): the summary lists them
    # a run that ran out of memory within as small a share of a GPU waits for a grid with fewer workers per GPU
    share, held = (None if args.plan or not gpus else args.workers_per_gpu), []
    # a run whose sticky CUDA error ended its process waits for --retry-crashed (a GPU grid only)
    crashes = None if share is None or args.retry_crashed else []
    # a run skipped on this GPU and software (its model cannot train here) is not tried again (a GPU grid only)
    unavailable = None if share is None else []
    try:  # resolves the cells' configurations: a setting they refuse stops the grid before any work
        training = planned_training(runs, plans, problems, share, held, crashes, order, unavailable)
    except ConfigError as e:
        parser.error(str(e))
    # a plan estimates GPU hours, so it plans the GPU's stacks wherever it runs
    stack_size = args.stack_size or (STACK_MAX if gpus or args.plan else 1)
    jobs = stack_jobs(training, stack_size)
    print(f"seqbook grid: profile {profile} ({len(gpus)} GPU(s) visible; override with PROFILE=), "
          f"{len(runs)} runs, {len(phases[1])} of them after the rest ({where}); "
          f"{len(training)} training runs to do first, in {len(jobs)} job(s) of up to {stack_size} "
          f"(STACK_SIZE=); pages go to {shown_path(args.out)}", flush=True)
    if held:
        print(f"{len(held)} run(s) held back: they ran out of GPU memory within a share no larger than this grid's "
              f"1/{share} (--workers-per-gpu {share}); fewer workers per GPU give them more: "
              f"{', '.join(held[:5])}{', ...' if len(held) > 5 else ''}", flush=True)
    if crashes:
        print(f"{len(crashes)} run(s) held back: their records failed with a CUDA error that left the process's "
              f"context unusable (seqlib.cuda_context); --retry-crashed (RETRY_CRASHED=1) trains them again: "
              f"{', '.join(crashes[:5])}{', ...' if len(crashes) > 5 else ''}", flush=True)
    if unavailable:
        print(f"{len(unavailable)} run(s) not tried again: their records were skipped on this GPU with these versions "
              f"(their model cannot train here): {', '.join(unavailable[:5])}{', ...' if len(unavailable) > 5 else ''}",
              flush=True)
    if args.plan:  # the plan and its estimate, before (instead of) any work
        from seqlib.book.plan import plan_lines

        pending = pending_second_stages(runs)
        if pending:
            print(f"and {len(pending)} runs of second stages of rate sweeps, whose rate is chosen on their first "
                  "stage once it is stored: counted below at the first rate of their sweep")
        print("\n".join(plan_lines(stack_jobs(training + pending, stack_size), args.results, args.results / "bench")))
        return 0
    from seqlib.config import ExperimentConfig
    from seqlib.train import record_file

    expected: dict[str, str] = {}  # name -> its record file, for the runs dispatched so far
    writes = sorted({Path(job["config"]["run"]["results_dir"]) for _, job in training}
                    | ({args.out.absolute()} if runs and not args.train_only else set()))
    try:
        for folder in writes:  # before any work: a store that cannot be written stops the grid here
            check_writable(folder)
    except StoreError as err:
        print(f"seqbook grid: {err}; nothing was run", file=sys.stderr, flush=True)
        return 2
    results, names, skipped, trained = [], {}, 0, []
    failed_training: list[tuple[str, dict]] = []
    client = cluster = None
    if args.scheduler or n_workers:
        from distributed import Client

        cluster = None if args.scheduler else local_cluster(n_workers, gpus)
        client = Client(args.scheduler or cluster)
    try:
        deadline = start + args.deadline if args.deadline is not None else None
        attempted: set[str] = set()
        train_start, ran, stopped = time.monotonic(), set(), False
        previous = signal.signal(signal.SIGTERM, stop_training)  # what `timeout` (ROUND_TIMEOUT) sends
        try:
            while True:  # rounds (:func:`next_round`): a round's records may plan the next (a second stage)
                todo = next_round(training, attempted, order)
                if not todo or (deadline is not None and time.monotonic() >= deadline):
                    break
                attempted |= {name for name, _ in todo}
                expected |= {name: str(record_file(ExperimentConfig.model_validate(job["config"]))) for name, job in todo}
                jobs = [(label, {**job, "compiled": args.compile_stacks}) for label, job in stack_jobs(todo, stack_size)]
                for name, record in ((n, r) for _, results in dispatch(train_stack, jobs, client, deadline) for n, r in results):
                    record = check_trained(record, expected[name])
                    trained.append(record)
                    ran.add(name)
                    if record["status"] != "ok":
                        failed_training.append((name, record))
                    failed = sum(r["status"] != "ok" for r in trained)
                    line = f"  {name}: {record['status']} in {record['seconds']} s"
                    if record["status"] != "ok":
                        line += f" -- {record['error'][:300]}"
                    print(f"[train: {len(trained) - failed} done, {failed} failed, {len(expected) - len(trained)} "
                          f"remaining, {time.monotonic() - start:.0f} s]{line}", flush=True)
                plans = planned_runs(runs)
                known = {name for name, _ in training}
                later = planned_training(runs, plans, problems, share, None, None if crashes is None else [], order,
                                         None if unavailable is None else [])
                training += [(n, j) for n, j in later if n not in known]  # held runs stay held
        except Stopped:
            stopped = True
            print("seqbook grid: stopped by SIGTERM; a run or stack under way goes on from its snapshot next time",
                  flush=True)
        finally:  # once stopped, further SIGTERMs stay ignored while the round is recorded
            if not stopped:
                signal.signal(signal.SIGTERM, previous)
        if gpus and ran:  # what this call measured beside the plan's estimate (seqlib.book.plan)
            save_round([(n, j) for n, j in training if n in ran], time.monotonic() - train_start, len(gpus),
                       n_workers // len(gpus) if n_workers else 1, stack_size, args.results, stopped)
        for phase in [] if args.train_only or stopped else phases:  # the store is read once the runs that write it are done
            todo = []
            for run in phase:
                code = run_code_hash(run, args.results, [cfg for _, cfg in shown_configs(run, plans, runs)])
                if args.force or not is_done(run, code, problems):
                    todo.append((run, code))
            skipped += len(phase) - len(todo)
            if phase:
                label = "summaries of the results store" if phase[0].reads_results else "runs"
                print(f"  {label}: {len(phase) - len(todo)} up to date, {len(todo)} to run", flush=True)
            jobs = [(run.out.relative_to(args.out).with_suffix("").as_posix(),
                     dict(chapter=str(run.chapter), out=str(run.out), params=run.params,
                          stamp={"params_hash": run.params_hash, "code_hash": code},
                          failed=str(args.failed / run.out.relative_to(args.out))))
                    for run, code in todo]
            for name, record in dispatch(execute, jobs, client):
                names[record["out"]] = name
                results.append(record)
                failed = sum(r["status"] != "ok" for r in results)
                line = f"  {name}: {record['status']} in {record['seconds']} s"
                if record["status"] != "ok":
                    line += f" -- {record['error']}"
                remaining = sum(len(p) for p in phases) - skipped - len(results)
                print(f"[{len(results) - failed} done, {failed} failed, {remaining} remaining]{line}", flush=True)
    finally:
        if client is not None:
            client.close()
        if cluster is not None:
            cluster.close()

    status = summarize(training, trained, failed_training, results, names, skipped, problems,
                       time.monotonic() - start)
    if runs and not args.train_only:
        hint = "" if default_out is None else "; `make book` builds them" if args.out == REPO / COMMITTED \
            else f"; `BOOK_PROFILE={profile} make book` builds them"
        print(f"seqbook grid: the {profile} pages are in {shown_path(args.out)}{hint}")
    return STOPPED_EXIT if stopped else status


def shown_path(path: Path) -> str:
    """``path`` relative to the repository when it lies inside it."""
    return path.relative_to(REPO).as_posix() if path.is_relative_to(REPO) else str(path)

if __name__ == "__main__":
    sys.exit(main())
