"""RG-LRU scan benchmark: the fused Triton kernel against PyTorch gates + fla, and our other backends.

Griffin App. D times its linear-scan kernel at batch 8, width 1024; this does the same on a GPU
(default B=8, T=4096, R=1024, bf16), in one run:

* a device-to-device copy (the measured bandwidth that sets the roofline);
* the fused kernel: forward (no autograd state), forward that stores checkpoints, backward,
  forward+backward through autograd;
* PyTorch gates (the ``rg_lru_gates`` math in eager fp32) + fla ``chunk_hgrn`` / ``fused_recurrent_hgrn``,
  forward and forward+backward;
* our ``parallel`` backend, and the ``sequential`` loop at a small T;
* the whole RG-LRU layer (``seqlib.layers.rglru.RGLRU``: block-diagonal gate projections + scan)
  forward+backward with the triton backend vs the same module whose scan is PyTorch gates + chunk_hgrn;
* where the fused fwd+bwd's run-to-run spread comes from (issue 20): that step timed :data:`REPEATS`
  times eagerly and as many times replayed from a CUDA graph (no Python, autograd or launch work on
  the host), each with its median and range: a spread the graphed timings lack is the host's.

Times are ``triton.testing.do_bench`` medians (warm-up first; do_bench flushes L2 between calls).
Roofline = bytes the fused kernel must move / measured copy bandwidth (bytes read + written).
``--sweep`` first times several (BLOCK_T, BLOCK_R, num_warps) configurations of each kernel,
checks each against the default configuration's output, and uses the fastest for the table.
The record (``python -m seqlib bench scan``) goes to ``results/bench/scan-<UTC time>.json``.
"""

from __future__ import annotations

import argparse
import math
import sys
import time
import traceback
from pathlib import Path

import torch
import torch.nn.functional as F

from seqlib.bench.record import environment, no_cuda, save_record

DTYPES = {"bf16": torch.bfloat16, "fp32": torch.float32, "fp16": torch.float16}
REPEATS = 7  # timings of the fused fwd+bwd, eager and graphed, for their spread

FWD_SWEEP = [(64, 32, 4), (64, 16, 4), (32, 16, 4),  # plain: one inclusive scan per step
             (128, 16, 4, 4), (64, 16, 4, 4), (128, 16, 8, 4), (64, 32, 8, 4), (64, 16, 2, 4),  # segmented
             (128, 32, 8, 4), (32, 16, 2, 4), (64, 32, 4, 4), (256, 16, 8, 4)]
BWD_SWEEP = [(32, 16, 2), (32, 16, 4), (32, 32, 4), (64, 16, 4), (16, 32, 4), (64, 32, 8), (128, 16, 4)]


def goal_value(name: str, value: float) -> str:
    """A goal's value as text: a share of the copy bandwidth, or a speed-up factor."""
    return f"{100 * value:.0f}% of copy bandwidth" if "bandwidth" in name else f"{value:.2f}x"


def _fla_gates(x, gate_x, gate_a, a_param, reset):
    """PyTorch gates (eager, fp32 math as ``rg_lru_gates``) -> (input, log a) for fla's hgrn ops.

    fla's hgrn has no reset: a reset is approximated by log a = -20 (a ~ 2e-9)."""
    from seqlib.layers.scan import C_RGLRU, sqrt_bound_derivative

    log_a = -C_RGLRU * torch.sigmoid(gate_a.float()) * F.softplus(a_param.float())
    rs = reset[..., None]
    mult = torch.where(rs, 1.0, sqrt_bound_derivative(1.0 - torch.exp(2.0 * log_a)))
    xin = x.float() * torch.sigmoid(gate_x.float()) * mult
    g = log_a.masked_fill(rs, -20.0)
    return xin.to(x.dtype), g.to(x.dtype)


def make_fla_scan(op):
    """A fused-scan seam function: PyTorch gates + an fla hgrn op (inputs in x's dtype)."""

    def fn(x, gate_x, gate_a, a_param, reset, h0=None):
        xin, g = _fla_gates(x, gate_x, gate_a, a_param, reset)
        o, h_last = op(xin, g, initial_state=h0, output_final_state=True)
        return o.to(x.dtype), h_last.float()

    return fn


