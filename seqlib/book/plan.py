"""The grid's training plan and its GPU-time estimate (``python -m seqlib.book.grid --plan``).

Before anything runs, every planned training job (:func:`seqlib.book.grid.stack_jobs`) is listed per
task with its runs, its steps and an estimate of its GPU time, training plus evaluation, in the
grid's training order (``done by``: the hours spent when the task's last job ends). Each task is
estimated on a shape of the sweep benchmark (``results/bench/sweep-*.json``, ``python -m seqlib
bench sweep``): the one whose task trains on the number of tokens per step nearest the task's (log
scale, from the store's records; a tie goes to the larger; parity without token counts).

* training: ``steps x (per-run step time) x K / (stacking speed-up at K)``;

  - per-run step time: the sweep's loop (the per-run trainer alone on the GPU, warmed up: the
    speed-ups' own baseline) where it measured that task and model; else from the store's ``ok``
    records of the task and model trained run by run on a CUDA device (any profile, so the sizes
    may differ from the plan's), ``measure.step_time_s``. The grid trained those runs several to a
    GPU, which slows each step, so a record is calibrated by its grid call (its commit): times the
    median of loop / stored step time over that call's records that the sweep measured. The
    estimate is the median of the calibrated records, else (no record calibrated) the smallest
    stored time, each an upper bound. A model with neither (the zoo: the sweep measured it on its
    shapes only) takes the loop's time on the task's shape;
  - stacking speed-up: ``speedup_vs_loop``, the newest row of each (shape, model, K) over all sweep
    records. A row at K' <= K bounds the speed-up at K from below (more runs in a stack never lower
    its throughput), and so does one at K' > K, times K / K' (fewer runs never make its step
    slower); the larger bound is used, at least 1 (K = 1: 1). A model the shape was not measured
    with takes the smaller of its own parity-shape value and the shape's lowest;
* evaluation: the forward batches of the periodic evaluations of the selection split and of the
  final evaluation of every split (packed, :func:`seqlib.evaluate.eval_packs`; a record's own
  batches as it ran them, :func:`record_batching`), times a run's seconds per batch:

  - run by run, the store's records of the task and model (their periodic evaluations: wall time
    less training and data time, over the batches evaluated), calibrated as their steps; those
    batches are of the selection split, whose sequences may be shorter than other splits'
    (Chomsky's test lengths);
  - in a stack, where the sweep measured the stack's evaluation (``eval_batch_s``: per instance and
    batch, at K' runs) on the job's shape: that time if the store has no record of the pair (the
    zoo), else the store's time divided by the stack's evaluation gain on the shape (store time of
    the shape's task over ``eval_batch_s``, at least 1). The row at the largest K' <= K is used (more
    instances never cost more per instance), else the smallest K' > K times K' / K.

* measured stacks first: where the store holds ``ok`` stacked records of the task and model that
  say how many training processes shared their GPU (``measure.device_processes``: the grid's
  workers per GPU), a job is priced from them instead, at the GPU time they took per instance: while
  a step of one process took ``step_time_s``, the GPU advanced every process's stack, so an instance's
  step costs ``step_time_s / (device_processes x stack_size)``: training ``steps x K`` of those, and
  evaluation, per forward batch, ``(wall - training time) / (device_processes x stack_size)`` over the
  batches each instance evaluated (median over the records). These include the stacking and the
  sharing. A pair without them whose model has measured stacks on another task, where other models
  were measured on both, is priced from its own times the median ratio of theirs between the two
  tasks (:func:`relative_costs`: a model's cost relative to others carries over; the zoo's kernels
  are launch-bound, so their time does not grow with the tokens per step). The records are the
  store's and those of ``results/superseded/`` (:func:`timing_records`: superseded results, valid
  timings).

* a model that the store timed run by run on other tasks only (the fla zoo after its first round):
  its time on another task times the median ratio between the two tasks of the other models timed
  run by run on both (:func:`relative_costs`, the task with most of them); without any, its time on
  the task whose tokens per step are nearest (log scale) times the ratio of tokens per step, for
  training and evaluation alike (a planning guess, listed in the plan: these small models' steps
  are partly launch-bound, so it errs high on tasks with more tokens).

A job without a measurement has no estimate and is counted as such. The estimate is a planning aid,
not a measurement, and outside the measured stacks it knows nothing of workers sharing a GPU
(``--workers-per-gpu``), which overlap one job's idle GPU time with another's work. So every GPU call of the grid that trains
writes a round record (``results/bench/grid-round-<UTC time>.json``, :func:`round_summary`): its
wall time on its GPUs beside this estimate of the jobs it trained. The plan prints the measured over
estimated ratio per workers per GPU (the median over the rounds that had an estimate for every job)
and the total times that ratio.
"""

