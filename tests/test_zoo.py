"""The mixer zoo (seqlib.models.zoo): fla layers in the Hawk/Griffin backbone, 2-simplicial attention.

CPU: zoo models are unavailable with a reason, each fla layer is a registered mixer and model, and the
windowed 2-simplicial attention equals a brute-force loop over (query, key, key') triples.
GPU (``-m gpu``, needs fla 0.6.0): each zoo model's forward/backward is finite in bf16 autocast;
packed documents (``cu_seqlens``) equal separate forwards; step decoding equals the full forward
where fla supports it, and raises NotImplementedError with the reason where it does not; the kernel
mode each entry states (``FlaLayer.mode``) is the fla kernel that runs, in training and evaluation, on
either side of fla's length switch, and Gated DeltaNet's backward is refused exactly where stated.
"""

import math
import re
import sys

import pytest
import torch

from seqlib.layers.simplicial import simplicial_attention
from seqlib.models import ModelConfig, ModelUnavailable, build_model
from seqlib.models.mixers import Where
from seqlib.models.registry import MIXERS, MODELS
from seqlib.models.zoo import FLA_LAYERS, SHORT, ZOO_MIXERS, FlaMixer, chunk_backward_refused
from seqlib.tasks import get_task
from seqlib.tasks.base import TaskSpec

VOCAB = 37
SPEC = TaskSpec("tokens", "tokens", "ce", num_outputs=VOCAB, vocab_size=VOCAB)
ZOO = sorted(FLA_LAYERS)


def small(name, **kw):
    return ModelConfig(**{"name": name, "d_model": 128, "n_layers": 2, "num_heads": 2, "window": 32, **kw})


def test_every_fla_layer_is_a_gpu_mixer_and_model():
    assert set(ZOO_MIXERS) == set(FLA_LAYERS) and all(MIXERS[n] is ZOO_MIXERS[n] for n in ZOO)
    assert all(MIXERS[n].layer is FlaMixer and MIXERS[n].requires_gpu for n in ZOO)
    assert all(MODELS[n].block_types(3) == [n] * 3 and MODELS[n].requires_gpu for n in ZOO)
    assert MODELS["mamba2"].description == FLA_LAYERS["mamba2"].description
    assert not MODELS["simplicial"].requires_gpu
    decode = {n: FLA_LAYERS[n].decode for n in ZOO}
    assert all(isinstance(d, str) and d for d in decode.values() if d is not True)


@pytest.mark.skipif(torch.cuda.is_available(), reason="checks the CPU behaviour")
@pytest.mark.parametrize("name", ZOO)
def test_zoo_models_unavailable_on_cpu(name):
    with pytest.raises(ModelUnavailable, match="needs a CUDA GPU"):
        build_model(small(name), SPEC)


def brute_force_simplicial(q, k1, v1, k2, v2, seg, w1, w2):
    B, T, H, Dh = q.shape
    Hkv = k1.shape[2]
    doc = torch.cumsum((seg == 0).long(), 1)
    out = torch.zeros(B, T, H, Dh, dtype=torch.float64)
    for b in range(B):
        for i in range(T):
            for h in range(H):
                kh = h // (H // Hkv)
                scores, values = [], []
                for j in range(max(0, i - w1), i + 1):
                    for m in range(max(0, i - w2), i + 1):
                        if doc[b, j] != doc[b, i] or doc[b, m] != doc[b, i]:
                            continue
                        s = (q[b, i, h] * k1[b, j, kh] * k2[b, m, kh]).sum() / math.sqrt(Dh)
                        scores.append(s)
                        values.append(v1[b, j, kh] * v2[b, m, kh])
                p = torch.softmax(torch.stack(scores), 0)
                out[b, i, h] = (p[:, None] * torch.stack(values)).sum(0)
    return out


