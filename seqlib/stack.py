"""Stacked training: K runs of one (model, task) in one optimiser step, as K independent models.

The runs of a stack differ only in settings that keep every shape: the seed and the optimiser
scalars of :data:`PER_INSTANCE` (learning rate, schedule, weight decay, clipping, steps, early
stopping). Their parameters lie in one ``[K, N]`` tensor and the model runs through
``torch.func.functional_call`` on each instance's row, in one of two ways (``instances``):

* ``vmap`` (the native models): once per step under ``torch.func.vmap``, so every matmul becomes a
  batched matmul with per-instance weights, and the mixers see the instance axis as part of their
  batch (the fused RG-LRU scan folds it in by its vmap rule, ``seqlib.kernels.rglru_triton``);
* ``loop`` (models with a mixer whose kernels have no vmap rule: the fla zoo's Triton kernels,
  :func:`default_instances`): one instance after the other, each exactly as a run alone computes
  it. The gain is not in the kernels but in the host: the whole step of every instance, and the
  shared update below, is one CUDA graph (:class:`GraphedStep`), so the per-kernel launch cost of
  these small models is paid once at capture instead of at every step of every run.

Each instance

* sees exactly the batches it would see alone (its seed's stream: :class:`seqlib.data.Prefetcher`),
  right-padded to one length, which is exact for causal models (padding comes after every real token);
* has its own AdamW state, warmup + cosine schedule, weight decay, gradient clipping by the norm of
  its own gradient and early stopping, with the arithmetic of ``torch.optim.AdamW`` and
  ``torch.nn.utils.clip_grad_norm_`` (per-instance scalars computed in float64, as theirs);
* leaves the stack when it stops (its last step, early stopping, a failure), so it stops costing;
* fails alone: a non-finite loss or gradient norm freezes that instance (no more updates), and it is
  recorded as failed with its step and parameter groups while the others go on;
* writes the record a run of its own writes (:func:`seqlib.train.execute`: schema, config hash,
  evaluation, checkpoint), plus ``measure.stack_size``. Its ``step_time_s`` is the time of a stacked
  step (one step of every instance in it), ``tokens_per_s`` its own tokens over the stack's training
  time, ``peak_memory_bytes`` the stack's.

Evaluations (the selection split every ``run.eval_every`` steps, every split at the end) run the
instances that reach them at once, under the same vmap, on the examples each would see alone (the
runs share their evaluation settings); a chunk of instances at a time bounds the memory.

``compiled=True`` (vmap instances only; the sweep benchmark's ``--compile``) runs the mapped forward
through ``torch.compile`` (one graph per batch shape), which fuses the elementwise work that
dominates these small models' kernel time (fp32 gates, norms, activations: the sweep's kernel
profile); the records say so (``measure.stack_compiled``). Off by default: on the lent H200's torch
2.11 (CUDA) it failed in the sweep with functorch's ``!dynamicLayerStack.empty()`` internal assert
(2026-12-02), while its CPU test passes on torch 2.13.

A stack stopped from outside goes on from its last validation (:mod:`seqlib.snapshot`).

No host sync per step: losses, gradient norms and the first failing step stay on the device and are
read every ``run.log_every`` steps and at evaluations. AdamW only (Muon orthogonalises each matrix):
:func:`stack_problem` says why a set of runs cannot stack.
"""

from __future__ import annotations

import functools
import hashlib
import json
import math
import sys
import time
import traceback
from collections.abc import Callable
from dataclasses import dataclass

import torch
from torch.func import functional_call, vmap
from torch.utils._pytree import tree_leaves, tree_map

from seqlib import cuda_context, snapshot
from seqlib import tasks as task_registry
from seqlib.config import ExperimentConfig
from seqlib.data import Prefetcher, bucket
from seqlib.evaluate import evaluate_split_stack
from seqlib.layers.segments import one_document_per_row, restarts_mid_row
from seqlib.measure import Meter
from seqlib.models import ModelUnavailable, build_model
from seqlib.models.zoo import ZOO_MIXERS, graphs_refused
from seqlib.objective import autocast, masked_loss
from seqlib.record import RunRecord
from seqlib.tasks.base import Batch, Task
from seqlib.train import (
    Outcome,
    check_eval_splits,
    eval_size,
    failure_reason,
    final_splits,
    finish_run,
    finished,
    lr_factor,
    named_groups,
    new_record,
    nonfinite_message,
    parameter_groups,
    record_failure,
    resolve_device,
    resolve_dtype,
    run_model_config,
    select_split,
    store_outcome,
    validate,
)

