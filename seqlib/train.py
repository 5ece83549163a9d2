"""The trainer: one run = one (task, model, lr, seed); a sweep = every lr x seed, resumable.

Per step: a fresh batch ``task.sample("train", batch_size, seed=derive_seed("train", seed, step))``
(so the data order depends only on the run seed, identically for every model), forward under bf16
autocast on CUDA / fp32 on CPU with the output head applied at the scored positions only
(:func:`seqlib.objective.scored_targets`), the task's masked loss (:func:`seqlib.objective.masked_loss`),
backward, gradient clipping, optimiser and schedule step (linear warmup, cosine to ``min_lr``).
``torch.manual_seed(seed)`` precedes the model build, so a run is deterministic on CPU. A run stopped
from outside goes on from its last validation's snapshot when it starts again (:mod:`seqlib.snapshot`).

Fail-fast message (:class:`NonFiniteError`), steps counted from 0 (the number of updates already made)::

    non-finite loss (nan) at step 3 of griffin on mqar (lr=0.001, seed=0); non-finite grads in: \
adamw:decay[embed.weight, blocks.0.mlp.up.weight, +9 more]; non-finite params in: none

``loss`` becomes ``gradient norm`` when the loss is finite but the gradients are not. Groups are
``adamw:decay`` (>= 2-D tensors), ``adamw:no_decay`` (biases, norm scales, other 1-D tensors) and,
with Muon, ``muon:hidden``; each lists its first offending parameter names, ``none`` if all are finite.
"""

from __future__ import annotations

import io
import math
import sys
import time
import traceback
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import pandas as pd
import torch
from tqdm import tqdm

from seqlib import cuda_context, snapshot
from seqlib import tasks as task_registry
from seqlib.config import ExperimentConfig, check_stopping, out_of_distribution, select_split
from seqlib.evaluate import PACKED, eval_plan, evaluate_split, pack_batches, split_metric, summarize
from seqlib.measure import Meter, device_processes, model_size, share_hint
from seqlib.models import ModelUnavailable, build_model
from seqlib.objective import autocast, batch_accuracy, derive_seed, masked_loss, scored_targets
from seqlib.provenance import now, this_process
from seqlib.record import RunRecord
from seqlib.results import ResultsError, atomic_write_bytes, read_record, record_path, run_id, write_record
from seqlib.tasks.base import Task
from seqlib.tasks.scoring import Scoring

# Modules whose matrices are input adapters or output heads: AdamW, never Muon (Muon is meant for
# hidden-layer matrices; Jordan et al. 2024, and the torch.optim.Muon docs).
EDGE_NAMES = ("embed", "head", "adapter", "readout", "unembed", "input_proj", "output_proj_final")
SHOWN_NAMES = 3


class NonFiniteError(FloatingPointError):
    """Loss or gradient norm became NaN/inf; the message names the step and parameter groups."""


def resolve_device(name: str) -> torch.device:
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name == "cuda" and not torch.cuda.is_available():
        raise RuntimeError("run.device=cuda but CUDA is not available here")
    return torch.device(name)


def resolve_dtype(name: str, device: torch.device) -> torch.dtype:
    if name == "auto":
        return torch.bfloat16 if device.type == "cuda" else torch.float32
    return {"float32": torch.float32, "bfloat16": torch.bfloat16}[name]


def lr_factor(step: int, warmup: int, total: int, min_ratio: float) -> float:
    """Multiplier of the peak lr: linear warmup to 1 over ``warmup`` steps, then cosine to ``min_ratio``."""
    if step < warmup:
        return (step + 1) / warmup
    progress = (step - warmup) / max(1, total - warmup)
    return min_ratio + (1 - min_ratio) * 0.5 * (1 + math.cos(math.pi * min(progress, 1.0)))


