"""Model-level benchmarks (issue 6, item 4): ``python -m seqlib bench models [train|decode|all]``.

* ``train``: training tokens/s and peak memory at T in {1k, 2k, 4k, 8k} with a fixed 16k tokens
  per batch (B = 16384 / T), bf16 autocast, forward + backward + AdamW step, 2 warm-up steps then
  the median of 4 timed steps, for Hawk, Griffin, both Transformers and the fla zoo. Sizes are
  matched to ~100M parameters (vocab 32k, tied embeddings, 12 layers): every model keeps
  d_model = 768 and 6 heads (Dh = 128, as the attention benchmark) and has its MLP width set by
  the parameter-matching helper so the total lands on the budget; a model whose MLP would leave
  1.5D..6D is resized by :func:`seqlib.models.sizing.match_budget` instead.
* ``decode``: per-token decode latency (batch 16, bf16 weights, eager PyTorch, then the same steps
  replayed from a CUDA graph, :mod:`seqlib.decode`, beside the kernels' own time) after a prefill of
  1k..32k tokens through the decode caches (1024-token chunks; smaller for the global
  Transformer, whose reference attention materialises fp32 scores), median of 50 single-token
  steps after 5 warm-up steps, for Hawk, Griffin and the Transformer (whose global cache grows
  by ``torch.cat`` each step: a real cost of that implementation, measured as such).

``train --profile hawk hgrn2`` also profiles a step of those models at the first length: the top
kernels by device time, per step (:func:`profile_one`), so Hawk's gap to HGRN2 is read before tuning.

Goals (issue 6): Griffin's tokens/s >= the global Transformer's at T=4096 and ahead at 8192;
Hawk/Griffin decode flat (within +-10%) from 1k to 32k while the Transformer's grows; Hawk >=
HGRN2 tokens/s at equal size. A wall-clock budget (``--budget`` s) skips what does not fit.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time

import torch

from seqlib.bench.record import environment, no_cuda, save_record

VOCAB = 32_000
TARGET = 100_000_000
TOKENS_PER_BATCH = 16_384
LENGTHS = (1024, 2048, 4096, 8192)
CORE = ["hawk", "griffin", "transformer", "local_transformer"]
DECODE_BATCH = 16
DECODE_STEPS, DECODE_WARMUP, DECODE_PROFILED = 50, 5, 10


def _spec():
    from seqlib.tasks.base import TaskSpec

    return TaskSpec("tokens", "tokens", "ce", num_outputs=VOCAB, vocab_size=VOCAB)


def sized_config(name: str, max_len: int = 8192):
    from seqlib.models import ModelConfig
    from seqlib.models.sizing import _fit_mlp, count_params, match_budget

    cfg = ModelConfig(name=name, d_model=768, n_layers=12, num_heads=6, num_kv_heads=1, window=1024,
                      max_len=max_len)
    fitted = _fit_mlp(cfg, _spec(), TARGET)
    if fitted is None or abs(count_params(fitted, _spec()) - TARGET) > 0.03 * TARGET:
        fitted = match_budget(cfg, _spec(), TARGET)
    return fitted


def _sync_time(fn) -> float:
    torch.cuda.synchronize()
    t0 = time.perf_counter()
    fn()
    torch.cuda.synchronize()
    return time.perf_counter() - t0


def training_step(name: str, T: int, batch: int | None = None) -> tuple:
    """A ~100M ``name`` (:func:`sized_config`) on the GPU with its AdamW and a random batch of 16k tokens
    at length ``T`` -> (its config, the batch size, one training step as a function)."""
    from seqlib.models import build_model

    cfg = sized_config(name)
    dev = torch.device("cuda")
    model = build_model(cfg, _spec()).to(dev)
    opt = torch.optim.AdamW(model.parameters(), lr=1e-4, fused=True)
    B = batch or TOKENS_PER_BATCH // T
    g = torch.Generator(device=dev).manual_seed(T)
    inputs = torch.randint(0, VOCAB, (B, T), device=dev, generator=g)
    targets = torch.randint(0, VOCAB, (B, T), device=dev, generator=g)

    def step():
        with torch.autocast("cuda", dtype=torch.bfloat16):
            logits, _ = model(inputs)
            loss = torch.nn.functional.cross_entropy(logits.flatten(0, 1).float(), targets.flatten())
        loss.backward()
        opt.step()
        opt.zero_grad(set_to_none=True)
        return loss

    return cfg, B, step


def train_one(name: str, T: int, warmup: int = 2, steps: int = 4, batch: int | None = None) -> dict:
    from seqlib.models.sizing import count_params
    from seqlib.models.zoo import limit_triton_autotuning

    autotune_max = limit_triton_autotuning()
    cfg, B, step = training_step(name, T, batch)
    for _ in range(warmup):
        step()
    torch.cuda.reset_peak_memory_stats()
    times = [_sync_time(step) for _ in range(steps)]
    sec = statistics.median(times)
    loss = float(step().detach())
    return {
        "model": name, "T": T, "B": B, "params": count_params(cfg, _spec()), "d_model": cfg.d_model,
        "mlp_width": cfg.resolved.mlp_width, "step_s": sec, "tokens_per_s": B * T / sec,
        "autotune_max_configs": autotune_max,
        "peak_mem_gib": torch.cuda.max_memory_allocated() / 2**30, "loss_finite": bool(torch.isfinite(
            torch.tensor(loss))),
    }


def top_kernels(averages, n: int = 15, attr: str = "self_device_time_total") -> dict:
    """The ``n`` operations or kernels with the most self time (``attr``, us) of a profiler's
    ``key_averages()``, each with its share of the total and its count, and the total (ms)."""
    timed = [(e.key, getattr(e, attr, 0.0) or 0.0, e.count) for e in averages]
    total = sum(t for _, t, _ in timed)
    rows = [{"name": key[:120], "ms": t / 1e3, "share": t / total if total else None, "calls": count}
            for key, t, count in sorted(timed, key=lambda r: -r[1])[:n]]
    return {"total_ms": total / 1e3, "top": rows}


def profile_one(name: str, T: int, steps: int = 3) -> dict:
    """Where a training step of ``name`` at length ``T`` spends its GPU time (issue 20: profile Hawk
    against HGRN2 before tuning): ``steps`` profiled steps after two warm-up steps, their top kernels
    by device time (:func:`top_kernels`), per step."""
    from torch.profiler import ProfilerActivity, profile

    from seqlib.models.zoo import limit_triton_autotuning

    limit_triton_autotuning()
    _, B, step = training_step(name, T)
    for _ in range(2):
        step()
    torch.cuda.synchronize()
    with profile(activities=[ProfilerActivity.CUDA]) as prof:
        for _ in range(steps):
            step()
        torch.cuda.synchronize()
    table = top_kernels(prof.key_averages())
    return {"model": name, "T": T, "B": B, "steps": steps, "device_ms_per_step": table["total_ms"] / steps,
            "top": [{**r, "ms": r["ms"] / steps, "calls": r["calls"] / steps} for r in table["top"]]}


def warm(name: str, T: int) -> None:
    """Compile (and autotune) a model's kernels at length T with one step at B=1: fla's Triton kernels
    land in Triton's on-disk cache, so the timed run in another process finds them compiled."""
    train_one(name, T, warmup=1, steps=1, batch=1)


