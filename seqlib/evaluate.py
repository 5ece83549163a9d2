"""The evaluation metrics, per split and per slice of the task's metadata (losses: ``seqlib.objective``).

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
* ``loss`` (mean per scored position) and, for cross-entropy, ``perplexity = exp(loss)`` and
  ``bits = loss / ln 2`` (bits per scored token: per byte for the byte-level text task).

Each metric's range and direction (which the summaries over seeds respect): :data:`METRIC_SCALES`,
:func:`metric_scale`.

Regression tasks (``spec.loss == "mse"``) get ``loss`` only. Slices: every 1-D integer, boolean or
string metadata array (e.g. ``length``, ``num_kv_pairs``) with at most ``MAX_SLICE_VALUES`` distinct
values, and always every task's length key ``LENGTH_KEY`` (``slice_key == "length"`` is the
length-generalization curve; :func:`length_mean` averages over it). A task whose card names
``position_buckets`` also gets a ``position`` slice: ``loss`` and ``bits`` over the scored positions
of each bucket of positions ``[lo, hi)`` (the curve over context position). A slice carries only
``SLICE_METRICS`` (the rest follow from them or are reported for the whole split only), and a
metadata array that splits the examples exactly as an earlier one does (``input_length`` equal to
``length``, a second constant; ``length`` comes first) adds no slice, so a Chomsky record evaluated
at hundreds of lengths stays tens of kilobytes. Each metric has one home here (:func:`accuracy`,
:func:`f1`, ...), over the per-example statistics of the scored examples.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable

import numpy as np
import pandas as pd
import torch

from seqlib.objective import autocast, derive_seed, flat_logits, position_correct, position_loss
from seqlib.tasks.base import Batch, Task, TaskSpec
from seqlib.tasks.scoring import LENGTH_KEY

MAX_SLICE_VALUES = 128
SLICE_METRICS = ("accuracy", "exact_match", "loss")
LENGTH_MEAN = "length_mean_"  # prefix of a metric averaged over the length slice (see split_metric)
# metric -> (lowest value, highest value, higher is better); None: unbounded on that side. scaled_accuracy
# reaches -chance / (1 - chance), which has no bound as chance -> 1.
METRIC_SCALES: dict[str, tuple[float | None, float | None, bool]] = {
    "accuracy": (0.0, 1.0, True), "example_accuracy": (0.0, 1.0, True), "exact_match": (0.0, 1.0, True),
    "f1": (0.0, 1.0, True), "glitch_rate": (0.0, 1.0, False), "scaled_accuracy": (None, 1.0, True),
    "loss": (0.0, None, False), "perplexity": (1.0, None, False), "bits": (0.0, None, False),
}
POSITION_KEY = "position"  # the slice of a card's position buckets (Scoring.position_buckets)
POSITION_METRICS = ("loss", "bits")


def bucket_labels(buckets: tuple[int, ...], length: int) -> list[tuple[str, int, int]]:
    """``(label, lo, hi)`` of the position buckets that start before ``length``: ``[b_i, b_{i+1})``,
    the last one open (``"lo-"``), each cut at ``length``."""
    out = []
    for i, lo in enumerate(buckets):
        if lo < length:
            hi = buckets[i + 1] if i + 1 < len(buckets) else None
            out.append((f"{lo}-{'' if hi is None else hi}", lo, length if hi is None else min(hi, length)))
    return out


def scored_index(mask: torch.Tensor) -> torch.Tensor | None:
    """The flat positions ``b * T + t`` of a per-position task's scored positions (``mask`` [B, T]), the
    form in which the model computes its head there only (``SequenceModel.forward``'s ``scored``:
    MQAR scores 16 of 256 positions of a V = 8192 head); None for a pooled task."""
    return mask.flatten().nonzero().squeeze(1) if mask.dim() == 2 else None


def _at_positions(values: torch.Tensor, index: torch.Tensor, shape: torch.Size) -> torch.Tensor:
    """``values`` [N] of the flat positions ``index`` laid into a zero tensor of ``shape``."""
    return values.new_zeros(shape.numel()).index_copy(0, index, values).view(shape)


def _per_example(logits: torch.Tensor, batch: Batch, spec: TaskSpec, buckets: tuple[int, ...] = (),
                 index: torch.Tensor | None = None) -> dict[str, np.ndarray]:
    """Per-example sums: scored positions, correct positions, loss; the exact-match flag; and, with
    ``buckets``, the loss and the scored positions of each position bucket (:func:`bucket_labels`).
    ``logits`` are of every position, or with ``index`` (:func:`scored_index`) of those positions only
    ``[N, ...]``: the same sums."""
    mask = batch.mask
    if index is None:
        loss = position_loss(logits, batch.targets, mask, spec)
        correct = position_correct(logits, batch.targets, spec)
        pred = flat_logits(logits, spec).reshape(mask.shape) > 0 if spec.loss == "bce" else None
    else:
        targets = batch.targets.flatten()[index]
        scored = torch.ones_like(targets, dtype=torch.bool)
        loss = _at_positions(position_loss(logits, targets, scored, spec), index, mask.shape)
        hit = position_correct(logits, targets, spec)
        correct = None if hit is None else _at_positions(hit, index, mask.shape)
        pred = _at_positions(flat_logits(logits, spec) > 0, index, mask.shape) if spec.loss == "bce" else None
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
        truth = batch.targets.reshape(mask.shape) > 0.5
        out["tp"] = (pred & truth & mask).sum(dims)
        out["fp"] = (pred & ~truth & mask).sum(dims)
        out["fn"] = (~pred & truth & mask).sum(dims)
    for label, lo, hi in bucket_labels(buckets, mask.shape[-1]) if mask.dim() == 2 else ():
        out[f"pos_loss:{label}"] = loss[:, lo:hi].sum(1)
        out[f"pos_n:{label}"] = mask[:, lo:hi].sum(1)
    return {k: v.detach().cpu().numpy() for k, v in out.items()}


def _slice(batch: Batch, i: int, j: int) -> Batch:
    return Batch(batch.inputs[i:j], batch.targets[i:j], batch.mask[i:j], batch.segment_pos[i:j],
                 {k: v[i:j] for k, v in batch.meta.items()})


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


PACKED, PER_GROUP = "packed", "per group"  # measure.eval_batching of a record: how its evaluations were batched


def eval_packs(task: Task, counts: list[int], batch_size: int, batching: str = PACKED) -> list[list[int]]:
    """The groups of an evaluation (their example counts, :func:`eval_plan`'s order) as packs that run
    in the same forward batches: ``packed``, groups smaller than a batch join their neighbours up to
    ``batch_size`` examples in all (one batch, right-padded to its longest example: exact for these
    causal models, whose outputs at a position read no later one, and for pooled heads, which skip the
    padding), and a larger group is a pack of its own, in batches of ``batch_size``; so a Chomsky
    validation of 1,024 examples over 40 lengths is 10 forward batches instead of 40. A task with
    position buckets (their columns follow a batch's length) and ``per group`` batching (the records
    before packing) keep every group apart."""
    if batching not in (PACKED, PER_GROUP):
        raise ValueError(f"unknown evaluation batching {batching!r}: {PACKED!r} or {PER_GROUP!r}")
    if batching == PER_GROUP or task.scoring.position_buckets:
        return [[i] for i in range(len(counts))]
    packs: list[list[int]] = []
    run, size = [], 0
    for i, n in enumerate(counts):
        if n >= batch_size or size + n > batch_size:
            if run:
                packs.append(run)
            run, size = [], 0
        if n >= batch_size:
            packs.append([i])
        else:
            run.append(i)
            size += n
    return packs + ([run] if run else [])


def pack_batches(task: Task, counts: list[int], batch_size: int, batching: str = PACKED) -> int:
    """Forward batches of an evaluation of groups of ``counts`` examples (:func:`eval_packs`)."""
    return sum(-(-sum(counts[i] for i in pack) // batch_size) for pack in eval_packs(task, counts, batch_size, batching))


def joined(groups: list[Batch]) -> Batch:
    """The examples of ``groups`` as one batch, each right-padded to the longest (:func:`seqlib.data.pad_batch`)."""
    from seqlib.data import pad_batch

    if len(groups) == 1:
        return groups[0]
    keys = set(groups[0].meta)
    if any(set(g.meta) != keys for g in groups):
        raise ValueError(f"cannot join evaluation groups with different metadata keys: {[sorted(g.meta) for g in groups]}")
    width = max(g.inputs.shape[1] for g in groups)
    padded = [pad_batch(g, width) for g in groups]
    return Batch(torch.cat([g.inputs for g in padded]), torch.cat([g.targets for g in padded]),
                 torch.cat([g.mask for g in padded]), torch.cat([g.segment_pos for g in padded]),
                 {k: np.concatenate([np.asarray(g.meta[k]) for g in padded]) for k in groups[0].meta})


def evaluate_split(model: torch.nn.Module, task: Task, split: str, n: int, seed: int, batch_size: int,
                   device: torch.device, dtype: torch.dtype = torch.float32, batching: str = PACKED) -> pd.DataFrame:
    """Per-example statistics and metadata for the examples of :func:`eval_plan` (deterministic in
    ``seed``), in the forward batches of ``batching`` (:func:`eval_packs`); ``.attrs["seq_len"]`` holds
    the longest input length seen."""
    was_training = model.training
    model.eval()
    try:
        return evaluate_split_stack(lambda x, s, i: model(x, s, scored=i)[0][None], 1, task, split, n, seed,
                                    batch_size, device, dtype, batching)[0]
    finally:
        model.train(was_training)


def in_halves(forward: Callable[..., torch.Tensor], inputs: torch.Tensor, segment_pos: torch.Tensor,
              mask: torch.Tensor | None = None, index: torch.Tensor | None = None) -> torch.Tensor:
    """``forward(inputs, segment_pos, index)`` (logits ``[k, B, ...]``, or ``[k, N, ...]`` at the
    :func:`scored_index` of a per-position ``mask``, ``index`` where the caller has it), or, where that
    runs out of GPU memory, the same on each half of the batch, joined (recursively, down to one
    example): each example's logits depend on its own row alone, so an evaluation that fits a smaller
    share of the GPU gives the same statistics (2-simplicial attention at 496 tokens, 6 processes per
    H200, 2026-12-03)."""
    if index is None and mask is not None:
        index = scored_index(mask)
    try:
        return forward(inputs, segment_pos, index)
    except torch.cuda.OutOfMemoryError:
        if inputs.shape[0] == 1:
            raise
    torch.cuda.empty_cache()  # outside the handler: the failed attempt's tensors are released
    h = inputs.shape[0] // 2
    return torch.cat([in_halves(forward, inputs[rows], segment_pos[rows], None if mask is None else mask[rows])
                      for rows in (slice(None, h), slice(h, None))], dim=1)


def evaluate_split_stack(forward: Callable[..., torch.Tensor], k: int, task: Task,
                         split: str, n: int, seed: int, batch_size: int, device: torch.device,
                         dtype: torch.dtype = torch.float32, batching: str = PACKED) -> list[pd.DataFrame]:
    """:func:`evaluate_split` of ``k`` models at once, on the same examples: ``forward(inputs,
    segment_pos, index)`` returns the logits of all k (a stack of instances under vmap,
    :mod:`seqlib.stack`; a single model is ``k = 1``), ``[k, B, ...]``, or for a per-position task
    ``[k, N, ...]`` at the flat positions ``index`` it is scored at (:func:`scored_index`). One
    per-example frame per model, in order. The groups of examples run in the forward batches of
    :func:`eval_packs` (``batching``)."""
    frames: list[list[pd.DataFrame]] = [[] for _ in range(k)]
    seq_len = 0
    plan = eval_plan(task, split, n, batch_size)

    def group(g: int) -> Batch:
        length, count = plan[g]
        return task.sample(split, count, seed=derive_seed(f"eval/{split}", seed, g),
                           **({} if length is None else {"length": length}))

    with torch.no_grad():
        for pack in eval_packs(task, [count for _, count in plan], batch_size, batching):
            examples = joined([group(g) for g in pack])
            seq_len = max(seq_len, examples.inputs.shape[1])
            for i in range(0, len(examples), batch_size):
                batch = _slice(examples, i, i + batch_size).to(device)
                per_position = batch.mask if batch.mask.dim() == 2 else None
                index = None if per_position is None else scored_index(per_position)
                with autocast(device, dtype):
                    logits = in_halves(forward, batch.inputs, batch.segment_pos, per_position, index)
                meta = _sliceable(batch.meta, len(batch))
                buckets = task.scoring.position_buckets
                for j in range(k):
                    frames[j].append(pd.DataFrame({**_per_example(logits[j], batch, task.spec, buckets, index),
                                                   **meta}))
    out = [pd.concat(f, ignore_index=True) for f in frames]
    for frame in out:
        frame.attrs["seq_len"] = seq_len
    return out


def _sliceable(meta: dict[str, np.ndarray], n: int) -> dict[str, np.ndarray]:
    out = {}
    for key, values in meta.items():
        arr = np.asarray(values)
        if arr.shape == (n,) and arr.dtype.kind in "biuUSO":
            out[f"meta:{key}"] = arr
    return out


# -- the metrics, each over the per-example statistics of the scored examples (``n_scored > 0``) ---------


def mean_loss(stats: pd.DataFrame) -> float:
    """Loss per scored position: cross-entropy, binary cross-entropy, or for regression the MSE."""
    return float(stats["loss_sum"].sum() / stats["n_scored"].sum())


def accuracy(stats: pd.DataFrame) -> float:
    """Per-token accuracy pooled over every scored position (the Chomsky reference's masked mean, tasks.md §2.2)."""
    return float(stats["n_correct"].sum() / stats["n_scored"].sum())


def example_accuracy(stats: pd.DataFrame) -> float:
    """The mean over examples of each example's token accuracy (Zoology's ``valid/accuracy``, tasks.md §1.2)."""
    return float((stats["n_correct"] / stats["n_scored"]).mean())


def exact_match(stats: pd.DataFrame) -> float:
    """Fraction of examples whose scored positions are all right."""
    return float(stats["exact"].mean())


def glitch_rate(stats: pd.DataFrame) -> float:
    """Fraction of scored bits mispredicted by argmax, ``1 - accuracy`` (Liu et al. 2023, tasks.md §3)."""
    return 1.0 - accuracy(stats)


def f1(stats: pd.DataFrame) -> float:
    """F1 of the positive class pooled over the scored positions (logit > 0), 1.0 when neither the
    predictions nor the targets hold a positive (Hashemi et al.'s binary F1, tasks.md §4)."""
    tp, fp, fn = (float(stats[c].sum()) for c in ("tp", "fp", "fn"))
    return 1.0 if tp + fp + fn == 0 else 2 * tp / (2 * tp + fp + fn)


def scaled_accuracy(acc: float, chance: float) -> float:
    """``(acc - chance) / (1 - chance)``: 0 at chance, 1 when perfect (Grazzi et al. 2024, §5.1)."""
    if not 0.0 <= chance < 1.0:
        raise ValueError(f"scaled_accuracy: chance={chance} must lie in [0, 1)")
    return (acc - chance) / (1.0 - chance)


def _metrics(df: pd.DataFrame, spec: TaskSpec) -> dict[str, float]:
    scored = df[df["n_scored"] > 0]
    if scored["n_scored"].sum() == 0:
        return {}
    loss = mean_loss(scored)
    out = {"loss": loss}
    if spec.loss == "ce":
        out["perplexity"] = math.exp(loss) if loss < 700 else math.inf
        out["bits"] = loss / math.log(2)
    if "n_correct" in scored:
        acc = accuracy(scored)
        out |= {
            "accuracy": acc,
            "example_accuracy": example_accuracy(scored),
            "exact_match": exact_match(scored),
            "glitch_rate": glitch_rate(scored),
        }
        if "tp" in scored:
            out["f1"] = f1(scored)
        if spec.chance is not None and spec.chance < 1:
            out["scaled_accuracy"] = scaled_accuracy(acc, spec.chance)
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
    for col in (c for c in per_example.columns if c.startswith("pos_n:")):  # the position buckets, in order
        label = col.removeprefix("pos_n:")
        scored, loss = per_example[col].sum(), per_example[f"pos_loss:{label}"].sum()
        if scored > 0:
            values = {"loss": loss / scored, "bits": loss / scored / math.log(2)}
            rows.extend({"split": split, "slice_key": POSITION_KEY, "slice_value": label, "metric": m, "value": float(v),
                         "n": int((per_example[col] > 0).sum())} for m, v in values.items() if m in POSITION_METRICS)
    seen: set[tuple[int, ...]] = set()
    cols = [c for c in per_example.columns if c.startswith("meta:")]
    for col in sorted(cols, key=lambda c: c != f"meta:{LENGTH_KEY}"):  # the length slice first, always kept
        values = per_example[col]
        codes = tuple(pd.factorize(values)[0])  # the partition of the examples, whatever the labels
        too_many = values.nunique() > MAX_SLICE_VALUES and col != f"meta:{LENGTH_KEY}"
        if too_many or codes in seen:
            continue
        seen.add(codes)
        for value, df in per_example.groupby(col, sort=True):
            emit(col.removeprefix("meta:"), str(value), df, SLICE_METRICS)
    return rows


def _frame(rows: Iterable[dict] | pd.DataFrame) -> pd.DataFrame:
    df = rows if isinstance(rows, pd.DataFrame) else pd.DataFrame(list(rows))
    return df if not df.empty else pd.DataFrame(columns=["split", "slice_key", "slice_value", "metric", "value", "n"])


def length_mean(rows: Iterable[dict] | pd.DataFrame, split: str, metric: str = "accuracy") -> float:
    """``metric`` of ``split`` averaged over its lengths (the ``length`` slice), every length weighing
    the same: the Chomsky score (Delétang et al. 2023, tasks.md §2.2). ``rows``: one run's metric
    rows (a record's ``metrics`` list, or its frame); NaN when the split has no length slice."""
    df = _frame(rows)
    sel = df[(df["split"] == split) & (df["slice_key"] == LENGTH_KEY) & (df["metric"] == metric)]
    return float(sel["value"].mean()) if len(sel) else math.nan


def split_metric(rows: Iterable[dict] | pd.DataFrame, split: str, metric: str) -> float:
    """The whole-split value of ``metric`` in one run's metric rows; ``length_mean_<m>`` is
    :func:`length_mean` of ``<m>``. A scoring card's headline is
    ``split_metric(rows, card.split, card.metric)``. NaN when the rows do not hold it."""
    if metric.startswith(LENGTH_MEAN):
        return length_mean(rows, split, metric.removeprefix(LENGTH_MEAN))
    df = _frame(rows)
    sel = df[(df["split"] == split) & (df["slice_key"] == "all") & (df["metric"] == metric)]
    return float(sel["value"].iloc[0]) if len(sel) else math.nan


def metric_scale(metric: str) -> tuple[float | None, float | None, bool]:
    """``(low, high, higher_is_better)`` of a metric name (:data:`METRIC_SCALES`); a ``length_mean_<m>``
    metric has the scale of ``<m>``. ``KeyError`` for a name the evaluator does not emit."""
    base = metric.removeprefix(LENGTH_MEAN)
    if base not in METRIC_SCALES:
        raise KeyError(f"no scale for metric {metric!r}; known: {', '.join(sorted(METRIC_SCALES))}")
    return METRIC_SCALES[base]


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

    def forward(self, inputs: torch.Tensor, segment_pos: torch.Tensor | None = None, cache=None,
                scored: torch.Tensor | None = None):
        """As ``SequenceModel.forward``: with ``scored`` (a flat index or a bool mask), the answers at those
        positions only."""
        lead = inputs.shape[:1] if self.spec.output_kind == "pooled" else inputs.shape[:2]
        if scored is not None:
            lead = (int(scored.sum()) if scored.dtype == torch.bool else len(scored),)
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
