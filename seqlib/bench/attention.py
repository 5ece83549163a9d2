"""Sliding-window attention benchmark (issue 6, item 2): ``python -m seqlib bench attention``.

Griffin's local MQA shape (H=8 query heads, one KV head, Dh=128, bf16, W=1024 so a query sees
W + 1 keys) at T in {4096, 8192}, forward and forward+backward, for

* ``flex``        -- our path, :func:`seqlib.layers.flex.fast_attention` (compiled FlexAttention,
  sliding-window block mask, ``enable_gqa``);
* ``fla``         -- ``fla.ops.attn.parallel_attn(window_size=W + 1)`` (fla counts the query in its
  window: keys in [i - window_size + 1, i]);
* ``sdpa_mask``   -- SDPA with a boolean [T, T] mask (no flash kernel; O(T^2) work);
* ``flash_causal`` -- full causal flash SDPA, the yardstick.

``--tiles`` also times FlexAttention at the first length with other tile sizes (issue 20: "tile sizes
tuned for Hopper"): the block mask's ``BLOCK_SIZE`` and the kernel's ``BLOCK_M``/``BLOCK_N``/warps/stages
(:data:`TILES`), each checked against the masked SDPA and recorded as a ``flex tiles ...`` row (a
configuration the compiler refuses is recorded with its error); the layer keeps its defaults until a
record shows a better one.

``ratio`` = time / (flash_causal time * window share), where the window share is the number of
(query, key) pairs inside the window over those of full causal attention; the goal is <= 1.5 and
faster than fla. Times are ``triton.testing.do_bench`` medians (ms). Each record (device, commit,
versions, numbers) is written as JSON under ``results/bench/`` (:mod:`seqlib.bench.record`).
"""

from __future__ import annotations

import argparse
import functools
import sys

import torch
import torch.nn.functional as F

from seqlib.bench.record import environment, no_cuda, save_record

# (block mask BLOCK_SIZE, FlexAttention kernel_options): the defaults, then Hopper-sized tiles
TILES = [(128, {}), (64, {}),
         (128, {"BLOCK_M": 128, "BLOCK_N": 64, "num_warps": 8, "num_stages": 3}),
         (128, {"BLOCK_M": 64, "BLOCK_N": 64, "num_warps": 4, "num_stages": 3}),
         (64, {"BLOCK_M": 64, "BLOCK_N": 64, "num_warps": 4, "num_stages": 2})]


def tile_name(block: int, options: dict) -> str:
    return f"flex tiles mask {block}" + "".join(f", {k} {v}" for k, v in options.items())


def window_share(T: int, W: int) -> float:
    """(query, key) pairs with 0 <= i - j <= W over the causal pairs 0 <= j <= i < T."""
    window_pairs = sum(min(i, W) + 1 for i in range(T))
    return window_pairs / (T * (T + 1) / 2)


def _bench(fn, backward: bool, inputs, grad_out):
    from triton.testing import do_bench

    if not backward:
        def run():
            with torch.no_grad():
                fn()
        return do_bench(run, warmup=25, rep=100, return_mode="median")

    def run():
        fn().backward(grad_out)

    return do_bench(run, warmup=25, rep=100, grad_to_none=list(inputs), return_mode="median")


