"""The training plan's GPU-time estimate (seqlib.book.plan): per-run step times (the sweep's loop, or
the store's GPU records calibrated per grid call) x the sweep benchmark's stacking speed-ups, plus
the evaluation batches, worked by hand on a tiny store."""

from __future__ import annotations

import json
import math

import pytest
import test_book_grid as toy
from test_book_report import record

from seqlib.book.plan import estimate, eval_batches, nearest_shape, speedup, sweep_rows, task_of
from seqlib.config import load_config
from seqlib.evaluate import PER_GROUP
from seqlib.results import write_record

book = toy.book  # the toy book fixture of the grid tests
A, B = "a" * 40, "b" * 40  # two grid calls (commits)


def tiny(task: str, model: str, steps: int = 100, **run) -> dict:
    """One run of the tiny profile (Chomsky lengths 1..6 and 7..10, 8 examples per split in batches
    of 32), with ``steps`` steps and the given run settings."""
    cfg = load_config(task, model, "tiny").for_run(1e-3, 0)
    cfg = cfg.model_copy(update={"optim": cfg.optim.model_copy(update={"steps": steps}),
                                 "run": cfg.run.model_copy(update=run)})
    return cfg.model_dump(mode="json")


def gpu_record(task, model, commit, step, seed=0, evals=0, eval_s=0.0, stacked=False):
    """A run trained on CUDA: ``evals`` evaluations of val (6 batches each) in ``eval_s`` seconds."""
    rec = record(task=task, model=model, seed=seed, end=f"2026-01-0{seed + 1}T00:00:00")
    rec.config = tiny(task, model)
    rec.provenance.device, rec.provenance.commit = "cuda", commit
    rec.measure = {"step_time_s": step, "train_time_s": 10.0, "wall_time_s": 10.0 + eval_s, "train_tokens": 2000,
                   **({"stack_size": 4} if stacked else {})}
    rec.train = {"steps_done": 1, "eval_curve": [[1, 0.5]] * evals, "select_split": "val", "data_time_s": 0.0}
    return rec


def write_sweep(bench, name, rows):
    bench.mkdir(parents=True, exist_ok=True)
    (bench / f"sweep-{name}.json").write_text(json.dumps({"results": rows}))


def row(shape, model, k, gain, loop=None):
    return {"shape": shape, "model": model, "K": k, "speedup_vs_loop": gain, "loop": loop}


def test_the_newest_row_of_each_key_over_all_records(tmp_path):
    # the newer record (by its name's UTC time) is written first: file times do not decide
    write_sweep(tmp_path, "20260102T000000", [row("parity", "hawk", 64, 10.0)])
    write_sweep(tmp_path, "20260101T000000", [row("parity", "hawk", 16, 2.0), row("parity", "hawk", 64, 8.0),
                                              row("mqar", "hawk", 64, 3.0), row("mqar", "gru", 16, None)])
    rows = sweep_rows(tmp_path)
    assert {key: (r["speedup_vs_loop"], r["record"]) for key, r in rows.items()} == {
        ("parity", "hawk", 16): (2.0, "sweep-20260101T000000.json"),  # only in the older record: kept
        ("parity", "hawk", 64): (10.0, "sweep-20260102T000000.json"),  # in both: the newer
        ("mqar", "hawk", 64): (3.0, "sweep-20260101T000000.json")}  # a row without a speed-up is no row