def precompile(models: list[str], lengths, jobs: int = 6, timeout_s: float = 240.0) -> dict:
    """Run :func:`warm` for every (model, T) in up to ``jobs`` parallel processes (compilation is
    CPU-bound, one GPU is plenty); returns {model: 'ok' | error text}. Not timed: it only fills caches."""
    import subprocess
    import sys

    todo = [(m, T) for m in models for T in lengths]
    running, status = [], {}
    deadline = time.monotonic() + timeout_s
    while todo or running:
        while todo and len(running) < jobs:
            m, T = todo.pop(0)
            cmd = [sys.executable, "-m", "seqlib.bench.models", "warm", "--models", m, "--lengths", str(T)]
            running.append((m, T, time.monotonic(), subprocess.Popen(cmd, stdout=subprocess.PIPE,
                                                                      stderr=subprocess.STDOUT, text=True)))
        time.sleep(0.5)
        for item in list(running):
            m, T, t0, proc = item
            if proc.poll() is None and time.monotonic() < deadline:
                continue
            if proc.poll() is None:
                proc.kill()
            out = proc.communicate()[0]
            running.remove(item)
            ok = proc.returncode == 0
            status[f"{m}@{T}"] = "ok" if ok else (out.strip().splitlines() or ["killed"])[-1][:300]
            print(f"warm {m:>18} T={T:>5}: {time.monotonic() - t0:6.1f} s {status[f'{m}@{T}']}", flush=True)
    return status