def _one_length(T: int, W: int, B: int, H: int, Dh: int) -> list[dict]:
    from seqlib.layers.flex import fast_attention

    dev = torch.device("cuda")
    rows = []
    g = torch.Generator(device=dev).manual_seed(T)
    q = torch.randn(B, T, H, Dh, device=dev, dtype=torch.bfloat16, generator=g).requires_grad_()
    k = torch.randn(B, T, 1, Dh, device=dev, dtype=torch.bfloat16, generator=g).requires_grad_()
    v = torch.randn(B, T, 1, Dh, device=dev, dtype=torch.bfloat16, generator=g).requires_grad_()
    do = torch.randn(B, T, H, Dh, device=dev, dtype=torch.bfloat16, generator=g)
    seg = torch.arange(T, device=dev).expand(B, T)
    i = torch.arange(T, device=dev)
    bool_mask = (i[None, :] <= i[:, None]) & (i[:, None] - i[None, :] <= W)
    qt, kt, vt = (t.transpose(1, 2) for t in (q, k, v))

    def flex():
        return fast_attention(q, k, v, seg, W)

    def sdpa_mask():
        return F.scaled_dot_product_attention(qt, kt, vt, attn_mask=bool_mask, enable_gqa=True).transpose(1, 2)

    def flash_causal(gqa=True):
        from torch.nn.attention import SDPBackend, sdpa_kernel

        kk, vv = (kt, vt) if gqa else (kt.repeat(1, H, 1, 1), vt.repeat(1, H, 1, 1))
        with sdpa_kernel([SDPBackend.FLASH_ATTENTION]):
            return F.scaled_dot_product_attention(qt, kk, vv, is_causal=True, enable_gqa=gqa).transpose(1, 2)

    try:
        with torch.no_grad():
            flash_causal()
    except RuntimeError as exc:  # the flash kernel may not take enable_gqa: repeat K/V instead
        print(f"flash SDPA with enable_gqa failed ({exc}); timing it with K/V repeated to H heads")
        flash_causal = functools.partial(flash_causal, gqa=False)
    variants = {"flex": flex, "sdpa_mask": sdpa_mask, "flash_causal": flash_causal}
    try:
        from fla.ops.attn import parallel_attn

        variants["fla"] = lambda: parallel_attn(q, k, v, window_size=W + 1)
    except Exception as exc:  # noqa: BLE001
        print(f"fla parallel_attn unavailable: {exc}")
    with torch.no_grad():
        ref = sdpa_mask().float()
        errors = {name: float((fn().float() - ref).norm() / ref.norm()) for name, fn in variants.items()}
    share = window_share(T, W)
    times = {}
    for name, fn in variants.items():
        for mode in ("fwd", "fwd+bwd"):
            try:
                times[(name, mode)] = _bench(fn, mode == "fwd+bwd", (q, k, v), do)
            except Exception as exc:  # noqa: BLE001 - e.g. no flash kernel for this shape
                print(f"{name} {mode} T={T} failed: {type(exc).__name__}: {exc}")
    for (name, mode), ms in times.items():
        base = times.get(("flash_causal", mode))
        rows.append({
            "T": T, "W": W, "B": B, "H": H, "Hkv": 1, "Dh": Dh, "dtype": "bfloat16", "variant": name,
            "pass": mode, "ms": ms, "window_share": share,
            "ratio_to_flash_share": ms / (base * share) if base else None,
            "rel_err_vs_sdpa_mask": errors.get(name) if mode == "fwd" else None,
        })
    return rows


def tile_rows(T: int, W: int, B: int, H: int, Dh: int, base: dict[str, float]) -> tuple[list[dict], list[dict]]:
    """FlexAttention's sliding window at each of :data:`TILES`, forward and fwd+bwd, against ``base`` (the
    flash causal yardstick's ms per pass, measured beside it); each checked against the masked SDPA ->
    (the rows, the tiles that failed with their errors)."""
    from torch.nn.attention.flex_attention import create_block_mask, flex_attention

    dev = torch.device("cuda")
    g = torch.Generator(device=dev).manual_seed(T)
    q = torch.randn(B, H, T, Dh, device=dev, dtype=torch.bfloat16, generator=g).requires_grad_()
    k, v = (torch.randn(B, 1, T, Dh, device=dev, dtype=torch.bfloat16, generator=g).requires_grad_() for _ in range(2))
    do = torch.randn(B, H, T, Dh, device=dev, dtype=torch.bfloat16, generator=g)
    i = torch.arange(T, device=dev)
    with torch.no_grad():
        ref = F.scaled_dot_product_attention(q, k, v, attn_mask=(i[None, :] <= i[:, None]) & (i[:, None] - i[None, :] <= W),
                                             enable_gqa=True).float()
    compiled = torch.compile(flex_attention, dynamic=False)
    share, rows, errors = window_share(T, W), [], []
    for block, options in TILES:
        name = tile_name(block, options)
        try:
            mask = create_block_mask(lambda b, h, qi, ki: (ki <= qi) & (qi - ki <= W), None, None, T, T, device=dev,
                                     BLOCK_SIZE=block)

            def fn(mask=mask, options=options):
                return compiled(q, k, v, block_mask=mask, enable_gqa=True, kernel_options=options or None)

            with torch.no_grad():
                err = float((fn().float() - ref).norm() / ref.norm())
            for mode in ("fwd", "fwd+bwd"):
                ms = _bench(fn, mode == "fwd+bwd", (q, k, v), do)
                rows.append({"T": T, "W": W, "B": B, "H": H, "Hkv": 1, "Dh": Dh, "dtype": "bfloat16", "variant": name,
                             "pass": mode, "ms": ms, "window_share": share,
                             "ratio_to_flash_share": ms / (base[mode] * share) if mode in base else None,
                             "rel_err_vs_sdpa_mask": err if mode == "fwd" else None})
        except Exception as exc:  # noqa: BLE001 - a tile the compiler refuses is a result too
            errors.append({"T": T, "variant": name, "error": f"{type(exc).__name__}: {exc}"[:300]})
            print(f"{name} T={T} failed: {errors[-1]['error']}")
        torch.cuda.empty_cache()
    return rows, errors


