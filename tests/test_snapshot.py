"""A run stopped from outside goes on from its last validation's snapshot (seqlib.snapshot), and ends
as the run that was never stopped; a failed run, another configuration or other code start afresh."""

from __future__ import annotations

import pytest

from seqlib import snapshot
from seqlib.objective import derive_seed
from seqlib.tasks import get_task
from seqlib.train import execute, new_record, run_one

STEPS, EVERY = 9, 2


def stopping(cfg, at: int, exc: BaseException):
    """The run's task, raising ``exc`` when the batch of step ``at`` is drawn."""
    task = get_task(cfg.task.name, **cfg.task.params)
    sample, hit = task.sample, derive_seed("train", cfg.optim.seeds[0], at)

    def sample_or_stop(split, n, seed, **kw):
        if split == "train" and seed == hit:
            raise exc
        return sample(split, n, seed, **kw)

    task.sample = sample_or_stop
    return task


@pytest.fixture
def runs(tmp_path, tiny_config):
    def make(where: str):
        return tiny_config(tmp_path / where, "hawk", "parity_check", steps=STEPS, warmup_steps=2,
                           run_kw={"eval_every": EVERY, "log_every": 1}).for_run(3e-3, 0)
    return make


def same_run(a, b) -> None:
    assert a.train["loss_curve"] == b.train["loss_curve"] and a.train["eval_curve"] == b.train["eval_curve"]
    assert a.train["steps_done"] == b.train["steps_done"] and a.train["stop_reason"] == b.train["stop_reason"]
    assert a.metrics == b.metrics and a.status == b.status == "ok"


def stop(cfg, at: int) -> None:
    with pytest.raises(KeyboardInterrupt):
        execute(cfg, new_record(cfg), stopping(cfg, at, KeyboardInterrupt()))


def test_a_stopped_run_resumes_at_its_last_validation_and_ends_as_if_never_stopped(runs):
    whole_cfg, cfg = runs("whole"), runs("stopped")
    whole = run_one(whole_cfg).record
    assert not snapshot.snapshot_file(whole_cfg).parents[2].exists()  # a finished run leaves no folder behind
    stop(cfg, 5)  # validations after steps 2 and 4: the snapshot holds 4 steps
    assert snapshot.snapshot_file(cfg).exists()
    resumed = run_one(cfg).record
    same_run(resumed, whole)
    assert resumed.measure["resumed"]["from_step"] == 4 and "resumed" not in whole.measure
    assert resumed.measure["train_tokens"] == whole.measure["train_tokens"]
    assert not snapshot.snapshot_file(cfg).parents[2].exists()


def test_a_failed_run_leaves_no_snapshot_and_the_next_starts_afresh(runs):
    whole = run_one(runs("whole")).record
    cfg = runs("failed")
    stop(cfg, 5)
    failed = run_one(cfg, task=stopping(cfg, 7, RuntimeError("a device error"))).record
    assert failed.status == "failed" and "a device error" in failed.reason
    assert failed.measure["resumed"]["from_step"] == 4 and not snapshot.snapshot_file(cfg).exists()
    again = run_one(cfg).record
    same_run(again, whole)
    assert "resumed" not in again.measure


@pytest.mark.parametrize("change", ["code", "configuration", "torn"])
def test_a_snapshot_of_other_code_or_another_configuration_is_not_used(runs, monkeypatch, capsys, change):
    whole = run_one(runs("whole")).record
    cfg = runs("changed")
    stop(cfg, 5)
    path = snapshot.snapshot_file(cfg)
    if change == "code":
        monkeypatch.setattr(snapshot, "_code", lambda: "another seqlib")
    elif change == "configuration":
        other = runs("other").for_run(1e-3, 0)
        stop(other, 5)
        path.write_bytes(snapshot.snapshot_file(other).read_bytes())
    else:
        path.write_bytes(path.read_bytes()[:100])
    again = run_one(cfg).record
    same_run(again, whole)
    assert "resumed" not in again.measure
    expected = {"code": "another code", "configuration": "another configuration", "torn": "cannot be read"}[change]
    assert expected in capsys.readouterr().err


def test_a_store_that_cannot_take_a_snapshot_costs_the_snapshot_not_the_run(runs, monkeypatch, capsys):
    whole = run_one(runs("whole")).record

    def full_disk(*args, **kwargs):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(snapshot, "save", full_disk)
    same_run(run_one(runs("full")).record, whole)
    assert "no snapshot of parity_check/hawk" in capsys.readouterr().err