from __future__ import annotations

import json
import math
import statistics
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path

from seqlib.bench.sweep import EVAL_TIMING, SHAPES
from seqlib.results import load_records

PARITY = "parity"  # the shape every model was measured on: the fallback
ROUND_KIND = "grid-round"  # the grid's round records in the benchmark folder (module docstring)
SUPERSEDED = "superseded"  # the store's folder of superseded records (results/superseded/README.md)


def pooled(pairs, scale: dict[str, float]) -> dict:
    """``((key, commit), value)`` pairs -> per key the median of its values times their commit's
    calibration in ``scale`` where any has one, else the smallest value (each is an upper bound)."""
    values: dict = defaultdict(lambda: ([], []))
    for (key, commit), value in pairs:
        calibrated, bounds = values[key]
        if commit in scale:
            calibrated.append(value * scale[commit])
        else:
            bounds.append(value)
    return {key: statistics.median(c) if c else min(b) for key, (c, b) in values.items()}


def per_run_records(records: list) -> list:
    """The ok records of runs trained run by run (not stacked) on a CUDA device."""
    return [r for r in records if r.status == "ok" and r.provenance.device == "cuda" and "stack_size" not in r.measure]


def calibrations(records, loops: dict[tuple[str, str], float]) -> dict[str, float]:
    """commit -> median of loop / stored step time over the records of that grid call (commit) that
    the sweep's loop measured (module docstring)."""
    ratios = defaultdict(list)
    for r in records:
        if (r.task, r.model) in loops and r.measure.get("step_time_s"):
            ratios[r.provenance.commit].append(loops[r.task, r.model] / r.measure["step_time_s"])
    return {commit: statistics.median(v) for commit, v in ratios.items()}


def step_times(records, scale: dict[str, float]) -> dict[tuple[str, str], float]:
    """(task, model) -> per-run step time (s) of ``records`` (:func:`per_run_records`), calibrated
    per commit by ``scale`` (:func:`pooled`)."""
    return pooled([(((r.task, r.model), r.provenance.commit), r.measure["step_time_s"])
                   for r in records if r.measure.get("step_time_s")], scale)


def tokens_per_step(records) -> dict[str, float]:
    """task -> median training tokens per step of ``records``."""
    values = defaultdict(list)
    for r in records:
        if r.measure.get("train_tokens") and r.train.get("steps_done"):
            values[r.task].append(r.measure["train_tokens"] / r.train["steps_done"])
    return {task: statistics.median(v) for task, v in values.items()}


def eval_batch_times(records, scale: dict[str, float]) -> dict[tuple[str, str], float]:
    """(task, model) -> seconds per forward batch of the periodic evaluations of ``records``,
    (wall - training - data time) / (evaluations x batches per evaluation), pooled as :func:`step_times`."""
    from pydantic import ValidationError

    from seqlib.config import ExperimentConfig
    from seqlib.train import split_batches

    pairs = []
    for r in records:
        evals = len(r.train.get("eval_curve") or [])
        if not evals or not r.measure.get("train_time_s"):
            continue
        try:
            cfg = ExperimentConfig.model_validate(r.config)
        except ValidationError:  # a record of an older configuration schema: no estimate from it
            continue
        spent = r.measure["wall_time_s"] - r.measure["train_time_s"] - r.train.get("data_time_s", 0.0)
        batches = evals * split_batches(cfg, task_of(cfg), r.train["select_split"], record_batching(r))
        pairs.append((((r.task, r.model), r.provenance.commit), spent / batches))
    return pooled(pairs, scale)