@pytest.mark.parametrize("w1,w2,H,Hkv", [(4, 2, 2, 1), (6, 6, 4, 2), (1, 1, 1, 1)])
def test_simplicial_matches_brute_force(w1, w2, H, Hkv):
    gen = torch.Generator().manual_seed(w1 * 10 + w2)
    B, T, Dh = 2, 11, 4
    q = torch.randn(B, T, H, Dh, generator=gen, dtype=torch.float64)
    k1, v1, k2, v2 = (torch.randn(B, T, Hkv, Dh, generator=gen, dtype=torch.float64) for _ in range(4))
    seg = torch.arange(T).repeat(B, 1)
    seg[1, 5:] = torch.arange(T - 5)  # a second document in row 1
    pos = torch.arange(T).expand(B, T)
    doc = torch.cumsum((seg == 0).long(), 1)
    got = simplicial_attention(q, k1, v1, k2, v2, pos, doc, pos, doc, w1, w2)
    want = brute_force_simplicial(q, k1, v1, k2, v2, seg, w1, w2)
    assert torch.allclose(got.double(), want, atol=1e-5, rtol=1e-5)  # the kernel computes in fp32


def test_simplicial_under_bf16_autocast_computes_in_fp32():
    """Under autocast the einsums ran in bf16 and the mask's fp32 fill overflowed (the GPU grid's
    parity runs failed: value cannot be converted to type c10::BFloat16 without overflow)."""
    gen = torch.Generator().manual_seed(3)
    B, T, H, Dh = 2, 9, 2, 4
    q, k1, v1, k2, v2 = (torch.randn(B, T, H, Dh, generator=gen) for _ in range(5))
    pos = torch.arange(T).expand(B, T)
    doc = torch.zeros(B, T, dtype=torch.long)
    want = simplicial_attention(q, k1, v1, k2, v2, pos, doc, pos, doc, 3, 2)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        got = simplicial_attention(q, k1, v1, k2, v2, pos, doc, pos, doc, 3, 2)
    assert got.dtype == torch.float32 and torch.equal(got, want)


def test_simplicial_is_a_cpu_model():
    model = build_model(small("simplicial", d_model=32, window=4), SPEC)
    inputs = torch.randint(0, VOCAB, (2, 9))
    logits, _ = model(inputs)
    assert logits.shape == (2, 9, VOCAB) and torch.isfinite(logits).all()


@pytest.mark.parametrize("name", [n for n in ZOO if FLA_LAYERS[n].decode is not True])
def test_decode_unsupported_says_why(name):
    mixer = FlaMixer(name, torch.nn.Identity())
    with pytest.raises(NotImplementedError, match=name):
        mixer.init_cache(1)


def test_a_zoo_run_records_the_autotuning_cap_it_ran_under(tiny_config, tmp_path, monkeypatch):
    """``SEQLIB_AUTOTUNE_MAX`` caps Triton's autotuning for an fla model's run (its kernels' speed, not
    their function) and the record says so; unset, fla's full search, recorded as None; a native
    model records nothing of it."""
    import triton.runtime.autotuner as at

    from seqlib.train import new_record, run_model_config

    monkeypatch.setattr(at.Autotuner, "prune_configs", at.Autotuner.prune_configs)  # restored after the test
    for model, env, expected in [("deltanet", "3", 3), ("deltanet", None, None), ("hawk", "3", "absent")]:
        if env is None:
            monkeypatch.delenv("SEQLIB_AUTOTUNE_MAX", raising=False)
        else:
            monkeypatch.setenv("SEQLIB_AUTOTUNE_MAX", env)
        cfg = tiny_config(tmp_path, model, "parity_check")
        record = new_record(cfg)
        spec = get_task(cfg.task.name, **cfg.task.params).spec
        try:
            run_model_config(cfg, spec, record)
        except ModelUnavailable:  # on this CPU: the zoo cannot train here, recorded before it says so
            pass
        assert record.measure.get("triton_autotune_max", "absent") == expected, (model, env)
    assert at.Autotuner.prune_configs is not at.Autotuner._seqlib_prune  # the cap of the first case is in force


# ------------------------------------------------------------------------------ GPU


def _fla_or_skip():
    pytest.importorskip("fla", reason="flash-linear-attention 0.6.0 is not installed")
    from seqlib.models.zoo import limit_triton_autotuning

    limit_triton_autotuning()  # SEQLIB_AUTOTUNE_MAX: fewer configurations to compile (correctness only)


def rel(a, b):
    return float((a.double() - b.double()).norm() / b.double().norm().clamp_min(1e-30))


