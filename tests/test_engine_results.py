"""Results store: atomic records, resume after a crash, corrupt-record reporting, tidy frame, stats."""

from __future__ import annotations

import dataclasses
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from seqlib import results
from seqlib.provenance import this_process
from seqlib.record import RunRecord
from seqlib.results import ResultsError, load_records, load_results, records_frame, write_record
from seqlib.stats import best_over_lr, length_curve, summarize_seeds
from seqlib.train import run_sweep

REPO = Path(__file__).resolve().parent.parent


def _files(root: Path) -> list[str]:
    return sorted(p.name for p in root.rglob("*") if p.is_file())


def test_interrupted_sweep_resumes_without_half_written_records(tmp_path, tiny_config, tampered):
    cfg = tiny_config(tmp_path, seeds=[0, 1, 2], steps=3)

    def crash(batch):
        raise KeyboardInterrupt("simulated crash in the middle of seed 1")

    with pytest.raises(KeyboardInterrupt):
        run_sweep(cfg, task=tampered(cfg, crash, run_seed=1, steps=(2,)))
    done = load_records(tmp_path, strict=True)
    assert [r.seed for r in done] == [0] and done[0].status == "ok"
    assert not any(name.endswith(results.TMP_SUFFIX) for name in _files(tmp_path))
    first = done[0].provenance.start_time

    outcomes = run_sweep(cfg)
    assert [o.reused for o in outcomes] == [True, False, False]
    assert outcomes[0].record.provenance.start_time == first
    assert sorted(r.seed for r in load_records(tmp_path, strict=True)) == [0, 1, 2]
    assert [o.reused for o in run_sweep(cfg)] == [True, True, True]
    assert [o.reused for o in run_sweep(cfg, force=True)] == [False, False, False]


def test_a_failed_run_is_recorded_the_others_go_on_and_it_is_retried(tmp_path, tiny_config, tampered):
    cfg = tiny_config(tmp_path, seeds=[0, 1], steps=3)

    def boom(batch):
        raise RuntimeError("boom")

    outcomes = run_sweep(cfg, task=tampered(cfg, boom, run_seed=0, steps=(1,)))
    assert [o.record.status for o in outcomes] == ["failed", "ok"]
    assert outcomes[0].record.reason == "RuntimeError: boom" and "boom" in outcomes[0].record.traceback
    assert outcomes[0].record.train["steps_done"] == 1
    assert [o.reused for o in run_sweep(cfg)] == [False, True]  # failed runs are not "done"


def test_killed_process_leaves_only_whole_records(tmp_path):
    """SIGKILL a CLI sweep after its first record: every stored record loads, the sweep resumes."""
    cmd = [sys.executable, "-m", "seqlib", "train", "--task", "parity_check", "--model", "hawk", "--no-progress",
           "--results-dir", str(tmp_path), "--set", "optim.seeds=[0,1,2,3]", "--set", "optim.steps=8"]
    proc = subprocess.Popen(cmd, cwd=REPO, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                            env={**os.environ, "PYTHONPATH": str(REPO)})
    deadline = time.time() + 120
    while not list(tmp_path.rglob("*.json")) and time.time() < deadline and proc.poll() is None:
        time.sleep(0.05)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    assert proc.returncode == -signal.SIGKILL, proc.stderr.read().decode()
    stored = list(tmp_path.rglob("*.json"))
    assert 1 <= len(stored) < 4
    for path in stored:
        json.loads(path.read_text())  # never half-written
    for path in tmp_path.rglob(f"*{results.TMP_SUFFIX}"):
        path.unlink()  # a kill inside a write may leave a temp file; the loader reports it (tested below)
    from seqlib.config import load_config

    cfg = load_config("parity_check", "hawk", "smoke", ["optim.seeds=[0,1,2,3]", "optim.steps=8",
                                                        f"run.results_dir={tmp_path}", "run.progress=false"])
    outcomes = run_sweep(cfg)
    assert sum(o.reused for o in outcomes) == len(stored)
    assert len(load_records(tmp_path, strict=True)) == 4


