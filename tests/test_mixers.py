"""The mixer registry (seqlib.models.registry.MIXERS), the resolved widths, and the stability of the
config hash that keys the stored run records (the import graph is checked in test_structure.py)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
from pydantic import ValidationError

from seqlib.config import ExperimentConfig
from seqlib.models import MODELS, ModelConfig, build_model
from seqlib.models.mixers import Mixer
from seqlib.models.registry import MIXERS, ModelEntry
from seqlib.tasks.base import TaskSpec

REPO = Path(__file__).resolve().parents[1]
SPEC = TaskSpec("tokens", "tokens", "ce", num_outputs=11, vocab_size=11)


def test_every_model_pattern_names_registered_mixers():
    for name, entry in MODELS.items():
        assert entry.pattern and set(entry.pattern) <= set(MIXERS), name
        assert entry.requires_gpu == any(MIXERS[kind].requires_gpu for kind in entry.pattern), name
    assert MODELS["griffin"].block_types(5) == ["recurrent", "recurrent", "local_attention", "recurrent", "recurrent"]
    assert not MODELS["griffin"].requires_gpu and MODELS["mamba2"].requires_gpu


@pytest.mark.parametrize("kind", sorted(k for k, m in MIXERS.items() if not m.requires_gpu))
def test_mixer_builds_its_layer_and_decodes_through_it(kind):
    """The entry's builder returns its ``layer``; the model's cache and state size are that layer's."""
    name = next(n for n, e in MODELS.items() if e.pattern[0] == kind)
    cfg = ModelConfig(name=name, d_model=32, n_layers=1, window=4)
    assert isinstance(MIXERS[kind].build(cfg), MIXERS[kind].layer)
    model = build_model(cfg, SPEC).eval()
    block = model.blocks[0]
    temporal = block.temporal_block if MIXERS[kind].residual else block
    assert type(temporal) is MIXERS[kind].layer
    assert model.state_size(6)["total"] == sum(temporal.state_size(6).values())
    inputs = torch.randint(0, 11, (2, 6))
    with torch.no_grad():
        full, _ = model(inputs)
        cache, steps = model.init_cache(2), []
        for t in range(6):
            y, cache = model(inputs[:, t : t + 1], torch.full((2, 1), t), cache)
            steps.append(y)
    assert torch.allclose(torch.cat(steps, 1), full, atol=1e-5)


@pytest.mark.parametrize(
    "kwargs,message",
    [
        ({"name": "hawk", "d_rnn": 30, "num_heads": 4}, "hawk', recurrent mixer: d_rnn 30 is not divisible by gate_blocks 4"),
        ({"name": "griffin", "n_layers": 2, "d_model": 36, "num_heads": 4}, None),  # no local layer at 2 layers
        ({"name": "griffin", "n_layers": 3, "d_model": 36, "num_heads": 4},
         "local_attention mixer: head_dim d_model/num_heads = 9 must be a multiple of 4"),
        ({"name": "transformer", "d_model": 24, "num_heads": 4}, "global_attention mixer: head_dim .* = 6"),
        ({"name": "transformer", "d_model": 24, "num_heads": 4, "pos_encoding": "sinusoidal"}, None),
        ({"name": "transformer", "d_model": 30, "num_heads": 4}, "global_attention mixer: d_model 30 is not divisible"),
        ({"name": "simplicial", "d_model": 24, "num_heads": 4}, "simplicial mixer: head_dim"),
        ({"name": "lstm", "d_model": 30, "num_heads": 4}, None),  # an LSTM has no heads
    ],
)
def test_config_errors_come_from_the_mixer_check(kwargs, message):
    if message is None:
        ModelConfig(**kwargs)
        return
    with pytest.raises(ValidationError, match=message):
        ModelConfig(**kwargs)


def test_validator_asks_the_mixer_entry(monkeypatch):
    def needs_even_layers(cfg):
        if cfg.n_layers % 2:
            raise ValueError(f"needs an even n_layers, got {cfg.n_layers}")

    monkeypatch.setitem(MIXERS, "toy", Mixer(MIXERS["gru"].build, MIXERS["gru"].layer, "toy", needs_even_layers,
                                             kernel_mode=MIXERS["gru"].kernel_mode))
    monkeypatch.setitem(MODELS, "toy", ModelEntry(("toy",), "a toy model"))
    ModelConfig(name="toy", n_layers=2)
    with pytest.raises(ValidationError, match="model 'toy', toy mixer: needs an even n_layers, got 3"):
        ModelConfig(name="toy", n_layers=3)


@pytest.mark.parametrize(
    "kwargs,d_rnn,gate_blocks,mlp_width",
    [
        ({}, 84, 4, 192),  # D = 64, H = 4: 4D/3 = 85.3 -> 21 blocks of 4; MLP 3D
        ({"d_model": 128}, 172, 4, 384),  # 170.7 / 4 = 42.7 -> 43 * 4
        ({"gate_blocks": 16}, 80, 16, 192),  # 85.3 / 16 = 5.3 -> 5 * 16
        ({"d_model": 4, "num_heads": 1, "gate_blocks": 16}, 16, 16, 12),  # 5.3 / 16 rounds to 0: at least 16
        ({"d_model": 8, "num_heads": 8}, 8, 8, 24),
        ({"d_rnn": 30, "gate_blocks": 5, "mlp_width": 100}, 30, 5, 100),
        ({"mlp_expansion": 0}, 84, 4, 0),
        ({"mlp_expansion": 2, "num_heads": 2}, 86, 2, 128),  # 85.3 / 2 = 42.7 -> 43 * 2
    ],
)
def test_resolved_widths(kwargs, d_rnn, gate_blocks, mlp_width):
    cfg = ModelConfig(name="hawk", **kwargs)
    r = cfg.resolved
    assert (r.d_rnn, r.gate_blocks, r.mlp_width) == (d_rnn, gate_blocks, mlp_width)
    # the fields keep their stored values (None = default): the config hash does not see ``resolved``
    assert "resolved" not in cfg.model_dump() and "resolved" not in ModelConfig.model_fields
    assert cfg.model_dump()["d_rnn"] == kwargs.get("d_rnn") and cfg.model_dump()["mlp_width"] == kwargs.get("mlp_width")

# one stored record per (task, model): the run records in results/ are keyed by the config hash
HASHED = ["mqar/griffin", "parity_check/hawk", "flipflop/lstm", "knapsack/transformer",
          "selective_copying/local_transformer"]


@pytest.mark.parametrize("run", HASHED)
def test_config_hash_of_stored_records_is_stable(run):
    paths = sorted((REPO / "results" / run).glob("*.json"))
    assert paths, f"no stored record under results/{run}"
    for path in paths:
        record = json.loads(path.read_text())
        assert ExperimentConfig.model_validate(record["config"]).hash() == record["config_hash"], path


def test_every_stored_record_keeps_its_hash():
    records = [json.loads(p.read_text()) for p in sorted((REPO / "results").rglob("*.json"))]
    records = [r for r in records if isinstance(r, dict) and "config_hash" in r]
    changed = [r["run_id"] for r in records
               if ExperimentConfig.model_validate(r["config"]).hash() != r["config_hash"]]
    assert records and not changed

