"""The training objective: masked losses per loss kind, correctness, scored targets, seeds, autocast."""

from __future__ import annotations

import contextlib
import subprocess
import sys

import pytest
import torch
import torch.nn.functional as F

from seqlib.objective import (
    autocast,
    batch_accuracy,
    derive_seed,
    masked_loss,
    position_correct,
    position_loss,
    scored_targets,
)
from seqlib.tasks import get_task
from seqlib.tasks.base import TaskSpec

CE = TaskSpec("tokens", "tokens", "ce", num_outputs=3, vocab_size=3)
BCE = TaskSpec("tokens", "tokens", "bce", num_outputs=1, vocab_size=3)
MSE = TaskSpec("features", "pooled", "mse", num_outputs=1, feature_dim=2)


def test_ce_loss_and_correctness_by_hand():
    logits = torch.tensor([[[2.0, 0.0, 0.0], [0.0, 0.0, 5.0], [1.0, 3.0, 0.0]]])
    targets = torch.tensor([[0, 1, 1]])
    mask = torch.tensor([[True, False, True]])
    loss = position_loss(logits, targets, mask, CE)
    want = F.cross_entropy(logits[0], targets[0], reduction="none")
    assert loss[0, 1] == 0 and torch.allclose(loss[0, [0, 2]], want[[0, 2]])
    assert masked_loss(logits, targets, mask, CE).item() == pytest.approx(want[[0, 2]].mean().item())
    assert position_correct(logits, targets, CE).tolist() == [[True, False, True]]
    assert batch_accuracy(logits, targets, mask, CE) == 1.0
    assert batch_accuracy(logits, targets, torch.ones_like(mask), CE) == pytest.approx(2 / 3)


def test_bce_and_mse_by_hand():
    logits = torch.tensor([[[1.0], [-2.0]]])
    targets = torch.tensor([[1.0, 1.0]])
    mask = torch.tensor([[True, True]])
    want = torch.log1p(torch.exp(-logits.squeeze(-1))).mean()  # -log sigmoid(z) for target 1
    assert masked_loss(logits, targets, mask, BCE).item() == pytest.approx(want.item())
    assert position_correct(logits, targets, BCE).tolist() == [[True, False]]
    pred, y = torch.tensor([[0.5], [2.0]]), torch.tensor([1.0, 1.0])
    assert masked_loss(pred, y, torch.tensor([True, False]), MSE).item() == pytest.approx(0.25)
    assert position_correct(pred, y, MSE) is None and batch_accuracy(pred, y, torch.ones(2, dtype=bool), MSE) is None


def test_scored_targets_per_position_and_pooled():
    batch = get_task("mqar", vocab_size=64, seq_len=16, num_kv_pairs=2).sample("train", 3, 0)
    scored, targets, mask = scored_targets(batch)
    assert scored is batch.mask and torch.equal(targets, batch.targets[batch.mask]) and mask.all()
    assert len(targets) == 3 * 2
    pooled = get_task("subset_sum").sample("train", 3, 0)
    assert scored_targets(pooled) == (None, pooled.targets, pooled.mask)


def test_derive_seed_is_deterministic_and_stream_specific():
    assert derive_seed("train", 0, 5) == derive_seed("train", 0, 5)
    seeds = {derive_seed(s, r, k) for s in ("train", "eval/test") for r in range(3) for k in range(50)}
    assert len(seeds) == 2 * 3 * 50 and all(0 <= s < 2**63 for s in seeds)


def test_autocast_is_a_no_op_in_fp32():
    assert isinstance(autocast(torch.device("cpu"), torch.float32), contextlib.nullcontext)
    with autocast(torch.device("cpu"), torch.bfloat16):
        assert (torch.ones(2, 2) @ torch.ones(2, 2)).dtype == torch.bfloat16


def test_the_objective_does_not_need_the_evaluator():
    code = "import sys, seqlib.objective; assert 'seqlib.evaluate' not in sys.modules"
    subprocess.run([sys.executable, "-c", code], check=True)