def parameter_groups(model: torch.nn.Module, optimizer: str) -> dict[str, list[tuple[str, torch.nn.Parameter]]]:
    """Named parameter groups; with Muon, the weights of ``nn.Linear`` layers not in an input adapter
    or output head (``EDGE_NAMES``) form ``muon:hidden`` and everything else stays with AdamW."""
    hidden: set[int] = set()
    if optimizer == "muon":
        for mname, module in model.named_modules():
            if isinstance(module, torch.nn.Linear) and not any(e in mname for e in EDGE_NAMES):
                hidden.add(id(module.weight))
    groups: dict[str, list] = {"muon:hidden": [], "adamw:decay": [], "adamw:no_decay": []}
    for name, p in model.named_parameters():
        if not p.requires_grad:
            continue
        key = "muon:hidden" if id(p) in hidden else "adamw:decay" if p.dim() >= 2 else "adamw:no_decay"
        groups[key].append((name, p))
    return {k: v for k, v in groups.items() if v}


class Optimizers:
    """AdamW (and Muon for hidden matrices) with one warmup+cosine schedule shared by both."""

    def __init__(self, model: torch.nn.Module, cfg, lr: float):
        self.groups = parameter_groups(model, cfg.optimizer)
        adam = [{"params": [p for _, p in self.groups[g]], "weight_decay": wd, "name": g}
                for g, wd in (("adamw:decay", cfg.weight_decay), ("adamw:no_decay", 0.0)) if g in self.groups]
        on_cuda = all(p.is_cuda for g in adam for p in g["params"])  # one fused kernel instead of a loop
        self.optimizers: list[torch.optim.Optimizer] = [
            torch.optim.AdamW(adam, lr=lr, betas=tuple(cfg.betas), weight_decay=cfg.weight_decay,
                              fused=on_cuda or None)
        ]
        if "muon:hidden" in self.groups:
            if not hasattr(torch.optim, "Muon"):
                raise RuntimeError(f"optim.optimizer=muon needs torch.optim.Muon (torch {torch.__version__} lacks it)")
            self.optimizers.append(torch.optim.Muon(
                [p for _, p in self.groups["muon:hidden"]], lr=lr, weight_decay=cfg.weight_decay,
                momentum=cfg.betas[0], adjust_lr_fn="match_rms_adamw"))
        ratio = cfg.min_lr / lr

        def factor(s: int) -> float:
            return lr_factor(s, cfg.warmup_steps, cfg.steps, ratio)

        self.schedulers = [torch.optim.lr_scheduler.LambdaLR(o, factor) for o in self.optimizers]
        self.params = [p for g in self.groups.values() for _, p in g]

    def zero_grad(self) -> None:
        for o in self.optimizers:
            o.zero_grad(set_to_none=True)

    def step(self) -> None:
        for o in self.optimizers:
            o.step()
        for s in self.schedulers:
            s.step()

    def nonfinite(self, what: str) -> str:
        """Group names with their first non-finite ``what`` ("grads" or "params"), or ``none``."""
        bad = {}
        for g, named in self.groups.items():
            tensors = [(n, p.grad if what == "grads" else p) for n, p in named]
            bad[g] = [n for n, t in tensors if t is not None and not torch.isfinite(t).all()]
        return named_groups(bad)


def named_groups(bad: dict[str, list[str]]) -> str:
    """``group[first names, +n more]`` for each group with non-finite tensors, or ``none``."""
    parts = []
    for g, names in bad.items():
        if names:
            more = f", +{len(names) - SHOWN_NAMES} more" if len(names) > SHOWN_NAMES else ""
            parts.append(f"{g}[{', '.join(names[:SHOWN_NAMES])}{more}]")
    return ", ".join(parts) or "none"


def nonfinite_message(cfg: ExperimentConfig, what: str, value: float, step: int, grads: str, params: str) -> str:
    """The fail-fast message (module docstring): the step, the value and the groups with non-finite
    gradients and parameters."""
    return (f"non-finite {what} ({value}) at step {step} of {cfg.model.name} on {cfg.task.name} "
            f"(lr={cfg.optim.lr:g}, seed={cfg.optim.seeds[0]}); non-finite grads in: {grads}; "
            f"non-finite params in: {params}")


def _fail(opt: Optimizers, what: str, value: float, step: int, cfg: ExperimentConfig) -> NonFiniteError:
    return NonFiniteError(nonfinite_message(cfg, what, value, step, opt.nonfinite("grads"), opt.nonfinite("params")))


