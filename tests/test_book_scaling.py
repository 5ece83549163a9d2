"""The grid's scaling measurement (seqlib.book.scaling, issue 21) on the CPU: the same slice trains in
two passes, one in the grid's process and one on two local Dask workers, each from an empty store in a
scratch copy; every planned run is reported once and recorded, no work is duplicated or lost, both
passes do the same config-steps, and the real store is not touched."""

from __future__ import annotations

import json

import pytest

from seqlib.book import scaling
from seqlib.provenance import REPO

pytestmark = pytest.mark.book

SLICE = """runs:
  - chapter: chomsky
    task: chomsky
    train: true
    params: {subtasks: [parity_check, even_pairs]}
    models: [lstm, gru, hawk]
"""


def test_two_passes_train_the_same_slice_once_each_and_record_the_speed_up(tmp_path):
    grid = tmp_path / "grid.yaml"
    grid.write_text(SLICE)
    assert scaling.main(["--profile", "tiny", "--grid", str(grid), "--devices", "1", "2",
                         "--bench", str(tmp_path / "bench"), "--scratch", str(tmp_path / "scratch")]) == 0
    (path,) = (tmp_path / "bench").glob("grid-scaling-*.json")
    record = json.loads(path.read_text())
    assert record["kind"] == "grid-scaling" and record["device_kind"] == "cpu (local Dask workers)"
    one, two = record["passes"]
    for p in (one, two):  # 3 models x 2 tasks, one rate and seed each (tiny), 6 steps a run
        assert p["exit"] == 0, p["log_tail"]
        assert (p["planned"], p["reported"], p["recorded_ok"], p["recorded_failed"]) == (6, 6, 6, 0)
        assert (p["duplicated"], p["lost"], p["not_started"], p["config_steps"]) == ([], 0, 0, 36)
        assert p["config_steps_per_s"] == pytest.approx(36 / p["wall_s"])
    assert one["speedup"] == 1.0 and two["speedup"] == pytest.approx(two["config_steps_per_s"] / one["config_steps_per_s"])
    copy = tmp_path / "scratch" / "project"  # the passes ran the copy's code, into the copy's store
    assert len(list((copy / "results" / "scratch" / "tiny").rglob("*.json"))) == 6
    assert "local Dask cluster, 2 workers" in (copy / "pass-2.log").read_text()
    assert "sequential, in this process" in (copy / "pass-1.log").read_text()
    assert (copy / "seqlib").is_dir() and copy.resolve() != REPO.resolve()


def test_a_bad_request_is_refused_before_any_work(tmp_path, capsys):
    with pytest.raises(SystemExit) as exit_:
        scaling.main(["--devices", "0", "--bench", str(tmp_path)])
    assert exit_.value.code == 2 and "--devices" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        scaling.main(["--grid", str(tmp_path / "none.yaml")])
    assert not list(tmp_path.glob("grid-scaling-*"))