# optimiser settings that may differ inside a stack (everything else must agree)
PER_INSTANCE = ("lr", "min_lr", "weight_decay", "betas", "warmup_steps", "grad_clip", "steps",
                "early_stop_accuracy", "stop_at_solve", "plateau_evals", "plateau_delta", "seeds", "lr_sweep")
ADAM_EPS = 1e-8  # torch.optim.AdamW's default eps, which the per-run trainer uses
CLIP_EPS = 1e-6  # clip_grad_norm_: coefficient max_norm / (total_norm + 1e-6), at most 1
EVAL_TOKENS = 2**20  # input tokens per instance chunk of a stacked evaluation forward (bounds its memory)


def stack_key(cfg: ExperimentConfig) -> str:
    """Runs with one key may share a stack: they agree on everything but :data:`PER_INSTANCE`."""
    data = cfg.model_dump(mode="json")
    data["optim"] = {k: v for k, v in data["optim"].items() if k not in PER_INSTANCE}
    return hashlib.sha256(json.dumps(data, sort_keys=True).encode()).hexdigest()[:16]


def stack_problem(cfgs: list[ExperimentConfig]) -> str | None:
    """Why ``cfgs`` (runs of :meth:`ExperimentConfig.for_run`) cannot train as one stack, or None."""
    if not cfgs:
        return "no runs to stack"
    if len({stack_key(c) for c in cfgs}) > 1:
        return "the runs differ in more than the seed and the optimiser scalars (seqlib.stack.PER_INSTANCE)"
    if cfgs[0].optim.optimizer != "adamw":
        return f"optim.optimizer={cfgs[0].optim.optimizer}: only AdamW stacks (Muon orthogonalises each matrix)"
    if any(len(c.optim.seeds) != 1 for c in cfgs):
        return "each run of a stack has one seed (ExperimentConfig.for_run)"
    return None


INSTANCES = ("vmap", "loop")


def default_instances(cfg: ExperimentConfig) -> str:
    """``loop`` for a model with an fla mixer (Triton kernels without a vmap rule), else ``vmap``."""
    return "loop" if any(kind in ZOO_MIXERS for kind in cfg.model.block_types) else "vmap"


def instance_map(fn: Callable, in_dims: tuple, instances: str) -> Callable:
    """``vmap(fn, in_dims)``, or (``instances="loop"``) the same map as a loop: ``fn`` on each
    instance's slice of the mapped arguments (dim 0 of every tensor in them), the results stacked."""
    if instances == "vmap":
        return vmap(fn, in_dims=in_dims)

    def looped(*args):
        mapped = [a for a, d in zip(args, in_dims) if d is not None]
        k = tree_leaves(mapped)[0].shape[0]

        def arguments(i: int) -> list:
            return [a if d is None else tree_map(lambda t: t[i], a) for a, d in zip(args, in_dims)]

        return torch.stack([fn(*arguments(i)) for i in range(k)])

    return looped


@dataclass
class Layout:
    """Where each trainable parameter lies in a row of the ``[K, N]`` stack: parameters ordered by
    optimiser group, so each group is one contiguous slice ``groups[g] = (start, end)``."""

    names: list[str]
    shapes: list[torch.Size]
    offsets: list[int]
    groups: dict[str, tuple[int, int]]
    size: int

    @classmethod
    def of(cls, model: torch.nn.Module) -> Layout:
        names, shapes, offsets, groups, n = [], [], [], {}, 0
        for group, named in parameter_groups(model, "adamw").items():
            start = n
            for name, p in named:
                names.append(name)
                shapes.append(p.shape)
                offsets.append(n)
                n += p.numel()
            groups[group] = (start, n)
        return cls(names, shapes, offsets, groups, n)

    def flatten(self, model: torch.nn.Module) -> torch.Tensor:
        params = dict(model.named_parameters())
        return torch.cat([params[name].detach().reshape(-1).float() for name in self.names])

    def views(self, flat: torch.Tensor) -> dict[str, torch.Tensor]:
        """The parameters of every instance, ``[K, *shape]`` views of ``flat`` [K, N]."""
        return {name: flat[:, o : o + math.prod(s)].view(flat.shape[0], *s)
                for name, s, o in zip(self.names, self.shapes, self.offsets)}

    def load(self, model: torch.nn.Module, row: torch.Tensor) -> torch.nn.Module:
        """Copy one instance's parameters (a row of the stack) into ``model``."""
        params = dict(model.named_parameters())
        with torch.no_grad():
            for name, s, o in zip(self.names, self.shapes, self.offsets):
                params[name].copy_(row[o : o + math.prod(s)].view(s))
        return model

    def nonfinite(self, row: torch.Tensor) -> str:
        """Group names with their first non-finite parameters in one row, or ``none``."""
        bad = {g: [name for name, s, o in zip(self.names, self.shapes, self.offsets)
                   if a <= o < b and not torch.isfinite(row[o : o + math.prod(s)]).all()]
               for g, (a, b) in self.groups.items()}
        return named_groups(bad)


