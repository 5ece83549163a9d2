"""Bad input to ``python -m seqlib`` and ``python -m seqlib.book.grid`` stops before any work with a short
message naming the problem on stderr and a non-zero exit status (2 for a usage error), never a traceback,
a hang, a run that fails later, or a silent exit 0."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import torch
import yaml

from seqlib.config import ConfigError, load_config
from seqlib.provenance import REPO

TIMEOUT = 120  # s per command: a hang fails the test instead of blocking the suite
FAST = ["--no-progress", "--set", "optim.steps=3", "--set", "optim.warmup_steps=1", "--set", "run.eval_size=8"]
needs_no_cuda = pytest.mark.skipif(torch.cuda.is_available(), reason="CUDA is available here")


def run(*args: str, cwd: Path = REPO) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", *args], cwd=cwd, capture_output=True, text=True, timeout=TIMEOUT)


def assert_refused(proc: subprocess.CompletedProcess, *words: str, code: int = 2) -> None:
    """Exit status ``code``, every word in stderr, no traceback, and a short message."""
    err = proc.stderr
    assert proc.returncode == code, (proc.returncode, err[-2000:])
    assert "Traceback" not in err, err[-2000:]
    for word in words:
        assert word in err, (word, err[-2000:])
    assert len(err) < 4000, f"{len(err)} characters on stderr"


@pytest.fixture(scope="module")
def store(tmp_path_factory) -> tuple[Path, str]:
    """A results store with one finished smoke run (and its checkpoint); its run id."""
    root = tmp_path_factory.mktemp("store")
    proc = run("seqlib", "train", "--task", "parity_check", "--model", "hawk", "--results-dir", str(root), *FAST)
    assert proc.returncode == 0, proc.stderr[-2000:]
    return root, next(root.rglob("*.json")).stem


@pytest.fixture
def params(tmp_path) -> Path:
    """A copy of the repository's params directory, to break."""
    return Path(shutil.copytree(REPO / "params", tmp_path / "params"))


# --------------------------------------------------------------------------- seqlib eval


def test_eval_rejects_bad_arguments(store, tmp_path):
    root, run_id = store
    no_ckpt = tmp_path / "no_ckpt"  # the record without its checkpoint
    (no_ckpt / "parity_check" / "hawk").mkdir(parents=True)
    shutil.copy(next(root.rglob("*.json")), no_ckpt / "parity_check" / "hawk")
    cases = [
        (["deadbeef", "--dir", str(root)], ["'deadbeef'", "matches no record"]),
        ([run_id, "--dir", str(root), "--split", "nosuch"], ["unknown split", "'nosuch'", "'test'"]),
        ([run_id, "--dir", str(no_ckpt)], [run_id, "no checkpoint"]),
        ([run_id, "--dir", str(tmp_path / "missing")], ["results directory", "does not exist"]),
        ([run_id, "--dir", str(root), "--n", "-5"], ["--n", "must be >= 1, got -5"]),
        ([run_id, "--dir", str(root), "--n", "0"], ["--n", "must be >= 1, got 0"]),
        ([run_id, "--dir", str(root), "--task-param", "nosuch_param=3"], ["--task-param", "nosuch_param"]),
        ([run_id, "--dir", str(root), "--task-param", "garbage"], ["--task-param 'garbage'", "key.sub=value"]),
    ]
    if not torch.cuda.is_available():
        cases.append(([run_id, "--dir", str(root), "--device", "cuda"], ["--device cuda", "CUDA is not available"]))
    for argv, words in cases:
        assert_refused(run("seqlib", "eval", *argv), *words)


# --------------------------------------------------------------------------- seqlib results


def test_results_rejects_unknown_metric_split_and_missing_dir(store, tmp_path):
    root, _ = store
    assert_refused(run("seqlib", "results", "--dir", str(root), "--metric", "acuracy"),
                   "--metric", "'acuracy'", "accuracy")
    assert_refused(run("seqlib", "results", "--dir", str(root), "--best", "tset"), "--best", "'tset'", "test")
    assert_refused(run("seqlib", "results", "--dir", str(tmp_path / "missing")), "results directory",
                   "does not exist")
    ok = run("seqlib", "results", "--dir", str(root), "--best", "test")
    assert ok.returncode == 0 and "parity_check" in ok.stdout, ok.stderr[-2000:]