def eval_size(cfg: ExperimentConfig, split: str) -> int:
    return cfg.run.eval_size_per_split.get(split, cfg.run.eval_size)


def split_batches(cfg: ExperimentConfig, task: Task, split: str, batching: str = PACKED) -> int:
    """Forward batches of one evaluation of ``split`` (:func:`seqlib.evaluate.eval_plan`), batched as
    ``batching`` says (a record's ``measure.eval_batching``; :func:`seqlib.evaluate.eval_packs`)."""
    bs = cfg.run.eval_batch_size
    return pack_batches(task, [count for _, count in eval_plan(task, split, eval_size(cfg, split), bs)], bs, batching)


def check_eval_splits(cfg: ExperimentConfig, task: Task) -> None:
    """Fail before training, not after it: the stopping rule (:func:`seqlib.config.check_stopping`),
    and one example of every evaluation split at every length the evaluation will use, so a split the
    task's parameters cannot produce (e.g. MQAR's ``test_length`` with ``vocab_size <= 4 * seq_len``)
    raises its ValueError up front."""
    check_stopping(cfg, task)
    for split in cfg.run.eval_splits or list(task.splits):
        for length, _ in eval_plan(task, split, eval_size(cfg, split), cfg.run.eval_batch_size):
            task.sample(split, 1, seed=cfg.run.eval_seed, **({} if length is None else {"length": length}))


def new_record(cfg: ExperimentConfig) -> RunRecord:
    """A run's record before it runs: status ``failed`` / ``did not finish`` until :func:`execute` ends;
    ``measure.eval_batching`` says how its evaluations are batched (:func:`seqlib.evaluate.eval_packs`)."""
    h = cfg.hash()
    device = "cuda" if cfg.run.device == "auto" and torch.cuda.is_available() else cfg.run.device.replace("auto", "cpu")
    return RunRecord(run_id=run_id(h), config_hash=h, task=cfg.task.name, model=cfg.model.name, lr=cfg.optim.lr,
                     seed=cfg.optim.seeds[0], config=cfg.model_dump(mode="json"), provenance=this_process(device),
                     measure={"eval_batching": PACKED})