def train_goals(rows: list[dict]) -> dict:
    """Issue-6 training goals from benchmark rows; a goal whose models were not measured is None."""
    tps = {(r["model"], r["T"]): r["tokens_per_s"] for r in rows if "tokens_per_s" in r}

    def ratio(a, b, T):
        return tps[(a, T)] / tps[(b, T)] if (a, T) in tps and (b, T) in tps else None

    def met(r, strict=False):
        return None if r is None else (r > 1.0 if strict else r >= 1.0)

    lengths = sorted({T for _, T in tps})
    hh = {T: ratio("hawk", "hgrn2", T) for T in lengths if ratio("hawk", "hgrn2", T) is not None}
    g4, g8 = ratio("griffin", "transformer", 4096), ratio("griffin", "transformer", 8192)
    return {
        "griffin_vs_transformer_4096": g4, "griffin_ge_transformer_4096_met": met(g4),
        "griffin_vs_transformer_8192": g8, "griffin_ahead_8192_met": met(g8, strict=True),
        "hawk_vs_hgrn2": hh, "hawk_ge_hgrn2_met": (min(hh.values()) >= 1.0) if hh else None,
    }


def train(models: list[str], lengths=LENGTHS, budget_s: float = 180.0) -> dict:
    deadline = time.monotonic() + budget_s
    rows = []
    partial = save_record("models-train", {"rows": rows, "partial": True})
    for name in models:
        for T in lengths:
            if time.monotonic() > deadline:
                rows.append({"model": name, "T": T, "skipped": "time budget of the benchmark run"})
                continue
            try:
                rows.append(train_one(name, T))
            except Exception as exc:  # noqa: BLE001 - OOM, missing kernel: record and go on
                rows.append({"model": name, "T": T, "error": f"{type(exc).__name__}: {str(exc)[:300]}"})
            finally:
                torch.cuda.empty_cache()
            save_record("models-train", {"rows": rows, "partial": True}, partial)
            r = rows[-1]
            print(f"train {name:>18} T={T:>5}: " + (
                f"{r['tokens_per_s']:>10.0f} tok/s {r['peak_mem_gib']:6.2f} GiB" if "tokens_per_s" in r
                else r.get("error") or r.get("skipped")), flush=True)
    goals = train_goals(rows)
    return {"path": partial, "rows": rows, "goals": goals, "config": {"target_params": TARGET, "tokens_per_batch": TOKENS_PER_BATCH,
                                                   "n_layers": 12, "vocab": VOCAB, "dtype": "bf16 autocast"}}


def _prefill_chunk(name: str, cfg, batch: int, context: int) -> int:
    """Prefill chunk: 1024 tokens, smaller for the global Transformer so that the reference masked
    attention's fp32 scores [B, H, chunk, context] stay under ~2 GiB."""
    if name != "transformer":
        return 1024
    per_token = batch * cfg.num_heads * (context + 1024) * 4
    chunk = 1024
    while chunk > 64 and chunk * per_token > 2 * 2**30:
        chunk //= 2
    return chunk


def _kernel_ms(model, token, pos, cache, batch, steps, dev, sync) -> float:
    """Summed duration (ms) of the device kernels of one decode step, averaged over ``steps`` steps."""
    from torch.profiler import ProfilerActivity, profile

    with profile(activities=[ProfilerActivity.CUDA]) as prof:
        for _ in range(steps):
            logits, cache = model(token, torch.full((batch, 1), pos, device=dev), cache)
            token = logits[:, -1:].argmax(-1)
            pos += 1
        sync()
    total_us = sum(getattr(e, "self_device_time_total", 0.0) for e in prof.key_averages())
    return total_us / 1e3 / steps