def test_speedup_bounds_by_hand(tmp_path):
    write_sweep(tmp_path, "20260101T000000", [row("parity", "hawk", 16, 8.0), row("parity", "hawk", 64, 16.0),
                                              row("parity", "lstm", 16, 3.2), row("mqar", "hawk", 16, 2.0)])
    rows = sweep_rows(tmp_path)
    values = {k: speedup(rows, "parity", "hawk", k)[0] for k in (1, 4, 16, 24, 64, 100)}
    # K=4: 8 x 4/16 = 2 (above 16 x 4/64 = 1); K=24: 8 (above 16 x 24/64 = 6); past 64: 16
    assert values == {1: 1.0, 4: 2.0, 16: 8.0, 24: 8.0, 64: 16.0, 100: 16.0}
    assert speedup(rows, "parity", "hawk", 4)[1] == "parity hawk: sweep-20260101T000000.json K=16 x 4/16"
    assert speedup(rows, "parity", "lstm", 4) == (1.0, "at least 1 (parity lstm: sweep-20260101T000000.json "
                                                       "K=16 x 4/16)")  # 3.2 x 4/16 < 1
    # lstm was not measured on mqar: the smaller of its parity value (3.2) and mqar's lowest (2)
    gain, source = speedup(rows, "mqar", "lstm", 16)
    assert gain == 2.0 and source.startswith("lstm not measured on mqar: mqar hawk")
    assert speedup(rows, "mqar", "gru", 16)[0] == 2.0  # not measured anywhere: mqar's lowest


def test_nearest_shape_by_tokens_per_step():
    tokens = {"parity_check": 2763, "flipflop": 8192, "mqar": 32768, "reverse_string": 5109,
              "selective_copying": 65536, "induction_heads": 16384, "knapsack": 1024}
    shapes = {"parity", "mqar", "flipflop"}
    assert {t: nearest_shape(t, tokens, shapes) for t in tokens} == {
        "parity_check": "parity", "flipflop": "flipflop", "mqar": "mqar", "reverse_string": "flipflop",
        "selective_copying": "mqar", "induction_heads": "mqar",  # 16384: as near 8192 as 32768, the larger
        "knapsack": "parity"}
    assert nearest_shape("unmeasured", tokens, shapes) == "parity"
    assert nearest_shape("reverse_string", tokens, {"parity"}) == "parity"  # only parity was measured
    # a task's own shape, once measured, whatever the tokens say (text: no record gives its tokens yet)
    assert nearest_shape("text", tokens, shapes) == "parity" and nearest_shape("text", tokens, shapes | {"text"}) == "text"


def test_eval_batches_by_hand():
    cfg = load_config("parity_check", "hawk", "tiny").model_copy()
    cfg = cfg.model_copy(update={"optim": cfg.optim.model_copy(update={"steps": 100}),
                                 "run": cfg.run.model_copy(update={"eval_every": 40})})
    # val: 6 lengths x ceil(8/6) = 2 examples, one batch each; test: 4 lengths; train: 6
    # periodic: ceil(100/40) = 3 evaluations of val = 18; final: train 6 + val 6 + test 4 = 16
    assert eval_batches(cfg, task_of(cfg), batching=PER_GROUP) == 34
    # packed (today's): each split's 8 to 12 examples fit one batch of 32: 3 + 3
    assert eval_batches(cfg, task_of(cfg)) == 6
    only = cfg.model_copy(update={"run": cfg.run.model_copy(update={"eval_splits": ["test"], "eval_every": 100})})
    assert eval_batches(only, task_of(only), batching=PER_GROUP) == 6 + 4
    assert eval_batches(only, task_of(only)) == 1 + 1