def stacked_costs(records: list) -> dict[tuple[str, str], tuple[float, float]]:
    """(task, model) -> GPU seconds per instance and step, and per instance and evaluated forward batch,
    of the ``ok`` stacked CUDA records that state ``device_processes`` (module docstring)."""
    from pydantic import ValidationError

    from seqlib.config import ExperimentConfig

    steps, batches = defaultdict(list), defaultdict(list)
    for r in records:
        m = r.measure
        if not (r.status == "ok" and r.provenance.device == "cuda" and m.get("stack_size")
                and m.get("device_processes") and m.get("step_time_s") and m.get("train_time_s")):
            continue
        try:
            cfg = ExperimentConfig.model_validate(r.config)
        except ValidationError:  # a record of an older configuration schema
            continue
        share = 1 / (m["device_processes"] * m["stack_size"])  # the GPU ran every process's stack meanwhile
        steps[r.task, r.model].append(m["step_time_s"] * share)
        evaluated = eval_batches(cfg, task_of(cfg), len(r.train.get("eval_curve") or []), record_batching(r))
        if evaluated:
            batches[r.task, r.model].append((m["wall_time_s"] - m["train_time_s"]) * share / evaluated)
    return {key: (statistics.median(v), statistics.median(batches[key]) if batches[key] else math.nan)
            for key, v in steps.items()}


def relative_costs(times: dict[tuple[str, str], tuple], task: str, model: str) -> tuple[tuple, str] | None:
    """``model``'s costs on ``task`` (a tuple per (task, model) in ``times``) from its own on another
    task, times the median ratio between the two tasks of the reference models timed on both ->
    (costs, where from), or None without such a pair (module docstring). The source task is the one
    with most reference models."""
    sources = [(len(refs), t, refs) for t in sorted({t for t, m in times if m == model and t != task})
               if (refs := sorted(r for tt, r in times if tt == task and r != model and (t, r) in times))]
    if not sources:
        return None
    _, source, refs = max(sources)
    costs = tuple(value * statistics.median(times[task, r][i] / times[source, r][i] for r in refs)
                  for i, value in enumerate(times[source, model]))
    return costs, f"{source} x the ratio of {len(refs)} other model(s)"


def timing_records(store: Path) -> list:
    """The records the estimate is timed from: the store's, and those its ``superseded/<change>/``
    folders keep (superseded as results, not as timings of the same device and task)."""
    return [r for folder in [store, *sorted(p for p in (store / SUPERSEDED).glob("*") if p.is_dir())]
            for r in load_records(folder)]


def task_of(cfg):
    from seqlib.tasks import get_task

    return get_task(cfg.task.name, **cfg.task.params)


def record_batching(record) -> str:
    """How ``record``'s evaluations were batched (:func:`seqlib.evaluate.eval_packs`): records before
    packing say nothing, and ran every group of examples apart."""
    from seqlib.evaluate import PER_GROUP

    return record.measure.get("eval_batching", PER_GROUP)


def eval_batches(cfg, task, evaluations: int | None = None, batching: str | None = None) -> int:
    """Forward batches a run evaluates: every ``eval_every`` steps (and at its last) the selection
    split, then every evaluation split once (:func:`seqlib.train.execute`); ``evaluations``: the
    selection split's evaluations a run made (default: its cap's, ``ceil(steps / eval_every)``);
    ``batching``: a record's (default: today's, :data:`seqlib.evaluate.PACKED`)."""
    from seqlib.evaluate import PACKED
    from seqlib.train import select_split, split_batches

    if evaluations is None:
        evaluations = math.ceil(cfg.optim.steps / cfg.run.eval_every)
    how = batching or PACKED
    periodic = evaluations * split_batches(cfg, task, select_split(cfg, task), how)
    return periodic + sum(split_batches(cfg, task, s, how) for s in cfg.run.eval_splits or task.splits)