def execute(cfg: ExperimentConfig, record: RunRecord, task: Task | None = None) -> None:
    """Train and evaluate one run (``cfg`` from :meth:`ExperimentConfig.for_run`), filling ``record``
    in place as it goes (so a failure still leaves what was measured). Raises on failure."""
    o, r = cfg.optim, cfg.run
    lr, seed = o.lr, o.seeds[0]
    device = resolve_device(r.device)
    dtype = resolve_dtype(r.dtype, device)
    task = task or task_registry.get_task(cfg.task.name, **cfg.task.params)
    spec = task.spec
    check_eval_splits(cfg, task)
    torch.manual_seed(seed)
    model_cfg = run_model_config(cfg, spec, record)
    meter = Meter(device)
    model = build_model(model_cfg, spec).to(device)
    opt = Optimizers(model, o, lr)
    sel = select_split(cfg, task)
    train = record.train = {"steps_done": 0, "stopped_early": False, "select_split": sel,
                            "loss_curve": [], "eval_curve": [], "data_time_s": 0.0}
    earlier = snapshot.restore(cfg, model, opt, device)  # a stopped run goes on (seqlib.snapshot)
    if earlier is not None:
        train = record.train = earlier["train"]
        record.measure["resumed"] = {"from_step": train["steps_done"], "earlier_train_time_s":
                                     earlier["trained"]["train_time_s"], "earlier_train_tokens": earlier["trained"]["train_tokens"]}
    trained_before = earlier["trained"] if earlier else {"train_time_s": 0.0, "train_tokens": 0}
    desc = f"{cfg.task.name}/{cfg.model.name} lr={lr:g} s={seed}"
    bar = tqdm(total=o.steps, initial=train["steps_done"], desc=desc, ascii=True, mininterval=r.progress_interval,
               file=sys.stderr, disable=not r.progress, dynamic_ncols=False, leave=True)
    ema_loss = ema_acc = None
    with snapshot.until_ended(lambda: snapshot.remove(cfg)):  # a failed run starts afresh
        try:
            for step in range(train["steps_done"], o.steps):
                t_data = time.perf_counter()
                batch = task.sample("train", o.batch_size, seed=derive_seed("train", seed, step)).to(device)
                t0 = time.perf_counter()
                train["data_time_s"] += t0 - t_data
                scored, targets, mask = scored_targets(batch)
                with autocast(device, dtype):
                    logits, _ = model(batch.inputs, batch.segment_pos, scored=scored)
                loss = masked_loss(logits, targets, mask, spec)
                opt.zero_grad()
                loss.backward()
                loss_val = loss.item()
                if not math.isfinite(loss_val):
                    raise _fail(opt, "loss", loss_val, step, cfg)
                gnorm = torch.nn.utils.clip_grad_norm_(opt.params, o.grad_clip or math.inf).item()
                if not math.isfinite(gnorm):
                    raise _fail(opt, "gradient norm", gnorm, step, cfg)
                opt.step()
                meter.sync()
                meter.step(time.perf_counter() - t0, batch.inputs.shape[0] * batch.inputs.shape[1])
                train["steps_done"] = step + 1
                if step % r.log_every == 0 or step == o.steps - 1:
                    train["loss_curve"].append([step, loss_val])
                acc = batch_accuracy(logits.detach(), targets, mask, spec)
                ema_loss = loss_val if ema_loss is None else 0.9 * ema_loss + 0.1 * loss_val
                if acc is not None:
                    ema_acc = acc if ema_acc is None else 0.9 * ema_acc + 0.1 * acc
                bar.set_postfix_str(_postfix(ema_loss, ema_acc, meter), refresh=False)
                bar.update(1)
                if (step + 1) % r.eval_every == 0 or step == o.steps - 1:
                    if validate(model, task, cfg, train, step + 1, device, dtype):
                        break
                    if step + 1 < o.steps:
                        snapshot.save_or_warn(cfg, model, opt, train, trained(trained_before, meter))
        finally:
            bar.close()
            record.measure |= meter.summary() | trained(trained_before, meter)
        finish_run(model, task, cfg, record, model_cfg, device, dtype, meter.summary()["wall_time_s"])


def trained(before: dict, meter: Meter) -> dict:
    """Train time, tokens and tokens/s of a run so far: ``before`` (its part before a resumption,
    :mod:`seqlib.snapshot`) and what ``meter`` counted since."""
    seconds, tokens = before["train_time_s"] + sum(meter.step_times), before["train_tokens"] + meter.tokens
    return {"train_time_s": seconds, "train_tokens": tokens, "tokens_per_s": tokens / seconds if seconds > 0 else None}


def run_model_config(cfg: ExperimentConfig, spec, record: RunRecord, stacked: bool = False):
    """The model config a run builds: ``cfg.model``, resized to ``cfg.param_budget`` when one is set
    (``record.measure["built_model"]`` then holds the resized model; the record's config stays the one
    asked for, whose hash names the record). ``record.measure["kernel_mode"]`` says which
    kernel each mixer runs in training and evaluation here (``stacked``: as an instance of a stack),
    and why (:func:`seqlib.models.modes.kernel_modes`); a mixer that cannot train here (its backward refused:
    :func:`seqlib.models.modes.training_refused`) raises ``ModelUnavailable``, so the run is skipped with the reason.
    A model with an fla mixer records the cap on Triton's autotuning it ran under
    (``measure["triton_autotune_max"]``: ``SEQLIB_AUTOTUNE_MAX``, :func:`seqlib.models.zoo.limit_triton_autotuning`;
    None = fla's full search), which changes the kernels' speed, never their function."""
    from seqlib.models.modes import kernel_modes, training_refused
    from seqlib.models.sizing import match_budget
    from seqlib.models.zoo import ZOO_MIXERS, limit_triton_autotuning

    model_cfg = cfg.model if cfg.param_budget is None else match_budget(cfg.model, spec, cfg.param_budget)
    if cfg.param_budget is not None:
        record.measure["built_model"] = model_cfg.model_dump(mode="json")
    task = task_registry.get_task(cfg.task.name, **cfg.task.params)
    splits = dict.fromkeys([select_split(cfg, task), *final_splits(cfg, task)])
    record.measure["kernel_mode"] = kernel_modes(model_cfg, task, resolve_device(cfg.run.device), splits, stacked)
    if any(kind in ZOO_MIXERS for kind in model_cfg.block_types):
        record.measure["triton_autotune_max"] = limit_triton_autotuning()
    refused = training_refused(record.measure["kernel_mode"])
    if refused:  # skipped with the reason at once, not failed after compiling its kernels
        raise ModelUnavailable(f"cannot train here: {refused}")
    return model_cfg


