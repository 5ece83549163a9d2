"""What training optimises: the masked per-position loss of a task's spec, correctness, data seeds, autocast.

The loss counts only the scored positions (``Batch.mask``): cross-entropy for ``ce``, binary
cross-entropy on one logit for ``bce``, squared error for ``mse``. ``seqlib.evaluate`` builds its
metrics on the same per-position loss and correctness, so training and evaluation score alike.
"""

from __future__ import annotations

import contextlib

import numpy as np
import torch
import torch.nn.functional as F

from seqlib.tasks.base import Batch, TaskSpec


def derive_seed(stream: str, *ints: int) -> int:
    """A 63-bit data seed for ``(stream, *ints)``; distinct streams never share a seed in practice."""
    tag = [ord(c) for c in stream]
    a, b = np.random.SeedSequence([*ints, len(tag), *tag]).generate_state(2, dtype=np.uint32)
    return (int(a) << 31) ^ int(b)


def flat_logits(logits: torch.Tensor, spec: TaskSpec) -> torch.Tensor:
    """fp32 logits, the single-logit axis dropped for ``bce`` and ``mse``."""
    return logits.float().squeeze(-1) if spec.loss in ("bce", "mse") else logits.float()


def position_loss(logits: torch.Tensor, targets: torch.Tensor, mask: torch.Tensor, spec: TaskSpec) -> torch.Tensor:
    """Per-position loss (shape of ``targets``), exactly 0 where ``mask`` is False."""
    out = flat_logits(logits, spec)
    if spec.loss == "ce":
        safe = torch.where(mask, targets, torch.zeros_like(targets))
        loss = F.cross_entropy(out.reshape(-1, out.shape[-1]), safe.reshape(-1), reduction="none")
        loss = loss.reshape(targets.shape)
    elif spec.loss == "bce":
        loss = F.binary_cross_entropy_with_logits(out, torch.where(mask, targets.float(), 0.0), reduction="none")
    else:
        loss = (out - torch.where(mask, targets.float(), 0.0)) ** 2
    return torch.where(mask, loss, torch.zeros_like(loss))


def masked_loss(logits: torch.Tensor, targets: torch.Tensor, mask: torch.Tensor, spec: TaskSpec) -> torch.Tensor:
    """Mean loss over the scored positions of the batch (positions outside ``mask`` contribute nothing)."""
    return position_loss(logits, targets, mask, spec).sum() / mask.sum().clamp(min=1)


def position_correct(logits: torch.Tensor, targets: torch.Tensor, spec: TaskSpec) -> torch.Tensor | None:
    """Boolean correctness per position (argmax for ce, logit > 0 for bce); None for regression."""
    out = flat_logits(logits, spec)
    if spec.loss == "ce":
        return out.argmax(-1) == targets
    if spec.loss == "bce":
        return (out > 0) == (targets > 0.5)
    return None


def scored_targets(batch: Batch) -> tuple[torch.Tensor | None, torch.Tensor, torch.Tensor]:
    """``(scored, targets, mask)`` for a loss on the scored positions only: for a per-position task
    the [B, T] mask to pass to the model as ``scored`` and the targets at those positions (every one
    scored); for a pooled task ``None`` and the batch's own targets and mask."""
    if batch.mask.dim() != 2:
        return None, batch.targets, batch.mask
    targets = batch.targets[batch.mask]
    return batch.mask, targets, torch.ones(targets.shape[:1], dtype=torch.bool, device=targets.device)


def batch_accuracy(logits: torch.Tensor, targets: torch.Tensor, mask: torch.Tensor, spec: TaskSpec) -> float | None:
    """Fraction of scored positions right in one batch (the training log's accuracy); None for regression."""
    correct = position_correct(logits, targets, spec)
    if correct is None:
        return None
    return ((correct & mask).sum() / mask.sum().clamp(min=1)).item()


def autocast(device: torch.device, dtype: torch.dtype) -> contextlib.AbstractContextManager:
    """bf16 autocast when asked for (CUDA by default); a no-op for fp32."""
    if dtype == torch.float32:
        return contextlib.nullcontext()
    return torch.autocast(device_type=device.type, dtype=dtype)