def sweep_rows(bench_dir: Path) -> dict[tuple[str, str, int], dict]:
    """(shape, model, K) -> the newest sweep benchmark row of that key over every record (the records'
    names carry their UTC time), with the record's name under ``record``."""
    rows = {}
    for path in sorted(bench_dir.glob("sweep-*.json")):  # oldest first: newer rows override
        data = json.loads(path.read_text())
        for row in data.get("results", []):
            if row.get("speedup_vs_loop"):
                if data.get("eval_timing") != EVAL_TIMING:  # timed otherwise (seqlib.bench.sweep)
                    row = {k: v for k, v in row.items() if k != "eval_batch_s"}
                rows[(row["shape"], row["model"], int(row["K"]))] = {**row, "record": path.name}
    return rows


def stacked_eval(rows: dict, shape: str, model: str, k: int) -> float | None:
    """The sweep's stacked evaluation seconds per instance and batch for ``k`` instances of ``model``
    on ``shape`` (module docstring), or None where none was measured."""
    measured = {kk: row["eval_batch_s"] for (s, m, kk), row in rows.items()
                if (s, m) == (shape, model) and row.get("eval_batch_s")}
    below = [kk for kk in measured if kk <= k]
    if below:
        return measured[max(below)]
    return min((measured[kk] * kk / k for kk in measured), default=None)


def loop_times(rows: dict) -> dict[tuple[str, str], float]:
    """(task, model) -> the sweep loop's step time (s) in the newest record that measured the pair."""
    newest = sorted(rows.items(), key=lambda item: item[1]["record"])
    return {(SHAPES[s][0], m): 1 / row["loop"] for (s, m, _), row in newest if row.get("loop") and s in SHAPES}


def speedup(rows: dict[tuple[str, str, int], dict], shape: str, model: str, k: int) -> tuple[float, str]:
    """The stacking speed-up at ``k`` of ``model`` on ``shape`` (module docstring) and where it comes from."""
    if k <= 1:
        return 1.0, "K = 1"
    measured = {kk: row for (s, m, kk), row in rows.items() if (s, m) == (shape, model)}
    if not measured:
        others = [speedup(rows, shape, m, k) for m in sorted({m for s, m, _ in rows if s == shape})]
        fallback = [speedup(rows, PARITY, model, k)] if shape != PARITY else []
        gain, source = min(others + fallback, default=(1.0, "nothing measured"))
        return gain, f"{model} not measured on {shape}: {source}"
    gain, kk, record = max((row["speedup_vs_loop"] * min(1.0, k / kk), kk, row["record"]) for kk, row in measured.items())
    source = f"{shape} {model}: {record} K={kk}" + (f" x {k}/{kk}" if kk > k else "")
    return (gain, source) if gain > 1.0 else (1.0, f"at least 1 ({source})")


def scaled_time(times: dict[tuple[str, str], float], tokens: dict[str, float], task: str,
                model: str) -> tuple[float, str | None]:
    """``model``'s time on ``task`` from ``times`` of it on other tasks (module docstring) -> (time,
    the task it came from), or (nan, None) without one."""
    relative = relative_costs({key: (value,) for key, value in times.items()}, task, model)
    if relative is not None:
        return relative[0][0], relative[1]
    known = sorted((abs(math.log(tokens[task] / tokens[t])), -tokens[t], t) for t, m in times
                   if m == model and t != task and t in tokens and task in tokens)
    if not known:
        return math.nan, None
    source = known[0][2]
    return times[source, model] * tokens[task] / tokens[source], f"{source} x the ratio of tokens per step"