def validate(model, task: Task, cfg: ExperimentConfig, train: dict, steps_done: int, device, dtype,
             per_example: pd.DataFrame | None = None) -> bool:
    """Score the selection split after ``steps_done`` steps (``per_example``: its :func:`evaluate_split`
    frame, already computed by a stack); True when a stopping rule ends the run here.

    Into ``train``: ``eval_curve`` (accuracy, else loss), ``select_metric`` (the scoring card's metric)
    and ``select_curve`` (its value), ``stopped_early`` (a rule stopped the run), ``stop_reason`` (once
    the run ends, the rule of :func:`stop_reason`: ``solved``, ``early_stop_accuracy`` or ``plateau``,
    else ``cap`` at ``optim.steps``; None before) and, at the end, ``fit``: whether the last value
    reaches the card's solve threshold, None without a threshold or on an out-of-distribution split.
    A run that ends with ``fit`` False did not fit its training distribution."""
    split, card = train["select_split"], task.scoring
    rows = (eval_rows(model, task, cfg, split, device, dtype) if per_example is None
            else summarize(per_example, task.spec, split))
    val = {m["metric"]: m["value"] for m in rows if m["slice_key"] == "all"}
    train["eval_curve"].append([steps_done, val.get("accuracy", val.get("loss"))])
    train["select_metric"] = card.metric
    train.setdefault("select_curve", []).append([steps_done, split_metric(rows, split, card.metric)])
    values = [v for _, v in train["select_curve"]]
    reason = stop_reason(cfg, card, val.get("accuracy", -1.0), values)
    train["stopped_early"] = reason is not None
    if reason is None and steps_done >= cfg.optim.steps:
        reason = "cap"
    train["stop_reason"] = reason
    if reason is not None:
        train["fit"] = None if out_of_distribution(task, split) else card.solves(values[-1])
    return train["stopped_early"]


def stop_reason(cfg: ExperimentConfig, card: Scoring, accuracy: float, values: list[float]) -> str | None:
    """The stopping rule (:class:`seqlib.config.OptimConfig`) that ends a run whose selection split
    scored ``values`` of the card's metric so far (the last with ``accuracy``), or None."""
    o = cfg.optim
    if o.stop_at_solve and card.solves(values[-1]):
        return "solved"
    if o.early_stop_accuracy is not None and accuracy >= o.early_stop_accuracy:
        return "early_stop_accuracy"
    if o.plateau_evals is not None and plateaued(values, o.plateau_evals, o.plateau_delta, card.higher_is_better):
        return "plateau"
    return None


def plateaued(values: list[float], evals: int, delta: float, higher_is_better: bool) -> bool:
    """Whether the best of the last ``evals`` values improves on the best before them by no more than
    ``delta``, in the metric's direction (a NaN counts as no value); False until there are more than
    ``evals`` values."""
    if len(values) <= evals:
        return False
    scores = [(v if higher_is_better else -v) if not math.isnan(v) else -math.inf for v in values]
    return max(scores[-evals:]) <= max(scores[:-evals]) + delta


def final_splits(cfg: ExperimentConfig, task: Task) -> list[str]:
    """The splits a finished run is evaluated on."""
    return cfg.run.eval_splits or list(task.splits)


