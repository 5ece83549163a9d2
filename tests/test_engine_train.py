"""Trainer: masking, determinism, NaN fail-fast, Muon grouping, schedule."""

from __future__ import annotations

import re

import pytest
import torch

from seqlib.models import build_model
from seqlib.objective import masked_loss
from seqlib.record import RunRecord
from seqlib.tasks import get_task
from seqlib.train import NonFiniteError, Optimizers, execute, lr_factor, new_record, run_one

MQAR = {"vocab_size": 80, "seq_len": 16, "num_kv_pairs": 2}


def _train(cfg, task=None) -> RunRecord:
    record = new_record(cfg)
    execute(cfg, record, task)
    return record


def _curve(record: RunRecord) -> list[float]:
    return [loss for _, loss in record.train["loss_curve"]]


def test_loss_ignores_targets_outside_the_mask(tiny_config):
    task = get_task("mqar", **MQAR)
    batch = task.sample("train", 4, seed=0)
    torch.manual_seed(0)
    model = build_model(tiny_config("unused", "griffin", "mqar", MQAR).model, task.spec)
    logits, _ = model(batch.inputs, batch.segment_pos)
    base = masked_loss(logits, batch.targets, batch.mask, task.spec)
    out_b, out_t = (~batch.mask).nonzero()[0].tolist()
    in_b, in_t = batch.mask.nonzero()[0].tolist()
    off = batch.targets.clone()
    off[out_b, out_t] = (off[out_b, out_t] + 7) % task.spec.num_outputs
    on = batch.targets.clone()
    on[in_b, in_t] = (on[in_b, in_t] + 7) % task.spec.num_outputs
    assert masked_loss(logits, off, batch.mask, task.spec).item() == base.item()
    assert masked_loss(logits, on, batch.mask, task.spec).item() != base.item()


@pytest.mark.parametrize("task_name, params, model_name", [
    ("mqar", MQAR, "griffin"),
    ("parity_check", {"train_max_length": 6, "max_test_length": 8}, "transformer"),
    ("reverse_string", {"train_max_length": 6, "max_test_length": 8}, "lstm"),
    ("knapsack", None, "hawk"),  # bce, one logit per answer row
])
def test_scored_head_matches_the_full_head(task_name, params, model_name, tiny_config):
    """The trainer's loss on the scored positions only (``model(..., scored=mask)``) equals the masked
    loss over the full [B, T, V] logits, and so do its gradients, on fresh random data and weights."""
    from seqlib.objective import batch_accuracy, scored_targets

    params = DP if params is None else params
    task = get_task(task_name, **params)
    batch = task.sample("train", 6, seed=int(torch.randint(0, 2**31, ()).item()))
    model = build_model(tiny_config("unused", model_name, task_name, params).model, task.spec).double()
    inputs = batch.inputs.double() if batch.inputs.is_floating_point() else batch.inputs
    full, _ = model(inputs, batch.segment_pos)
    loss_full = masked_loss(full, batch.targets, batch.mask, task.spec)
    grads_full = torch.autograd.grad(loss_full, list(model.parameters()), allow_unused=True)
    scored, targets, mask = scored_targets(batch)
    part, _ = model(inputs, batch.segment_pos, scored=scored)
    assert part.shape[0] == int(batch.mask.sum()) < full.shape[0] * full.shape[1]
    loss_part = masked_loss(part, targets, mask, task.spec)
    grads_part = torch.autograd.grad(loss_part, list(model.parameters()), allow_unused=True)
    torch.testing.assert_close(loss_part, loss_full, rtol=1e-6, atol=1e-7)  # the loss is taken in fp32
    for a, b in zip(grads_part, grads_full):
        assert (a is None) == (b is None)
        if a is not None:
            torch.testing.assert_close(a, b, rtol=1e-5, atol=1e-8)
    assert batch_accuracy(part, targets, mask, task.spec) == batch_accuracy(full, batch.targets, batch.mask, task.spec)


