"""Models: decode == full forward, local-attention masks, conv document mask, sizing, config errors."""

import pytest
import torch
from pydantic import ValidationError

from seqlib.layers.attention import Attention
from seqlib.layers.conv1d import Conv1D
from seqlib.layers.norms import RMSNorm
from seqlib.models import MODELS, ModelConfig, build_model, list_models
from seqlib.models.sizing import count_params, match_budget
from seqlib.tasks.base import TaskSpec

VOCAB = 24
SPEC = TaskSpec("tokens", "tokens", "ce", num_outputs=VOCAB, vocab_size=VOCAB)
WINDOW = 4


def small(name, **kw):
    return ModelConfig(**{"name": name, "d_model": 32, "n_layers": 3, "num_heads": 2, "window": WINDOW, **kw})


def tokens_with_reset(B=2, T=13):
    inputs = torch.randint(0, VOCAB, (B, T))
    segment_pos = torch.arange(T).repeat(B, 1)
    segment_pos[1, 6:] = torch.arange(T - 6)  # row 1: a second document starts at t=6
    return inputs, segment_pos


# GPU-only models (the fla zoo) are tested in tests/test_zoo.py
CPU_MODELS = [name for name in list_models() if not MODELS[name].requires_gpu]
ALL = [(name, {}) for name in CPU_MODELS] + [
    ("transformer", {"pos_encoding": p}) for p in ("sinusoidal", "learned", "none")
]


@pytest.mark.parametrize("name,extra", ALL, ids=[f"{n}-{e.get('pos_encoding', 'default')}" for n, e in ALL])
def test_decode_matches_full_forward(name, extra):
    """Token-by-token and chunked decoding equal the parallel forward (fp32), across a document
    reset and past the local-attention window (T=13 > W=4)."""
    model = build_model(small(name, **extra), SPEC).eval()
    inputs, segment_pos = tokens_with_reset()
    with torch.no_grad():
        full, none = model(inputs, segment_pos)
        assert none is None
        cache = model.init_cache(inputs.shape[0])
        steps = []
        for t in range(inputs.shape[1]):
            out, cache = model(inputs[:, t : t + 1], segment_pos[:, t : t + 1], cache)
            steps.append(out)
        stepped = torch.cat(steps, 1)
        cache = model.init_cache(inputs.shape[0])
        chunks = []
        for lo, hi in [(0, 5), (5, 6), (6, 13)]:  # a prefill, one step, then a chunk longer than W
            out, cache = model(inputs[:, lo:hi], segment_pos[:, lo:hi], cache)
            chunks.append(out)
        chunked = torch.cat(chunks, 1)
    scale = full.abs().max()
    assert (stepped - full).abs().max() < 1e-5 * scale
    assert (chunked - full).abs().max() < 1e-5 * scale


def test_local_attention_sees_exactly_its_window_and_document():
    torch.manual_seed(0)
    attn = Attention(16, num_heads=2, num_kv_heads=1, window=WINDOW)
    x = torch.randn(1, 12, 16)
    pos = torch.arange(12)[None]
    base, _ = attn(x, pos)
    i = 10
    for j in range(12):
        x2 = x.clone()
        x2[0, j] += torch.randn(16)
        changed = not torch.allclose(attn(x2, pos)[0][0, i], base[0, i], atol=1e-6)
        assert changed == (i - WINDOW <= j <= i), j  # W + 1 keys: i-W .. i
    seg = pos.clone()
    seg[0, 8:] = torch.arange(4)  # a document starts at 8
    base, _ = attn(x, seg)
    x2 = x.clone()
    x2[0, 7] += 1.0  # inside the window of t=10 but in the previous document
    out, _ = attn(x2, seg)
    assert torch.allclose(out[0, 8:], base[0, 8:], atol=1e-6)
    assert not torch.allclose(out[0, 7], base[0, 7], atol=1e-6)


def test_one_layer_local_transformer_ignores_tokens_beyond_window():
    model = build_model(small("local_transformer", n_layers=1), SPEC).eval()
    inputs = torch.randint(0, VOCAB, (1, 16))
    inputs2 = inputs.clone()
    inputs2[0, 3] = (inputs2[0, 3] + 1) % VOCAB
    with torch.no_grad():
        a, b = model(inputs)[0], model(inputs2)[0]
    assert torch.allclose(a[0, 3 + WINDOW + 1 :], b[0, 3 + WINDOW + 1 :], atol=1e-6)
    assert not torch.allclose(a[0, 3 + WINDOW], b[0, 3 + WINDOW], atol=1e-6)


