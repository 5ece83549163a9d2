"""The sweep benchmark (issue: Fill the GPU): ``python -m seqlib bench sweep``.

The same full-profile configurations trained three ways, side by side in one call on one GPU:

* ``loop``: today's per-run trainer (:func:`seqlib.train.execute`), one run;
* ``packed``: 8 such runs in 8 processes at once on the GPU;
* ``stacked``: K = 16 and K = 64 runs (seeds x learning rates) in one process
  (:func:`seqlib.stack.execute_stack`), its step replayed from CUDA graphs (``--eager``: without).

Shapes: parity (Chomsky, B = 128, lengths 1..40), MQAR (T = 256, B = 128) and flip-flop (T = 512,
B = 16), and on request (``--shapes text``, with the byte corpus built) the text chapter's windows
(T = 1024, B = 32), each model at its full-profile size: by default the six native models; ``--models`` takes
any model of the grid (the fla zoo stacks its instances in a loop, ``seqlib.stack``). Each way trains ``--steps`` steps (after which
its small final evaluation is not timed); the rate is config-steps per second from the median step
time (the stacked step includes its batch wait, the loop's step adds its mean data time). The loop
first trains a warm-up run of as many steps in the same process, so that the compilation and the
per-length set-up of its attention fast path (FlexAttention compiles per new length) are paid
before it is timed, as in a long run; the stacked steps are timed per ``LOG_EVERY`` steps, and the
median leaves out the warm-up and capture of the graphs. ``gpu_busy`` is CUDA kernel time over wall
time while a run of ``--steps`` steps trains (``torch.profiler``; for the stack, its graphs' warm-up
and capture included), ``steady_gpu_busy`` the stack's kernel time per step over its timed step time
and ``kernels`` the kernels that took most of its kernel time (the profile of a missed goal);
``data_share`` the stack's time waiting for its batches over its training time; with ``--compile``,
``compiled_config_steps_per_s`` and ``compiled_speedup`` the same stack with its forward through
``torch.compile`` (vmap stacks only); ``eval_batch_s``
the stack's evaluation time per instance and forward batch of the task's selection split at the
full profile's evaluation size and batch (a stack of K trains 2 steps, then evaluates that split
at its last step and once more as its final evaluation: wall time less training time, whose
steps include their wait for batches, over K x the batches; the plan prices evaluation with it). Goals: parity >= 30x
the loop and >= 5x packed; flip-flop >= 10x the loop; MQAR >= 4x the loop.

Writes ``results/bench/sweep-<UTC time>.json``: ``device``, ``commit`` and per (shape, model, K)
``config_steps_per_s``, ``speedup_vs_loop``, ``speedup_vs_packed``, ``gpu_busy``; it is rewritten
after every measurement, so a call stopped by its time limit keeps what it measured.
"""

from __future__ import annotations

import argparse
import multiprocessing as mp
import sys
import time

import torch

from seqlib.bench.record import no_cuda, save_record

SHAPES = {"parity": ("parity_check", 128), "mqar": ("mqar", 128), "flipflop": ("flipflop", 16),  # task, batch
          "text": ("text", 32)}
SYNTHETIC = ["parity", "mqar", "flipflop"]  # the default shapes; text needs the byte corpus (make corpus)
MODELS = ["hawk", "griffin", "local_transformer", "transformer", "lstm", "gru"]  # the default
PACKED = 8
STACKS = (16, 64)
LRS = (3e-4, 1e-3, 2e-3, 4e-3)
LOG_EVERY = 10  # the stack's timing interval (one host read each)
TOP_KERNELS = 12  # the kernels a row lists, by their share of kernel time
# how eval_batch_s is timed; the first record with it (sweep-20261201T225522) also took the data time
# off, which the steps' times already hold, so the plan reads eval_batch_s only from records saying this
EVAL_TIMING = "wall less training time"


def registered_models() -> list[str]:
    from seqlib.models.registry import MODELS as REGISTERED

    return list(REGISTERED)


