"""The book's run grid: execute every (chapter, model) pair with papermill (``make run-all``).

``params/grid.yaml`` lists the runs. A concept chapter runs once, into ``book/runs/<chapter>.ipynb``;
a task chapter runs once per model, into ``book/runs/<task>/<model>.ipynb``, with the papermill
parameters ``task`` and ``model`` set. Every run also gets ``profile`` and ``seed``.

* Profile: ``full`` when CUDA is available, ``smoke`` otherwise; ``--profile``/``PROFILE=`` overrides.
* Resumable: an executed notebook records its parameters hash and code hash (the chapter and every
  ``seqlib/**/*.py``) in its metadata; a run whose stored notebook has the same two is skipped
  unless ``--force``/``FORCE=1``.
* Chapters that summarise the results store (``reads_results: true`` in the grid, e.g. Results and
  Length generalization) run after every other run has finished, and their code hash also covers
  the store's records, so they re-run whenever a run adds or changes a record.
* A run executes into a temporary file that replaces the stored notebook only when it succeeds. A
  failed run keeps the stored one; its notebook, with papermill's error banner, goes to
  ``_build/grid/failed/`` and the summary lists it; the exit status is 1 if any run failed.
* Where the runs go:
  - one GPU or none: one after the other in this process;
  - several visible GPUs: a local Dask cluster with one single-threaded worker per GPU, each
    worker's ``CUDA_VISIBLE_DEVICES`` pinned to its GPU (the rest of the environment, e.g.
    ``NCCL_*``, is inherited);
  - ``--workers N`` forces a local cluster of N workers (GPUs assigned round-robin; none on a CPU);
  - ``--scheduler ADDRESS`` or ``DASK_SCHEDULER_ADDRESS``: an existing cluster. Start its workers
    with one GPU and one thread each, for example with dask-jobqueue on Slurm::

        from dask_jobqueue import SLURMCluster
        cluster = SLURMCluster(cores=8, processes=1, memory="64GB", walltime="04:00:00",
                               job_extra_directives=["--gres=gpu:1"],
                               worker_extra_args=["--nthreads", "1"],
                               python="/path/to/seqbook/.venv/bin/python")
        cluster.scale(jobs=4)
        print(cluster.scheduler_address)   # -> python -m seqlib.grid --scheduler tcp://...

    (``PBSCluster`` takes the same arguments with ``resource_spec="select=1:ngpus=1"``). The
    workers must see the same checkout (a shared filesystem) and its venv.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

import yaml

from seqlib.plots import BOOK_RUN_ENV
from seqlib.provenance import REPO, code_hash

FAILED_DIR = REPO / "_build" / "grid" / "failed"


@dataclass
class Run:
    chapter: Path  # the chapter notebook papermill executes
    out: Path  # the executed notebook
    params: dict = field(default_factory=dict)
    reads_results: bool = False  # summarises the results store: runs last, re-runs when it changes

    @property
    def params_hash(self) -> str:
        return hashlib.sha256(json.dumps(self.params, sort_keys=True).encode()).hexdigest()[:16]


def load_grid(grid: Path, chapters: Path, out: Path, profile: str) -> list[Run]:
    """The runs of a grid file: ``runs: [{chapter, task?, models?, params?}]``."""
    spec = yaml.safe_load(grid.read_text()) or {}
    runs = []
    for entry in spec.get("runs", []):
        chapter = chapters / f"{entry['chapter']}.ipynb"
        if not chapter.exists():
            raise FileNotFoundError(f"{grid}: chapter {entry['chapter']!r} has no notebook {chapter}")
        base = {"profile": profile, "seed": 0, **entry.get("params", {})}
        if "task" in entry:
            if not entry.get("models"):
                raise ValueError(f"{grid}: task chapter {entry['chapter']!r} lists no models")
            runs += [Run(chapter, out / entry["task"] / f"{model}.ipynb",
                         {**base, "task": entry["task"], "model": model}) for model in entry["models"]]
        else:
            runs.append(Run(chapter, out / f"{entry['chapter']}.ipynb", base, bool(entry.get("reads_results"))))
    return runs


def results_digest(store: Path) -> str:
    """A hash of every run record in the results store (``<task>/<model>/*.json``)."""
    h = hashlib.sha256()
    for path in sorted(store.glob("*/*/*.json")):
        h.update(path.relative_to(store).as_posix().encode())
        h.update(hashlib.sha256(path.read_bytes()).digest())
    return h.hexdigest()[:16]


def run_code_hash(run: Run, store: Path) -> str:
    code = code_hash(run.chapter)
    return f"{code}+results:{results_digest(store)}" if run.reads_results else code


def is_done(run: Run, code: str) -> bool:
    """The stored notebook came from the same parameters and code."""
    if not run.out.exists():
        return False
    meta = json.loads(run.out.read_text()).get("metadata", {}).get("seqbook", {})
    return meta.get("params_hash") == run.params_hash and meta.get("code_hash") == code


def execute(chapter: str, out: str, failed: str, params: dict, stamp: dict) -> dict:
    """Run one notebook with papermill (in this process or on a Dask worker) -> a status record.

    ``stamp`` (parameters and code hashes) goes into the executed notebook's ``metadata.seqbook``.
    """
    import nbformat
    import papermill as pm

    out_path = Path(out)
    out_path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{out_path.stem}.", suffix=".ipynb", dir=out_path.parent)
    os.close(fd)
    start = time.monotonic()
    record = {"out": out, "seconds": 0.0, "device": os.environ.get("CUDA_VISIBLE_DEVICES", "")}
    os.environ[BOOK_RUN_ENV] = "1"  # the kernel inherits it: charts render for the offline book
    try:
        pm.execute_notebook(chapter, tmp, parameters=params, cwd=str(Path(chapter).parent),
                            progress_bar=False, log_output=False)
        nb = nbformat.read(tmp, as_version=4)
        nb.metadata["seqbook"] = {"params": params, **stamp}
        for cell in nb.cells:  # the book shows the injected values, not the defaults they replace
            if "parameters" in cell.metadata.get("tags", []):
                cell.metadata["tags"] = [*cell.metadata["tags"], "remove-cell"]
        nbformat.write(nb, tmp)
        os.chmod(tmp, 0o644)  # mkstemp creates 0600
        os.replace(tmp, out)
        record["status"] = "ok"
    except pm.PapermillExecutionError as err:
        Path(failed).parent.mkdir(parents=True, exist_ok=True)
        os.replace(tmp, failed)
        record.update(status="failed", error=f"{err.ename}: {err.evalue} (cell {err.exec_count})", notebook=failed)
    except Exception as err:  # the kernel died, a timeout, a bad notebook: record it, the grid goes on
        record.update(status="failed", error=f"{type(err).__name__}: {err}")
    finally:
        Path(tmp).unlink(missing_ok=True)
    record["seconds"] = round(time.monotonic() - start, 1)
    return record


def visible_gpus() -> list[str]:
    import torch

    if not torch.cuda.is_available():
        return []
    visible = os.environ.get("CUDA_VISIBLE_DEVICES")
    ids = [d.strip() for d in visible.split(",") if d.strip()] if visible else []
    return ids or [str(i) for i in range(torch.cuda.device_count())]


def local_cluster(n_workers: int, gpus: list[str]):
    """A Dask cluster on this machine: ``n_workers`` single-threaded workers, worker i pinned to GPU i."""
    from distributed import Nanny, Scheduler, SpecCluster

    workers = {}
    for i in range(n_workers):
        env = {"CUDA_VISIBLE_DEVICES": gpus[i % len(gpus)]} if gpus else {}
        workers[f"worker-{i}"] = {"cls": Nanny, "options": {"nthreads": 1, "env": env, "host": "127.0.0.1"}}
    scheduler = {"cls": Scheduler, "options": {"host": "127.0.0.1", "dashboard_address": ":0"}}
    return SpecCluster(workers=workers, scheduler=scheduler, silence_logs=40)


def dispatch(jobs: list[dict], client, names: dict[str, str]):
    """Yield each job's status record as it finishes: on the Dask client, or here one by one."""
    if client is None:
        for job in jobs:
            yield execute(**job)
        return
    from distributed import as_completed

    futures = [client.submit(execute, **job, key=f"run-{names[job['out']]}", pure=False) for job in jobs]
    for future in as_completed(futures):
        yield future.result()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m seqlib.grid", description=__doc__.split("\n")[0])
    parser.add_argument("--grid", type=Path, default=REPO / "params" / "grid.yaml")
    parser.add_argument("--chapters", type=Path, default=REPO / "chapters")
    parser.add_argument("--out", type=Path, default=REPO / "book" / "runs")
    parser.add_argument("--failed", type=Path, default=FAILED_DIR, help="where failed notebooks are kept")
    parser.add_argument("--results", type=Path, default=REPO / "results",
                        help="the results store that reads_results chapters summarise")
    parser.add_argument("--profile", default=os.environ.get("PROFILE") or None,
                        help="full | smoke | tiny (default: full with CUDA, smoke without; env PROFILE)")
    parser.add_argument("--force", action="store_true", default=os.environ.get("FORCE", "") not in ("", "0"),
                        help="re-run finished runs too (env FORCE=1)")
    parser.add_argument("--workers", type=int, help="run on a local Dask cluster of this many workers")
    parser.add_argument("--scheduler", default=os.environ.get("DASK_SCHEDULER_ADDRESS"),
                        help="address of an existing Dask scheduler (env DASK_SCHEDULER_ADDRESS)")
    args = parser.parse_args(argv)

    gpus = visible_gpus()
    profile = args.profile or ("full" if gpus else "smoke")
    runs = load_grid(args.grid, args.chapters, args.out, profile)
    phases = [[r for r in runs if not r.reads_results], [r for r in runs if r.reads_results]]
    n_workers = args.workers if args.workers is not None else (len(gpus) if len(gpus) > 1 else 0)
    where = (f"Dask scheduler {args.scheduler}" if args.scheduler
             else f"local Dask cluster, {n_workers} workers" if n_workers else "sequential, in this process")
    print(f"seqbook grid: profile {profile} ({len(gpus)} GPU(s) visible; override with PROFILE=), "
          f"{len(runs)} runs, {len(phases[1])} of them after the rest ({where})", flush=True)
    results, names, skipped = [], {}, 0
    client = cluster = None
    if args.scheduler or n_workers:
        from distributed import Client

        cluster = None if args.scheduler else local_cluster(n_workers, gpus)
        client = Client(args.scheduler or cluster)
    try:
        for phase in phases:  # the store is read only once the runs that write it are done
            todo = []
            for run in phase:
                code = run_code_hash(run, args.results)
                if args.force or not is_done(run, code):
                    todo.append((run, code))
            skipped += len(phase) - len(todo)
            if phase:
                label = "summaries of the results store" if phase[0].reads_results else "runs"
                print(f"  {label}: {len(phase) - len(todo)} up to date, {len(todo)} to run", flush=True)
            jobs = [dict(chapter=str(run.chapter), out=str(run.out), params=run.params,
                         stamp={"params_hash": run.params_hash, "code_hash": code},
                         failed=str(args.failed / run.out.relative_to(args.out))) for run, code in todo]
            names |= {str(run.out): run.out.relative_to(args.out).with_suffix("").as_posix() for run, _ in todo}
            for record in dispatch(jobs, client, names):
                results.append(record)
                failed = sum(r["status"] != "ok" for r in results)
                line = f"  {names[record['out']]}: {record['status']} in {record['seconds']} s"
                if record["status"] != "ok":
                    line += f" -- {record['error']}"
                remaining = sum(len(p) for p in phases) - skipped - len(results)
                print(f"[{len(results) - failed} done, {failed} failed, {remaining} remaining]{line}", flush=True)
    finally:
        if client is not None:
            client.close()
        if cluster is not None:
            cluster.close()

    failures = [r for r in results if r["status"] != "ok"]
    print(f"seqbook grid: {len(results) - len(failures)} ran, {skipped} up to date, {len(failures)} failed")
    for r in failures:
        print(f"  FAILED {names[r['out']]}: {r['error']}" + (f" (notebook: {r['notebook']})" if "notebook" in r else ""))
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