@pytest.mark.gpu
@pytest.mark.parametrize("model_name", ["hawk", "griffin", "transformer", "local_transformer"])
def test_scored_head_matches_the_full_head_gpu(model_name, tiny_config):
    """The training path on CUDA (bf16 autocast, the Triton scan and the fused attention): the head at
    the scored positions gives the full head's logits there, and the same loss and gradients, within
    bf16 tolerance (METHOD.md), on fresh random data and weights at the full profile's MQAR shape."""
    from seqlib.objective import scored_targets

    params = {"vocab_size": 8192, "seq_len": 256, "num_kv_pairs": 16}
    task = get_task("mqar", **params)
    batch = task.sample("train", 8, seed=int(torch.randint(0, 2**31, ()).item())).to("cuda")
    cfg = tiny_config("unused", model_name, "mqar", params, model_kw={"d_model": 64, "n_layers": 2, "window": 64})
    model = build_model(cfg.model, task.spec).cuda()
    scored, targets, mask = scored_targets(batch)

    def loss_and_grads(**kw):
        with torch.autocast("cuda", dtype=torch.bfloat16):
            logits, _ = model(batch.inputs, batch.segment_pos, **kw)
        loss = masked_loss(logits, targets if kw else batch.targets, mask if kw else batch.mask, task.spec)
        return logits, loss, torch.autograd.grad(loss, list(model.parameters()), allow_unused=True)

    full, loss_full, grads_full = loss_and_grads()
    part, loss_part, grads_part = loss_and_grads(scored=scored)
    assert torch.isfinite(part).all()
    rel = lambda a, b: float((a.double() - b.double()).norm() / b.double().norm())  # noqa: E731
    assert rel(part, full[batch.mask]) < 1e-2
    assert abs(loss_part.item() - loss_full.item()) < 1e-2 * loss_full.item()
    for a, b in zip(grads_part, grads_full):
        assert (a is None) == (b is None)
        if a is not None and b.norm() > 0:
            assert rel(a, b) < 2e-2


def test_scored_head_rejects_a_bad_mask(tiny_config):
    task = get_task("mqar", **MQAR)
    batch = task.sample("train", 2, seed=0)
    model = build_model(tiny_config("unused", "hawk", "mqar", MQAR).model, task.spec)
    with pytest.raises(ValueError, match=r"scored must be a bool \[B, T\]"):
        model(batch.inputs, batch.segment_pos, scored=batch.mask[:, :-1])
    with pytest.raises(ValueError, match="scored must be a bool"):
        model(batch.inputs, batch.segment_pos, scored=batch.mask.long())


def test_trainer_ignores_masked_out_targets_but_not_masked_in_ones(tmp_path, tiny_config, tampered):
    """Scramble the targets the mask excludes in every training batch: the loss curve is unchanged.
    Scramble the ones it includes: the curve changes."""
    cfg = tiny_config(tmp_path, "hawk", "mqar", MQAR, steps=3)

    def scramble(where):
        def change(batch):
            targets = batch.targets.clone()
            targets[where(batch.mask)] = (targets[where(batch.mask)] + 5) % 80
            batch.targets = targets
            return batch
        return change

    base = _curve(_train(cfg))
    outside = _curve(_train(cfg, tampered(cfg, scramble(lambda m: ~m), run_seed=0)))
    inside = _curve(_train(cfg, tampered(cfg, scramble(lambda m: m), run_seed=0)))
    assert outside == base
    assert inside != base


@pytest.mark.parametrize("model", ["griffin", "lstm"])
def test_same_seed_same_curve_and_different_seed_different_curve(tmp_path, model, tiny_config):
    cfg = tiny_config(tmp_path, model, "mqar", MQAR, steps=5)
    a, b = _train(cfg), _train(cfg)
    c = _train(cfg.for_run(cfg.optim.lr, 1))
    assert _curve(a) == _curve(b) and len(_curve(a)) == 5
    assert a.metrics == b.metrics
    assert _curve(c) != _curve(a)


def _inject_nan(batch):
    batch.inputs = batch.inputs.clone()
    batch.inputs[0, 0, 0] = float("nan")
    return batch


DP = {"num_items": 3, "ood_num_items": 4}
NAN_MESSAGE = (r"non-finite loss \(nan\) at step 3 of hawk on knapsack \(lr=0\.003, seed=0\); "
               r"non-finite grads in: adamw:decay\[[^\]]+\](, adamw:no_decay\[[^\]]+\])?; non-finite params in: none$")