def finish_run(model, task: Task, cfg: ExperimentConfig, record: RunRecord, model_cfg, device, dtype,
               wall_time_s: float, per_split: dict[str, pd.DataFrame] | None = None) -> None:
    """The end of a trained run: every evaluation split (:func:`final_splits`; ``per_split``: their
    :func:`evaluate_split` frames, already computed by a stack) into ``record.metrics``, the model's
    size and state into ``record.measure``, the checkpoint beside the record (``run.save_checkpoint``),
    status ok."""
    r = cfg.run
    metrics, seq_len = [], 0
    for split in final_splits(cfg, task):
        per_example = (per_split or {}).get(split)
        if per_example is None:
            per_example = evaluate_split(model, task, split, eval_size(cfg, split), r.eval_seed,
                                         r.eval_batch_size, device, dtype)
        seq_len = max(seq_len, per_example.attrs["seq_len"])
        metrics += summarize(per_example, task.spec, split)
    record.metrics = metrics
    record.measure |= {**model_size(model, seq_len), "wall_time_s": wall_time_s}
    if r.save_checkpoint:
        buf = io.BytesIO()
        torch.save({"model": model.state_dict(), "model_config": model_cfg.model_dump(mode="json"),
                    "steps_done": record.train["steps_done"]}, buf)
        atomic_write_bytes(record_file(cfg).with_suffix(".pt"), buf.getvalue())
    record.status, record.reason = "ok", None


def _postfix(loss: float, acc: float | None, meter: Meter) -> str:
    tps = meter.tokens / max(sum(meter.step_times), 1e-9)
    acc_s = "-" if acc is None else f"{acc:.3f}"
    return f"loss={loss:.4f} acc={acc_s} tok/s={tps:,.0f}"


def eval_rows(model, task: Task, cfg: ExperimentConfig, split: str, device, dtype) -> list[dict]:
    """The metric rows (:func:`seqlib.evaluate.summarize`) of ``split`` on its evaluation examples."""
    per_example = evaluate_split(model, task, split, eval_size(cfg, split), cfg.run.eval_seed,
                                 cfg.run.eval_batch_size, device, dtype)
    return summarize(per_example, task.spec, split)


def record_file(cfg: ExperimentConfig) -> Path:
    """Where the record of the run ``cfg`` (a single lr and seed) is stored."""
    return record_path(cfg.run.results_dir, cfg.task.name, cfg.model.name, cfg.hash())


def stored_record(cfg: ExperimentConfig) -> RunRecord | None:
    """The stored record of the run ``cfg``, or None."""
    return read_record(cfg.run.results_dir, cfg.task.name, cfg.model.name, cfg.hash())


@dataclass
class Outcome:
    record: RunRecord
    reused: bool  # True: an earlier ok record with the same config hash was kept (not re-run)
    written: bool = True  # False: the record could not be written (its reason says why)


def store_outcome(cfg: ExperimentConfig, record: RunRecord) -> Outcome:
    """Stamp the end time and write ``record``. A write that fails (a full disk, a read-only store)
    fails this run only: the outcome is a ``failed`` record saying why (not on disk), and the caller
    goes on to the next run."""
    record.provenance.end_time = now()
    try:
        write_record(cfg.run.results_dir, record)
    except OSError as e:
        record.reason = (f"could not write the record to {cfg.run.results_dir} ({type(e).__name__}: {e}); "
                         f"the run ended {record.status}" + (f": {record.reason}" if record.reason else ""))
        record.status = "failed"
        return Outcome(record, reused=False, written=False)
    return Outcome(record, reused=False)


def finished(cfg: ExperimentConfig) -> Outcome | None:
    """The stored ``ok`` record of ``cfg`` as a reused outcome, or None (an unreadable record is
    reported and counts as not finished: the run is done again)."""
    try:
        old = stored_record(cfg)
    except ResultsError as e:
        print(f"warning: {e}; re-running it", file=sys.stderr)
        return None
    return Outcome(old, reused=True) if old is not None and old.status == "ok" else None


