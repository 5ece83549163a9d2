"""The grid's training plan and its GPU-time estimate (``python -m seqlib.book.grid --plan``).

Before anything runs, every planned training job (:func:`seqlib.book.grid.stack_jobs`) is listed per
task with its runs, its stack size and its steps, and an estimate of its GPU time:

    steps x (per-run step time) x K / (stacking speed-up at K)

* per-run step time: the median ``measure.step_time_s`` of the store's ``ok`` records of the same
  task and model trained alone on a CUDA device (the per-run trainer; any profile, so the sizes may
  differ from the plan's: the estimate says so by naming its source);
* stacking speed-up: ``speedup_vs_loop`` of the sweep benchmark records (``results/bench/sweep-*.json``,
  ``python -m seqlib bench sweep``; the newest value of each model and K) at the largest measured K
  not above the job's, on the parity shape; 1 where none is measured (K = 1 included).

A job without a per-run measurement has no estimate and is counted as such. The estimate is a
planning aid, not a measurement: the Run issue checks it against one round's measured rate.
"""

from __future__ import annotations

import json
import statistics
from collections import defaultdict
from pathlib import Path

from seqlib.results import load_records


def step_times(store: Path) -> dict[tuple[str, str], float]:
    """(task, model) -> median per-run step time (s) of the store's ok records trained alone on CUDA."""
    times: dict[tuple[str, str], list[float]] = defaultdict(list)
    for rec in load_records(store):
        step = rec.measure.get("step_time_s")
        if rec.status == "ok" and rec.provenance.device == "cuda" and step and "stack_size" not in rec.measure:
            times[(rec.task, rec.model)].append(step)
    return {key: statistics.median(v) for key, v in times.items()}


def stack_speedups(bench_dir: Path) -> tuple[dict[str, list[tuple[int, float]]], list[str]]:
    """model -> sorted [(K, speed-up over the per-run loop)] on the parity shape, the newest sweep
    record's value for each (model, K); and the names of the records used."""
    found: dict[tuple[str, int], float] = {}
    used = []
    for path in sorted(bench_dir.glob("sweep-*.json")):  # oldest first: newer records override
        rows = [r for r in json.loads(path.read_text()).get("results", [])
                if r.get("shape") == "parity" and r.get("speedup_vs_loop")]
        found |= {(r["model"], int(r["K"])): float(r["speedup_vs_loop"]) for r in rows}
        used += [path.name] if rows else []
    out: dict[str, list[tuple[int, float]]] = defaultdict(list)
    for (model, k), gain in sorted(found.items()):
        out[model].append((k, gain))
    return dict(out), used


def speedup(measured: list[tuple[int, float]], k: int) -> float:
    """The measured speed-up at the largest K not above ``k`` (1 if none; never below 1 for K > 1)."""
    below = [s for kk, s in measured if kk <= k]
    return max(below[-1], 1.0) if below and k > 1 else 1.0


def plan_lines(jobs: list[tuple[str, dict]], store: Path, bench_dir: Path) -> list[str]:
    """The plan as printed lines: per task its jobs, runs, steps and estimated GPU hours, then the total."""
    times = step_times(store)
    gains, sources = stack_speedups(bench_dir)
    per_task: dict[str, dict] = defaultdict(lambda: {"jobs": 0, "runs": 0, "steps": 0, "hours": 0.0, "unknown": 0})
    for _, job in jobs:
        cfgs = job["configs"]
        task, model, k = cfgs[0]["task"]["name"], cfgs[0]["model"]["name"], len(cfgs)
        steps = max(c["optim"]["steps"] for c in cfgs)
        row = per_task[task]
        row["jobs"] += 1
        row["runs"] += k
        row["steps"] += steps * k
        t_run = times.get((task, model))
        if t_run is None:
            row["unknown"] += 1
        else:
            row["hours"] += steps * t_run * k / speedup(gains.get(model, []), k) / 3600
    lines = [f"{'task':24s} {'jobs':>5s} {'runs':>5s} {'run-steps':>10s} {'GPU hours':>10s}  unestimated jobs"]
    for task, row in per_task.items():
        lines.append(f"{task:24s} {row['jobs']:5d} {row['runs']:5d} {row['steps']:10d} {row['hours']:10.2f}  "
                     f"{row['unknown'] or ''}")
    total = sum(r["hours"] for r in per_task.values())
    unknown = sum(r["unknown"] for r in per_task.values())
    lines.append(f"{'total':24s} {sum(r['jobs'] for r in per_task.values()):5d} "
                 f"{sum(r['runs'] for r in per_task.values()):5d} {sum(r['steps'] for r in per_task.values()):10d} "
                 f"{total:10.2f}  {unknown or ''}")
    lines.append(f"estimate: per-run step times of {len(times)} (task, model) pairs stored in {store} (trained alone "
                 f"on CUDA) x stacking speed-ups from {', '.join(sources) or 'no sweep record (speed-up 1)'}; "
                 f"{unknown} job(s) without a per-run measurement are not in the hours")
    return lines