def test_conv1d_matches_a_loop_with_document_mask():
    conv = Conv1D(8, temporal_width=4)
    x = torch.randn(2, 10, 8)
    seg = torch.arange(10).repeat(2, 1)
    seg[0, 6:] = torch.arange(4)
    out, _ = conv(x, seg)
    for b in range(2):
        start = 0
        for t in range(10):
            if seg[b, t] == 0:
                start = t
            expected = conv.b.clone()
            for k in range(4):
                if t - k >= start:
                    expected = expected + conv.w[3 - k] * x[b, t - k]
            assert torch.allclose(out[b, t], expected, atol=1e-6), (b, t)


def test_rmsnorm_formula():
    norm = RMSNorm(6)
    with torch.no_grad():
        norm.scale.copy_(torch.randn(6))
    x = torch.randn(3, 6)
    expected = x / torch.sqrt((x**2).mean(-1, keepdim=True) + 1e-6) * (1 + norm.scale)
    assert torch.allclose(norm(x), expected, atol=1e-6)


@pytest.mark.parametrize("name", CPU_MODELS)
@pytest.mark.parametrize("target", [150_000, 2_000_000])
def test_parameter_matching_hits_budget(name, target):
    cfg = match_budget(ModelConfig(name=name, n_layers=4, num_heads=4), SPEC, target)
    got = count_params(cfg, SPEC)
    assert abs(got - target) <= 0.03 * target
    assert got == build_model(cfg, SPEC).num_params()  # the meta-device count is the real one


def test_features_and_pooled_heads():
    spec = TaskSpec("features", "pooled", "ce", num_outputs=3, feature_dim=5)
    model = build_model(small("griffin"), spec)
    logits, _ = model(torch.randn(4, 9, 5))
    assert logits.shape == (4, 3)
    spec = TaskSpec("features", "tokens", "bce", num_outputs=1, feature_dim=5)
    logits, _ = build_model(small("hawk"), spec)(torch.randn(4, 9, 5))
    assert logits.shape == (4, 9, 1)


def test_every_model_trains_a_step_without_nans():
    for name in CPU_MODELS:
        model = build_model(small(name), SPEC)
        inputs, segment_pos = tokens_with_reset()
        logits, _ = model(inputs, segment_pos)
        loss = torch.nn.functional.cross_entropy(logits.flatten(0, 1), inputs.flatten())
        loss.backward()
        grads = [p.grad for p in model.parameters()]
        assert all(g is not None and torch.isfinite(g).all() for g in grads), name


def test_state_size_accounting():
    griffin = build_model(small("griffin", n_layers=3), SPEC)
    R = griffin.cfg.resolved.d_rnn
    size = griffin.state_size(1000)
    assert size["rg_lru"] == 2 * R and size["conv"] == 2 * 3 * R
    assert size["kv"] == 2 * WINDOW * 1 * 16  # one local layer, one KV head, head_dim 16
    transformer = build_model(small("transformer"), SPEC)
    assert transformer.state_size(100)["kv"] * 2 == transformer.state_size(200)["kv"]


@pytest.mark.parametrize(
    "kwargs,message",
    [
        ({"name": "mamba9"}, "unknown model 'mamba9'"),
        ({"name": "griffin", "window": 0}, "window must be >= 1"),
        ({"name": "transformer", "d_model": 30, "num_heads": 4}, "not divisible by num_heads"),
        ({"name": "griffin", "n_layers": 3, "num_heads": 4, "num_kv_heads": 3}, "not a multiple of num_kv_heads"),
        ({"name": "hawk", "d_rnn": 30, "num_heads": 4}, "not divisible by gate_blocks"),
        ({"name": "hawk", "dmodel": 64}, "dmodel"),
        ({"name": "hawk", "d_model": "wide"}, "d_model"),
    ],
)
def test_bad_config_names_the_problem(kwargs, message):
    with pytest.raises(ValidationError, match=message):
        ModelConfig(**kwargs)


def test_bad_shapes_name_the_problem():
    model = build_model(small("hawk"), SPEC)
    with pytest.raises(ValueError, match="tokens inputs must have 2 dims"):
        model(torch.randn(2, 5, 3))
    with pytest.raises(ValueError, match="segment_pos has shape"):
        model(torch.randint(0, VOCAB, (2, 5)), torch.zeros(2, 4, dtype=torch.long))
    learned = build_model(small("transformer", pos_encoding="learned", max_len=8), SPEC)
    with pytest.raises(ValueError, match="max_len=8"):
        learned(torch.randint(0, VOCAB, (1, 9)))