def decode_one(name: str, context: int, batch: int = DECODE_BATCH, steps: int = DECODE_STEPS,
               warmup: int = DECODE_WARMUP, device: str = "cuda", cfg=None,
               profile_steps: int = DECODE_PROFILED) -> dict:
    """Prefill ``context`` tokens through the decode caches, then time single-token steps.

    bf16 weights and activations (the RG-LRU state stays fp32); if the model cannot run in pure bf16,
    bf16 autocast over fp32 weights (the mode is recorded). Each step is timed on the host clock
    between two device synchronisations, so it includes the Python and kernel-launch overhead of an
    eager step; the median of ``steps`` steps after ``warmup`` steps. On CUDA, ``profile_steps``
    more steps run under the PyTorch profiler: ``gpu_ms_per_token`` is the kernels' summed duration
    per token, the device work that a launch-free (CUDA-graph) step would approach.
    """
    from seqlib.models import build_model

    cfg = cfg or sized_config(name, max_len=context + warmup + steps + 8)
    dev = torch.device(device)
    sync = torch.cuda.synchronize if dev.type == "cuda" else (lambda: None)
    base = build_model(cfg, _spec()).to(dev).eval()
    g = torch.Generator(device=dev).manual_seed(context)
    prompt = torch.randint(0, VOCAB, (batch, context), device=dev, generator=g)
    chunk = _prefill_chunk(name, cfg, batch, context)

    def run(model, dtype, autocast):
        with torch.no_grad(), torch.autocast(dev.type, dtype=torch.bfloat16, enabled=autocast):
            cache = model.init_cache(batch, device=dev, dtype=dtype)
            for lo in range(0, context, chunk):
                hi = min(context, lo + chunk)
                seg = torch.arange(lo, hi, device=dev).expand(batch, hi - lo)
                logits, cache = model(prompt[:, lo:hi], seg, cache)
            token = logits[:, -1:].argmax(-1)
            pos, times = context, []
            for i in range(warmup + steps):
                seg = torch.full((batch, 1), pos, device=dev)
                sync()
                t0 = time.perf_counter()
                logits, cache = model(token, seg, cache)
                token = logits[:, -1:].argmax(-1)
                sync()
                if i >= warmup:
                    times.append(time.perf_counter() - t0)
                pos += 1
            gpu_ms = None
            if dev.type == "cuda":  # device time per token: the sum of the kernels' durations
                try:
                    gpu_ms = _kernel_ms(model, token, pos, cache, batch, profile_steps, dev, sync)
                except Exception as exc:  # noqa: BLE001 - keep the wall-clock timing
                    print(f"profiler failed: {type(exc).__name__}: {exc}", flush=True)
            graphed = _graphed_ms(model, token, pos, cache, batch, warmup, steps, dev, sync)  # from the same state
            return times, bool(torch.isfinite(logits).all()), gpu_ms, graphed

    try:
        mode = "bf16 weights"
        times, finite, gpu_ms, graphed = run(base.to(torch.bfloat16), torch.bfloat16, False)
    except Exception as exc:  # noqa: BLE001 - e.g. a kernel without a bf16 path: fall back, say so
        mode = f"bf16 autocast (pure bf16 failed: {type(exc).__name__}: {str(exc)[:120]})"
        times, finite, gpu_ms, graphed = run(base.float(), torch.float32, True)
    times.sort()
    return {"model": name, "context": context, "batch": batch, "mode": mode, "prefill_chunk": chunk,
            "ms_per_token": 1e3 * statistics.median(times), "ms_p10": 1e3 * times[len(times) // 10],
            "ms_p90": 1e3 * times[(9 * len(times)) // 10], "steps": steps, "logits_finite": finite,
            "gpu_ms_per_token": gpu_ms, "profiled_steps": profile_steps, **graphed}


def _graphed_ms(model, token, pos, cache, batch, warmup, steps, dev, sync) -> dict:
    """The same decode from ``cache`` on, its steps replayed from a CUDA graph (:mod:`seqlib.decode`):
    ``ms_per_token_graphed`` (median, host clock between syncs, after ``warmup`` steps that include the
    graph's warm-up and capture) and, beside the kernels' time, ``graphed_over_kernel``; or
    ``graphed_error`` where the step cannot replay (a global attention cache grows)."""
    from seqlib.decode import GraphedDecoder

    try:
        decoder = GraphedDecoder(model, cache, graphs=dev.type == "cuda")
        times = []
        for i in range(warmup + steps):
            seg = torch.full((batch, 1), pos, device=dev)
            sync()
            t0 = time.perf_counter()
            token = decoder.step(token, seg)[:, -1:].argmax(-1)
            sync()
            if i >= warmup:
                times.append(time.perf_counter() - t0)
            pos += 1
    except (TypeError, ValueError, RuntimeError) as exc:
        return {"graphed_error": f"{type(exc).__name__}: {str(exc)[:200]}"}
    return {"ms_per_token_graphed": 1e3 * statistics.median(times), "graph_failure": decoder.failure}


def decode(models=("hawk", "griffin", "transformer"), contexts=(1024, 2048, 4096, 8192, 16384, 32768),
           budget_s: float = 240.0, batch: int = DECODE_BATCH) -> dict:
    deadline = time.monotonic() + budget_s
    rows = []
    for name in models:
        for ctx in contexts:
            if time.monotonic() > deadline:
                rows.append({"model": name, "context": ctx, "skipped": "time budget of the benchmark run"})
                continue
            try:
                rows.append(decode_one(name, ctx, batch=batch))
            except Exception as exc:  # noqa: BLE001
                rows.append({"model": name, "context": ctx, "error": f"{type(exc).__name__}: {str(exc)[:300]}"})
            finally:
                torch.cuda.empty_cache()
            r = rows[-1]
            print(f"decode {name:>12} ctx={ctx:>6}: " + (
                f"{r['ms_per_token']:.3f} ms/token (p10 {r['ms_p10']:.3f}, p90 {r['ms_p90']:.3f}; "
                f"kernels {r['gpu_ms_per_token'] or float('nan'):.3f} ms; graphed "
                f"{r.get('ms_per_token_graphed') or float('nan'):.3f} ms; {r['mode']})"
                if "ms_per_token" in r else r.get("error") or r.get("skipped")), flush=True)
    for r in rows:
        if r.get("ms_per_token_graphed") and r.get("gpu_ms_per_token"):
            r["graphed_over_kernel"] = r["ms_per_token_graphed"] / r["gpu_ms_per_token"]
    return {"rows": rows, "goals": decode_goals(rows, contexts),
            "goals_kernel_time": decode_goals(rows, contexts, "gpu_ms_per_token"),
            "goals_graphed": decode_goals(rows, contexts, "ms_per_token_graphed"),
            # issue 20: a graphed step within 1.5x of its kernels' time, at every context
            "graphed_within_1_5x_kernel": {m: max(r["graphed_over_kernel"] for r in rows
                                                  if r["model"] == m and "graphed_over_kernel" in r) <= 1.5
                                           for m in {r["model"] for r in rows if "graphed_over_kernel" in r}},
            "config": {"batch": batch, "dtype": "bf16", "steps": DECODE_STEPS, "warmup": DECODE_WARMUP,
                       "profiled_steps": DECODE_PROFILED, "timer": "host clock between "
                       "device syncs (eager PyTorch: includes Python and launch overhead)"}}


def decode_goals(rows: list[dict], contexts, key: str = "ms_per_token") -> dict:
    ms = {(r["model"], r["context"]): r[key] for r in rows if r.get(key)}
    goals = {}
    for name in dict.fromkeys(r["model"] for r in rows):
        got = [ms[(name, c)] for c in contexts if (name, c) in ms]
        if (name, contexts[0]) in ms and (name, contexts[-1]) in ms:
            goals[name] = {"growth_1k_to_32k": ms[(name, contexts[-1])] / ms[(name, contexts[0])],
                           "max_over_min": max(got) / min(got)}
    for name in ("hawk", "griffin"):
        if name in goals:
            goals[name]["flat_met"] = goals[name]["max_over_min"] <= 1.10
    if "transformer" in goals:
        goals["transformer"]["grows"] = goals["transformer"]["growth_1k_to_32k"] > 1.10
    return goals


def _table(record: dict, key: str, value: str, fmt: str) -> None:
    rows = [r for r in record["rows"] if r.get(value) is not None]
    cols = sorted({r[key] for r in record["rows"]})
    models = list(dict.fromkeys(r["model"] for r in record["rows"]))
    print(f"{'model':>18} " + " ".join(f"{c:>10}" for c in cols))
    for m in models:
        cells = {r[key]: r[value] for r in rows if r["model"] == m}
        print(f"{m:>18} " + " ".join(f"{format(cells[c], fmt) if c in cells else '-':>10}" for c in cols))


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(prog="python -m seqlib bench models", description=__doc__.splitlines()[0])
    ap.add_argument("what", nargs="?", default="all", choices=["train", "decode", "all", "warm"])
    ap.add_argument("--precompile", type=int, default=0,
                    help="train: first compile the fla models' kernels in this many parallel processes (untimed)")
    ap.add_argument("--models", nargs="*", default=None, help="training models (default: core + zoo)")
    ap.add_argument("--lengths", nargs="*", type=int, default=list(LENGTHS), help="training lengths T")
    ap.add_argument("--budget", type=float, default=180.0, help="seconds for the training sweep")
    ap.add_argument("--decode-budget", type=float, default=240.0)
    ap.add_argument("--decode-models", nargs="*", default=["hawk", "griffin", "transformer"])
    ap.add_argument("--profile", nargs="*", default=[], metavar="MODEL",
                    help="train: also profile a step of these models at the first of --lengths, their top kernels "
                         "by device time (e.g. --profile hawk hgrn2)")
    args = ap.parse_args(argv)
    if no_cuda("models"):
        return 2
    from seqlib.models.zoo import ZOO_MIXERS

    if args.what == "warm":
        if not args.models:
            ap.error("warm compiles the kernels of the models named by --models; name at least one")
        for m in args.models:
            for T in args.lengths:
                warm(m, T)
        return 0
    env = environment()
    if args.what in ("train", "all"):
        models = args.models or CORE + ["hgrn2"] + [m for m in ZOO_MIXERS if m != "hgrn2"]
        zoo = [m for m in models if m in ZOO_MIXERS]  # fla autotunes for minutes; ours compile in seconds
        warmed = precompile(zoo, args.lengths, jobs=args.precompile) if args.precompile and zoo else None
        rec = train(models, lengths=tuple(args.lengths), budget_s=args.budget)
        rec["precompile"] = warmed
        rec["profiles"] = [profile_one(m, args.lengths[0]) for m in args.profile]
        for prof in rec["profiles"]:
            print(f"\nprofile {prof['model']} T={prof['T']}: {prof['device_ms_per_step']:.2f} ms of kernels a step")
            for r in prof["top"]:
                print(f"  {r['ms']:8.3f} ms {100 * r['share']:5.1f}% x{r['calls']:.0f}  {r['name']}")
        path = save_record("models-train", rec, rec.pop("path"))
        print(f"\ntraining tokens/s ({env['device']}, commit {env['commit'][:10]}), record {path}")
        _table(rec, "T", "tokens_per_s", ".0f")
        print("\npeak memory GiB")
        _table(rec, "T", "peak_mem_gib", ".2f")
        print("goals:", rec["goals"])
    if args.what in ("decode", "all"):
        rec = decode(budget_s=args.decode_budget, models=tuple(args.decode_models))
        path = save_record("models-decode", rec)
        print(f"\ndecode ms/token, batch {rec['config']['batch']} ({env['device']}, commit {env['commit'][:10]}), record {path}")
        _table(rec, "context", "ms_per_token", ".3f")
        print("goals:", rec["goals"])
        print("\ndecode kernel time ms/token (profiler)")
        _table(rec, "context", "gpu_ms_per_token", ".3f")
        print("goals (kernel time):", rec["goals_kernel_time"])
    return 0


if __name__ == "__main__":
    sys.exit(main())