def test_estimate_by_hand(tmp_path):
    store, bench = tmp_path / "results", tmp_path / "results" / "bench"
    # grid call A: parity hawk 0.030, 0.030, 0.036 s against the loop's 0.020: calibration
    # median(2/3, 2/3, 5/9) = 2/3; its evaluations 1.2 s / (2 x 6 batches) = 0.1 s per batch
    for seed, step in enumerate((0.030, 0.030, 0.036)):
        write_record(store, gpu_record("parity_check", "hawk", A, step, seed, evals=2, eval_s=1.2))
    write_record(store, gpu_record("parity_check", "hawk", A, 9.0, 7, stacked=True))  # stacked: no per-run time
    write_record(store, gpu_record("even_pairs", "hawk", A, 0.045, evals=1, eval_s=0.9))  # -> 0.030; 0.1 s
    for seed, step in enumerate((0.040, 0.060)):  # call B measured nothing: the smallest, 0.040; 0.05 s
        write_record(store, gpu_record("even_pairs", "lstm", B, step, seed, evals=2, eval_s=0.6 + seed))
    write_sweep(bench, "20260101T000000", [row("parity", "hawk", 16, 8.0, loop=50.0)])
    write_sweep(bench, "20260102T000000", [row("parity", "hawk", 64, 16.0, loop=50.0)])
    run = tiny("parity_check", "hawk", eval_every=50)  # packed: 2 x 1 + 3 = 5 batches a run (per group: 2 x 6 + 16)
    jobs = [("parity", {"configs": [run] * 4}),
            ("even lstm", {"configs": [tiny("even_pairs", "lstm", eval_every=50)]}),
            ("even hawk", {"configs": [tiny("even_pairs", "hawk", eval_every=50)] * 16}),
            ("no record", {"configs": [tiny("even_pairs", "gru")]})]
    est = estimate(jobs, store, bench)
    assert est.calibration == pytest.approx({A: 2 / 3})
    parity, even = est.tasks["parity_check"], est.tasks["even_pairs"]
    # parity x4: 100 steps x 0.020 s (the loop) x 4 / 2 (8 x 4/16) = 4 s; 4 x 5 batches x 0.1 x 2/3
    assert parity["train"] * 3600 == pytest.approx(4.0)
    assert parity["eval"] * 3600 == pytest.approx(4 * 5 * 0.1 * 2 / 3)
    # even lstm x1: 100 x 0.040 = 4 s, 5 x 0.05; even hawk x16: 100 x 0.030 x 16 / 8 = 6 s, 16 x 5 x 0.1
    assert even["train"] * 3600 == pytest.approx(4.0 + 6.0)
    assert even["eval"] * 3600 == pytest.approx(5 * 0.05 + 16 * 5 * 0.1)
    assert (even["jobs"], even["runs"], even["steps"], even["unknown"]) == (3, 18, 1800, 1)  # gru: no record
    assert even["done"] * 3600 == pytest.approx(4.0 + 4 * 5 * 0.1 * 2 / 3 + 10.0 + 5 * 0.05 + 16 * 5 * 0.1)
    assert est.speedups[("parity", "hawk", 4)] == (2.0, "parity hawk: sweep-20260101T000000.json K=16 x 4/16")
    assert math.isclose(est.speedups[("parity", "hawk", 16)][0], 8.0)


def test_a_stacked_evaluation_and_a_model_the_store_never_ran_by_hand(tmp_path):
    """The sweep's stacked evaluation (eval_batch_s, per instance and batch) prices a stack: alone for a
    model without stored runs (its training then takes the loop's time on the task's shape), and as a
    gain over the store's per-run time otherwise; a record timed the old way gives no evaluation time."""
    from seqlib.bench.sweep import EVAL_TIMING
    from seqlib.book.plan import stacked_eval

    store, bench = tmp_path / "results", tmp_path / "results" / "bench"
    write_record(store, gpu_record("parity_check", "hawk", A, 0.020, evals=2, eval_s=1.2))  # 0.1 s a batch
    write_record(store, gpu_record("even_pairs", "hawk", A, 0.020, evals=1, eval_s=0.9))  # 0.15 s a batch
    rows = [{**row("parity", "gla", 4, 2.0, loop=25.0), "eval_batch_s": 0.02},
            {**row("parity", "hawk", 4, 2.0, loop=50.0), "eval_batch_s": 0.025}]
    (bench).mkdir(parents=True)
    (bench / "sweep-20260101T000000.json").write_text(json.dumps({"results": rows}))
    assert all("eval_batch_s" not in r for r in sweep_rows(bench).values())  # no eval_timing: ignored
    (bench / "sweep-20260101T000000.json").write_text(json.dumps({"eval_timing": EVAL_TIMING, "results": rows}))
    measured = sweep_rows(bench)
    assert stacked_eval(measured, "parity", "gla", 8) == 0.02  # K' = 4 <= 8
    assert stacked_eval(measured, "parity", "gla", 2) == pytest.approx(0.02 * 4 / 2)  # only K' > K: x K'/K
    assert stacked_eval(measured, "mqar", "gla", 4) is None
    gla = tiny("even_pairs", "gla", eval_every=50)  # 5 batches a run; parity's shape (no token counts)
    hawk = tiny("even_pairs", "hawk", eval_every=50)
    est = estimate([("gla", {"configs": [gla] * 4}), ("hawk", {"configs": [hawk] * 4})], store, bench)
    even = est.tasks["even_pairs"]
    # gla: 100 steps x 1/25 s (the loop on parity) x 4 / 2 = 8 s, 4 x 5 x 0.02; hawk: stored 0.020 x 4 / 2 = 4 s
    # (parity's loop is not even_pairs'), its stored 0.15 s a batch / (0.1 / 0.025 = 4) = 0.0375
    assert even["unknown"] == 0
    assert even["train"] * 3600 == pytest.approx(8.0 + 4.0)
    assert even["eval"] * 3600 == pytest.approx(4 * 5 * 0.02 + 4 * 5 * 0.0375)


