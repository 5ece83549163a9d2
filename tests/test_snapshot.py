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
    m = resumed.measure
    assert m["tokens_per_s"] == pytest.approx(m["train_tokens"] / m["train_time_s"])
    assert m["train_time_s"] > m["resumed"]["earlier_train_time_s"] > 0
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


# -- stacks (seqlib.stack) -----------------------------------------------------------------------


def stack_runs(tiny_config, where, steps=(STEPS, STEPS, STEPS)):
    base = tiny_config(where, "hawk", "parity_check", steps=STEPS, warmup_steps=2,
                       run_kw={"eval_every": EVERY, "log_every": 1})
    return [base.for_run(lr, 0).model_copy(update={"optim": base.for_run(lr, 0).optim.model_copy(update={"steps": n})})
            for lr, n in zip((1e-3, 3e-3, 1e-2), steps)]


def stop_stack(monkeypatch, cfgs, at: int) -> None:
    """Train ``cfgs`` as a stack until the batch of step ``at`` is drawn, then stop it from outside."""
    import seqlib.stack as stack_module

    get = stack_module.Prefetcher.get

    def get_or_stop(self, step, seeds):
        if step == at:
            raise KeyboardInterrupt
        return get(self, step, seeds)

    with monkeypatch.context() as m:
        m.setattr(stack_module.Prefetcher, "get", get_or_stop)
        with pytest.raises(KeyboardInterrupt):
            stack_module.run_stack(cfgs)


@pytest.mark.parametrize("steps", [(STEPS, STEPS, STEPS), (4, STEPS, STEPS)])
def test_a_stopped_stack_resumes_with_the_runs_not_yet_recorded(tmp_path, tiny_config, monkeypatch, steps):
    """A stack stopped after its validation at step 6 goes on from there (a run that ended at step 4
    wrote its record and is not in the snapshot) and ends as the stack that was never stopped."""
    from seqlib.stack import run_stack

    whole = [o.record for o in run_stack(stack_runs(tiny_config, tmp_path / "whole", steps))]
    cfgs = stack_runs(tiny_config, tmp_path / "stopped", steps)
    stop_stack(monkeypatch, cfgs, 7)
    live = [c for c, n in zip(cfgs, steps) if n > 6]
    assert snapshot.stack_file(live).exists() and len(list(snapshot.stack_file(live).parent.iterdir())) == 1
    outcomes = run_stack(cfgs)
    for o, w, n in zip(outcomes, whole, steps):
        same_run(o.record, w)
        assert o.reused == (n <= 6) and (o.reused or o.record.measure["resumed"]["from_step"] == 6)
        assert o.record.measure["train_tokens"] == w.measure["train_tokens"]
        m = o.record.measure  # totals over both parts, as a run alone records them
        assert m["tokens_per_s"] == pytest.approx(m["train_tokens"] / m["train_time_s"])
        assert o.reused or m["train_time_s"] > m["resumed"]["earlier_train_time_s"] > 0
    assert not (tmp_path / "stopped" / snapshot.PARTIAL).exists()


def test_a_failed_stack_leaves_no_snapshot(tmp_path, tiny_config, monkeypatch):
    import seqlib.stack as stack_module

    cfgs = stack_runs(tiny_config, tmp_path)
    stop_stack(monkeypatch, cfgs, 7)
    get = stack_module.Prefetcher.get

    def get_or_fail(self, step, seeds):
        if step == 8:
            raise RuntimeError("a device error")
        return get(self, step, seeds)

    monkeypatch.setattr(stack_module.Prefetcher, "get", get_or_fail)
    outcomes = stack_module.run_stack(cfgs)
    assert all(o.record.status == "failed" and "a device error" in o.record.reason for o in outcomes)
    assert not (tmp_path / snapshot.PARTIAL).exists()