def schedule_table(cfgs: list[ExperimentConfig]) -> torch.Tensor:
    """``[S, K, 6]`` fp32 per-step scalars of each instance's AdamW step s (S = the longest run):
    ``1 - lr wd``, ``lr / (1 - beta1^(s+1))``, ``sqrt(1 - beta2^(s+1))``, ``1 - beta1``, ``beta2``,
    ``1 - beta2``, computed in float64 as ``torch.optim.AdamW`` does (lr: :func:`seqlib.train.lr_factor`)."""
    steps = max(c.optim.steps for c in cfgs)
    table = torch.zeros(steps, len(cfgs), 6, dtype=torch.float64)
    for k, c in enumerate(cfgs):
        o = c.optim
        b1, b2 = o.betas
        for s in range(o.steps):
            lr = o.lr * lr_factor(s, o.warmup_steps, o.steps, o.min_lr / o.lr)
            table[s, k] = torch.tensor([1 - lr * o.weight_decay, lr / (1 - b1 ** (s + 1)),
                                        (1 - b2 ** (s + 1)) ** 0.5, 1 - b1, b2, 1 - b2], dtype=torch.float64)
    return table.float()


def scored_positions(batch: Batch) -> tuple[torch.Tensor | None, torch.Tensor, torch.Tensor]:
    """Stacked :func:`seqlib.objective.scored_targets`: for a per-position task the flat indices
    ``[K, N]`` (row-major, as the boolean mask selects them) of each instance's scored positions,
    padded to the largest count N, their targets and a validity mask; for a pooled task None and the
    batch's own targets and mask."""
    if batch.mask.dim() != 3:
        return None, batch.targets, batch.mask
    flat = batch.mask.flatten(1)  # [K, B*T]
    counts = flat.sum(1)
    n = bucket(max(int(counts.max()), 1))  # few shapes: a CUDA graph per shape
    order = torch.sort((~flat).to(torch.int8), dim=1, stable=True).indices[:, :n]  # scored first, in order
    valid = torch.arange(n)[None, :] < counts[:, None]
    index = torch.where(valid, order, 0)
    targets = torch.where(valid, torch.gather(batch.targets.flatten(1), 1, index), 0)
    return index, targets.to(batch.targets.dtype), valid