def test_atomic_write_leaves_nothing_when_the_rename_fails(tmp_path, monkeypatch, tiny_config):
    cfg = tiny_config(tmp_path, steps=2)
    record = run_sweep(cfg)[0].record
    path = results.record_path(tmp_path, record.task, record.model, record.config_hash)
    before = path.read_bytes()

    def fail(*args):
        raise OSError("disk full")

    monkeypatch.setattr(results.os, "replace", fail)
    with pytest.raises(OSError, match="disk full"):
        write_record(tmp_path, dataclasses.replace(record, seed=99))
    assert path.read_bytes() == before
    assert not any(name.endswith(results.TMP_SUFFIX) for name in _files(tmp_path))


def test_corrupt_and_partial_records_are_reported_never_read(tmp_path, tiny_config):
    cfg = tiny_config(tmp_path, steps=2)
    good = run_sweep(cfg)[0].record
    folder = tmp_path / good.task / good.model
    (folder / "truncated.json").write_text(json.dumps(good.to_json())[:200])
    (folder / "wrong.json").write_text(json.dumps(good.to_json() | {"status": "maybe"}))
    (folder / ".x.json.abc.tmp").write_text("{")
    with pytest.warns(UserWarning) as caught:
        df = load_results(tmp_path)
    messages = " ".join(str(w.message) for w in caught)
    assert "truncated.json" in messages and "wrong.json" in messages and ".x.json.abc.tmp" in messages
    assert set(df["run_id"]) == {good.run_id}
    with pytest.raises(ResultsError, match="truncated.json|wrong.json|tmp"):
        load_results(tmp_path, strict=True)
    with pytest.raises(ValueError, match="invalid record"):
        write_record(tmp_path, dataclasses.replace(good, status="maybe"))


def test_tidy_frame_has_one_row_per_run_split_slice_metric(tmp_path, tiny_config):
    cfg = tiny_config(tmp_path, steps=2, run_kw={"eval_splits": ["val", "test"]})
    ok = run_sweep(cfg)[0].record
    df = load_results(tmp_path)
    assert df["run_id"].nunique() == 1 and set(df["split"]) == {"val", "test"}
    whole = df[df["slice_key"] == "all"]
    assert set(whole["metric"]) >= {"accuracy", "example_accuracy", "exact_match", "scaled_accuracy",
                                    "glitch_rate", "loss", "perplexity"}
    assert not whole.duplicated(["split", "metric"]).any()
    lengths = sorted(df[(df["slice_key"] == "length") & (df["split"] == "test")]["slice_value"].astype(int).unique())
    assert lengths == [7, 8]  # the test split's lengths: train_max_length+1 .. max_test_length
    acc = whole.set_index(["split", "metric"])["value"]
    assert acc[("test", "glitch_rate")] == pytest.approx(1 - acc[("test", "accuracy")])
    assert acc[("test", "scaled_accuracy")] == pytest.approx((acc[("test", "accuracy")] - 0.5) / 0.5)
    assert df["num_params"].iloc[0] == ok.measure["num_params"] > 0
    for key in ("state_size", "tokens_per_s", "step_time_s", "peak_memory_bytes", "wall_time_s"):
        assert df[key].iloc[0] > 0, key
    prov = ok.provenance
    assert prov.versions["torch"] and prov.start_time <= prov.end_time and prov.device == "cpu"
    assert df["git_commit"].iloc[0] == prov.commit and df["device_name"].iloc[0] == prov.device_name
    curve = length_curve(df, "test")
    assert list(curve["length"]) == [7, 8]


def test_failed_and_skipped_runs_appear_in_the_frame():
    rec = RunRecord(run_id="r1", config_hash="r1" * 32, status="skipped", reason="no GPU", task="t", model="m",
                    lr=1e-3, seed=0, config={}, provenance=this_process("cpu"))
    df = records_frame([rec])
    assert len(df) == 1 and df["status"].iloc[0] == "skipped" and np.isnan(df["value"].iloc[0])


