"""The downstream hook of the text chapter: items read and checked, choices scored by their bytes'
log-likelihood, and the command on a stored run, with a small local stand-in for a benchmark file."""

from __future__ import annotations

import json
import math
import subprocess
import sys

import pytest
import torch

from seqlib.downstream import read_items, score_items, summary
from seqlib.provenance import REPO
from seqlib.tasks.text import BYTES


class FixedBytes(torch.nn.Module):
    """A language model that ignores its input: p('a') = 1/2, p('b') = 1/4, the rest share 1/4."""

    def forward(self, inputs, segment_pos=None, cache=None):
        p = torch.full((BYTES + 1,), 0.25 / (BYTES - 1))
        p[ord("a")], p[ord("b")] = 0.5, 0.25
        return p.log().expand(*inputs.shape, BYTES + 1), cache


def write(tmp_path, lines: list) -> str:
    path = tmp_path / "items.jsonl"
    path.write_text("\n".join(line if isinstance(line, str) else json.dumps(line) for line in lines) + "\n")
    return str(path)


def test_the_total_and_the_per_byte_choice_can_differ():
    """'b' has the higher total log-likelihood (log 1/4 > 3 log 1/2), 'aaa' the higher per byte."""
    items = [{"context": "x", "choices": ["b", "aaa"], "answer": 0},
             {"context": "x", "choices": ["b", "aaa"], "answer": 1},
             {"context": "x", "choices": ["aa"], "answer": 0}, {"context": "x", "choices": ["ab"], "answer": 0}]
    rows = score_items(FixedBytes(), items, torch.device("cpu"))
    assert rows["accuracy"].tolist()[:2] == [1.0, 0.0] and rows["accuracy_norm"].tolist()[:2] == [0.0, 1.0]
    assert rows["greedy_match"].tolist()[2:] == [1.0, 0.0]  # greedy decoding writes 'a' after 'a'
    assert rows["bits"].tolist() == pytest.approx([2.0, 1.0, 1.0, 1.5])
    scores = summary(rows)
    assert scores == pytest.approx({"n": 4, "accuracy": 0.5, "accuracy_norm": 0.5, "greedy_match": 0.5, "bits": 1.375})


@pytest.mark.parametrize("line, message", [
    ("{not json", "items.jsonl:1: not JSON"),
    ({"context": "x", "choices": [], "answer": 0}, "'choices' must be a list of non-empty strings"),
    ({"context": "x", "choices": ["a", ""], "answer": 0}, "'choices' must be a list of non-empty strings"),
    ({"context": 3, "choices": ["a"], "answer": 0}, "'context' must be a string"),
    ({"context": "x", "choices": ["a", "b"], "answer": 2}, "'answer' must be the index of one of its 2 choices"),
])
def test_a_bad_item_names_its_line_and_problem(tmp_path, line, message):
    with pytest.raises(ValueError, match=message):
        read_items(write(tmp_path, [line]))


def test_an_empty_file_has_no_items(tmp_path):
    with pytest.raises(ValueError, match="no items"):
        read_items(write(tmp_path, [""]))


def seqlib(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "seqlib", *args], capture_output=True, text=True, cwd=REPO)


def test_the_command_scores_a_stored_text_run_and_refuses_another_task(tmp_path):
    store = tmp_path / "results"
    for task in ("text", "parity_check"):
        trained = seqlib("train", "--task", task, "--model", "lstm", "--profile", "tiny", "--results-dir", str(store),
                         "--set", "run.save_checkpoint=true", "--no-progress")
        assert trained.returncode == 0, trained.stderr
    runs = {p.parent.parent.name: p.stem for p in store.glob("*/lstm/*.json")}
    run_ids = {task: json.loads((store / task / "lstm" / f"{h}.json").read_text())["run_id"] for task, h in runs.items()}
    items = write(tmp_path, [{"context": "The cat sat on the ", "choices": ["mat", "xqz"], "answer": 0},
                             {"context": "def f(x):\n    return ", "choices": ["x"], "answer": 0}])
    out = seqlib("downstream", "--run", run_ids["text"], "--items", items, "--dir", str(store),
                 "--json", str(tmp_path / "scores.json"))
    assert out.returncode == 0, out.stderr
    scores = json.loads((tmp_path / "scores.json").read_text())
    assert scores["n"] == 2 and 0 <= scores["accuracy"] <= 1 and scores["bits"] > 0 and math.isfinite(scores["bits"])
    refused = seqlib("downstream", "--run", run_ids["parity_check"], "--items", items, "--dir", str(store))
    assert refused.returncode == 2 and "a run of the 'text' task" in refused.stderr
    bad = seqlib("downstream", "--run", run_ids["text"], "--items", str(tmp_path / "missing.jsonl"), "--dir", str(store))
    assert bad.returncode == 2 and "--items" in bad.stderr