# --------------------------------------------------------------------------- configuration (seqlib train)


def train(tmp_path, *extra: str) -> subprocess.CompletedProcess:
    return run("seqlib", "train", "--task", "parity_check", "--model", "transformer",
               "--results-dir", str(tmp_path / "results"), *FAST, *extra)


def assert_no_run(proc, tmp_path, *words):
    """A config error of `train` (exit status 1, as every failed pair), found before any run started."""
    assert_refused(proc, "config error", *words, code=1)
    assert not list((tmp_path / "results").rglob("*.json")), "a run was recorded"


@pytest.mark.parametrize("value", [".inf", "-.inf", ".nan"])
def test_non_finite_float_is_a_config_error(tmp_path, value):
    assert_no_run(train(tmp_path, "--set", f"optim.lr={value}"), tmp_path, "optim.lr", "finite",
                  f"--set optim.lr={value}")


def test_non_finite_task_param_is_a_config_error():
    with pytest.raises(ConfigError, match="task.params.seq_len: inf is not a finite number"):
        load_config("flipflop", "hawk", "smoke", ["task.params.seq_len=.inf"])


@needs_no_cuda
def test_cuda_without_cuda_is_a_config_error(tmp_path):
    assert_no_run(train(tmp_path, "--set", "run.device=cuda"), tmp_path, "run.device", "CUDA is not available",
                  "--set run.device=cuda")


def test_cuda_device_check_follows_cuda_availability(monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)  # the GPU path still resolves
    assert load_config("parity_check", "hawk", "smoke", ["run.device=cuda"]).run.device == "cuda"
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    with pytest.raises(ConfigError, match="run.device: cuda, but CUDA is not available"):
        load_config("parity_check", "hawk", "smoke", ["run.device=cuda"])


def test_max_len_below_the_longest_sequence_is_a_config_error(tmp_path):
    # smoke parity_check: test lengths up to 20, so sequences of 21 positions (the query token)
    learned = ["--set", "model.pos_encoding=learned"]
    assert_no_run(train(tmp_path, *learned, "--set", "model.max_len=10"), tmp_path, "model.max_len",
                  "max_len >= 21", "--set model.max_len=10")
    over = ["model.pos_encoding=learned", "model.max_len=21"]
    assert load_config("parity_check", "transformer", "smoke", over).model.max_len == 21
    with pytest.raises(ConfigError, match="model.max_len"):
        load_config("parity_check", "transformer", "smoke", [*over, "task.params.max_test_length=40"])
    # other position encodings do not read max_len
    assert load_config("parity_check", "transformer", "smoke", ["model.max_len=10"]).model.max_len == 10


def test_missing_params_directory_is_named(tmp_path):
    assert_no_run(train(tmp_path, "--params", str(tmp_path / "nope")), tmp_path, "params directory",
                  "does not exist")


def test_typo_in_an_unselected_profile_is_an_error(tmp_path, params):
    text = (params / "defaults.yaml").read_text()
    line = "      results_dir: results/scratch/tiny"  # in profiles.tiny; the run selects smoke
    assert text.count(line) == 1
    (params / "defaults.yaml").write_text(text.replace(line, "      eval_sise: 4\n" + line))
    assert_no_run(train(tmp_path, "--params", str(params)), tmp_path, "defaults.yaml", "[profiles.tiny]",
                  "run.eval_sise")


