"""Task metrics on masked predictions: accuracy, scaled accuracy, glitch rate, binary F1, exact match.

``pred`` and ``target`` have the shape of ``Batch.targets``; ``mask`` is ``Batch.mask``.
"""

from __future__ import annotations

import torch


def masked_accuracy(pred: torch.Tensor, target: torch.Tensor, mask: torch.Tensor) -> float:
    """Fraction of masked positions where ``pred == target`` (pooled over the batch)."""
    n = int(mask.sum())
    if n == 0:
        raise ValueError("masked_accuracy: the mask selects no position")
    return float((pred == target)[mask].float().mean())


def scaled_accuracy(accuracy: float, chance: float) -> float:
    """``(acc − chance)/(1 − chance)``: 0 at chance, 1 when perfect (Grazzi et al. 2024, §5.1)."""
    if not 0.0 <= chance < 1.0:
        raise ValueError(f"scaled_accuracy: chance={chance} must lie in [0, 1)")
    return (accuracy - chance) / (1.0 - chance)


def glitch_rate(pred: torch.Tensor, target: torch.Tensor, mask: torch.Tensor) -> float:
    """Flip-flop glitch rate: fraction of scored (read) bits predicted wrongly (Liu et al. 2023)."""
    return 1.0 - masked_accuracy(pred, target, mask)


def binary_f1(pred: torch.Tensor, target: torch.Tensor, mask: torch.Tensor) -> float:
    """F1 of the positive class over masked positions (pointer outputs; ``pred`` in {0, 1}).

    1.0 when there is no positive in either ``pred`` or ``target``.
    """
    p, t = pred[mask].bool(), target[mask].bool()
    tp = int((p & t).sum())
    fp, fn = int((p & ~t).sum()), int((~p & t).sum())
    return 1.0 if tp + fp + fn == 0 else 2 * tp / (2 * tp + fp + fn)


def exact_match(pred: torch.Tensor, target: torch.Tensor, mask: torch.Tensor) -> float:
    """Fraction of examples (rows) whose masked positions are all right."""
    wrong = ((pred != target) & mask).reshape(len(mask), -1).any(dim=1)
    return float((~wrong).float().mean())