def run(T_values=(4096, 8192), W=1024, B=4, H=8, Dh=128, tiles: bool = False) -> dict:
    """Time every variant at each T (and with ``tiles`` :data:`TILES` at the first), save the record and
    print it; returns the record."""
    rows, tile_errors = [], []
    for T in T_values:
        rows += _one_length(T, W, B, H, Dh)
        torch.cuda.empty_cache()
    if tiles:
        base = {r["pass"]: r["ms"] for r in rows if r["T"] == T_values[0] and r["variant"] == "flash_causal"}
        tiled, tile_errors = tile_rows(T_values[0], W, B, H, Dh, base)
        rows += tiled
    goals = []
    for T in T_values:
        for mode in ("fwd", "fwd+bwd"):
            get = {r["variant"]: r for r in rows if r["T"] == T and r["pass"] == mode}
            if "flex" in get:
                ratio = get["flex"]["ratio_to_flash_share"]
                fla = get.get("fla")
                goals.append({
                    "T": T, "pass": mode, "flex_ratio": ratio, "ratio_met": ratio is not None and ratio <= 1.5,
                    "flex_over_fla": get["flex"]["ms"] / fla["ms"] if fla else None,
                    "faster_than_fla": (get["flex"]["ms"] < fla["ms"]) if fla else None,
                })
    record = {"config": {"W": W, "B": B, "H": H, "Hkv": 1, "Dh": Dh, "dtype": "bfloat16"}, "rows": rows,
              "goals": goals, **({"tile_errors": tile_errors} if tiles else {})}
    path = save_record("attention", record)
    print(f"\nattention benchmark ({environment()['device']}), record {path}")
    print(f"{'T':>6} {'pass':>8} {'variant':>13} {'ms':>8} {'ratio':>7} {'rel_err':>9}")
    for r in rows:
        ratio = f"{r['ratio_to_flash_share']:.2f}" if r["ratio_to_flash_share"] else "-"
        err = f"{r['rel_err_vs_sdpa_mask']:.1e}" if r["rel_err_vs_sdpa_mask"] is not None else ""
        print(f"{r['T']:>6} {r['pass']:>8} {r['variant']:>13} {r['ms']:>8.3f} {ratio:>7} {err:>9}")
    for r in tile_errors:
        print(f"{r['T']:>6} {r['variant']}: {r['error']}")
    for g in goals:
        print(f"goal T={g['T']} {g['pass']}: flex/(flash*share) = {g['flex_ratio']:.2f} "
              f"({'met' if g['ratio_met'] else 'MISSED'} <= 1.5); flex/fla = {g['flex_over_fla']}")
    return record


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(prog="python -m seqlib bench attention", description=__doc__.splitlines()[0])
    ap.add_argument("--T", type=int, nargs="+", default=[4096, 8192], help="sequence lengths")
    ap.add_argument("--W", type=int, default=1024, help="window (a query sees W + 1 keys)")
    ap.add_argument("--B", type=int, default=4)
    ap.add_argument("--H", type=int, default=8, help="query heads (one KV head)")
    ap.add_argument("--Dh", type=int, default=128)
    ap.add_argument("--tiles", action="store_true", help="also time FlexAttention's other tile sizes at the first T")
    args = ap.parse_args(argv)
    if no_cuda("attention"):
        return 2
    run(tuple(args.T), args.W, args.B, args.H, args.Dh, args.tiles)
    return 0


if __name__ == "__main__":
    sys.exit(main())