class Stack:
    """The live instances: their parameters ``flat`` [K, N], AdamW moments, non-trained tensors
    ``fixed`` (buffers, frozen parameters: ``{name: [K, *shape]}``) and per-instance state. The
    update works in place, so a CUDA graph of the step (:class:`GraphedStep`) replays on it."""

    def __init__(self, cfgs: list[ExperimentConfig], models: list[torch.nn.Module], layout: Layout, device):
        self.cfgs, self.layout = cfgs, layout
        self.ids = list(range(len(cfgs)))  # stack row -> index into cfgs
        self.flat = torch.stack([layout.flatten(m) for m in models]).to(device).requires_grad_()
        tensors = [{**dict(m.named_parameters()), **dict(m.named_buffers())} for m in models]
        self.fixed = {n: torch.stack([t[n].detach() for t in tensors]).to(device)
                      for n in tensors[0] if n not in set(layout.names)}
        self.m = torch.zeros_like(self.flat, requires_grad=False)
        self.v = torch.zeros_like(self.m)
        self.table = schedule_table(cfgs).to(device)
        self.max_norm = torch.tensor([c.optim.grad_clip or math.inf for c in cfgs], device=device)
        self.decay_end = layout.groups.get("adamw:decay", (0, 0))[1]  # decay params come first
        self.frozen = torch.zeros(len(cfgs), dtype=torch.bool, device=device)
        self.first_bad = torch.full((len(cfgs),), -1, dtype=torch.long, device=device)
        self.bad_what = torch.zeros(len(cfgs), 2, device=device)  # (loss, gradient norm) at the bad step
        self.bad_groups = torch.zeros(len(cfgs), len(layout.groups), dtype=torch.bool, device=device)

    def keep(self, rows: list[int]) -> None:
        """Keep only these stack rows (the others have ended): new tensors, so graphs are captured anew."""
        idx = torch.tensor(rows, dtype=torch.long, device=self.flat.device)
        self.ids = [self.ids[r] for r in rows]
        self.flat = self.flat.detach()[idx].clone().requires_grad_()
        for name in ("m", "v", "max_norm", "frozen", "first_bad", "bad_what", "bad_groups"):
            setattr(self, name, getattr(self, name)[idx])
        self.fixed = {n: t[idx] for n, t in self.fixed.items()}
        self.table = self.table[:, idx]

    @torch.no_grad()
    def update(self, losses: torch.Tensor, step: torch.Tensor) -> torch.Tensor:
        """Clip each instance's gradient to its own norm, then one AdamW step (``step``: a 0-d int64
        tensor on the stack's device) of every instance that is still finite; an instance whose loss or
        gradient norm is not finite is frozen from here on (its first bad step and groups are kept).
        In place, with no host sync. Returns the gradient norms [K]."""
        g = self.flat.grad
        group_norms = torch.stack([g[:, a:b].norm(dim=1) for a, b in self.layout.groups.values()], 1)
        norm = group_norms.norm(dim=1)
        ok = torch.isfinite(losses) & torch.isfinite(norm) & ~self.frozen
        new_bad = ~ok & ~self.frozen
        self.first_bad.copy_(torch.where(new_bad, step, self.first_bad))
        self.bad_what.copy_(torch.where(new_bad[:, None], torch.stack([losses.detach(), norm], 1), self.bad_what))
        self.bad_groups.copy_(torch.where(new_bad[:, None], ~torch.isfinite(group_norms), self.bad_groups))
        self.frozen |= ~ok
        coef = torch.clamp(self.max_norm / (norm + CLIP_EPS), max=1.0)
        g = g * coef[:, None]
        decay, step_size, bc2_sqrt, w1, beta2, w2 = self.table.index_select(0, step.view(1))[0].unbind(-1)  # [K]
        p = self.flat.detach()
        d = self.decay_end
        new_p = torch.cat([p[:, :d] * decay[:, None], p[:, d:]], 1)
        m = torch.lerp(self.m, g, w1[:, None])
        v = self.v * beta2[:, None] + w2[:, None] * g * g
        denom = v.sqrt() / bc2_sqrt[:, None] + ADAM_EPS
        new_p = new_p + (-step_size[:, None] * m) / denom
        keep = ok[:, None]
        p.copy_(torch.where(keep, new_p, p))
        self.m.copy_(torch.where(keep, m, self.m))
        self.v.copy_(torch.where(keep, v, self.v))
        self.flat.grad = None
        return norm


