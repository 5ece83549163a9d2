"""Masked losses and the evaluation metrics, per split and per slice of the task's metadata.

Metrics (over the scored positions, i.e. where ``batch.mask`` is True):

* ``accuracy``: per-token accuracy, pooled over every scored position of the split/slice (the
  Chomsky reference's masked mean, ``../shared/reference/tasks.md`` §2.2);
* ``example_accuracy``: the mean over examples of each example's token accuracy (Zoology's
  ``valid/accuracy``, tasks.md §1.2); equal to ``accuracy`` when every example scores as many tokens;
* ``exact_match``: fraction of examples whose scored positions are all correct;
* ``scaled_accuracy``: ``(accuracy - chance) / (1 - chance)`` with ``spec.chance`` (xLSTM/Grazzi);
* ``glitch_rate``: ``1 - accuracy``, the flip-flop name (Liu et al. 2023: fraction of scored bits
  mispredicted by argmax, tasks.md flip-flop section); reported for every classification task;
* ``f1`` (binary tasks, ``spec.loss == "bce"``): F1 of the positive class pooled over the scored
  positions (sigmoid > 0.5), 1.0 when there are no positives at all, as the DP tasks' reference;
* ``loss`` (mean per scored position) and, for cross-entropy, ``perplexity = exp(loss)``.

Regression tasks (``spec.loss == "mse"``) get ``loss`` only. Slices: every 1-D integer, boolean or
string metadata array (e.g. ``length``, ``num_kv_pairs``) with at most ``MAX_SLICE_VALUES`` distinct
values, and always the length keys ``LENGTH_KEYS`` (``slice_key == "length"`` is the
length-generalization curve). A slice carries only ``SLICE_METRICS`` (the rest follow from them or
are reported for the whole split only), and a metadata array that splits the examples exactly as an
earlier one does (``input_length`` equal to ``length``, a second constant) adds no slice, so a
Chomsky record evaluated at hundreds of lengths stays tens of kilobytes.
"""

from __future__ import annotations

import contextlib
import math

import numpy as np
import pandas as pd
import torch
import torch.nn.functional as F

from seqlib.tasks.base import Batch, Task, TaskSpec

MAX_SLICE_VALUES = 128
LENGTH_KEYS = ("length", "input_seq_len", "num_items")  # the length curves' slices
SLICE_METRICS = ("accuracy", "exact_match", "loss")


def derive_seed(stream: str, *ints: int) -> int:
    """A 63-bit data seed for ``(stream, *ints)``; distinct streams never share a seed in practice."""
    tag = [ord(c) for c in stream]
    a, b = np.random.SeedSequence([*ints, len(tag), *tag]).generate_state(2, dtype=np.uint32)
    return (int(a) << 31) ^ int(b)


def _flat_logits(logits: torch.Tensor, spec: TaskSpec) -> torch.Tensor:
    return logits.float().squeeze(-1) if spec.loss in ("bce", "mse") else logits.float()


def position_loss(logits: torch.Tensor, targets: torch.Tensor, mask: torch.Tensor, spec: TaskSpec) -> torch.Tensor:
    """Per-position loss (shape of ``targets``), exactly 0 where ``mask`` is False."""
    out = _flat_logits(logits, spec)
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
    out = _flat_logits(logits, spec)
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
    correct = position_correct(logits, targets, spec)
    if correct is None:
        return None
    return ((correct & mask).sum() / mask.sum().clamp(min=1)).item()


def _per_example(logits: torch.Tensor, batch: Batch, spec: TaskSpec) -> dict[str, np.ndarray]:
    """Per-example sums: scored positions, correct positions, loss; and the exact-match flag."""
    mask = batch.mask
    loss = position_loss(logits, batch.targets, mask, spec)
    correct = position_correct(logits, batch.targets, spec)
    if mask.dim() == 1:  # pooled: one scored "position" per example
        mask, loss = mask[:, None], loss[:, None]
        correct = None if correct is None else correct[:, None]
    dims = tuple(range(1, mask.dim()))
    n_scored = mask.sum(dims)
    out = {"n_scored": n_scored, "loss_sum": loss.sum(dims)}
    if correct is not None:
        hits = correct & mask
        out["n_correct"] = hits.sum(dims)
        out["exact"] = (hits.sum(dims) == n_scored) & (n_scored > 0)
    if spec.loss == "bce":
        pred = _flat_logits(logits, spec).reshape(mask.shape) > 0
        truth = batch.targets.reshape(mask.shape) > 0.5
        out["tp"] = (pred & truth & mask).sum(dims)
        out["fp"] = (pred & ~truth & mask).sum(dims)
        out["fn"] = (~pred & truth & mask).sum(dims)
    return {k: v.detach().cpu().numpy() for k, v in out.items()}