def nearest_shape(task: str, tokens: dict[str, float], shapes) -> str:
    """The measured shape of ``task`` itself, else the shape whose task's tokens per step are nearest
    ``task``'s (module docstring)."""
    own = sorted(s for s in shapes if s in SHAPES and SHAPES[s][0] == task)
    if own:
        return own[0]
    known = [(abs(math.log(tokens[task] / tokens[SHAPES[s][0]])), -tokens[SHAPES[s][0]], s)
             for s in shapes if s in SHAPES and task in tokens and SHAPES[s][0] in tokens]
    return min(known)[2] if known else PARITY


@dataclass
class Estimate:
    """The plan's numbers: per task (in training order) its shape, jobs, runs, run-steps, training
    and evaluation hours, the hours spent when its last job ends (``done``) and its jobs without a
    measurement (``unknown``); the speed-ups used per (shape, model, K) with their sources; and what
    the per-run times came from."""

    tasks: dict[str, dict] = field(default_factory=dict)
    speedups: dict[tuple[str, str, int], tuple[float, str]] = field(default_factory=dict)
    loops: int = 0
    stored: int = 0
    eval_pairs: int = 0
    measured_pairs: int = 0
    measured_hours: float = 0.0  # the part priced from measured stacks (their sharing already in)
    scaled: dict[tuple[str, str], str] = field(default_factory=dict)  # (task, model) -> the task it was scaled from
    calibration: dict[str, float] = field(default_factory=dict)


def estimate(jobs: list[tuple[str, dict]], store: Path, bench_dir: Path) -> Estimate:
    """The GPU-time estimate of the training jobs ``jobs`` (:func:`seqlib.book.grid.stack_jobs`)."""
    from seqlib.config import ExperimentConfig

    stored_records = timing_records(store)
    rows, records = sweep_rows(bench_dir), per_run_records(stored_records)
    loops = loop_times(rows)
    scale = calibrations(records, loops)
    stored, tokens, eval_times = step_times(records, scale), tokens_per_step(records), eval_batch_times(records, scale)
    shapes = {s for s, _, _ in rows} | {PARITY}
    measured = stacked_costs(stored_records)
    out = Estimate(loops=len(loops), stored=len(stored), eval_pairs=len(eval_times), calibration=scale,
                   measured_pairs=len(measured))
    spent = 0.0
    for _, job in jobs:
        cfgs = [ExperimentConfig.model_validate(c) for c in job["configs"]]
        task, model, k = cfgs[0].task.name, cfgs[0].model.name, len(cfgs)
        # the task, or <task>:<cell> for a cell's runs (seqlib.book.grid.planned_training names them)
        label = job["names"][0].split("/")[0] if job.get("names") else task
        row = out.tasks.setdefault(label, {"shape": nearest_shape(task, tokens, shapes), "jobs": 0, "runs": 0,
                                           "steps": 0, "train": 0.0, "eval": 0.0, "done": 0.0, "unknown": 0})
        steps = max(c.optim.steps for c in cfgs)
        row["jobs"] += 1
        row["runs"] += k
        row["steps"] += steps * k
        t_run, t_batch = measured.get((task, model), (math.nan, math.nan))
        if math.isnan(t_run + t_batch) and (relative := relative_costs(measured, task, model)):
            (t_run, t_batch), out.scaled[(task, model)] = relative
        measured_stack = not math.isnan(t_run + t_batch)
        if measured_stack:  # GPU time per instance, stacking and sharing in
            gain = (1.0, f"measured stacks of {task} {model} in the store")
        else:
            shape_task = SHAPES[row["shape"]][0] if row["shape"] in SHAPES else None
            t_run = loops.get((task, model)) or stored.get((task, model)) or loops.get((shape_task, model), math.nan)
            t_batch = eval_times.get((task, model), math.nan)
            t_stacked = stacked_eval(rows, row["shape"], model, k) if k > 1 else None
            if t_stacked is not None:
                shape_store = eval_times.get((shape_task, model))
                if math.isnan(t_batch):
                    t_batch = t_stacked
                elif shape_store:
                    t_batch /= max(1.0, shape_store / t_stacked)
            for name, times in (("run", stored), ("batch", eval_times)):  # the model timed on other tasks
                if math.isnan(t_run if name == "run" else t_batch):
                    value, source = scaled_time(times, tokens, task, model)
                    if source is not None:
                        t_run, t_batch = (value, t_batch) if name == "run" else (t_run, value)
                        out.scaled[(task, model)] = source
            if math.isnan(t_run + t_batch):
                row["unknown"] += 1
                continue
            gain = speedup(rows, row["shape"], model, k)
        out.speedups[(row["shape"], model, k)] = gain
        train = steps * t_run * k / gain[0] / 3600
        evaluate = sum(eval_batches(c, task_of(cfgs[0])) for c in cfgs) * t_batch / 3600
        row["train"] += train
        row["eval"] += evaluate
        if measured_stack:
            out.measured_hours += train + evaluate
        spent += train + evaluate
        row["done"] = spent
    return out