def test_grid_plan_prints_the_plan_and_runs_nothing(book):
    proc = toy.grid(book, "--plan")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "GPU h" in proc.stdout and "estimate:" in proc.stdout
    assert not (book / "runs").exists()  # nothing executed


def test_a_round_record_beside_the_estimate_and_the_plan_at_the_measured_rate(tmp_path, capsys):
    from seqlib.book.grid import save_round
    from seqlib.book.plan import round_lines, round_ratios, round_summary

    store, bench = tmp_path / "results", tmp_path / "results" / "bench"
    write_record(store, gpu_record("parity_check", "hawk", A, 0.020, evals=1, eval_s=0.6))  # 0.1 s a batch
    write_sweep(bench, "20260101T000000", [row("parity", "hawk", 16, 8.0, loop=50.0)])
    run = tiny("parity_check", "hawk", eval_every=50)  # 5 batches a run
    # 4 runs stack as one job: 100 x 0.020 x 4 / 2 = 4 s of training, 4 x 5 x 0.1 = 2 s of evaluation
    training = [(f"parity_check/hawk/lr=0.001/seed={s}", {"config": run}) for s in range(4)]
    path = save_round(training, 3.0, 1, 4, 64, store)
    data = json.loads(path.read_text())
    assert path.parent == bench and data["kind"] == "grid-round"
    assert data["estimated_gpu_hours"] * 3600 == pytest.approx(6.0)
    assert data["gpu_hours"] * 3600 == pytest.approx(3.0) and data["measured_over_estimate"] == pytest.approx(0.5)
    assert (data["jobs"], data["runs"], data["workers_per_gpu"], data["unestimated_jobs"]) == (1, 4, 4, 0)
    assert "0.001 GPU hours" in capsys.readouterr().out
    # a job the plan cannot estimate leaves the round without a ratio; two GPUs count twice the wall time
    gru = round_summary([("gru", {"configs": [tiny("parity_check", "gru")]})], 10.0, 2, 4, store, bench)
    assert gru["measured_over_estimate"] is None and gru["gpu_hours"] * 3600 == pytest.approx(20.0)
    # a round stopped by SIGTERM with jobs under way is recorded, without a ratio (its wall time holds them)
    cut = round_summary([("parity", {"configs": [run] * 4})], 7.6, 1, 4, store, bench, stopped=True)
    assert cut["stopped"] and cut["measured_over_estimate"] is None and cut["estimated_gpu_hours"] > 0
    assert data["stopped"] is False
    (bench / "grid-round-20260103T000000.json").write_text(json.dumps({**data, "measured_over_estimate": 0.3}))
    (bench / "grid-round-20260104T000000.json").write_text(json.dumps({**data, "workers_per_gpu": 8,
                                                                      "measured_over_estimate": None}))
    ratios = round_ratios(bench)
    assert sorted(ratios) == [4] and sorted(r for r, _ in ratios[4]) == pytest.approx([0.3, 0.5])
    lines = round_lines(ratios, 10.0)
    assert "4 per GPU: x0.40 (median of 2" in lines[1] and lines[1].endswith("4.00 GPU h")
    assert "none yet" in round_lines({}, 10.0)[0]
    # 2 of the 10 hours priced from measured stacks (their sharing in): 8 x 0.4 + 2
    assert round_lines(ratios, 10.0, 2.0)[1].endswith("5.20 GPU h (2.00 h of it from measured stacks, as they are)")