def _slice(batch: Batch, i: int, j: int) -> Batch:
    return Batch(batch.inputs[i:j], batch.targets[i:j], batch.mask[i:j], batch.segment_pos[i:j],
                 {k: v[i:j] for k, v in batch.meta.items()})


def autocast(device: torch.device, dtype: torch.dtype) -> contextlib.AbstractContextManager:
    """bf16 autocast when asked for (CUDA by default); a no-op for fp32."""
    if dtype == torch.float32:
        return contextlib.nullcontext()
    return torch.autocast(device_type=device.type, dtype=dtype)


def eval_plan(task: Task, split: str, n: int, batch_size: int) -> list[tuple[int | None, int]]:
    """``(length, count)`` sample calls covering ``n`` examples of ``split``.

    Tasks draw one length per ``sample`` call. When the task lists its lengths (``task.lengths(split)``)
    every length gets ``ceil(n / #lengths)`` examples (a balanced length-generalization curve, like the
    Chomsky reference's range evaluation); otherwise ``n`` is drawn in calls of ``batch_size``.
    """
    lengths = task.lengths(split)
    if lengths:
        return [(int(length), -(-n // len(lengths))) for length in lengths]
    return [(None, min(batch_size, n - i)) for i in range(0, n, batch_size)]


@torch.no_grad()
def evaluate_split(
    model: torch.nn.Module,
    task: Task,
    split: str,
    n: int,
    seed: int,
    batch_size: int,
    device: torch.device,
    dtype: torch.dtype = torch.float32,
) -> pd.DataFrame:
    """Per-example statistics and metadata for the examples of :func:`eval_plan` (deterministic in
    ``seed``); ``.attrs["seq_len"]`` holds the longest input length seen."""
    was_training = model.training
    model.eval()
    frames, seq_len = [], 0
    try:
        for g, (length, count) in enumerate(eval_plan(task, split, n, batch_size)):
            kwargs = {} if length is None else {"length": length}
            group = task.sample(split, count, seed=derive_seed(f"eval/{split}", seed, g), **kwargs)
            seq_len = max(seq_len, group.inputs.shape[1])
            for i in range(0, len(group), batch_size):
                batch = _slice(group, i, i + batch_size).to(device)
                with autocast(device, dtype):
                    logits, _ = model(batch.inputs, batch.segment_pos)
                stats = _per_example(logits, batch, task.spec)
                frames.append(pd.DataFrame({**stats, **_sliceable(batch.meta, len(batch))}))
    finally:
        model.train(was_training)
    out = pd.concat(frames, ignore_index=True)
    out.attrs["seq_len"] = seq_len
    return out


def _sliceable(meta: dict[str, np.ndarray], n: int) -> dict[str, np.ndarray]:
    out = {}
    for key, values in meta.items():
        arr = np.asarray(values)
        if arr.shape == (n,) and arr.dtype.kind in "biuUSO":
            out[f"meta:{key}"] = arr
    return out


def _metrics(df: pd.DataFrame, spec: TaskSpec) -> dict[str, float]:
    scored = df[df["n_scored"] > 0]
    total = scored["n_scored"].sum()
    if total == 0:
        return {}
    loss = float(scored["loss_sum"].sum() / total)
    out = {"loss": loss}
    if spec.loss == "ce":
        out["perplexity"] = math.exp(loss) if loss < 700 else math.inf
    if "n_correct" in scored:
        acc = float(scored["n_correct"].sum() / total)
        out |= {
            "accuracy": acc,
            "example_accuracy": float((scored["n_correct"] / scored["n_scored"]).mean()),
            "exact_match": float(scored["exact"].mean()),
            "glitch_rate": 1.0 - acc,
        }
        if "tp" in scored:
            tp, fp, fn = (float(scored[c].sum()) for c in ("tp", "fp", "fn"))
            out["f1"] = 1.0 if tp + fp + fn == 0 else 2 * tp / (2 * tp + fp + fn)
        if spec.chance is not None and spec.chance < 1:
            out["scaled_accuracy"] = (acc - spec.chance) / (1 - spec.chance)
    return out


def summarize(per_example: pd.DataFrame, spec: TaskSpec, split: str) -> list[dict]:
    """Tidy metric rows ``{split, slice_key, slice_value, metric, value, n}`` for the whole split
    (``slice_key == "all"``) and every metadata slice."""
    rows = []

    def emit(key: str, value: str, df: pd.DataFrame, keep=None) -> None:
        n = int((df["n_scored"] > 0).sum())
        rows.extend({"split": split, "slice_key": key, "slice_value": value, "metric": m, "value": v, "n": n}
                    for m, v in _metrics(df, spec).items() if keep is None or m in keep)

    emit("all", "all", per_example)
    seen: set[tuple[int, ...]] = set()
    for col in [c for c in per_example.columns if c.startswith("meta:")]:
        values = per_example[col]
        codes = tuple(pd.factorize(values)[0])  # the partition of the examples, whatever the labels
        too_many = values.nunique() > MAX_SLICE_VALUES and col.removeprefix("meta:") not in LENGTH_KEYS
        if too_many or codes in seen:
            continue
        seen.add(codes)
        for value, df in per_example.groupby(col, sort=True):
            emit(col.removeprefix("meta:"), str(value), df, SLICE_METRICS)
    return rows


class ConstantAnswer(torch.nn.Module):
    """A model that gives every scored position (or pooled example) the same answer, shaped like a
    model's output for ``spec``: class ``value`` for ``ce`` and ``bce`` (a logit of ±30 for ``bce``),
    the prediction ``value`` for ``mse``. The floor a trained model must beat."""

    def __init__(self, spec: TaskSpec, value: float):
        super().__init__()
        self.spec = spec
        if spec.loss == "mse":
            self.answer = torch.tensor([float(value)])
        elif spec.loss == "bce" and value in (0, 1):
            self.answer = torch.tensor([30.0 if value else -30.0])
        elif spec.loss == "ce" and float(value).is_integer() and 0 <= value < spec.num_outputs:
            self.answer = torch.full((spec.num_outputs,), -30.0)
            self.answer[int(value)] = 30.0
        else:
            raise ValueError(f"ConstantAnswer: {value!r} is not an answer of a {spec.loss} task "
                             f"with {spec.num_outputs} outputs")

    def forward(self, inputs: torch.Tensor, segment_pos: torch.Tensor | None = None, cache=None):
        lead = inputs.shape[:1] if self.spec.output_kind == "pooled" else inputs.shape[:2]
        return self.answer.expand(*lead, -1), cache


MAX_CONSTANT_CLASSES = 16


def constant_baselines(task: Task, splits: tuple[str, ...], n: int = 1024, seed: int = 0) -> pd.DataFrame:
    """Every constant answer scored by the evaluator itself (:func:`evaluate_split`, :func:`summarize`)
    on ``splits``: each class of a classification task (``always c``), and for a regression task
    the constant that minimises the squared error on the split, its mean (the error is quadratic in
    the answer, so the answers 0 and 1 give the mean: ``(E0 - E1 + 1) / 2``). Long form: the rows of
    :func:`summarize` plus ``answer``; a chapter keeps the best answer per split and metric."""
    spec, cpu = task.spec, torch.device("cpu")
    if spec.loss == "ce" and spec.num_outputs > MAX_CONSTANT_CLASSES:
        raise ValueError(f"constant_baselines: {spec.num_outputs} classes is more than {MAX_CONSTANT_CLASSES}")

    def scored(value: float, split: str) -> pd.DataFrame:
        return evaluate_split(ConstantAnswer(spec, value), task, split, n, seed, 256, cpu)

    rows = []
    for split in splits:
        if spec.loss == "mse":
            e0, e1 = (_metrics(scored(v, split), spec)["loss"] for v in (0.0, 1.0))
            mean = (e0 - e1 + 1.0) / 2.0
            answers = {f"the {split} mean ({mean:.3f})": mean}
        else:
            answers = {f"always {c}": c for c in range(2 if spec.loss == "bce" else spec.num_outputs)}
        for label, value in answers.items():
            rows += [row | {"answer": label} for row in summarize(scored(value, split), spec, split)]
    return pd.DataFrame(rows)