def configs(shape: str, model: str, k: int, steps: int, log_every: int = 10**9) -> list:
    """K runs of the shape's full-profile config: seeds 0.. x the rates of :data:`LRS`."""
    from seqlib.config import load_config
    from seqlib.tasks import get_task
    from seqlib.train import select_split

    task, batch = SHAPES[shape]
    base = load_config(task, model, "full")
    split = select_split(base, get_task(base.task.name, **base.task.params))
    run = base.run.model_copy(update={"eval_every": 10**9, "log_every": log_every, "progress": False,
                                      "save_checkpoint": False, "eval_size": 16, "eval_batch_size": 16,
                                      "eval_splits": [split], "results_dir": "results/scratch/bench-sweep"})
    optim = base.optim.model_copy(update={"steps": steps, "batch_size": batch, "warmup_steps": 2,
                                          "early_stop_accuracy": None})
    cfg = base.model_copy(update={"run": run, "optim": optim})
    return [cfg.for_run(LRS[i % len(LRS)], i // len(LRS)) for i in range(k)]


def eval_configs(shape: str, model: str, k: int) -> list:
    """K runs of 2 steps that evaluate the selection split as the full profile sizes it."""
    from seqlib.config import load_config

    full = load_config(SHAPES[shape][0], model, "full").run
    out = []
    for cfg in configs(shape, model, k, 2):
        run = cfg.run.model_copy(update={"eval_every": 2, "eval_size": full.eval_size,
                                         "eval_batch_size": full.eval_batch_size})
        out.append(cfg.model_copy(update={"run": run}))
    return out


def stacked_eval_time(cfgs) -> float:
    """Seconds per instance and forward batch of the stack's evaluations (module docstring)."""
    from seqlib.stack import execute_stack
    from seqlib.tasks import get_task
    from seqlib.train import new_record, select_split, split_batches

    records = [new_record(c) for c in cfgs]
    torch.cuda.synchronize()
    start = time.perf_counter()
    execute_stack(cfgs, records)
    torch.cuda.synchronize()
    wall = time.perf_counter() - start
    task = get_task(cfgs[0].task.name, **cfgs[0].task.params)
    batches = 2 * split_batches(cfgs[0], task, select_split(cfgs[0], task))
    spent = wall - records[0].measure["train_time_s"]  # its steps' times include their wait for batches
    return spent / (len(cfgs) * batches)


def loop_rate(cfg, warm: bool = True) -> float:
    """Config-steps per second of one run of the per-run trainer (after a warm-up run of it)."""
    from seqlib.train import execute, new_record

    if warm:
        execute(cfg, new_record(cfg))
    record = new_record(cfg)
    execute(cfg, record)
    m = record.measure
    return 1.0 / (m["step_time_s"] + record.train["data_time_s"] / max(record.train["steps_done"], 1))


def stacked_rate(cfgs, graphs: bool = True, compiled: bool = False) -> tuple[float, float]:
    """Config-steps per second of the stack, and the share of its training time spent waiting for data
    (``compiled``: the stack's forward through ``torch.compile``, :mod:`seqlib.stack`)."""
    from seqlib.stack import execute_stack
    from seqlib.train import new_record

    records = [new_record(c) for c in cfgs]
    # training time only: K evaluations would dominate the call
    execute_stack(cfgs, records, evaluate=False, cuda_graphs=graphs, compiled=compiled)
    m = records[0].measure
    return len(cfgs) / m["step_time_s"], records[0].train["data_time_s"] / m["train_time_s"]


def compiled_row(cfgs, graphs: bool, rate: float) -> dict:
    """The same stack with its forward through ``torch.compile``: its rate, its speed-up over ``rate``
    (the uncompiled stack's) and the wall time of the whole measurement (the compilation in it);
    or why it failed (a looped stack, the zoo's, is refused: :func:`seqlib.stack.execute_stack`)."""
    start = time.perf_counter()
    try:
        compiled, _ = stacked_rate(cfgs, graphs, compiled=True)
    except Exception as e:  # noqa: BLE001 - recorded, the benchmark goes on
        return {"compiled_error": f"{type(e).__name__}: {e}"[:500]}
    return {"compiled_config_steps_per_s": compiled, "compiled_speedup": compiled / rate,
            "compiled_wall_s": time.perf_counter() - start}


def gpu_busy(fn, *args) -> tuple[float, float, list[dict]]:
    """Kernel time over wall time while ``fn(*args)`` runs (torch.profiler, CUDA activity), the kernel
    time in seconds, and the :data:`TOP_KERNELS` kernels that took most of it, with their shares."""
    from torch.profiler import ProfilerActivity, profile

    torch.cuda.synchronize()
    start = time.perf_counter()
    with profile(activities=[ProfilerActivity.CUDA]) as prof:
        fn(*args)
        torch.cuda.synchronize()
    wall = time.perf_counter() - start
    events = [e for e in prof.key_averages() if e.device_type.name == "CUDA"]
    kernels = sum(e.device_time_total for e in events) / 1e6
    top = sorted(events, key=lambda e: -e.device_time_total)[:TOP_KERNELS]
    shares = [{"kernel": e.key[:160], "share": e.device_time_total / 1e6 / kernels, "calls": e.count} for e in top]
    return kernels / wall, kernels, shares


def _packed_worker(args) -> float:
    shape, model, steps = args
    return loop_rate(configs(shape, model, 1, steps)[0])


def packed_rate(shape: str, model: str, steps: int) -> float:
    """Config-steps per second of :data:`PACKED` per-run processes sharing the GPU (their rates summed)."""
    with mp.get_context("spawn").Pool(PACKED) as pool:
        return sum(pool.map(_packed_worker, [(shape, model, steps)] * PACKED))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m seqlib bench sweep", description=__doc__.split("\n")[0])
    parser.add_argument("--shapes", nargs="+", default=SYNTHETIC, choices=list(SHAPES),
                        help="default: the synthetic shapes; `text` (T = 1024, B = 32, ~5M parameters, the "
                             "language-modelling chapter's) prices issue 22's runs and needs the corpus")
    parser.add_argument("--models", nargs="+", default=MODELS, choices=sorted(registered_models()))
    parser.add_argument("--stacks", nargs="+", type=int, default=list(STACKS))
    parser.add_argument("--steps", type=int, default=60, help="training steps per measurement (default 60)")
    parser.add_argument("--packed-shapes", nargs="*", default=["parity"], choices=list(SHAPES),
                        help="shapes that also measure the 8 packed processes (default: parity, its goal)")
    parser.add_argument("--eager", action="store_true", help="the stacked step without CUDA graphs")
    parser.add_argument("--compile", action="store_true",
                        help="also time each stack with its forward through torch.compile (rows with compiled: true)")
    args = parser.parse_args(argv)
    if no_cuda("sweep"):
        return 2
    results, path = [], None
    for shape in args.shapes:
        for model in args.models:
            row = {"shape": shape, "model": model}
            try:
                (one,) = configs(shape, model, 1, args.steps)
                row["loop"] = loop_rate(one)
                row["loop_gpu_busy"] = gpu_busy(loop_rate, one, False)[0]
                row["packed"] = packed_rate(shape, model, args.steps) if shape in args.packed_shapes else None
            except Exception as e:  # noqa: BLE001 - recorded, the benchmark goes on
                row["error"] = f"{type(e).__name__}: {e}"[:500]
            for k in args.stacks:
                entry = dict(row, K=k)
                if "error" not in row:
                    try:
                        cfgs = configs(shape, model, k, args.steps, LOG_EVERY)
                        rate, data_share = stacked_rate(cfgs, not args.eager)
                        entry.update(config_steps_per_s=rate, data_share=data_share, speedup_vs_loop=rate / row["loop"],
                                     speedup_vs_packed=None if row["packed"] is None else rate / row["packed"],
                                     cuda_graphs=not args.eager)
                        busy, kernel_s, top = gpu_busy(stacked_rate, cfgs, not args.eager)
                        # every step runs the same kernels (warm-up calls are steps too): per-step kernel
                        # time over the timed step time is how busy the GPU is once the graphs replay
                        entry.update(gpu_busy=busy, steady_gpu_busy=kernel_s / args.steps * rate / k, kernels=top,
                                     eval_batch_s=stacked_eval_time(eval_configs(shape, model, k)))
                        if args.compile:
                            entry.update(compiled_row(cfgs, not args.eager, rate))
                    except Exception as e:  # noqa: BLE001
                        entry["error"] = f"{type(e).__name__}: {e}"[:500]
                    torch.cuda.empty_cache()
                results.append(entry)
                print({k_: (round(v, 3) if isinstance(v, float) else v) for k_, v in entry.items() if k_ != "kernels"}, flush=True)
                path = save_record("sweep", {"steps": args.steps, "packed_processes": PACKED, "loop_warmup": True,
                                             "stack_timing_interval": LOG_EVERY, "eval_timing": EVAL_TIMING,
                                             "results": results}, path)
    print(f"wrote {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
