"""One provenance for run records, executed notebooks and benchmark records."""

from __future__ import annotations

import dataclasses

import torch

from seqlib.bench.record import environment
from seqlib.provenance import Provenance, collect, this_process


def test_this_process_names_commit_device_versions_and_start():
    prov = this_process("cpu")
    assert prov.device == "cpu" and prov.device_name.startswith("cpu (") and prov.end_time is None
    assert set(prov.versions) == {"python", "torch", "cuda", "triton", "fla-core", "flash-linear-attention"}
    assert prov.versions["torch"] == torch.__version__
    assert Provenance(**prov.to_dict()) == prov


def test_short_commit_marks_dirty_and_unknown():
    prov = this_process("cpu")
    assert dataclasses.replace(prov, commit="0123456789abcdef", dirty=True).short_commit == "0123456-dirty"
    assert dataclasses.replace(prov, commit="0123456789abcdef", dirty=None).short_commit == "0123456"
    assert dataclasses.replace(prov, commit=None).short_commit == "unknown"


def test_benchmark_records_keep_the_keys_the_efficiency_chapter_reads(monkeypatch):
    monkeypatch.setenv("SEQLIB_COMMIT", "feedface" * 5)
    env = environment()
    assert env["commit"] == "feedface" * 5 and env["dirty"] is None
    assert env["device"] == this_process().device_name and env["time"][:4].isdigit()
    assert env["versions"]["torch"] == torch.__version__


def test_the_notebook_provenance_line(monkeypatch):
    from seqlib.book.chapter import provenance_markdown

    monkeypatch.setenv("SEQLIB_COMMIT", "feedface" * 5)
    record = collect("smoke", seed=3)
    assert record["profile"] == "smoke" and record["params"] == {"seed": 3}
    text = provenance_markdown(record)
    assert "profile `smoke`" in text and "commit `feedfac`" in text and "`seed=3`" in text
    assert f"torch {torch.__version__}" in text and " UTC · " in text and "not results" in text
    assert "not results" not in provenance_markdown(collect("full"))
    assert "not results" not in provenance_markdown(collect("book"))  # the committed book's GPU profile


def test_only_the_cpu_profiles_say_their_numbers_are_not_results():
    from seqlib.book.chapter import profile_note

    assert profile_note("full") == profile_note("book") == ""
    assert "not results" in profile_note("smoke") and "not results" in profile_note("tiny")