def round_summary(jobs: list[tuple[str, dict]], wall_s: float, gpus: int, workers_per_gpu: int, store: Path,
                  bench_dir: Path, stopped: bool = False) -> dict:
    """One GPU round of the grid: the training ``jobs`` it ran, its wall time on ``gpus`` GPUs shared by
    ``workers_per_gpu`` workers each, and this plan's estimate of the same jobs (module docstring). A
    ``stopped`` round (SIGTERM, jobs under way) gives no measured-over-estimate ratio: its wall time
    holds work that no finished job accounts for."""
    est = estimate(jobs, store, bench_dir)
    estimated = sum(r["train"] + r["eval"] for r in est.tasks.values())
    unknown = sum(r["unknown"] for r in est.tasks.values())
    measured = wall_s * gpus / 3600
    steps, share = finished_share(jobs)
    return {"gpus": gpus, "workers_per_gpu": workers_per_gpu, "wall_s": wall_s, "gpu_hours": measured,
            "run_steps_done": steps, "gpu_share_s": share,
            "config_steps_per_gpu_s": steps / share if share else None,
            "jobs": len(jobs), "runs": sum(r["runs"] for r in est.tasks.values()),
            "runs_per_task": {task: r["runs"] for task, r in est.tasks.items()},
            "estimated_gpu_hours": estimated, "unestimated_jobs": unknown,
            "measured_over_estimate": measured / estimated if estimated and not unknown and not stopped else None,
            "stopped": stopped}


def finished_share(jobs: list[tuple[str, dict]]) -> tuple[int, float]:
    """Over the ``ok`` records of the jobs' runs that say how many processes shared their GPU: the steps
    they trained and their share of the GPU's time, each run's wall time (evaluation in) over
    ``device_processes x stack_size`` -> (steps, seconds): the stacked grid's config-steps per
    GPU-second, whether or not the round was stopped with jobs under way."""
    from seqlib.config import ExperimentConfig
    from seqlib.train import stored_record

    steps, share = 0, 0.0
    for _, job in jobs:
        for config in job["configs"]:
            record = stored_record(ExperimentConfig.model_validate(config))
            m = record.measure if record is not None and record.status == "ok" else {}
            if m.get("device_processes") and m.get("wall_time_s"):
                steps += int(record.train.get("steps_done") or 0)
                share += m["wall_time_s"] / (m["device_processes"] * (m.get("stack_size") or 1))
    return steps, share


def round_ratios(bench_dir: Path) -> dict[int, list[tuple[float, str]]]:
    """workers per GPU -> (measured over estimated, record name) of every round record with that ratio."""
    out = defaultdict(list)
    for path in sorted(bench_dir.glob(f"{ROUND_KIND}-*.json")):
        data = json.loads(path.read_text())
        if data.get("measured_over_estimate"):
            out[int(data["workers_per_gpu"])].append((data["measured_over_estimate"], path.name))
    return dict(out)


