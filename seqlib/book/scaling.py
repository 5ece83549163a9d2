"""The grid's speed-up on several devices against one, in one call (issue 21):
``python -m seqlib.book.scaling --profile book --only chomsky --devices 1 4 --workers-per-gpu 8 --deadline 180``.

Each pass trains the same slice of the profile's plan (the training runs of the ``--only`` chapters,
in the grid's order) from an empty store, through ``python -m seqlib.book.grid --train-only``, in a
scratch copy of the project (its ``seqlib``, ``params`` and ``chapters``, the grid file, the store's
benchmark records for the plan, never its run records): the real store is not touched and no pass sees
another's records. With GPUs a pass of n devices sees the first n (``CUDA_VISIBLE_DEVICES``), with
``--workers-per-gpu`` workers each; without, n local Dask workers on the CPU (one pass of 1 runs in the
grid's own process, as a plain ``make run-all`` does).

Per pass: its wall time; the runs it planned, recorded ``ok`` or failed, and left unstarted at its
deadline; runs it reported as ended, runs it reported twice (**duplicated**) and runs it started but left without a record
(**lost**); config-steps (the records' steps done) and config-steps per second; with GPUs, each GPU's
busy seconds (``nvidia-smi``'s utilisation, sampled every 0.5 s, times the interval). The speed-up is
a pass's config-steps per second over the first pass's, a rate rather than a completion time, so a pass
its deadline stopped still counts. The record is ``results/bench/grid-scaling-<UTC>.json``
(:func:`seqlib.bench.record.save_record`: device, commit, versions).
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter
from pathlib import Path

from seqlib.book.grid import GRID, visible_gpus
from seqlib.provenance import REPO

KIND = "grid-scaling"
COPIED = ("seqlib", "params", "chapters")  # what the grid needs to plan and train (the pages are not executed)
TRAINED = re.compile(r"^\[train: [^\]]*\]\s+(\S+): (\S+) in ")  # the grid's line per finished training run
SAMPLE_MS = 500


def scratch_copy(dest: Path, grid: Path) -> Path:
    """The project's code, parameters and chapters, the grid file and the store's benchmark records (the
    plan's timings) under ``dest``, with the corpus linked where it is built -> the grid file's path there."""
    for name in COPIED:
        shutil.copytree(REPO / name, dest / name, ignore=shutil.ignore_patterns("__pycache__"))
    if (REPO / "results" / "bench").is_dir():
        shutil.copytree(REPO / "results" / "bench", dest / "results" / "bench")
    if (REPO / "data").is_dir():
        (dest / "data").symlink_to(REPO / "data")
    shutil.copy(grid, dest / "grid.yaml")
    return dest / "grid.yaml"


class Sampler:
    """Every GPU's utilisation (%) from ``nvidia-smi`` every :data:`SAMPLE_MS` ms while it runs."""

    def __init__(self) -> None:
        self.samples: dict[str, list[float]] = {}
        self.proc = subprocess.Popen(["nvidia-smi", "--query-gpu=index,utilization.gpu", "--format=csv,noheader,nounits",
                                      f"-lms={SAMPLE_MS}"], stdout=subprocess.PIPE, text=True)
        self.thread = threading.Thread(target=self._read, daemon=True)
        self.thread.start()

    def _read(self) -> None:
        for line in self.proc.stdout:
            index, _, util = line.partition(",")
            if util.strip().replace(".", "", 1).isdigit():
                self.samples.setdefault(index.strip(), []).append(float(util))

    def busy_s(self) -> dict[str, float]:
        """Per GPU index: the sampled utilisation as seconds busy."""
        self.proc.terminate()
        self.proc.wait(timeout=10)
        self.thread.join(timeout=10)
        return {i: sum(v) / 100 * SAMPLE_MS / 1000 for i, v in sorted(self.samples.items())}


def store_counts(store: Path) -> dict:
    """The run records under ``store`` (its benchmark records aside): how many ok and failed, and their
    config-steps (steps done, summed)."""
    counts, steps = Counter(), 0
    for path in store.rglob("*.json"):
        if "bench" in path.relative_to(store).parts:
            continue
        record = json.loads(path.read_text())
        counts[record.get("status")] += 1
        steps += int((record.get("train") or {}).get("steps_done") or 0)
    return {"ok": counts["ok"], "failed": sum(n for s, n in counts.items() if s != "ok"), "config_steps": steps}


def planned(out: str) -> int:
    """The training runs the grid's first line says it plans."""
    found = re.search(r"(\d+) training runs to do first", out)
    if not found:
        raise RuntimeError(f"the grid printed no plan line: {out[-2000:]}")
    return int(found.group(1))


def run_pass(copy: Path, grid: Path, n: int, args: argparse.Namespace, gpus: list[str]) -> dict:
    """One pass over the slice on ``n`` devices, in the scratch ``copy`` (emptied of its run records first)."""
    store = copy / "results"
    for folder in [p for p in store.iterdir() if p.name != "bench"] if store.is_dir() else []:
        shutil.rmtree(folder)
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(copy), *filter(None, [os.environ.get("PYTHONPATH")])])}
    cmd = [sys.executable, "-m", "seqlib.book.grid", "--grid", str(grid), "--profile", args.profile, "--train-only",
           "--results", str(store), "--out", str(copy / "_pages")]
    if args.only:
        cmd += ["--only", *args.only]
    if args.deadline is not None:
        cmd += ["--deadline", str(args.deadline)]
    if gpus:
        env["CUDA_VISIBLE_DEVICES"] = ",".join(gpus[:n])
        cmd += ["--workers-per-gpu", str(args.workers_per_gpu)]
    elif n > 1:
        cmd += ["--workers", str(n)]
    sampler = Sampler() if gpus and shutil.which("nvidia-smi") else None  # no nvidia-smi: busy time not measured
    start = time.monotonic()
    done = subprocess.run(cmd, cwd=copy, env=env, capture_output=True, text=True, timeout=args.timeout)
    wall = time.monotonic() - start
    busy = sampler.busy_s() if sampler else None
    (copy / f"pass-{n}.log").write_text(done.stdout + done.stderr)
    reported = Counter(m.group(1) for m in map(TRAINED.match, done.stdout.splitlines()) if m)
    counts = store_counts(store)
    left = re.search(r"(\d+) not started before the deadline", done.stdout)
    return {"devices": n, "wall_s": wall, "exit": done.returncode, "planned": planned(done.stdout),
            "recorded_ok": counts["ok"], "recorded_failed": counts["failed"],
            "not_started": int(left.group(1)) if left else 0, "reported": len(reported),
            "duplicated": sorted(name for name, k in reported.items() if k > 1),
            "lost": max(0, len(reported) - counts["ok"] - counts["failed"]),  # reported as ended, no record
            "config_steps": counts["config_steps"], "config_steps_per_s": counts["config_steps"] / wall,
            "gpu_busy_s": busy, "log_tail": (done.stdout + done.stderr)[-1500:] if done.returncode else None}