@pytest.mark.gpu
@pytest.mark.parametrize("base", ["deltanet", "gated_deltanet"])
def test_negative_eigenvalue_controls_differ_only_in_beta_range_gpu(base):
    """``<base>_neg`` is fla's layer with allow_neg_eigval (beta = 2 sigmoid: eigenvalues in (-1, 1]),
    with the same parameters as ``<base>``."""
    _fla_or_skip()
    plain, neg = (build_model(small(n), SPEC) for n in (base, f"{base}_neg"))
    layers = [[m for m in model.modules() if hasattr(m, "allow_neg_eigval")] for model in (plain, neg)]
    assert layers[0] and all(not m.allow_neg_eigval for m in layers[0])
    assert len(layers[1]) == len(layers[0]) and all(m.allow_neg_eigval for m in layers[1])
    assert [(n, p.shape) for n, p in plain.named_parameters()] == [(n, p.shape) for n, p in neg.named_parameters()]


@pytest.mark.gpu
@pytest.mark.parametrize("name", ZOO)
def test_zoo_forward_backward_finite_gpu(name):
    _fla_or_skip()
    torch.manual_seed(0)
    model = build_model(small(name), SPEC).cuda()
    inputs = torch.randint(0, VOCAB, (2, 150), device="cuda")
    with torch.autocast("cuda", dtype=torch.bfloat16):
        logits, _ = model(inputs)
        loss = torch.nn.functional.cross_entropy(logits.flatten(0, 1).float(), inputs.flatten())
    try:
        loss.backward()
    except RuntimeError as err:  # fla's own refusal on this platform (zoo.py docstring): known, not ours
        if name.startswith("gated_deltanet") and "produces incorrect results for gated chunk_bwd_dqkwg" in str(err):
            pytest.xfail(f"fla 0.6.0 refuses Gated DeltaNet's backward here: {err}")
        raise
    assert torch.isfinite(loss)
    for pname, p in model.named_parameters():
        assert p.grad is None or torch.isfinite(p.grad).all(), pname


@pytest.mark.gpu
@pytest.mark.parametrize("name", ZOO)
def test_zoo_documents_gpu(name):
    """A row holding two documents equals the two documents run separately (fla varlen), or the
    mixer refuses mid-row resets."""
    _fla_or_skip()
    torch.manual_seed(1)
    model = build_model(small(name), SPEC).cuda()
    T, cut = 160, 90
    inputs = torch.randint(0, VOCAB, (1, T), device="cuda")
    seg = torch.arange(T, device="cuda")[None].clone()
    seg[0, cut:] = torch.arange(T - cut, device="cuda")
    if not FLA_LAYERS[name].varlen:
        with pytest.raises(ValueError, match="one document per row"):
            model(inputs, seg)
        return
    with torch.no_grad():
        packed, _ = model(inputs, seg)
        first, _ = model(inputs[:, :cut])
        second, _ = model(inputs[:, cut:])
    assert rel(packed, torch.cat([first, second], 1)) < 2e-2


@pytest.mark.gpu
@pytest.mark.parametrize("name", ZOO)
def test_zoo_decode_matches_forward_gpu(name):
    _fla_or_skip()
    torch.manual_seed(2)
    model = build_model(small(name), SPEC).cuda().eval()
    T = 100
    inputs = torch.randint(0, VOCAB, (2, T), device="cuda")
    seg = torch.arange(T, device="cuda").expand(2, T)
    if FLA_LAYERS[name].decode is not True:
        with pytest.raises(NotImplementedError, match=name):
            model.init_cache(2, device="cuda")
        return
    with torch.no_grad():
        full, _ = model(inputs, seg)
        cache = model.init_cache(2, device="cuda")
        outs = []
        for lo, hi in [(0, 80)] + [(t, t + 1) for t in range(80, T)]:  # a prefill, then single steps
            out, cache = model(inputs[:, lo:hi], seg[:, lo:hi], cache)
            outs.append(out)
    assert rel(torch.cat(outs, 1), full) < 2e-2