def parser() -> argparse.ArgumentParser:
    ap = argparse.ArgumentParser(prog="python -m seqlib bench scan", description=__doc__.split("\n\n")[0])
    ap.add_argument("--B", type=int, default=8)
    ap.add_argument("--T", type=int, default=4096)
    ap.add_argument("--R", type=int, default=1024)
    ap.add_argument("--dtype", choices=list(DTYPES), default="bf16")
    ap.add_argument("--seq-T", type=int, default=256, help="T for the (slow) sequential loop")
    ap.add_argument("--blocks", type=int, default=16, help="gate blocks of the RGLRU layer")
    ap.add_argument("--sweep", action="store_true", help="tune the kernel configurations first")
    ap.add_argument("--device", default="cuda", help=argparse.SUPPRESS)  # cpu: smoke test under TRITON_INTERPRET
    ap.add_argument("--out", default=None, help="JSON record (default results/bench/scan-<UTC time>.json)")
    return ap


def timer(dev: torch.device):
    """``triton.testing.do_bench`` on a GPU; on the CPU (a smoke test of this script under
    ``TRITON_INTERPRET=1``) the wall time of a single call, in ms."""
    if dev.type == "cuda":
        from triton.testing import do_bench

        return do_bench

    def once(fn, warmup=0, rep=0, grad_to_none=None, return_mode=None):
        t0 = time.perf_counter()
        fn()
        return (time.perf_counter() - t0) * 1e3

    return once


def fla_ops() -> tuple[dict, str]:
    """fla's ``chunk_hgrn`` and ``fused_recurrent_hgrn`` (None where fla is missing), and why they are."""
    try:
        from fla.ops.hgrn import chunk_hgrn, fused_recurrent_hgrn
    except Exception as exc:  # noqa: BLE001
        return {"chunk_hgrn": None, "fused_recurrent_hgrn": None}, f"fla unavailable ({type(exc).__name__}: {exc})"
    return {"chunk_hgrn": chunk_hgrn, "fused_recurrent_hgrn": fused_recurrent_hgrn}, ""


def fused_bytes(B: int, T: int, R: int, s: int, train_block_t: int) -> dict[str, int]:
    """Bytes the fused kernel must move (``s`` bytes per element; checkpoints every ``train_block_t``
    steps when training): ``fwd``, ``fwd_ckpt``, ``bwd`` and ``fb`` (forward with checkpoints + backward)."""
    N = B * T * R
    nt_f = math.ceil(T / train_block_t)
    small = B * T + 2 * R * 4 + 2 * B * R * 4  # reset bytes, a_param, h0/h_T
    fwd = 4 * s * N + small
    fwd_ckpt = fwd + 4 * B * nt_f * R
    bwd = 7 * s * N + small + 4 * B * nt_f * R
    return {"fwd": fwd, "fwd_ckpt": fwd_ckpt, "bwd": bwd, "fb": fwd_ckpt + bwd}