class GraphedStep:
    """``fn(inputs) -> outputs`` (dicts of tensors; its effects in place on persistent tensors),
    replayed from a CUDA graph per input shape: the first ``warmup`` calls of a shape run eagerly on a
    side stream (real calls, and the warm-up the capture needs: autotuning, lazy initialisation), the
    next captures the graph, and every later call copies its inputs into the graph's and replays it.
    The graphs share one memory pool: each reads only its own inputs and the persistent tensors, and
    they never run at once. Without CUDA (``enabled`` False) every call is eager. A capture that
    fails (a kernel that syncs with the host, or one that cannot be captured) turns the graphs off:
    that call and every later one run eagerly, and ``failure`` says why."""

    def __init__(self, fn: Callable[[dict], dict], enabled: bool, warmup: int = 2) -> None:
        self.fn, self.enabled, self.warmup = fn, enabled, warmup
        self.failure: str | None = None
        self.reset()

    def reset(self) -> None:
        """Forget every graph (the persistent tensors were replaced)."""
        self.graphs: dict[tuple, tuple[torch.cuda.CUDAGraph, dict, dict]] = {}
        self.seen: dict[tuple, int] = {}
        self.pool = torch.cuda.graph_pool_handle() if self.enabled else None
        self.captures = 0

    def __call__(self, inputs: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        if not self.enabled:
            return self.fn(inputs)
        key = tuple((k, tuple(v.shape), v.dtype) for k, v in inputs.items())
        if key in self.graphs:
            graph, static_in, static_out = self.graphs[key]
            for k, v in inputs.items():
                static_in[k].copy_(v, non_blocking=True)
            graph.replay()
            return static_out
        if self.seen.get(key, 0) < self.warmup:
            self.seen[key] = self.seen.get(key, 0) + 1
            side = torch.cuda.Stream()
            side.wait_stream(torch.cuda.current_stream())
            with torch.cuda.stream(side):
                out = self.fn(inputs)
            torch.cuda.current_stream().wait_stream(side)
            return out
        static_in = {k: v.clone() for k, v in inputs.items()}
        graph = torch.cuda.CUDAGraph()
        try:
            with torch.cuda.graph(graph, pool=self.pool):
                static_out = self.fn(static_in)
        except RuntimeError as e:  # the capture ran nothing: this call's step runs eagerly
            self.failure = capture_failure(e)
            self.enabled, self.graphs = False, {}
            torch.cuda.synchronize()
            return self.fn(inputs)
        self.graphs[key] = (graph, static_in, static_out)
        self.captures += 1
        graph.replay()  # the capture ran nothing: this call's step
        return static_out


def capture_failure(e: BaseException) -> str:
    """The first error of a failed capture (the later ones only say that the capture failed) and the
    line that raised it."""
    while (earlier := e.__cause__ or (None if e.__suppress_context__ else e.__context__)) is not None:
        e = earlier
    frames = traceback.extract_tb(e.__traceback__)
    where = f" at {frames[-1].filename}:{frames[-1].lineno} ({frames[-1].name})" if frames else ""
    return f"{type(e).__name__}: {str(e).splitlines()[0] if str(e) else ''}"[:300] + where


def forward_logits(model: torch.nn.Module, params: dict, fixed: dict, inputs, segment_pos, index):
    """One instance's logits at its scored positions (``index`` None: every position / pooled)."""
    logits, _ = functional_call(model, {**params, **fixed}, (inputs, segment_pos), {"scored": index})
    return logits


def execute_stack(cfgs: list[ExperimentConfig], records: list[RunRecord], task: Task | None = None,
                  on_done: Callable[[int], None] | None = None, evaluate: bool = True,
                  cuda_graphs: bool | None = None, instances: str | None = None, compiled: bool = False) -> None:
    """Train and evaluate ``cfgs`` (runs of one stack: :func:`stack_problem` is None) together, filling
    ``records[i]`` (from :func:`seqlib.train.new_record`) in place; ``on_done(i)`` is called as run i
    ends (ok, or failed alone), so that its record can be written at once. An exception that ends the
    whole stack propagates; the records of the runs still in it are then unfinished. ``evaluate=False``
    (the sweep benchmark) trains only: no validation, no final evaluation, records marked so.
    ``cuda_graphs`` (default: on a CUDA device, unless the model's fla layer refuses them) replays the
    training step from CUDA graphs (:class:`GraphedStep`); batches are padded to :func:`seqlib.data.bucket` lengths either way.
    ``instances`` (:data:`INSTANCES`; default :func:`default_instances`): how the instances run (module
    docstring); ``compiled``: their forward through ``torch.compile`` (vmap only, module docstring)."""
    problem = stack_problem(cfgs)
    if problem:
        raise ValueError(f"cannot stack these runs: {problem}")
    cfg0 = cfgs[0]
    instances = instances or default_instances(cfg0)
    if instances not in INSTANCES:
        raise ValueError(f"instances must be one of {INSTANCES}, not {instances!r}")
    if compiled and instances != "vmap":
        raise ValueError(f"compiled=True compiles vmapped instances; these run as a {instances} (an fla mixer)")
    o, r = cfg0.optim, cfg0.run
    device = resolve_device(r.device)
    dtype = resolve_dtype(r.dtype, device)
    refused = graphs_refused(cfg0.model.block_types)
    graphs = device.type == "cuda" and not refused if cuda_graphs is None else cuda_graphs
    if graphs and device.type != "cuda":
        raise ValueError(f"cuda_graphs=True needs a CUDA device, not {device}")
    if graphs and refused:
        raise ValueError(f"cuda_graphs=True: {cfg0.model.name}: {refused}")
    task = task or task_registry.get_task(cfg0.task.name, **cfg0.task.params)
    spec = task.spec
    check_eval_splits(cfg0, task)
    model_cfg = run_model_config(cfg0, spec, records[0], stacked=instances == "vmap")
    for record in records[1:]:  # what run_model_config recorded holds for every instance
        record.measure |= {k: records[0].measure[k] for k in ("built_model", "kernel_mode", "triton_autotune_max")
                           if k in records[0].measure}
    meter = Meter(device)
    models = []
    for cfg in cfgs:  # each instance's initial weights are those of its run alone
        torch.manual_seed(cfg.optim.seeds[0])
        models.append(build_model(model_cfg, spec))
    layout = Layout.of(models[0])
    stack = Stack(cfgs, models, layout, device)
    template = models[0].to(device)  # the module the stack runs through; a finished instance's size and checkpoint
    del models
    forward = functools.partial(forward_logits, template)
    sel = select_split(cfg0, task)
    for record in records:
        record.train = {"steps_done": 0, "stopped_early": False, "select_split": sel,
                        "loss_curve": [], "eval_curve": [], "data_time_s": 0.0}
        record.measure["stack_size"] = len(cfgs)
        record.measure["stack_instances"] = instances
        record.measure["cuda_graphs"] = graphs
        if refused and device.type == "cuda":
            record.measure["cuda_graphs_failure"] = refused
        record.measure["stack_compiled"] = compiled
    tokens = [0] * len(cfgs)
    start = 0  # the first step to train: a stopped stack of these runs goes on (seqlib.snapshot)
    earlier = snapshot.restore_stack(cfgs)
    if earlier is not None:
        with torch.no_grad():
            for name in ("flat", "m", "v"):
                getattr(stack, name).copy_(earlier[name])
            for name, t in earlier["fixed"].items():
                stack.fixed[name].copy_(t)
        start = earlier["step"]
        for i, record in enumerate(records):
            record.train, tokens[i] = earlier["train"][i], earlier["tokens"][i]
            record.measure["resumed"] = {"from_step": start, "earlier_train_time_s": earlier["train_time_s"],
                                         "earlier_train_tokens": tokens[i]}
    earlier_time = earlier["train_time_s"] if earlier else 0.0
    saved: list[ExperimentConfig] | None = None  # the runs of the last snapshot written
    pending_losses: list[tuple[int, list[int], torch.Tensor]] = []
    seeds = [c.optim.seeds[0] for c in cfgs]
    last_step = max(c.optim.steps for c in cfgs) - 1
    in_dims = (0, 0, 0, 0, None) if spec.output_kind == "pooled" else (0, 0, 0, 0, 0)

    mapped = instance_map(forward, in_dims, instances)
    if compiled:
        mapped = torch.compile(mapped)

    def train_step(x: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        """One step of every live instance, on device tensors only (no host sync): a graph replays it."""
        stack.flat.grad = None  # nothing left over from a capture that failed (GraphedStep)
        with autocast(device, dtype):
            logits = mapped(layout.views(stack.flat), stack.fixed, x["inputs"], x["segment_pos"], x.get("index"))
        losses = vmap(masked_loss, in_dims=(0, 0, 0, None))(logits, x["targets"], x["valid"], spec)
        losses.sum().backward()
        stack.update(losses.detach(), x["step"])
        return {"losses": losses.detach()}

    run_step = GraphedStep(train_step, enabled=graphs)

    def flush(step: int) -> None:
        """Read what the device holds (one sync): the logged losses and the failed instances."""
        nonlocal t_read
        for logged, ids, losses in pending_losses:
            for i, value in zip(ids, losses.tolist()):
                records[i].train["loss_curve"].append([logged, value])
        pending_losses.clear()
        meter.sync()
        t = time.perf_counter()
        steps = step - read_step[0]
        if steps > 0:
            for _ in range(steps):
                meter.step((t - t_read) / steps, 0)
        t_read, read_step[0] = t, step
        first_bad = stack.first_bad.tolist()
        failed = [row for row, s in enumerate(first_bad) if s >= 0]
        for row in failed:
            i = stack.ids[row]
            loss, norm = stack.bad_what[row].tolist()
            what, value = ("loss", loss) if not math.isfinite(loss) else ("gradient norm", norm)
            groups = [g for g, bad in zip(layout.groups, stack.bad_groups[row].tolist()) if bad]
            message = nonfinite_message(cfgs[i], what, value, first_bad[row], ", ".join(groups) or "none",
                                        layout.nonfinite(stack.flat[row].detach()))
            train = records[i].train  # as a run alone: it stops before the failing step's update
            train["steps_done"] = first_bad[row]
            train["loss_curve"] = [e for e in train["loss_curve"] if e[0] < first_bad[row]]
            end(i, "failed", f"NonFiniteError: {message}")
        if failed:
            stack.keep([row for row in range(len(stack.ids)) if row not in failed])
            run_step.reset()

    def evaluate_rows(rows: list[int], splits: list[str]) -> dict[int, dict[str, object]]:
        """The per-example evaluation frames of these stack rows on ``splits``, all rows at once (vmap
        over their parameters, the same examples for all: the runs share the evaluation settings)."""
        idx = torch.tensor(rows, dtype=torch.long, device=device)
        params = layout.views(stack.flat.detach()[idx])
        fixed = {n: t[idx] for n, t in stack.fixed.items()}
        batched = instance_map(forward, (0, 0, None, None, None), instances)

        def logits(inputs, segment_pos, index):  # [len(rows), B or N, ...], a chunk of instances at a time
            chunk = max(1, EVAL_TOKENS // inputs.numel())
            return torch.cat([batched({n: v[c : c + chunk] for n, v in params.items()},
                                      {n: v[c : c + chunk] for n, v in fixed.items()}, inputs, segment_pos, index)
                              for c in range(0, len(rows), chunk)])

        out: dict[int, dict[str, object]] = {row: {} for row in rows}
        template.eval()
        try:
            for split in splits:
                frames = evaluate_split_stack(logits, len(rows), task, split, eval_size(cfg0, split), r.eval_seed,
                                              r.eval_batch_size, device, dtype)
                for row, frame in zip(rows, frames):
                    out[row][split] = frame
        finally:
            template.train()
        return out

    def end(i: int, status: str, reason: str | None = None, per_split: dict | None = None) -> None:
        record = records[i]
        record.measure |= meter.summary() | {"stack_size": len(cfgs), "train_tokens": tokens[i]}
        record.measure["train_time_s"] += earlier_time  # a resumed stack's time before, as its tokens
        train_time = record.measure["train_time_s"]
        record.measure["tokens_per_s"] = tokens[i] / train_time if train_time else None
        if run_step.failure:  # the graphs were turned off on the way (GraphedStep)
            record.measure |= {"cuda_graphs": False, "cuda_graphs_failure": run_step.failure}
        record.train["data_time_s"] = pf.data_time_s
        if status == "ok" and not evaluate:
            record.status, record.reason = "failed", "trained without evaluation (evaluate=False: a benchmark)"
        elif status == "ok":
            finish_run(template, task, cfgs[i], record, model_cfg, device, dtype, meter.summary()["wall_time_s"],
                       per_split)
        else:
            record.status, record.reason = status, reason
        if on_done is not None:
            on_done(i)

    read_step = [start]
    t_read = began = time.perf_counter()

    def save(step: int) -> None:
        """The snapshot of the runs still in the stack after ``step`` steps (replacing the last)."""
        nonlocal saved
        live = [cfgs[i] for i in stack.ids]
        if saved is not None and saved != live:
            snapshot.remove_stack(saved)
        snapshot.save_stack(live, {"step": step, "flat": stack.flat.detach().cpu(), "m": stack.m.cpu(),
                                   "v": stack.v.cpu(), "fixed": {n: t.cpu() for n, t in stack.fixed.items()},
                                   "train": [records[i].train for i in stack.ids],
                                   "tokens": [tokens[i] for i in stack.ids],
                                   "train_time_s": sum(meter.step_times) + earlier_time})
        saved = live

    with snapshot.until_ended(lambda: snapshot.remove_stack(saved or cfgs)):  # a failed stack starts afresh
        with Prefetcher(task, o.batch_size, seeds, start, last_step + 1 - start, None, buckets=True) as pf:
            for step in range(start, last_step + 1):
                if not stack.ids:
                    break
                batch = pf.get(step, [seeds[i] for i in stack.ids])
                index, targets, valid = scored_positions(batch)
                real = (batch.segment_pos >= 0).flatten(1).sum(1).tolist()
                for i, n in zip(stack.ids, real):
                    tokens[i] += n
                host = {"inputs": batch.inputs, "segment_pos": batch.segment_pos, "targets": targets, "valid": valid}
                if index is not None:
                    host["index"] = index
                x = {k: to_device(v, device) for k, v in host.items()}
                x["step"] = torch.full((), step, dtype=torch.long, device=device)
                if restarts_mid_row(batch.segment_pos):  # the mixers' own check syncs: no graph of it
                    losses = train_step(x)["losses"]
                else:
                    with one_document_per_row():
                        losses = run_step(x)["losses"]
                log_rows = [row for row, i in enumerate(stack.ids)
                            if step % r.log_every == 0 or step == cfgs[i].optim.steps - 1]
                if log_rows:
                    pending_losses.append((step, [stack.ids[row] for row in log_rows], losses.detach()[log_rows].clone()))
                for i in stack.ids:
                    records[i].train["steps_done"] = step + 1
                ending = {i for i in stack.ids if (step + 1) % r.eval_every == 0 or step == cfgs[i].optim.steps - 1}
                if step % r.log_every == 0 or ending:
                    flush(step + 1)  # failed instances leave here, before any evaluation
                rows = [row for row, i in enumerate(stack.ids) if i in ending]
                val = evaluate_rows(rows, [sel]) if evaluate and rows else {}
                done = [row for row in rows if (evaluate and validate(
                    template, task, cfgs[stack.ids[row]], records[stack.ids[row]].train, step + 1, device, dtype,
                    val[row][sel])) or step == cfgs[stack.ids[row]].optim.steps - 1]
                final = evaluate_rows(done, final_splits(cfg0, task)) if evaluate and done else {}
                for row in done:
                    layout.load(template, stack.flat[row].detach())  # its size and checkpoint
                    end(stack.ids[row], "ok", per_split=final.get(row))
                if done:
                    stack.keep([row for row in range(len(stack.ids)) if row not in done])
                    run_step.reset()
                if ending and stack.ids and step < last_step:
                    save(step + 1)
                if ending and r.progress:  # one line per validation: a GPU round's log shows how far each stack got
                    print(f"stack {cfg0.task.name} {cfg0.model.name}: step {step + 1} of {last_step + 1}, "
                          f"{len(stack.ids)} run(s) left, {time.perf_counter() - began:.0f} s", file=sys.stderr, flush=True)
                if ending:  # evaluation (and the snapshot) is not training time: the clock restarts after it
                    meter.sync()
                    t_read = time.perf_counter()


def to_device(x: torch.Tensor, device: torch.device) -> torch.Tensor:
    """``x`` on ``device`` without a host sync: a CUDA copy goes from pinned memory, asynchronously."""
    if device.type == "cuda" and not x.is_pinned():
        x = x.pin_memory()
    return x.to(device, non_blocking=True)


def run_stack(cfgs: list[ExperimentConfig], force: bool = False, task: Task | None = None,
              on_result: Callable[[Outcome, int, int], None] | None = None, compiled: bool = False) -> list[Outcome]:
    """:func:`seqlib.train.run_one` for a stack: runs with an ``ok`` record are kept (unless ``force``),
    the rest train as one stack (:func:`execute_stack`), each record written as its run ends. A
    failure of the whole stack fails every run still in it (``ModelUnavailable``: skipped). A stack
    that runs out of GPU memory is split in two halves that train one after the other (the runs that
    had ended keep their records); a single run out of memory fails as any other. ``compiled``: a
    vmapped stack's forward through ``torch.compile`` (:func:`execute_stack`; a looped one ignores it)."""
    outcomes: dict[int, Outcome] = {}
    todo = []
    for i, cfg in enumerate(cfgs):
        done = None if force else finished(cfg)
        if done is not None:
            outcomes[i] = done
        else:
            todo.append(i)
    records = {i: new_record(cfgs[i]) for i in todo}

    def write(j: int) -> None:
        i = todo[j]
        outcomes[i] = store_outcome(cfgs[i], records[i])
        if on_result is not None:
            on_result(outcomes[i], i, len(cfgs))

    out_of_memory = None
    if todo:
        cuda_context.require_usable()  # runs that cannot start here are not recorded as failed
        try:
            execute_stack([cfgs[i] for i in todo], [records[i] for i in todo], task, on_done=write,
                          compiled=compiled and default_instances(cfgs[0]) == "vmap")
        except ModelUnavailable as e:
            for j, i in enumerate(todo):
                if i not in outcomes:
                    records[i].status, records[i].reason = "skipped", f"model unavailable: {e}"
                    write(j)
        except Exception as e:  # noqa: BLE001 - recorded for every run still in the stack
            if all(i in outcomes for i in todo):
                raise  # every run had ended: nothing to record it in
            left = [i for i in todo if i not in outcomes]
            if isinstance(e, torch.cuda.OutOfMemoryError) and len(left) > 1:
                out_of_memory = left  # split below, once this frame's tensors are released
            else:
                reason = failure_reason(e)
                for j, i in enumerate(todo):
                    if i not in outcomes:
                        record_failure(records[i], e, reason)
                        write(j)
    if out_of_memory:
        halves = [out_of_memory[: len(out_of_memory) // 2], out_of_memory[len(out_of_memory) // 2 :]]
        print(f"warning: a stack of {len(out_of_memory)} runs of {cfgs[0].model.name} on {cfgs[0].task.name} "
              f"ran out of GPU memory; training it as stacks of {len(halves[0])} and {len(halves[1])}",
              file=sys.stderr, flush=True)
        torch.cuda.empty_cache()
        for half in halves:
            report = None if on_result is None else (lambda o, j, _n, half=half: on_result(o, half[j], len(cfgs)))
            for i, outcome in zip(half, run_stack([cfgs[i] for i in half], force, task, report, compiled)):
                outcomes[i] = outcome
    return [outcomes[i] for i in range(len(cfgs))]
