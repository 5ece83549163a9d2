"""The attention fast path (seqlib.layers.flex) against the reference masked attention.

GPU tests (``-m gpu``): compiled FlexAttention, masked SDPA and flash SDPA on fresh random inputs with documents,
windows and odd lengths, forward and gradients, bf16 and fp32 (relative-norm tolerances per the
device METHOD notes: fp32 with TF32-class matrix units ~1e-3, bf16 operands 1e-2).
CPU tests: the dispatch falls back to the reference on a CPU, and eager FlexAttention with our
block masks computes the same function as the reference (mask semantics: W + 1 keys).
"""

import pytest
import torch

from seqlib.layers import flex
from seqlib.layers.attention import Attention, masked_attention
from seqlib.layers.segments import attention_mask, document_ids


def random_segments(B, T, gen, device, resets=True):
    seg = torch.arange(T).repeat(B, 1)
    if resets:
        for b in range(B):
            for start in sorted(torch.randint(1, max(T, 2), (2,), generator=gen).tolist()):
                if start < T:
                    seg[b, start:] = torch.arange(T - start)
    return seg.to(device)


def reference(q, k, v, seg, window):
    B, T = seg.shape
    pos = torch.arange(T, device=seg.device).expand(B, T)
    doc = document_ids(seg)
    return masked_attention(q.double(), k.double(), v.double(), attention_mask(pos, doc, pos, doc, window))


def rel(a, b):
    return float((a.double() - b.double()).norm() / b.double().norm().clamp_min(1e-30))


CASES = [  # (B, T, H, Hkv, Dh, window, resets)
    (2, 77, 4, 1, 32, 16, True),
    (1, 300, 4, 2, 64, 128, True),
    (2, 1029, 8, 1, 128, 256, False),
    (1, 513, 4, 1, 64, None, False),  # global, one document: flash SDPA
    (2, 257, 4, 1, 64, None, True),  # global with documents: FlexAttention
]


@pytest.mark.gpu
@pytest.mark.parametrize("path", ["flex", "sdpa_mask"])
@pytest.mark.parametrize("dtype,tol", [(torch.float32, 2e-3), (torch.bfloat16, 2e-2)])
@pytest.mark.parametrize("case", CASES, ids=lambda c: f"B{c[0]}T{c[1]}H{c[2]}kv{c[3]}W{c[5]}docs{int(c[6])}")
def test_flex_matches_reference_gpu(case, dtype, tol, path, monkeypatch):
    """Both masked paths (FlexAttention from FLEX_MIN_LEN tokens, masked SDPA below) at every case."""
    monkeypatch.setattr(flex, "FLEX_MIN_LEN", 0 if path == "flex" else 10**9)
    B, T, H, Hkv, Dh, window, resets = case
    dev = torch.device("cuda")
    gen = torch.Generator().manual_seed(hash(case) % 2**31)
    q = torch.randn(B, T, H, Dh, generator=gen).to(dev, dtype).requires_grad_()
    k = torch.randn(B, T, Hkv, Dh, generator=gen).to(dev, dtype).requires_grad_()
    v = torch.randn(B, T, Hkv, Dh, generator=gen).to(dev, dtype).requires_grad_()
    seg = random_segments(B, T, gen, dev, resets)
    out = flex.fast_attention(q, k, v, seg, window)
    assert torch.isfinite(out).all()
    ref = reference(q, k, v, seg, window)
    assert rel(out, ref) < tol
    grad = torch.randn(out.shape, generator=gen).to(dev, dtype)
    got = torch.autograd.grad(out, (q, k, v), grad)
    want = torch.autograd.grad(ref, (q, k, v), grad.double())
    for g, w in zip(got, want):
        assert torch.isfinite(g).all()
        assert rel(g, w) < 2 * tol


@pytest.mark.gpu
@pytest.mark.parametrize("window", [8, None])
def test_attention_module_backends_agree_gpu(window):
    torch.manual_seed(0)
    attn = Attention(64, 4, 1, window).cuda()
    x = torch.randn(2, 200, 64, device="cuda")
    seg = random_segments(2, 200, torch.Generator().manual_seed(1), "cuda")
    attn.attention_backend = "reference"
    want, _ = attn(x, seg)
    attn.attention_backend = "auto"  # CUDA: the fast path
    got, _ = attn(x, seg)
    assert rel(got, want) < 2e-3