def test_nan_in_a_batch_stops_the_run_with_the_documented_message(tmp_path, tiny_config, tampered):
    cfg = tiny_config(tmp_path, "hawk", "knapsack", DP, steps=8)
    task = tampered(cfg, _inject_nan, run_seed=0, steps=(3,))
    record = new_record(cfg)
    with pytest.raises(NonFiniteError) as err:
        execute(cfg, record, task)
    assert re.fullmatch(NAN_MESSAGE, str(err.value)), str(err.value)
    assert record.train["steps_done"] == 3  # steps 0..2 completed, step 3 failed before the update
    # through the store: a failed record with the message, never an ok one
    outcome = run_one(cfg, task=task)
    assert outcome.record.status == "failed"
    assert re.fullmatch("NonFiniteError: " + NAN_MESSAGE, outcome.record.reason)


def test_muon_takes_hidden_matrices_only_and_trains(tmp_path, tiny_config):
    cfg = tiny_config(tmp_path, "griffin", "mqar", MQAR, steps=3, optimizer="muon")
    task = get_task("mqar", **MQAR)
    model = build_model(cfg.model, task.spec)
    opt = Optimizers(model, cfg.optim, cfg.optim.lr)
    hidden = dict(opt.groups["muon:hidden"])
    assert hidden and all(p.dim() == 2 for p in hidden.values())
    assert not any(n.startswith(("embed", "head")) for n in hidden)
    assert "embed.weight" in dict(opt.groups["adamw:decay"])
    assert all(p.dim() == 1 for _, p in opt.groups["adamw:no_decay"])
    assert [type(o).__name__ for o in opt.optimizers] == ["AdamW", "Muon"]
    before = {n: p.detach().clone() for n, p in hidden.items()}
    batch = task.sample("train", 4, seed=0)
    masked_loss(model(batch.inputs, batch.segment_pos)[0], batch.targets, batch.mask, task.spec).backward()
    opt.step()
    assert all(not torch.equal(before[n], p) for n, p in hidden.items())
    record = _train(cfg)
    assert record.status == "ok" and record.train["steps_done"] == 3


def test_schedule_warms_up_then_decays_to_min_lr():
    f = [lr_factor(s, warmup=4, total=20, min_ratio=0.1) for s in range(21)]
    assert f[:4] == [0.25, 0.5, 0.75, 1.0]
    assert f[4] == pytest.approx(1.0) and all(a >= b for a, b in zip(f[4:], f[5:]))
    assert f[20] == pytest.approx(0.1)


def test_a_split_the_task_cannot_produce_fails_before_training(tmp_path):
    """MQAR's test_length split needs vocab_size > 4 * seq_len: the run must fail before step 0."""
    from seqlib.config import load_config
    from seqlib.train import run_one

    cfg = load_config(
        "mqar", "hawk", profile="smoke",
        overrides=["task.params={vocab_size: 80, seq_len: 32, num_kv_pairs: 2}", f"run.results_dir={tmp_path}"],
    )
    outcome = run_one(cfg.for_run(cfg.optim.lr, cfg.optim.seeds[0]))
    assert outcome.record.status == "failed"
    assert "vocab_size=80 must be > length" in outcome.record.reason
    assert outcome.record.train.get("steps_done", 0) == 0


def test_a_run_records_the_training_processes_that_shared_its_gpu(monkeypatch):
    from seqlib.measure import SHARE_ENV, Meter, device_processes

    monkeypatch.delenv(SHARE_ENV, raising=False)
    assert device_processes() == 1
    monkeypatch.setenv(SHARE_ENV, "4")
    assert device_processes() == 4
    assert Meter(torch.device("cpu")).summary()["device_processes"] == 1  # a CPU run shares no GPU


@pytest.mark.gpu
def test_a_process_sharing_the_gpu_allocates_only_its_share(monkeypatch):
    from seqlib.measure import SHARE_ENV, Meter

    device = torch.device("cuda")
    free, total = torch.cuda.mem_get_info(device)
    monkeypatch.setenv(SHARE_ENV, "4")
    try:
        meter = Meter(device)
        assert meter.summary()["device_processes"] == 4
        with pytest.raises(torch.OutOfMemoryError):
            torch.empty(int(total * 0.3), dtype=torch.uint8, device=device)  # over a quarter of the GPU
        kept = torch.empty(int(total * 0.2), dtype=torch.uint8, device=device)  # within it
        assert kept.numel() > 0
    finally:
        torch.cuda.set_per_process_memory_fraction(1.0, torch.cuda.current_device())
        torch.cuda.empty_cache()
