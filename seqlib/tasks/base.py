"""The one task interface every synthetic task implements.

A task turns ``(split, n, seed)`` into a :class:`Batch` of model inputs, targets and a
loss/metric mask, plus per-example metadata (length, number of pairs, ...) that evaluation
groups by. A :class:`TaskSpec` tells the model builder which input adapter (token embedding
or numeric features) and which output head (LM/classes per position, or pooled) to attach,
so no model carries task-specific code.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import ClassVar, Literal

import numpy as np
import torch

from .scoring import Scoring

InputKind = Literal["tokens", "features"]
OutputKind = Literal["tokens", "pooled"]
LossKind = Literal["ce", "bce", "mse"]


@dataclass(frozen=True)
class TaskSpec:
    """What a model needs to know to read and answer a task.

    input_kind:  "tokens" -> inputs are int64 ``[B, T]`` ids in ``[0, vocab_size)``;
                 "features" -> inputs are float32 ``[B, T, feature_dim]``.
    output_kind: "tokens" -> one prediction per position (``[B, T, num_outputs]`` logits);
                 "pooled" -> one prediction per sequence (``[B, num_outputs]``), mean-pooled.
    loss:        "ce" (targets int64 class ids), "bce" (targets float 0/1, num_outputs == 1),
                 "mse" (targets float, num_outputs == 1).
    chance:      accuracy of uniform guessing, for scaled accuracy (None for regression).
    """

    input_kind: InputKind
    output_kind: OutputKind
    loss: LossKind
    num_outputs: int
    vocab_size: int | None = None
    feature_dim: int | None = None
    chance: float | None = None

    @classmethod
    def per_token(cls, vocab_size: int, chance: float, num_outputs: int | None = None) -> TaskSpec:
        """Token ids in, one class per position out (cross-entropy): the LM-style tasks. The outputs
        are the input vocabulary unless ``num_outputs`` says otherwise."""
        return cls("tokens", "tokens", "ce", num_outputs or vocab_size, vocab_size=vocab_size, chance=chance)


@dataclass
class Batch:
    """One batch of examples.

    inputs:  ``[B, T]`` int64 tokens or ``[B, T, F]`` float32 features.
    targets: ``[B, T]`` (per-position) or ``[B]`` (pooled); int64 for "ce", float32 otherwise.
    mask:    bool, same shape as targets: True where the loss and the metrics count.
    segment_pos: ``[B, T]`` int64 position inside each document (0 starts a document);
             every task here has one document per row, so it is ``arange(T)`` unless padded.
    meta:    per-example numpy arrays of length B (e.g. ``{"length": ..., "num_kv_pairs": ...}``)
             that evaluation slices by; every task gives ``LENGTH_KEY`` (``"length"``), its length axis.
    """

    inputs: torch.Tensor
    targets: torch.Tensor
    mask: torch.Tensor
    segment_pos: torch.Tensor
    meta: dict[str, np.ndarray] = field(default_factory=dict)

    def to(self, device: torch.device | str) -> Batch:
        return Batch(
            self.inputs.to(device),
            self.targets.to(device),
            self.mask.to(device),
            self.segment_pos.to(device),
            self.meta,
        )

    def __len__(self) -> int:
        return self.inputs.shape[0]


class Task:
    """Base class: subclasses set ``name``, ``splits`` and ``in_distribution`` (the splits drawn from the
    training distribution, ``train`` among them, as :func:`seqlib.config.out_of_distribution` reads it;
    every registered task declares it, a wrapper may leave it None to have it inferred) and implement
    ``spec``, ``scoring`` and ``sample``.

    ``sample(split, n, seed)`` must be deterministic in ``(split, n, seed)`` and vectorised.
    Train and evaluation splits draw from disjoint seed streams (see ``split_seed``).
    """

    name: ClassVar[str]
    splits: ClassVar[tuple[str, ...]]
    in_distribution: ClassVar[tuple[str, ...] | None] = None

    @property
    def spec(self) -> TaskSpec:  # pragma: no cover - abstract
        raise NotImplementedError

    @property
    def scoring(self) -> Scoring:  # pragma: no cover - abstract
        """How the task's source scores it (:class:`seqlib.tasks.scoring.Scoring`)."""
        raise NotImplementedError

    def sample(self, split: str, n: int, seed: int) -> Batch:  # pragma: no cover - abstract
        raise NotImplementedError

    def lengths(self, split: str) -> tuple[int, ...] | None:
        """The sequence lengths ``split`` spans, when evaluation should visit each one
        (``sample(split, n, seed, length=L)``); None for a split of one length."""
        self.check_split(split)
        return None

    def check_split(self, split: str) -> None:
        if split not in self.splits:
            raise ValueError(
                f"task {self.name!r}: unknown split {split!r}; choose one of {list(self.splits)}"
            )

    def split_seed(self, split: str, seed: int) -> np.random.SeedSequence:
        """A seed stream unique to (task, split, seed): train and test never share one."""
        self.check_split(split)
        tag = [ord(c) for c in f"{self.name}/{split}"]
        return np.random.SeedSequence([seed, *tag])