def test_dispatch_falls_back_to_reference_on_cpu(monkeypatch):
    def boom(*a, **k):
        raise AssertionError("the fast path must not run on a CPU under 'auto'")

    monkeypatch.setattr(flex, "fast_attention", boom)
    attn = Attention(32, 2, 1, 4)
    x, seg = torch.randn(2, 9, 32), torch.arange(9).repeat(2, 1)
    y, cache = attn(x, seg)
    assert y.shape == x.shape and cache is None
    assert not flex.use_fast_path("auto", x) and flex.use_fast_path("flex", x)
    assert not flex.use_fast_path("reference", x.new_zeros(1))
    with pytest.raises(ValueError, match="unknown attention backend"):
        flex.use_fast_path("bogus", x)


@pytest.mark.parametrize("path", ["flex", "sdpa_mask"])
@pytest.mark.parametrize("window,resets", [(3, True), (None, True), (5, False), (None, False)])
def test_flex_semantics_on_cpu(window, resets, path, monkeypatch):
    """Eager FlexAttention (CPU) with our block masks, and the masked-SDPA path for short sequences,
    == the reference: W + 1 keys, documents."""
    monkeypatch.setattr(flex, "FLEX_MIN_LEN", 0 if path == "flex" else 10**9)
    gen = torch.Generator().manual_seed(7)
    B, T, H, Hkv, Dh = 2, 21, 4, 2, 8
    q, k, v = (torch.randn(B, T, n, Dh, generator=gen) for n in (H, Hkv, Hkv))
    seg = random_segments(B, T, gen, "cpu", resets)
    out = flex.fast_attention(q, k, v, seg, window)
    assert rel(out, reference(q, k, v, seg, window)) < 1e-5


def test_a_flex_kernel_that_fails_falls_back_to_the_masked_sdpa_and_says_so(monkeypatch):
    """Where inductor finds no FlexAttention kernel for a shape (seen on torch 2.11 / H100 at B=2,
    T=77, Dh=32 with documents, NoValidChoicesError), the fast path warns and computes the same
    function with SDPA and an explicit mask."""
    def no_kernel(device):
        def fail(*args, **kwargs):
            raise RuntimeError("NoValidChoicesError: no choices to select (simulated)")
        return fail

    monkeypatch.setattr(flex, "FLEX_MIN_LEN", 0)
    monkeypatch.setattr(flex, "_flex_fn", no_kernel)
    gen = torch.Generator().manual_seed(3)
    B, T, H, Hkv, Dh = 2, 77, 4, 1, 32
    q, k, v = (torch.randn(B, T, n, Dh, generator=gen) for n in (H, Hkv, Hkv))
    seg = random_segments(B, T, gen, "cpu", True)
    with pytest.warns(UserWarning, match=r"FlexAttention failed for q \(2, 77, 4, 32\) \(RuntimeError\); using SDPA"):
        out = flex.fast_attention(q, k, v, seg, 16)
    assert rel(out, reference(q, k, v, seg, 16)) < 1e-5


def test_attention_backend_config_threads_through():
    from seqlib.models import ModelConfig, build_model
    from seqlib.tasks.base import TaskSpec

    spec = TaskSpec("tokens", "tokens", "ce", num_outputs=11, vocab_size=11)
    cfg = ModelConfig(name="griffin", d_model=32, n_layers=3, num_heads=2, window=4, attention_backend="flex")
    model = build_model(cfg, spec)
    assert model.blocks[2].temporal_block.attention_backend == "flex"
    inputs = torch.randint(0, 11, (2, 13))
    with torch.no_grad():  # eager FlexAttention has no CPU backward
        flexed, _ = model(inputs)
        model.blocks[2].temporal_block.attention_backend = "reference"
        ref, _ = model(inputs)
    assert rel(flexed, ref) < 1e-5