def test_measured_stacks_price_their_jobs_by_hand(tmp_path):
    store, bench = tmp_path / "results", tmp_path / "results" / "bench"
    rec = gpu_record("parity_check", "hawk", A, 0.040, evals=1, eval_s=2.0, stacked=True)
    rec.measure["device_processes"] = 8  # 8 workers shared the GPU, 4 instances in the stack
    write_record(store, rec)
    unshared = gpu_record("even_pairs", "hawk", A, 0.040, evals=1, eval_s=2.0, stacked=True)
    write_record(store, unshared)  # no device_processes: its sharing is unknown, so it prices nothing
    run = tiny("parity_check", "hawk", eval_every=50)  # 5 batches a run
    est = estimate([("parity", {"configs": [run] * 4}), ("even", {"configs": [tiny("even_pairs", "hawk")]})],
                   store, bench)
    parity = est.tasks["parity_check"]
    # per instance: 0.040 / (8 x 4) = 1.25 ms a step (the GPU ran all 8 stacks of 4 in that time);
    # evaluation (2.0 s / (8 x 4)) over 1 x 6 + 16 batches evaluated (a record before packing), x 5 a run
    assert parity["train"] * 3600 == pytest.approx(100 * 4 * 0.040 / 32)
    assert parity["eval"] * 3600 == pytest.approx(4 * 5 * 2.0 / 32 / 22)
    assert est.measured_pairs == 1 and est.tasks["even_pairs"]["unknown"] == 1
    assert est.measured_hours == pytest.approx(parity["train"] + parity["eval"])
    assert est.speedups[("parity", "hawk", 4)] == (1.0, "measured stacks of parity_check hawk in the store")


def test_a_model_timed_on_another_task_only_is_priced_from_it_by_hand(tmp_path):
    """gla timed run by run on parity_check only (0.01 s a step, 0.1 s an evaluation batch, 2000 tokens a
    step): a gla run on even_pairs (4000 tokens a step, from hawk's record) is priced at twice those
    times, and the plan lists where they came from; a model timed nowhere stays unestimated."""
    from seqlib.book.plan import plan_lines

    store, bench = tmp_path / "results", tmp_path / "results" / "bench"
    write_record(store, gpu_record("parity_check", "gla", A, 0.010, evals=2, eval_s=1.2))
    hawk = gpu_record("even_pairs", "hawk", A, 0.020)
    hawk.measure["train_tokens"] = 4000
    write_record(store, hawk)
    gla, gsa = tiny("even_pairs", "gla", eval_every=50), tiny("even_pairs", "gsa", eval_every=50)  # 5 batches a run
    jobs = [("gla", {"configs": [gla]}), ("gsa", {"configs": [gsa]})]
    even = estimate(jobs, store, bench).tasks["even_pairs"]
    assert even["unknown"] == 1  # gsa
    assert even["train"] * 3600 == pytest.approx(100 * 0.010 * 2)
    assert even["eval"] * 3600 == pytest.approx(5 * 0.1 * 2)
    assert any("1 (task, model) pair(s) priced from the same model on another task" in line
               and "even_pairs gla from parity_check" in line for line in plan_lines(jobs, store, bench))