def run_one(cfg: ExperimentConfig, force: bool = False, task: Task | None = None) -> Outcome:
    """Run one configuration unless an ``ok`` record of the same hash exists (or ``force``); record it.

    ``ModelUnavailable`` gives a ``skipped`` record with the reason; any other ``Exception`` a ``failed``
    one with the message and traceback. ``KeyboardInterrupt``/``SystemExit`` propagate and write nothing.
    """
    done = None if force else finished(cfg)
    if done is not None:
        return done
    cuda_context.require_usable()  # a run that cannot start here is not recorded as failed
    record = new_record(cfg)
    try:
        execute(cfg, record, task)
    except ModelUnavailable as e:
        record.status, record.reason = "skipped", f"model unavailable: {e}"
    except Exception as e:  # noqa: BLE001 - every failure is recorded, then reported by the caller
        record_failure(record, e)
    return store_outcome(cfg, record)


def failure_reason(e: Exception) -> str:
    """A failed run's reason: the exception, for a run out of GPU memory within a share of the GPU
    that share (:func:`seqlib.measure.share_hint`), and whether it left this process's CUDA context
    unusable (:func:`seqlib.cuda_context.lost_after_failure`)."""
    return (f"{type(e).__name__}: {e}" + (share_hint() if isinstance(e, torch.cuda.OutOfMemoryError) else "")
            + cuda_context.lost_after_failure())


def record_failure(record: RunRecord, e: Exception, reason: str | None = None) -> None:
    """Mark ``record`` failed by ``e`` (in its ``except`` block: the traceback is the current one), with
    ``reason`` (default :func:`failure_reason`). A run out of GPU memory also records the share of the
    GPU it had (``measure.device_processes``, whatever stage it failed in), which tells a later grid
    with no larger a share not to train it again (:func:`seqlib.book.grid.out_of_share`)."""
    record.status, record.reason = "failed", failure_reason(e) if reason is None else reason
    record.traceback = traceback.format_exc()
    if isinstance(e, torch.cuda.OutOfMemoryError):
        record.measure.setdefault("device_processes", device_processes())


def sweep_plan(cfg: ExperimentConfig, chosen_lr: float | None = None) -> list[ExperimentConfig]:
    """The runs of a sweep: one configuration per (lr, seed) of ``cfg.optim.lrs x cfg.optim.seeds``.
    A two-stage sweep (``optim.sweep_seeds``) has the sweep seeds' runs at every rate, then the other
    seeds' runs at ``chosen_lr``, the rate chosen on the first stage's records
    (:func:`seqlib.book.report.second_stage_rate`); without ``chosen_lr`` only the first stage."""
    o, later = cfg.optim, second_stage_seeds(cfg)
    runs = [cfg.for_run(lr, seed) for lr in o.lrs for seed in o.seeds if seed not in later]
    if chosen_lr is not None:
        if chosen_lr not in o.lrs:
            raise ValueError(f"the chosen rate {chosen_lr:g} is not one of the sweep's {o.lrs}")
        runs += [cfg.for_run(chosen_lr, seed) for seed in later]
    return runs


def second_stage_seeds(cfg: ExperimentConfig) -> list[int]:
    """The seeds of a two-stage sweep that run at the chosen rate only (none for a one-stage sweep)."""
    o = cfg.optim
    return [] if o.sweep_seeds is None else [s for s in o.seeds if s not in o.sweep_seeds]


def run_sweep(
    cfg: ExperimentConfig,
    force: bool = False,
    task: Task | None = None,
    on_result: Callable[[Outcome, int, int], None] | None = None,
    choose: Callable[[ExperimentConfig], float | None] | None = None,
) -> list[Outcome]:
    """Every run of :func:`sweep_plan`, in that order; finished runs are kept. A two-stage sweep trains
    its first stage, then its second at ``choose(cfg)`` (the rate chosen on the stored first stage;
    None: no second stage)."""
    first = sweep_plan(cfg)
    later = len(second_stage_seeds(cfg)) if choose else 0
    outcomes = []

    def run(plan: list[ExperimentConfig]) -> None:
        for run_cfg in plan:
            outcome = run_one(run_cfg, force=force, task=task)
            outcomes.append(outcome)
            if on_result is not None:
                on_result(outcome, len(outcomes) - 1, len(first) + later)

    run(first)
    chosen = choose(cfg) if later else None
    if chosen is not None:
        run(sweep_plan(cfg, chosen)[len(first):])
    return outcomes
