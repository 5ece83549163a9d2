"""Graphed decode (seqlib.decode): the in-place static-cache step equals the model's own decode and
its full forward (CPU, eager), a cache a graph would freeze or outgrow is refused with the reason,
and on a GPU the replayed CUDA graph equals the eager steps."""

from __future__ import annotations

import dataclasses

import pytest
import torch
from test_models import SPEC, small, tokens_with_reset

from seqlib.decode import GraphedDecoder, cache_tensors, copy_cache_
from seqlib.models import build_model

STATIC = ["hawk", "griffin", "hawk_neg", "local_transformer"]  # recurrent state and ring buffers only


def decode_both_ways(name: str, device: str, graphs: bool, prefill: int = 3):
    """Logits of the model's own decode and of a GraphedDecoder from the same prefill, token by token
    across a document reset and past the window; and the full forward's."""
    torch.manual_seed(0)
    model = build_model(small(name), SPEC).to(device).eval()
    inputs, segment_pos = (t.to(device) for t in tokens_with_reset())
    B, T = inputs.shape
    with torch.no_grad():
        full, _ = model(inputs, segment_pos)
        _, cache = model(inputs[:, :prefill], segment_pos[:, :prefill], model.init_cache(B, device=device))
        _, static = model(inputs[:, :prefill], segment_pos[:, :prefill], model.init_cache(B, device=device))
        decoder = GraphedDecoder(model, static, graphs=graphs)
        own, graphed = [], []
        for t in range(prefill, T):
            out, cache = model(inputs[:, t : t + 1], segment_pos[:, t : t + 1], cache)
            own.append(out)
            graphed.append(decoder.step(inputs[:, t : t + 1], segment_pos[:, t : t + 1]).clone())
    return torch.cat(own, 1), torch.cat(graphed, 1), full[:, prefill:], decoder


@pytest.mark.parametrize("name", STATIC)
def test_the_static_cache_step_equals_the_models_decode_and_its_forward(name):
    own, graphed, full, decoder = decode_both_ways(name, "cpu", graphs=False)
    assert torch.equal(graphed, own)
    assert (graphed - full).abs().max() < 1e-5 * full.abs().max()
    assert decoder.failure is None


def test_a_cache_that_grows_or_holds_a_python_value_is_refused():
    model = build_model(small("transformer"), SPEC).eval()  # global attention: the cache grows
    inputs, segment_pos = tokens_with_reset()
    decoder = GraphedDecoder(model, model.init_cache(2), graphs=False)
    with pytest.raises(ValueError, match="changed the cache's shapes"):
        decoder.step(inputs[:, :1], segment_pos[:, :1])

    @dataclasses.dataclass
    class Counted:
        state: torch.Tensor
        num_tokens: int

    with pytest.raises(TypeError, match=r"cache\[0\].Counted.num_tokens is int 0, which a CUDA graph"):
        cache_tensors([Counted(torch.zeros(2), 0)])
    with pytest.raises(TypeError, match="a graphed decode needs a cache of tensors"):
        GraphedDecoder(model, [Counted(torch.zeros(2), 0)], graphs=False)
    a, b = [torch.zeros(2), (torch.zeros(3), None)], [torch.ones(2), (torch.full((3,), 2.0), None)]
    copy_cache_(a, b)
    assert torch.equal(a[0], b[0]) and torch.equal(a[1][0], b[1][0])


def test_graphs_need_cuda():
    model = build_model(small("hawk"), SPEC)
    with pytest.raises(ValueError, match="graphs=True needs a CUDA device"):
        GraphedDecoder(model, model.init_cache(2), graphs=True)


@pytest.mark.gpu
@pytest.mark.parametrize("name", STATIC)
def test_the_replayed_graph_equals_the_eager_steps_on_the_gpu(name):
    own, graphed, full, decoder = decode_both_ways(name, "cuda", graphs=True)
    assert decoder.failure is None, decoder.failure
    assert decoder._step.captures >= 1  # it replayed a graph, it did not fall back to eager steps
    assert (graphed - own).abs().max() <= 1e-5 * own.abs().max()  # fp32: the same kernels, replayed
    assert (graphed - full).abs().max() < 1e-4 * full.abs().max()


@pytest.mark.parametrize("name, graphed", [("hawk", True), ("transformer", False)])
def test_the_decode_benchmark_times_the_graphed_steps_where_the_cache_allows(name, graphed):
    """On a CPU the graphed path runs its steps eagerly: the row has its timing, or says why not."""
    from seqlib.bench.models import decode_one

    cfg = small(name).model_copy(update={"max_len": 64})
    row = decode_one(name, 8, batch=2, steps=3, warmup=2, device="cpu", cfg=cfg)
    assert row["logits_finite"] and row["ms_per_token"] > 0
    if graphed:
        assert row["ms_per_token_graphed"] > 0 and row["graph_failure"] is None
    else:
        assert "changed the cache's shapes" in row["graphed_error"]