class ScanBench:
    """One run of the benchmark: its inputs and timer, and the table rows and checks its sections add."""

    def __init__(self, args: argparse.Namespace, dev: torch.device):
        from seqlib.kernels.reference import make_inputs

        self.args, self.dev, self.do_bench = args, dev, timer(dev)
        self.fla, self.fla_missing = fla_ops()
        self.B, self.T, self.R, self.dtype = B, T, R, dtype = args.B, args.T, args.R, DTYPES[args.dtype]
        self.s = torch.finfo(dtype).bits // 8  # bytes per element
        gen = torch.Generator(device=dev).manual_seed(1234)
        x, gx, ga, a_param, reset, _ = make_inputs(B, T, R, dtype, dev, gen, reset_prob=1.0 / 1024, h0=False)
        reset[:, 0] = True  # segment_pos == 0 at the start
        self.inputs = (x, gx, ga, a_param, reset)
        self.dy = torch.randn(B, T, R, generator=gen, device=dev).to(dtype)
        self.copy_bw = math.nan  # bytes/s, read + write: see copy_bandwidth
        self.sweep: dict = {}  # see tune
        self.configs: dict[str, tuple] = {}  # the kernel configurations timed: see choose_configs
        self.nbytes: dict[str, int] = {}  # see fused_bytes
        self.leaves: list[torch.Tensor] = []  # x, gx, ga, a_param requiring grad: see fused
        self.rows: list[dict] = []
        self.checks: dict[str, float] = {}
        self.layer: dict[str, float] = {}  # RGLRU layer fwd+bwd ms per scan backend
        self.seq_fb: str | None = None  # the name of the sequential loop's fwd+bwd row

    def bench(self, fn, grad_to_none=None, rep=200) -> float:
        return self.do_bench(fn, warmup=25, rep=rep, grad_to_none=grad_to_none, return_mode="median")

    def row(self, name: str, ms: float | None, nbytes: int | None, note: str = "") -> None:
        """Add a table row: time, bytes, and their bandwidth against the copy's."""
        roof = nbytes / self.copy_bw * 1e3 if nbytes else None
        self.rows.append({"name": name, "ms": ms, "bytes": nbytes,
                          "GBps": (nbytes / (ms * 1e-3) / 1e9) if (ms and nbytes) else None,
                          "roofline_ms": roof, "frac_of_copy_bw": (roof / ms) if (ms and nbytes) else None,
                          "note": note})
        print(f"  {name}: {ms:.4f} ms" if ms is not None else f"  {name}: n/a", flush=True)

    def copy_bandwidth(self) -> tuple[int, float]:
        """Time a device-to-device copy; sets ``copy_bw``; returns (fp32 elements copied, ms)."""
        n_copy = 1 << 28 if self.dev.type == "cuda" else 1 << 20  # 1 GiB of fp32
        src = torch.randn(n_copy, device=self.dev)
        dst = torch.empty_like(src)
        t_copy = self.bench(lambda: dst.copy_(src))
        self.copy_bw = 2 * n_copy * 4 / (t_copy * 1e-3)
        return n_copy, t_copy

    def tune(self) -> dict:
        """Time every ``FWD_SWEEP``/``BWD_SWEEP`` configuration, check it against the default one, and
        make the fastest accurate ones the kernels' configurations; returns the sweep's rows."""
        from seqlib.kernels import rglru_triton as K
        from seqlib.kernels.reference import rel_err

        x, gx, ga, a_param, reset = self.inputs
        y_ref, _, _ = K.rglru_fwd(x, gx, ga, a_param, reset, store_ckpt=False, config=(32, 32, 4))
        ckpts = {}
        ref_grads = None
        fwd_rows, bwd_rows = [], []
        for cfg in FWD_SWEEP:
            try:
                y, _, _ = K.rglru_fwd(x, gx, ga, a_param, reset, config=cfg)
                err = rel_err(y, y_ref)
                t_inf = self.bench(lambda cfg=cfg: K.rglru_fwd(x, gx, ga, a_param, reset, config=cfg))
                t_trn = self.bench(lambda cfg=cfg: K.rglru_fwd(x, gx, ga, a_param, reset, store_ckpt=True, config=cfg))
                fwd_rows.append({"config": cfg, "ms": t_inf, "ms_ckpt": t_trn, "err": err,
                                 "frac_of_copy_bw": 4 * self.s * x.numel() / self.copy_bw * 1e3 / t_inf})
            except Exception as exc:  # noqa: BLE001
                fwd_rows.append({"config": cfg, "error": f"{type(exc).__name__}: {exc}"[:300]})
            print("fwd", fwd_rows[-1], flush=True)
        for cfg in BWD_SWEEP:
            try:
                bt = cfg[0]
                if bt not in ckpts:
                    ckpts[bt] = K.rglru_fwd(x, gx, ga, a_param, reset, store_ckpt=True, config=(bt, 32, 4))[2]
                grads = K.rglru_bwd(x, gx, ga, a_param, reset, ckpts[bt], self.dy, fwd_block_t=bt, config=cfg)
                if ref_grads is None:
                    ref_grads = grads
                err = max(rel_err(g, r) for g, r in zip(grads[:4], ref_grads[:4]))
                t_b = self.bench(lambda cfg=cfg, bt=bt: K.rglru_bwd(x, gx, ga, a_param, reset, ckpts[bt], self.dy,
                                                                   fwd_block_t=bt, config=cfg))
                bwd_rows.append({"config": cfg, "ms": t_b, "err": err})
            except Exception as exc:  # noqa: BLE001
                bwd_rows.append({"config": cfg, "error": f"{type(exc).__name__}: {exc}"[:300]})
            print("bwd", bwd_rows[-1], flush=True)
        ok_f = [r for r in fwd_rows if "ms" in r and r["err"] < 1e-2]
        ok_b = [r for r in bwd_rows if "ms" in r and r["err"] < 1e-2]
        if ok_f and ok_b:
            K.FWD_CONFIG = tuple(min(ok_f, key=lambda r: r["ms"])["config"])
            K.BWD_CONFIG = tuple(min(ok_b, key=lambda r: r["ms"])["config"])
            train = [r for r in ok_f if K.BWD_CONFIG[0] % r["config"][0] == 0]
            K.TRAIN_FWD_CONFIG = tuple(min(train, key=lambda r: r["ms_ckpt"])["config"])
        return {"fwd": fwd_rows, "bwd": bwd_rows}

    def choose_configs(self, sweep: bool) -> None:
        """Fix the kernel configurations to time (tuned first if ``sweep``) and the bytes they move."""
        from seqlib.kernels import rglru_triton as K

        self.sweep = self.tune() if sweep else {}
        K._fit = lambda cfg, B, R, device: cfg  # noqa: ARG005  time exactly the chosen configurations
        self.configs = {"fwd": K.FWD_CONFIG, "train_fwd": K.TRAIN_FWD_CONFIG, "bwd": K.BWD_CONFIG}
        print("configs", self.configs, flush=True)
        self.nbytes = fused_bytes(self.B, self.T, self.R, self.s, K.TRAIN_FWD_CONFIG[0])

    def fwd_bwd(self, fn):
        """A step: ``fn`` forward on ``leaves``, backward from ``dy``."""
        def step():
            y, _h = fn(*self.leaves, self.inputs[4], None)
            y.backward(self.dy)
        return step

    def fused(self) -> None:
        """The fused kernel: forward (with and without checkpoints), backward, fwd+bwd through autograd."""
        from seqlib.kernels import rglru_triton as K

        x, gx, ga, a_param, reset = self.inputs
        b = self.nbytes
        self.row("fused fwd (no autograd state)", self.bench(lambda: K.rglru_fwd(x, gx, ga, a_param, reset)), b["fwd"])
        self.row("fused fwd (+checkpoints)", self.bench(lambda: K.rglru_fwd(
            x, gx, ga, a_param, reset, store_ckpt=True, config=K.TRAIN_FWD_CONFIG)), b["fwd_ckpt"])
        ckpt = K.rglru_fwd(x, gx, ga, a_param, reset, store_ckpt=True, config=K.TRAIN_FWD_CONFIG)[2]
        self.row("fused bwd", self.bench(lambda: K.rglru_bwd(x, gx, ga, a_param, reset, ckpt, self.dy,
                                                             fwd_block_t=K.TRAIN_FWD_CONFIG[0])), b["bwd"])
        self.leaves = [t.clone().requires_grad_() for t in (x, gx, ga, a_param)]
        self.row("fused fwd+bwd (autograd)", self.bench(self.fwd_bwd(K.rglru_fused), grad_to_none=self.leaves),
                 b["fb"])

    def host_overhead(self) -> None:
        """The fused fwd+bwd through autograd, :data:`REPEATS` timings eagerly and as many replayed from a
        CUDA graph (captured after a warm-up on a side stream; its gradients accumulate in place)."""
        from seqlib.kernels import rglru_triton as K

        step = self.fwd_bwd(K.rglru_fused)
        eager = [self.bench(step, grad_to_none=self.leaves) for _ in range(REPEATS)]
        side = torch.cuda.Stream()
        side.wait_stream(torch.cuda.current_stream())
        with torch.cuda.stream(side):
            for _ in range(3):
                step()
        torch.cuda.current_stream().wait_stream(side)
        graph = torch.cuda.CUDAGraph()
        with torch.cuda.graph(graph):
            step()
        graphed = [self.bench(graph.replay) for _ in range(REPEATS)]
        for name, times in (("eager", eager), ("replayed from a CUDA graph", graphed)):
            times = sorted(times)
            self.row(f"fused fwd+bwd, {name}, median of {REPEATS}", times[len(times) // 2], self.nbytes["fb"],
                     note=f"range {times[0]:.4f}-{times[-1]:.4f} ms")

    def guarded(self, section) -> None:
        """Run one section; an exception becomes a FAILED row instead of ending the run."""
        try:
            section()
        except Exception as exc:  # noqa: BLE001 - keep the other rows
            traceback.print_exc()
            self.row(f"{section.__name__} FAILED", None, None, note=f"{type(exc).__name__}: {exc}"[:200])

    def fla_baselines(self) -> None:
        """PyTorch gates + fla's hgrn ops, forward and fwd+bwd, checked against the fused kernel."""
        from seqlib.kernels import rglru_triton as K
        from seqlib.kernels.reference import rel_err

        x, gx, ga, a_param, reset = self.inputs
        with torch.no_grad():
            y_ours = K.rglru_fused(x, gx, ga, a_param, reset)[0]
        for label, op in self.fla.items():
            if op is None:
                self.row(f"torch gates + fla {label} fwd", None, None, note=self.fla_missing)
                self.row(f"torch gates + fla {label} fwd+bwd", None, None, note=self.fla_missing)
                continue
            fn = make_fla_scan(op)
            with torch.no_grad():
                self.checks[f"y {label} vs fused"] = rel_err(fn(x, gx, ga, a_param, reset)[0], y_ours.float())
                self.row(f"torch gates + fla {label} fwd", self.bench(lambda fn=fn: fn(x, gx, ga, a_param, reset)),
                         self.nbytes["fwd"])
            self.row(f"torch gates + fla {label} fwd+bwd", self.bench(self.fwd_bwd(fn), grad_to_none=self.leaves),
                     self.nbytes["fb"])

    def parallel_backend(self) -> None:
        """Our ``parallel`` PyTorch backend, forward and fwd+bwd."""
        from seqlib.layers.scan import rg_lru_scan

        with torch.no_grad():
            self.row("parallel backend fwd", self.bench(
                lambda: rg_lru_scan(*self.inputs, backend="parallel"), rep=100), self.nbytes["fwd"])
        self.row("parallel backend fwd+bwd",
                 self.bench(self.fwd_bwd(lambda *a: rg_lru_scan(*a, backend="parallel")), grad_to_none=self.leaves,
                            rep=100), self.nbytes["fb"])

    def sequential_backend(self) -> None:
        """The ``sequential`` loop at T = ``--seq-T``, scaled to T (an estimate)."""
        from seqlib.layers.scan import rg_lru_scan

        x, gx, ga, a_param, reset = self.inputs
        T = self.T
        Ts = min(self.args.seq_T, T)
        xs, gxs, gas, rss, dys = (t[:, :Ts].contiguous() for t in (x, gx, ga, reset, self.dy))
        scale = T / Ts
        self.seq_fb = f"sequential backend fwd+bwd, T={Ts} (x{scale:g} = est. T={T})"
        with torch.no_grad():
            t_sf = self.bench(lambda: rg_lru_scan(xs, gxs, gas, a_param, rss, backend="sequential"), rep=100)
        self.row(f"sequential backend fwd, T={Ts} (x{scale:g} = est. T={T})", t_sf * scale, self.nbytes["fwd"],
                 note=f"measured {t_sf:.3f} ms at T={Ts}")
        leaves_s = [t.clone().requires_grad_() for t in (xs, gxs, gas, a_param)]

        def seq_step():
            y, _h = rg_lru_scan(*leaves_s, rss, None, backend="sequential")
            y.backward(dys)

        t_sfb = self.bench(seq_step, grad_to_none=leaves_s, rep=100)
        self.row(self.seq_fb, t_sfb * scale, self.nbytes["fb"], note=f"measured {t_sfb:.3f} ms at T={Ts}")

    def rglru_layer(self) -> None:
        """The whole RG-LRU layer fwd+bwd: the triton scan against PyTorch gates + fla ``chunk_hgrn``."""
        from seqlib.kernels import FUSED_SCANS
        from seqlib.kernels.reference import rel_err
        from seqlib.layers.rglru import RGLRU

        chunk_hgrn = self.fla["chunk_hgrn"]
        if chunk_hgrn is not None:
            FUSED_SCANS["fla_chunk"] = make_fla_scan(chunk_hgrn)
        x, B, T, dev, blocks = self.inputs[0], self.B, self.T, self.dev, self.args.blocks
        torch.manual_seed(0)
        mod = RGLRU(self.R, blocks, scan_backend="triton").to(dev)
        mod.input_gate.to(self.dtype)
        mod.a_gate.to(self.dtype)
        xin = x.clone().requires_grad_()
        seg = torch.arange(T, device=dev).expand(B, T).contiguous()
        params = [xin, *mod.parameters()]

        def layer_step(backend):
            def step():
                mod.scan_backend = backend
                y, _ = mod(xin, seg)
                y.backward(self.dy)
            return step

        self.layer["triton"] = self.bench(layer_step("triton"), grad_to_none=params)
        self.row(f"RGLRU layer fwd+bwd, triton (gate proj. {blocks} blocks + scan)", self.layer["triton"], None)
        if chunk_hgrn is not None:
            self.layer["fla_chunk"] = self.bench(layer_step("fla_chunk"), grad_to_none=params)
            self.row("RGLRU layer fwd+bwd, torch gates + fla chunk_hgrn", self.layer["fla_chunk"], None)
            with torch.no_grad():
                mod.scan_backend = "triton"
                y1 = mod(x, seg)[0]
                mod.scan_backend = "fla_chunk"
                self.checks["RGLRU layer y fla_chunk vs triton"] = rel_err(mod(x, seg)[0], y1.float())


def measure(args: argparse.Namespace, dev: torch.device) -> ScanBench:
    """The copy bandwidth, the kernel configurations (``--sweep``: tuned), the fused kernel, then each
    baseline section (a failing one becomes a FAILED row)."""
    run = ScanBench(args, dev)
    n_copy, t_copy = run.copy_bandwidth()
    run.choose_configs(args.sweep)
    run.row(f"copy ({n_copy * 4 >> 20} MiB d2d)", t_copy, 2 * n_copy * 4)
    run.fused()
    sections = (run.fla_baselines, run.parallel_backend, run.sequential_backend, run.rglru_layer)
    for section in (*sections, *([run.host_overhead] if dev.type == "cuda" else [])):
        run.guarded(section)
        if dev.type == "cuda":
            torch.cuda.empty_cache()
    return run


def goals(rows: list[dict], layer: dict[str, float], seq_fb: str | None) -> dict[str, dict]:
    """The benchmark's goals (``met`` True/False) and informative ratios (``met`` None) from its rows,
    the RGLRU layer's times per backend and the name of the sequential loop's fwd+bwd row."""
    by = {r["name"]: r for r in rows}
    out = {}
    fwd_frac = by["fused fwd (no autograd state)"]["frac_of_copy_bw"]
    out["fwd >= 60% of copy bandwidth"] = {"value": fwd_frac, "met": fwd_frac >= 0.6}
    ours_fb = by["fused fwd+bwd (autograd)"]["ms"]
    base = by.get("torch gates + fla chunk_hgrn fwd+bwd", {}).get("ms")
    if base:
        sp = base / ours_fb
        out["scan fwd+bwd >= 3x torch gates + chunk_hgrn"] = {"value": sp, "met": sp >= 3}
        basef = by["torch gates + fla chunk_hgrn fwd"]["ms"]
        out["(info) scan fwd speed-up vs torch gates + chunk_hgrn"] = {
            "value": basef / by["fused fwd (no autograd state)"]["ms"], "met": None}
    if "fla_chunk" in layer:
        sp = layer["fla_chunk"] / layer["triton"]
        out["RGLRU layer fwd+bwd >= 3x (with gate projections)"] = {"value": sp, "met": sp >= 3}
    if seq_fb in by:
        out["(info) fwd+bwd vs sequential loop (est.)"] = {"value": by[seq_fb]["ms"] / ours_fb, "met": None}
    graphed = by.get(f"fused fwd+bwd, replayed from a CUDA graph, median of {REPEATS}", {}).get("ms")
    if graphed:
        eager = by[f"fused fwd+bwd, eager, median of {REPEATS}"]["ms"]
        out["(info) fused fwd+bwd, eager over CUDA graph (host overhead)"] = {"value": eager / graphed, "met": None}
    if "parallel backend fwd+bwd" in by:
        out["(info) fwd+bwd vs parallel backend"] = {"value": by["parallel backend fwd+bwd"]["ms"] / ours_fb,
                                                     "met": None}
    return out


def report(record: dict, path: Path) -> None:
    """Print the record: environment, shape, the table, the checks and the goals."""
    env = environment()
    shape = record["shape"]
    versions = ", ".join(f"{k} {v}" for k, v in env["versions"].items() if v)
    print()
    print(f"RG-LRU scan benchmark on {env['device']}; {versions}; commit {env['commit'][:10]}")
    print(f"B={shape['B']} T={shape['T']} R={shape['R']} {shape['dtype']}; copy bandwidth "
          f"{record['copy_GBps']:.0f} GB/s (read+write); configs (BLOCK_T, BLOCK_R, warps): {record['configs']}")
    print(f"{'what':<62} {'ms':>9} {'MB moved':>9} {'GB/s':>7} {'roof ms':>8} {'of copy':>7}")
    for r in record["rows"]:
        ms = f"{r['ms']:.4f}" if r["ms"] is not None else "n/a"
        mb = f"{r['bytes'] / 1e6:.0f}" if r["bytes"] else "-"
        gbs = f"{r['GBps']:.0f}" if r["GBps"] else "-"
        roof = f"{r['roofline_ms']:.4f}" if r["roofline_ms"] else "-"
        frac = f"{100 * r['frac_of_copy_bw']:.0f}%" if r["frac_of_copy_bw"] else "-"
        print(f"{r['name']:<62} {ms:>9} {mb:>9} {gbs:>7} {roof:>8} {frac:>7}" + (f"  {r['note']}" if r["note"] else ""))
    print("(baselines' GB/s and % count the fused kernel's bytes: the RG-LRU's minimum traffic)")
    for k, v in record["checks"].items():
        print(f"check: {k}: rel err {v:.2e}")
    print("goals:")
    for k, v in record["goals"].items():
        met = "" if v["met"] is None else ("MET" if v["met"] else "MISSED")
        print(f"  {k}: {goal_value(k, v['value'])} {met}")
    print(f"wrote {path}")


def main(argv=None) -> int:
    args = parser().parse_args(argv)
    dev = torch.device(args.device)
    if dev.type == "cuda" and no_cuda("scan"):
        return 2
    run = measure(args, dev)
    record = {"shape": {"B": run.B, "T": run.T, "R": run.R, "dtype": args.dtype}, "copy_GBps": run.copy_bw / 1e9,
              "configs": run.configs, "rows": run.rows, "goals": goals(run.rows, run.layer, run.seq_fb),
              "checks": run.checks, "sweep": run.sweep}
    path = save_record("scan", record, Path(args.out) if args.out else None)
    report(record, path)
    return 0


if __name__ == "__main__":
    sys.exit(main())