@pytest.mark.parametrize("fname, old, new, words", [
    ("models.yaml", "    transformer: *tiny_size\n", "    transformer: {d_modle: 8}\n",
     ["model.d_modle", "models.yaml [profiles.tiny] [transformer]"]),
    ("tasks.yaml", "params: {seq_len: 32}\n", "params: {seq_len: 32, seq_lenn: 8}\n",
     ["task.params.seq_lenn", "tasks.yaml [profiles.tiny] [flipflop]"]),
])
def test_typo_in_any_profile_of_any_params_file(params, fname, old, new, words):
    text = (params / fname).read_text()
    assert text.count(old) == 1
    (params / fname).write_text(text.replace(old, new))
    for profile in ("smoke", "full"):  # neither selects the broken tiny profile
        with pytest.raises(ConfigError) as exc:
            load_config("parity_check", "hawk", profile, [], params)
        for word in words:
            assert word in str(exc.value)


def test_binary_params_file_is_named(tmp_path, params):
    (params / "models.yaml").write_bytes(b"\xff\xfe\x00\x01binary\x89PNG\r\n")
    assert_no_run(train(tmp_path, "--params", str(params)), tmp_path, "models.yaml", "not a UTF-8 text file")


def test_yaml_alias_bomb_is_not_echoed(tmp_path):
    """An alias bomb (9^5 numbers from a few lines) once printed its whole value: the message stays short."""
    bomb = tmp_path / "bomb"
    bomb.mkdir()
    levels = ["&a [1, 1, 1, 1, 1, 1, 1, 1, 1]"] + [
        f"&{b} [{', '.join([f'*{a}'] * 9)}]" for a, b in zip("abcd", "bcde", strict=True)]
    (bomb / "defaults.yaml").write_text(f"optim:\n  lr_sweep: [{', '.join(levels)}]\nprofiles: {{smoke: {{}}}}\n")
    (bomb / "models.yaml").write_text("{}\n")
    (bomb / "tasks.yaml").write_text("{}\n")
    proc = train(tmp_path, "--params", str(bomb))
    assert_no_run(proc, tmp_path, "optim.lr_sweep", "characters)", "defaults.yaml")


# --------------------------------------------------------------------------- python -m seqlib.book.grid


def grid(*args: str) -> subprocess.CompletedProcess:
    return run("seqlib.book.grid", "--train-only", *args)


def test_grid_unknown_profile():
    assert_refused(grid("--profile", "huge"), "--profile", "unknown profile 'huge'", "smoke")


def test_grid_negative_workers_is_refused_not_a_hang():
    assert_refused(grid("--workers", "-1"), "--workers must be >= 1", "got -1")


def test_grid_missing_binary_or_malformed_grid_file(tmp_path):
    assert_refused(grid("--grid", str(tmp_path / "nope.yaml")), "--grid", "nope.yaml", "does not exist")
    binary = tmp_path / "binary.yaml"
    binary.write_bytes(b"\x89PNG\r\n\x1a\n\x00\xff\xfe")
    assert_refused(grid("--grid", str(binary)), "--grid", "binary.yaml", "not a UTF-8 text file")
    bad = tmp_path / "bad.yaml"
    bad.write_text("runs: [1, 2]\n")
    assert_refused(grid("--grid", str(bad)), "--grid", "bad.yaml", "`runs:` list")
    bad.write_text("runs: [{chapter: no_such_chapter}]\n")
    assert_refused(grid("--grid", str(bad)), "no_such_chapter", "has no notebook")


def test_grid_workers_zero_is_sequential(tmp_path):
    empty = tmp_path / "grid.yaml"
    empty.write_text("runs: []\n")
    proc = grid("--grid", str(empty), "--workers", "0")
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert "sequential, in this process" in proc.stdout


@pytest.mark.parametrize("name", ["x=__import__('os').system('touch PWNED')#", "class", "1st", "a b"])
def test_grid_parameter_names_must_be_identifiers(tmp_path, name):
    """papermill writes ``name = value`` into the notebook unescaped: a name that is not an identifier
    (or is a keyword) is refused before anything runs, and no code in it runs."""
    bad = tmp_path / "grid.yaml"
    bad.write_text(yaml.safe_dump({"runs": [{"chapter": "rg_lru", "params": {name: 1}}]}))
    proc = grid("--grid", str(bad))
    assert_refused(proc, "grid.yaml", "must be a Python identifier")
    assert not (REPO / "PWNED").exists() and not (tmp_path / "PWNED").exists()
