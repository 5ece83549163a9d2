"""Model-level benchmarks (issue 6, item 4): ``python -m seqlib.bench.models [train|decode|all]``.

* ``train``: training tokens/s and peak memory at T in {1k, 2k, 4k, 8k} with a fixed 16k tokens
  per batch (B = 16384 / T), bf16 autocast, forward + backward + AdamW step, 2 warm-up steps then
  the median of 4 timed steps, for Hawk, Griffin, both Transformers and the fla zoo. Sizes are
  matched to ~100M parameters (vocab 32k, tied embeddings, 12 layers): every model keeps
  d_model = 768 and 6 heads (Dh = 128, as the attention benchmark) and has its MLP width set by
  the parameter-matching helper so the total lands on the budget; a model whose MLP would leave
  1.5D..6D is resized by :func:`seqlib.models.sizing.match_budget` instead.
* ``decode``: per-token decode latency (batch 1, fp32 weights, eager) after a prefill of
  1k..32k tokens (prefilled in 1024-token chunks through the decode caches), median of 8 steps,
  for Hawk, Griffin and the Transformer (whose global cache grows).

Goals (issue 6): Griffin's tokens/s >= the global Transformer's at T=4096 and ahead at 8192;
Hawk/Griffin decode flat (within +-10%) from 1k to 32k while the Transformer's grows; Hawk >=
HGRN2 tokens/s at equal size. A wall-clock budget (``--budget`` s) skips what does not fit.
"""

from __future__ import annotations

import argparse
import statistics
import time

import torch

from seqlib.bench.attention import environment, save_record

VOCAB = 32_000
TARGET = 100_000_000
TOKENS_PER_BATCH = 16_384
LENGTHS = (1024, 2048, 4096, 8192)
CORE = ["hawk", "griffin", "transformer", "local_transformer"]


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