# the fla kernel entry points a layer's module imports, by the mode they are (fla 0.6.0 fla/layers/*.py)
FLA_OPS = {"chunk": r"chunk_", "fused_recurrent": r"fused(_mul)?_recurrent_", "fused_chunk": r"fused_chunk_",
           "parallel": r"parallel_|deltaformer_attn$"}


def spy_fla_kernels(model, monkeypatch) -> set[str]:
    """The modes of the fla kernels ``model``'s layers call (Mamba-2: its torch_forward, naive, or
    cuda_kernels_forward, fused), collected as they run."""
    hits: set[str] = set()

    def spy(mode, fn):
        def wrapped(*args, **kwargs):
            hits.add(mode)
            return fn(*args, **kwargs)
        return wrapped

    for layer in {type(m.layer): m.layer for m in model.modules() if isinstance(m, FlaMixer)}.values():
        module = sys.modules[type(layer).__module__]
        for attr, fn in list(vars(module).items()):
            mode = next((m for m, pattern in FLA_OPS.items() if re.match(pattern, attr)), None)
            if mode and callable(fn):
                monkeypatch.setattr(module, attr, spy(mode, fn))
        for method, mode in (("torch_forward", "naive"), ("cuda_kernels_forward", "fused")):
            if hasattr(layer, method):
                monkeypatch.setattr(type(layer), method, spy(mode, getattr(type(layer), method)))
    return hits


@pytest.mark.gpu
@pytest.mark.parametrize("name", ZOO)
def test_zoo_kernel_mode_is_the_fla_kernel_that_runs_gpu(name, monkeypatch):
    _fla_or_skip()
    torch.manual_seed(3)
    model = build_model(small(name, n_layers=1), SPEC).cuda()
    hits = spy_fla_kernels(model, monkeypatch)
    for T in (SHORT - 24, SHORT + 36):
        for training in (True, False):
            hits.clear()
            with torch.set_grad_enabled(training), torch.autocast("cuda", dtype=torch.bfloat16):
                model.train(training)(torch.randint(0, VOCAB, (2, T), device="cuda"))
            mode, why = MIXERS[name].kernel_mode(model.cfg, Where(torch.device("cuda"), T, training))
            assert hits == {mode.removesuffix(" (backward refused)")}, (T, training, mode, why, hits)


@pytest.mark.gpu
@pytest.mark.parametrize("name", [n for n in ZOO if FLA_LAYERS[n].limit])
def test_the_backward_is_refused_exactly_where_the_limit_says_gpu(name):
    _fla_or_skip()
    model = build_model(small(name, n_layers=1), SPEC).cuda()
    with torch.autocast("cuda", dtype=torch.bfloat16):
        loss = model(torch.randint(0, VOCAB, (2, 100), device="cuda"))[0].float().square().mean()
    mode, why = MIXERS[name].kernel_mode(model.cfg, Where(torch.device("cuda"), 100, True))
    if chunk_backward_refused(torch.device("cuda")):
        assert mode.endswith("(backward refused)") and "fla #640" in why
        with pytest.raises(RuntimeError, match="#640"):
            loss.backward()
    else:
        assert "refused" not in mode
        loss.backward()


@pytest.mark.gpu
@pytest.mark.parametrize("name", ZOO)
def test_zoo_right_padding_leaves_the_real_positions_alone_gpu(name):
    """A batch right-padded as a packed evaluation pads it (seqlib.evaluate.eval_packs, seqlib.data.pad_batch:
    token 0, segment_pos -1) gives the real positions the logits of the unpadded batch: fla's kernels are
    causal, so the packed evaluation of the zoo is exact."""
    from seqlib.data import pad_batch
    from seqlib.tasks.base import Batch

    _fla_or_skip()
    torch.manual_seed(2)
    model = build_model(small(name), SPEC).cuda().eval()
    T = 70
    inputs = torch.randint(0, VOCAB, (3, T), device="cuda")
    seg = torch.arange(T, device="cuda").expand(3, T).clone()
    batch = Batch(inputs, inputs, torch.ones_like(inputs, dtype=torch.bool), seg, {})
    padded = pad_batch(batch, 150)
    with torch.no_grad():
        alone, _ = model(inputs, seg)
        long, _ = model(padded.inputs, padded.segment_pos)
    assert rel(long[:, :T], alone) < 2e-2