def plan_lines(jobs: list[tuple[str, dict]], store: Path, bench_dir: Path) -> list[str]:
    """The plan as printed lines: per task its jobs, runs, steps and estimated GPU hours (training,
    evaluation, when done), then the total and the source of every speed-up used."""
    est = estimate(jobs, store, bench_dir)

    def line(name: str, shape: str, r: dict) -> str:
        return (f"{name:28s} {shape:8s} {r['jobs']:4d} {r['runs']:5d} {r['steps']:10d} {r['train']:7.2f} "
                f"{r['eval']:6.2f} {r['train'] + r['eval']:6.2f} {r['done']:7.2f}  {r['unknown'] or ''}")

    keys = ("jobs", "runs", "steps", "train", "eval", "unknown")
    total = {key: sum(r[key] for r in est.tasks.values()) for key in keys}
    calibration = ", ".join(f"{c[:7]} x{v:.2f}" for c, v in sorted(est.calibration.items())) or "none"
    return [
        f"{'task':28s} {'shape':8s} {'jobs':>4s} {'runs':>5s} {'run-steps':>10s} {'train h':>7s} {'eval h':>6s} "
        f"{'GPU h':>6s} {'done by':>7s}  unestimated jobs",
        *(line(task, r["shape"], r) for task, r in est.tasks.items()),
        line("total", "", {**total, "done": total["train"] + total["eval"]}),
        f"estimate: per-run step times of the sweep's loop ({est.loops} (task, model) pairs) or of the store {store} "
        f"({est.stored} pairs trained run by run on CUDA, calibrated per grid call: {calibration}, others x1) "
        f"x K / the stacking speed-ups below, plus evaluation batches x the store's seconds per batch "
        f"({est.eval_pairs} pairs, calibrated alike); the stores' measured stacks where they say how many "
        f"processes shared their GPU ({est.measured_pairs} pairs); {total['unknown']} job(s) without a "
        "measurement are not in the hours (seqlib.book.plan says how)",
        "a row <task>:<cell> is a cell of the task (seqlib.book.cells), timed as the task's runs of its model, "
        "whatever the cell's shape (the cells' own step times are not measured yet)",
        *([f"{len(est.scaled)} (task, model) pair(s) priced from the same model on another task: "
           + ", ".join(f"{t} {m} from {src}" for (t, m), src in sorted(est.scaled.items())[:8])
           + (", ..." if len(est.scaled) > 8 else "")] if est.scaled else []),
        *round_lines(round_ratios(bench_dir), total["train"] + total["eval"], est.measured_hours),
        "stacking speed-ups used (shape model K: value, from):",
        *(f"  {s} {m} K={k}: {gain:.2f} ({source})" for (s, m, k), (gain, source) in sorted(est.speedups.items())),
    ]


def round_lines(ratios: dict[int, list[tuple[float, str]]], hours: float, measured: float = 0.0) -> list[str]:
    """The measured rounds' ratios and the estimate's total times each (module docstring); the ``measured``
    hours of the total, priced from measured stacks, already include the sharing and are kept as they are."""
    if not ratios:
        return ["measured rounds: none yet (the grid writes one per GPU call that trains: seqlib.book.plan)"]
    lines = ["measured rounds (GPU hours of a grid call over this plan's estimate of its jobs), per workers per GPU:"]
    for workers, found in sorted(ratios.items()):
        ratio = statistics.median(r for r, _ in found)
        lines.append(f"  {workers} per GPU: x{ratio:.2f} (median of {len(found)}: "
                     f"{', '.join(f'{r:.2f} {name}' for r, name in found)}); the total above at that rate: "
                     f"{(hours - measured) * ratio + measured:.2f} GPU h"
                     + (f" ({measured:.2f} h of it from measured stacks, as they are)" if measured else ""))
    return lines