def test_a_model_timed_on_another_task_takes_the_other_models_ratio_by_hand(tmp_path):
    """gla timed on parity_check only (0.010 s a step); hawk on parity_check (0.020) and on even_pairs
    (0.030: 1.5 times): gla's even_pairs run is priced at 1.5 x its parity step, not at the ratio of
    tokens per step. Measured stacks carry over alike, and a superseded record of the store still
    times: deltanet's parity stack (in results/superseded/) and hawk's stacks on both tasks (even_pairs
    costs hawk 3 times parity) price deltanet's even_pairs stack at 3 x its own."""
    from seqlib.book.plan import plan_lines

    store, bench = tmp_path / "results", tmp_path / "results" / "bench"
    write_record(store, gpu_record("parity_check", "gla", A, 0.010, evals=2, eval_s=1.2))
    write_record(store, gpu_record("parity_check", "hawk", A, 0.020, evals=2, eval_s=1.2))
    hawk = gpu_record("even_pairs", "hawk", A, 0.030, evals=2, eval_s=1.2)
    hawk.measure["train_tokens"] = 8000  # 4 times the tokens: the token ratio would say 4 x
    write_record(store, hawk)
    jobs = [("gla", {"configs": [tiny("even_pairs", "gla")]})]
    assert estimate(jobs, store, bench).tasks["even_pairs"]["train"] * 3600 == pytest.approx(100 * 0.010 * 1.5)
    assert any("even_pairs gla from parity_check x the ratio of 1 other model(s)" in line
               for line in plan_lines(jobs, store, bench))
    stacks = tmp_path / "stacks"
    for folder, task, model, step in ((stacks / "superseded" / "old", "parity_check", "deltanet", 0.040),
                                      (stacks, "parity_check", "hawk", 0.040), (stacks, "even_pairs", "hawk", 0.120)):
        rec = gpu_record(task, model, A, step, evals=1, eval_s=2.0, stacked=True)
        rec.measure["device_processes"] = 8
        write_record(folder, rec)
    est = estimate([("deltanet", {"configs": [tiny("even_pairs", "deltanet")] * 4})], stacks, stacks / "bench")
    assert est.tasks["even_pairs"]["train"] * 3600 == pytest.approx(100 * 4 * 3 * 0.040 / 32)
    assert est.measured_pairs == 3


def test_a_round_counts_its_finished_runs_config_steps_per_gpu_second_by_hand(tmp_path):
    """Two ok runs of one stack of 2, 8 processes on the GPU, 100 steps in 16 s of wall time each: each
    had 16 / (8 x 2) = 1 GPU-second, so 200 steps in 2 s; a failed run and one without device_processes
    count nothing."""
    from seqlib.book.plan import round_summary
    from seqlib.config import ExperimentConfig
    from seqlib.train import new_record

    store = tmp_path / "results"
    configs = []
    for seed, (status, procs) in enumerate([("ok", 8), ("ok", 8), ("failed", 8), ("ok", None)]):
        cfg = ExperimentConfig.model_validate(tiny("parity_check", "hawk"))
        cfg = cfg.for_run(1e-3, seed).model_copy(update={"run": cfg.run.model_copy(update={"results_dir": str(store)})})
        rec = new_record(cfg)
        rec.status = status
        rec.measure = {"wall_time_s": 16.0, "stack_size": 2, **({"device_processes": procs} if procs else {})}
        rec.train["steps_done"] = 100
        write_record(store, rec)
        configs.append(cfg.model_dump(mode="json"))
    summary = round_summary([("job", {"configs": configs})], 30.0, 1, 8, store, store / "bench", stopped=True)
    assert (summary["run_steps_done"], summary["gpu_share_s"]) == (200, pytest.approx(2.0))
    assert summary["config_steps_per_gpu_s"] == pytest.approx(100.0)
    assert round_summary([], 1.0, 1, 8, store, store / "bench")["config_steps_per_gpu_s"] is None