def measure(args: argparse.Namespace) -> dict:
    """Every pass of ``args.devices`` and the speed-ups over the first."""
    gpus = visible_gpus()
    if gpus and max(args.devices) > len(gpus):
        raise ValueError(f"--devices {max(args.devices)}: only {len(gpus)} GPU(s) are visible")
    with tempfile.TemporaryDirectory(prefix="seqbook-scaling-") as tmp:
        copy = (args.scratch or Path(tmp)) / "project"
        grid = scratch_copy(copy, args.grid)
        passes = [run_pass(copy, grid, n, args, gpus) for n in args.devices]
    base = passes[0]["config_steps_per_s"]
    for p in passes:
        p["speedup"] = p["config_steps_per_s"] / base if base else None
    return {"profile": args.profile, "only": args.only, "deadline_s": args.deadline,
            "workers_per_gpu": args.workers_per_gpu if gpus else None,
            "device_kind": "gpu" if gpus else "cpu (local Dask workers)", "passes": passes}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m seqlib.book.scaling", description=__doc__.split("\n")[0])
    parser.add_argument("--profile", default="book")
    parser.add_argument("--grid", type=Path, default=GRID)
    parser.add_argument("--only", nargs="+", metavar="CHAPTER", help="the chapters whose runs make the slice")
    parser.add_argument("--devices", type=int, nargs="+", default=[1, 4], help="devices per pass (the first is the base)")
    parser.add_argument("--workers-per-gpu", type=int, default=1)
    parser.add_argument("--deadline", type=float, help="each pass starts no run after this many seconds")
    parser.add_argument("--timeout", type=float, default=3600, help="a pass that runs longer is killed")
    parser.add_argument("--bench", type=Path, default=REPO / "results" / "bench", help="where the record goes")
    parser.add_argument("--scratch", type=Path, help="keep the scratch copy here (its last pass's records, every "
                        "pass's log pass-<n>.log; default: a temporary folder, removed)")
    args = parser.parse_args(argv)
    if any(n < 1 for n in args.devices) or args.workers_per_gpu < 1:
        parser.error("--devices and --workers-per-gpu must be >= 1")
    if not args.grid.is_file():
        parser.error(f"--grid: {args.grid} does not exist")
    from seqlib.bench.record import save_record

    result = measure(args)
    path = save_record(KIND, result, args.bench / f"{KIND}-{time.strftime('%Y%m%dT%H%M%S', time.gmtime())}.json")
    for p in result["passes"]:
        print(f"{p['devices']} device(s): {p['wall_s']:.0f} s, {p['recorded_ok']} ok / {p['recorded_failed']} failed "
              f"of {p['planned']} planned ({p['not_started']} not started), {len(p['duplicated'])} duplicated, "
              f"{p['lost']} lost; {p['config_steps_per_s']:.1f} config-steps/s, speed-up "
              f"{p['speedup'] or float('nan'):.2f}" + (f"; GPU busy s {p['gpu_busy_s']}" if p["gpu_busy_s"] else ""))
    print(path)
    return 0


if __name__ == "__main__":
    sys.exit(main())