def test_best_over_lr_picks_the_best_mean_over_seeds():
    rows = []
    for lr, values in {1e-3: [0.9, 0.1], 3e-3: [0.6, 0.6]}.items():  # best single seed at 1e-3, best mean at 3e-3
        for seed, v in enumerate(values):
            rows.append({"task": "t", "model": "m", "profile": "p", "lr": lr, "seed": seed, "status": "ok",
                         "split": "test", "slice_key": "all", "metric": "accuracy", "value": v})
    best = best_over_lr(pd.DataFrame(rows), "test")
    assert set(best["lr"]) == {3e-3} and len(best) == 2
    summary = summarize_seeds(best)
    assert summary["mean"].iloc[0] == pytest.approx(0.6) and summary["n_seeds"].iloc[0] == 2


def test_the_cells_stores_locks_are_no_records_but_a_stray_file_is_reported(tmp_path, tiny_config):
    """A store's cells store keeps its locks in ``cells/.locks`` (as deep as a record): the loader skips
    hidden folders silently, and still names a stray file among the records."""
    record = run_sweep(tiny_config(tmp_path, steps=2))[0].record
    (tmp_path / "cells" / ".locks").mkdir(parents=True)
    (tmp_path / "cells" / ".locks" / "0123456789abcdef.lock").write_text("")
    assert [r.run_id for r in load_records(tmp_path, strict=True)] == [record.run_id]
    stray = results.record_path(tmp_path, record.task, record.model, record.config_hash).with_name("notes.txt")
    stray.write_text("x")
    with pytest.raises(ResultsError, match="unexpected file .*notes.txt among the result records"):
        load_records(tmp_path, strict=True)


def test_merged_archives_restore_the_better_record_and_never_lose_a_result(tmp_path):
    """A warm GPU machine's earlier calls' records, restored into a tree that a call replaced
    (scripts/gpu_node.sh round): an ``ok`` record takes the place of a failed or missing one, a failed
    one never of an ``ok`` one, the later of two alike wins, a round record is written only where there
    is none, and a member outside the tree is refused."""
    import io
    import tarfile

    def record(status: str, end: str) -> dict:
        return {"status": status, "run_id": "r", "provenance": {"end_time": end}}

    def archive(name: str, files: dict[str, dict]) -> Path:
        path = tmp_path / name
        with tarfile.open(path, "w:gz") as tar:
            for member, content in files.items():
                data = json.dumps(content).encode()
                info = tarfile.TarInfo(member)
                info.size = len(data)
                tar.addfile(info, io.BytesIO(data))
        return path

    tree = tmp_path / "tree"
    stored = {"results/t/m/ok.json": record("ok", "2026-12-01"), "results/t/m/failed.json": record("failed", "2026-12-01"),
              "results/t/m/old.json": record("failed", "2026-12-01"), "results/bench/round.json": {"round": 1}}
    for name, content in stored.items():
        (tree / name).parent.mkdir(parents=True, exist_ok=True)
        (tree / name).write_text(json.dumps(content))
    first = archive("a.tar.gz", {"results/t/m/ok.json": record("failed", "2026-12-03"),      # kept: ok stays
                                 "results/t/m/failed.json": record("ok", "2026-11-30"),      # ok wins
                                 "results/t/m/old.json": record("failed", "2026-12-02"),     # later wins
                                 "results/t/m/new.json": record("failed", "2026-12-02"),     # none there
                                 "results/bench/round.json": {"round": 2}})                  # kept
    second = archive("b.tar.gz", {"results/t/m/new.json": record("ok", "2026-12-01")})     # ok wins
    assert results.merge_archives([first, second], tree) == (4, 2)
    got = {name: json.loads((tree / name).read_text()) for name in [*stored, "results/t/m/new.json"]}
    assert got["results/t/m/ok.json"] == record("ok", "2026-12-01")
    assert got["results/t/m/failed.json"] == record("ok", "2026-11-30")
    assert got["results/t/m/old.json"] == record("failed", "2026-12-02")
    assert got["results/t/m/new.json"] == record("ok", "2026-12-01")
    assert got["results/bench/round.json"] == {"round": 1}
    with pytest.raises(ResultsError, match="outside"):
        results.merge_archives([archive("c.tar.gz", {"../escape.json": record("ok", "2026-12-01")})], tree)
    assert not (tmp_path / "escape.json").exists()