def train_one(name: str, T: int, warmup: int = 2, steps: int = 4) -> dict:
    from seqlib.models import build_model
    from seqlib.models.sizing import count_params

    cfg = sized_config(name)
    dev = torch.device("cuda")
    model = build_model(cfg, _spec()).to(dev)
    opt = torch.optim.AdamW(model.parameters(), lr=1e-4, fused=True)
    B = TOKENS_PER_BATCH // T
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

    for _ in range(warmup):
        step()
    torch.cuda.reset_peak_memory_stats()
    times = [_sync_time(step) for _ in range(steps)]
    sec = statistics.median(times)
    loss = float(step().detach())
    return {
        "model": name, "T": T, "B": B, "params": count_params(cfg, _spec()), "d_model": cfg.d_model,
        "mlp_width": cfg.ffw_width, "step_s": sec, "tokens_per_s": B * T / sec,
        "peak_mem_gib": torch.cuda.max_memory_allocated() / 2**30, "loss_finite": bool(torch.isfinite(
            torch.tensor(loss))),
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
    tps = {(r["model"], r["T"]): r["tokens_per_s"] for r in rows if "tokens_per_s" in r}

    def ratio(a, b, T):
        return tps[(a, T)] / tps[(b, T)] if (a, T) in tps and (b, T) in tps else None

    goals = {
        "griffin_vs_transformer_4096": ratio("griffin", "transformer", 4096),
        "griffin_vs_transformer_8192": ratio("griffin", "transformer", 8192),
        "hawk_vs_hgrn2": {T: ratio("hawk", "hgrn2", T) for T in lengths},
    }
    goals["griffin_ge_transformer_4096_met"] = (goals["griffin_vs_transformer_4096"] or 0) >= 1.0
    goals["griffin_ahead_8192_met"] = (goals["griffin_vs_transformer_8192"] or 0) > 1.0
    hh = [v for v in goals["hawk_vs_hgrn2"].values() if v is not None]
    goals["hawk_ge_hgrn2_met"] = bool(hh) and min(hh) >= 1.0
    return {"path": partial, "rows": rows, "goals": goals, "config": {"target_params": TARGET, "tokens_per_batch": TOKENS_PER_BATCH,
                                                   "n_layers": 12, "vocab": VOCAB, "dtype": "bf16 autocast"}}


def decode_one(name: str, context: int, batch: int = 1, steps: int = 8, warmup: int = 3, chunk: int = 1024) -> dict:
    from seqlib.models import build_model

    cfg = sized_config(name, max_len=context + 64)
    dev = torch.device("cuda")
    model = build_model(cfg, _spec()).to(dev).eval()
    g = torch.Generator(device=dev).manual_seed(context)
    prompt = torch.randint(0, VOCAB, (batch, context), device=dev, generator=g)
    with torch.no_grad():
        cache = model.init_cache(batch, device=dev)
        for lo in range(0, context, chunk):
            hi = min(context, lo + chunk)
            seg = torch.arange(lo, hi, device=dev).expand(batch, hi - lo)
            logits, cache = model(prompt[:, lo:hi], seg, cache)
        token = logits[:, -1:].argmax(-1)
        pos = context
        times = []
        for i in range(warmup + steps):
            seg = torch.full((batch, 1), pos, device=dev)
            torch.cuda.synchronize()
            t0 = time.perf_counter()
            logits, cache = model(token, seg, cache)
            token = logits[:, -1:].argmax(-1)
            torch.cuda.synchronize()
            if i >= warmup:
                times.append(time.perf_counter() - t0)
            pos += 1
    return {"model": name, "context": context, "batch": batch, "ms_per_token": 1e3 * statistics.median(times)}


def decode(models=("hawk", "griffin", "transformer"), contexts=(1024, 2048, 4096, 8192, 16384, 32768),
           budget_s: float = 120.0) -> dict:
    deadline = time.monotonic() + budget_s
    rows = []
    for name in models:
        for ctx in contexts:
            if time.monotonic() > deadline:
                rows.append({"model": name, "context": ctx, "skipped": "time budget of the benchmark run"})
                continue
            try:
                rows.append(decode_one(name, ctx))
            except Exception as exc:  # noqa: BLE001
                rows.append({"model": name, "context": ctx, "error": f"{type(exc).__name__}: {str(exc)[:300]}"})
            finally:
                torch.cuda.empty_cache()
            r = rows[-1]
            print(f"decode {name:>12} ctx={ctx:>6}: " + (f"{r['ms_per_token']:.3f} ms/token" if "ms_per_token" in r
                                                        else r.get("error") or r.get("skipped")), flush=True)
    ms = {(r["model"], r["context"]): r["ms_per_token"] for r in rows if "ms_per_token" in r}
    goals = {}
    for name in models:
        got = [ms[(name, c)] for c in contexts if (name, c) in ms]
        if (name, contexts[0]) in ms and (name, contexts[-1]) in ms:
            growth = ms[(name, contexts[-1])] / ms[(name, contexts[0])]
            goals[name] = {"growth_1k_to_32k": growth, "max_over_min": max(got) / min(got)}
    for name in ("hawk", "griffin"):
        if name in goals:
            goals[name]["flat_met"] = goals[name]["max_over_min"] <= 1.10
    if "transformer" in goals:
        goals["transformer"]["grows"] = goals["transformer"]["growth_1k_to_32k"] > 1.10
    return {"rows": rows, "goals": goals, "config": {"batch": 1, "dtype": "fp32", "prefill_chunk": 1024}}


def _table(record: dict, key: str, value: str, fmt: str) -> None:
    rows = [r for r in record["rows"] if value in r]
    cols = sorted({r[key] for r in record["rows"]})
    models = list(dict.fromkeys(r["model"] for r in record["rows"]))
    print(f"{'model':>18} " + " ".join(f"{c:>10}" for c in cols))
    for m in models:
        cells = {r[key]: r[value] for r in rows if r["model"] == m}
        print(f"{m:>18} " + " ".join(f"{format(cells[c], fmt) if c in cells else '-':>10}" for c in cols))


def main(argv=None) -> None:
    from seqlib.models.registry import ZOO_MODELS

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("what", nargs="?", default="all", choices=["train", "decode", "all"])
    ap.add_argument("--models", nargs="*", default=None, help="training models (default: core + zoo)")
    ap.add_argument("--lengths", nargs="*", type=int, default=list(LENGTHS), help="training lengths T")
    ap.add_argument("--budget", type=float, default=180.0, help="seconds for the training sweep")
    ap.add_argument("--decode-budget", type=float, default=120.0)
    args = ap.parse_args(argv)
    env = environment()
    if args.what in ("train", "all"):
        models = args.models or CORE + ["hgrn2"] + [m for m in ZOO_MODELS if m != "hgrn2"]
        rec = train(models, lengths=tuple(args.lengths), budget_s=args.budget)
        path = save_record("models-train", rec, rec.pop("path"))
        print(f"\ntraining tokens/s ({env['device']}, commit {env['commit'][:10]}), record {path}")
        _table(rec, "T", "tokens_per_s", ".0f")
        print("\npeak memory GiB")
        _table(rec, "T", "peak_mem_gib", ".2f")
        print("goals:", rec["goals"])
    if args.what in ("decode", "all"):
        rec = decode(budget_s=args.decode_budget)
        path = save_record("models-decode", rec)
        print(f"\ndecode ms/token, batch 1 ({env['device']}, commit {env['commit'][:10]}), record {path}")
        _table(rec, "context", "ms_per_token", ".3f")
        print("goals:", rec["goals"])


if __name__ == "__main__":
    main()
