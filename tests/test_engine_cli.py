"""The command line: help, list, train (smoke), results, eval, bench, and its exit codes."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from seqlib.cli import main

REPO = Path(__file__).resolve().parent.parent
FAST = ["--no-progress", "--set", "optim.steps=3", "--set", "optim.warmup_steps=1", "--set", "run.eval_size=8"]


def test_help_lists_every_command():
    out = subprocess.run([sys.executable, "-m", "seqlib", "--help"], cwd=REPO, capture_output=True, text=True,
                         check=True).stdout
    for word in ("train", "eval", "results", "list", "bench", "--profile", "--set"):
        assert word in out


def test_list_shows_models_and_tasks(capsys):
    assert main(["list"]) == 0
    out = capsys.readouterr().out
    for name in ("griffin", "hawk", "transformer", "lstm", "mqar", "flipflop", "parity_check"):
        assert name in out


def test_train_results_eval_round_trip(tmp_path, capsys):
    args = ["train", "--task", "parity_check", "--model", "hawk", "--results-dir", str(tmp_path), *FAST]
    assert main(args) == 0
    out = capsys.readouterr().out
    assert "ok accuracy" in out and "params" in out and "tok/s" in out and "1 ok" in out
    assert main(args) == 0
    assert "already done" in capsys.readouterr().out

    assert main(["results", "--dir", str(tmp_path)]) == 0
    table = capsys.readouterr().out
    run_id = next(p.stem for p in tmp_path.rglob("*.json"))
    assert run_id in table and "accuracy:test" in table and "hawk" in table

    out_json = tmp_path / "eval.json"
    assert main(["eval", run_id[:8], "--dir", str(tmp_path), "--split", "test", "--n", "8",
                 "--task-param", "max_test_length=14", "--json", str(out_json)]) == 0
    printed = capsys.readouterr().out
    assert "checkpoint" in printed and "accuracy" in printed
    saved = json.loads(out_json.read_text())
    lengths = {m["slice_value"] for m in saved["metrics"] if m["slice_key"] == "length"}
    assert lengths == {"13", "14"}  # smoke trains on lengths 1..12; the override extends the test split


def test_config_errors_and_failures_exit_nonzero(tmp_path, capsys):
    assert main(["train", "--task", "parity_check", "--model", "hawk", "--results-dir", str(tmp_path),
                 "--set", "optim.lr=-1"]) == 1
    err = capsys.readouterr().err
    assert "optim.lr" in err and "--set optim.lr=-1" in err
    with pytest.raises(SystemExit, match="unknown model"):
        main(["train", "--task", "mqar", "--model", "griffon"])


def test_bench_dispatch_and_unknown_name(capsys):
    with pytest.raises(SystemExit) as exc:
        main(["bench", "flops"])
    err = capsys.readouterr().err
    assert exc.value.code == 2 and "invalid choice: 'flops'" in err
    assert all(f"'{name}'" in err for name in ("scan", "attention", "models"))
    with pytest.raises(SystemExit) as exc:  # the arguments after the name reach the benchmark's own parser
        main(["bench", "models", "--help"])
    out = capsys.readouterr().out
    assert exc.value.code == 0 and out.startswith("usage: python -m seqlib bench models") and "decode" in out


NO_CUDA = """
import json, sys, torch
torch.cuda.is_available = lambda: False  # so that the refusal is tested on a GPU machine too
from seqlib.cli import main
rc = main(sys.argv[1:])
print(json.dumps({"rc": rc, "fla_imported": any(m.split(".")[0] == "fla" for m in sys.modules)}))
"""


@pytest.mark.parametrize("argv", [["scan"], ["attention"], ["models", "train"]], ids=" ".join)
def test_bench_without_cuda_exits_2_before_importing_fla(argv, tmp_path):
    env = {**os.environ, "SEQLIB_BENCH_DIR": str(tmp_path)}  # a benchmark that ran anyway writes here
    proc = subprocess.run([sys.executable, "-c", NO_CUDA, "bench", *argv], cwd=REPO, env=env,
                          capture_output=True, text=True, check=True)
    assert json.loads(proc.stdout) == {"rc": 2, "fla_imported": False}
    assert proc.stderr.strip() == f"{argv[0]} benchmark needs a CUDA GPU"


def test_bench_scan_help_works_without_a_gpu():
    proc = subprocess.run([sys.executable, "-m", "seqlib", "bench", "scan", "--help"], cwd=REPO,
                          capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.startswith("usage: python -m seqlib bench scan") and "--sweep" in proc.stdout


@pytest.mark.skipif(torch.cuda.is_available(), reason="on a GPU the benchmark would run")
def test_bench_scan_on_the_cpu_exits_2(tmp_path):
    proc = subprocess.run([sys.executable, "-m", "seqlib", "bench", "scan"], cwd=REPO, capture_output=True,
                          text=True, env={**os.environ, "SEQLIB_BENCH_DIR": str(tmp_path)})
    assert proc.returncode == 2 and proc.stderr.strip() == "scan benchmark needs a CUDA GPU"
    assert not list(tmp_path.iterdir())


def test_a_profile_table_ranks_the_operations_by_their_self_time():
    """seqlib.bench.models.top_kernels (the GPU profile of `bench models train --profile`), read here from
    a CPU profile: the operations by self time, each with its share of the total and its count."""
    from torch.profiler import ProfilerActivity, profile

    from seqlib.bench.models import top_kernels

    a, b = torch.randn(256, 256), torch.randn(256, 256)
    with profile(activities=[ProfilerActivity.CPU]) as prof:
        for _ in range(3):
            (a @ b).relu_()
    table = top_kernels(prof.key_averages(), n=2, attr="self_cpu_time_total")
    assert len(table["top"]) == 2 and table["total_ms"] > 0
    assert table["top"][0]["ms"] >= table["top"][1]["ms"] and 0 < table["top"][0]["share"] <= 1
    names = {r["name"]: r["calls"] for r in table["top"]}
    assert names.get("aten::mm", 3) == 3  # if the matmul is among the top two, it was called 3 times
    everything = top_kernels(prof.key_averages(), n=1000, attr="self_cpu_time_total")
    assert sum(r["share"] for r in everything["top"]) == pytest.approx(1.0)
