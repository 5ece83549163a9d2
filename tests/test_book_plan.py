"""The training plan's GPU-time estimate (seqlib.book.plan): per-run step times from the store's GPU
records x the sweep benchmark's stacking speed-ups, worked by hand on a tiny store."""

from __future__ import annotations

import json
import math

import test_book_grid as toy
from test_book_report import record

from seqlib.book.plan import plan_lines, speedup, stack_speedups, step_times
from seqlib.results import write_record

book = toy.book  # the toy book fixture of the grid tests


def gpu_record(model, seed, step_time, stacked=False):
    rec = record(model=model, seed=seed)
    rec.provenance.device = "cuda"
    rec.measure = {"step_time_s": step_time, **({"stack_size": 4} if stacked else {})}
    return rec


def job(model, k, steps=1000):
    cfg = {"task": {"name": "parity_check"}, "model": {"name": model}, "optim": {"steps": steps}}
    return (f"{model} x{k}", {"configs": [cfg] * k, "names": [f"r{i}" for i in range(k)]})


def test_estimate_by_hand(tmp_path):
    store, bench = tmp_path / "results", tmp_path / "results" / "bench"
    for seed, t in enumerate((0.020, 0.030, 0.025)):  # median 0.025 s
        write_record(store, gpu_record("hawk", seed, t))
    write_record(store, gpu_record("hawk", 9, 9.0, stacked=True))  # a stacked record is not a per-run time
    cpu = record(model="lstm")
    cpu.measure = {"step_time_s": 1.0}
    write_record(store, cpu)  # trained on a CPU: not a GPU measurement
    assert step_times(store) == {("parity_check", "hawk"): 0.025}
    bench.mkdir(parents=True)
    (bench / "sweep-20260101T000000.json").write_text(json.dumps({"results": [
        {"shape": "parity", "model": "hawk", "K": 16, "speedup_vs_loop": 2.0},
        {"shape": "parity", "model": "hawk", "K": 64, "speedup_vs_loop": 8.0},
        {"shape": "mqar", "model": "hawk", "K": 64, "speedup_vs_loop": 99.0}]}))
    (bench / "sweep-20260102T000000.json").write_text(json.dumps({"results": [
        {"shape": "parity", "model": "hawk", "K": 64, "speedup_vs_loop": 10.0}]}))  # newer: overrides K=64
    gains, used = stack_speedups(bench)
    assert gains == {"hawk": [(16, 2.0), (64, 10.0)]} and len(used) == 2
    assert (speedup(gains["hawk"], 1), speedup(gains["hawk"], 8), speedup(gains["hawk"], 32),
            speedup(gains["hawk"], 64)) == (1.0, 1.0, 2.0, 10.0)
    lines = plan_lines([job("hawk", 64), job("hawk", 1), job("lstm", 3)], store, bench)
    # hawk x64: 1000 steps x 0.025 s x 64 / 10 = 160 s; hawk x1: 1000 x 0.025 = 25 s; lstm: no estimate
    (row,) = [ln for ln in lines if ln.startswith("parity_check")]
    jobs, runs, run_steps, hours, unknown = row.split()[1:]
    assert (int(jobs), int(runs), int(run_steps), int(unknown)) == (3, 68, 68_000, 1)
    assert math.isclose(float(hours), round(185 / 3600, 2))
    assert "1 job(s) without a per-run measurement" in lines[-1]


def test_grid_plan_prints_the_plan_and_runs_nothing(book):
    proc = toy.grid(book, "--plan")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "GPU hours" in proc.stdout and "estimate:" in proc.stdout
    assert not (book / "runs").exists()  # nothing executed
