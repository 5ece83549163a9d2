"""The kernel mode of every mixer (seqlib.models.modes): the mode a mixer entry states is the path its
forward takes (spied on, on a CPU: the scans, the attention paths, the fused LSTM/GRU kernel or their
step loop under vmap), no rule switches more than once in T (so a phase's ends give its modes), the
CUDA rules follow the same selection, and every run record carries the modes of its mixers.
On a GPU (-m gpu) the same cases check the CUDA paths (the fused Triton scan, FlexAttention compiled,
flash SDPA, cuDNN); the fla zoo's rules are checked against the fla kernels that run in
tests/test_zoo.py (-m gpu)."""

from __future__ import annotations

import copy

import pytest
import torch
from torch.func import functional_call, stack_module_state, vmap

import seqlib.kernels
import seqlib.layers.attention as attention
import seqlib.layers.flex as flex
import seqlib.layers.scan as scan
import seqlib.layers.simplicial as simplicial
from seqlib.layers.rnn import RecurrentBaseline
from seqlib.models import ModelConfig, build_model
from seqlib.models.mixers import Where
from seqlib.models.modes import input_lengths, kernel_modes
from seqlib.models.registry import MIXERS
from seqlib.models.zoo import FLA_LAYERS
from seqlib.results import read_record
from seqlib.tasks import get_task
from seqlib.tasks.base import TaskSpec
from seqlib.train import run_one

VOCAB = 11
SPEC = TaskSpec("tokens", "tokens", "ce", num_outputs=VOCAB, vocab_size=VOCAB)
CPU = torch.device("cpu")


@pytest.fixture
def spied(monkeypatch):
    """The set of paths the mixers' forwards took, by the mode names of their kernel-mode rules."""
    hits: set[str] = set()

    def spy(name, fn, pick=None):
        def wrapped(*args, **kwargs):
            hits.add(pick(args, kwargs) if pick else name)
            return fn(*args, **kwargs)
        return wrapped

    for scans in (scan.LINEAR_SCANS, seqlib.kernels.FUSED_SCANS):
        for name in scans:
            monkeypatch.setitem(scans, name, spy(name, scans[name]))
    monkeypatch.setattr(attention, "masked_attention", spy("reference", attention.masked_attention))
    monkeypatch.setattr(flex.F, "scaled_dot_product_attention", spy(
        "sdpa", flex.F.scaled_dot_product_attention, lambda a, kw: "sdpa_causal" if kw.get("is_causal") else "sdpa_mask"))
    flex_fn = flex._flex_fn
    monkeypatch.setattr(flex, "_flex_fn", lambda device: spy("flex", flex_fn(device)))
    monkeypatch.setattr(simplicial, "simplicial_attention", spy("pytorch", simplicial.simplicial_attention))
    monkeypatch.setattr(RecurrentBaseline, "_step_loop", spy("step_loop", RecurrentBaseline._step_loop))
    for rnn in (torch.nn.LSTM, torch.nn.GRU):
        monkeypatch.setattr(rnn, "forward", spy("rnn", rnn.forward, lambda a, kw: "cudnn" if a[1].is_cuda else "aten"))
    return hits


CASES = [  # (model, config changes, T, stacked, training)
    *((name, changes, T, stacked, training) for training in (True, False) for name, changes, T, stacked in [
        ("hawk", {}, 12, False),
        ("hawk_neg", {"scan_backend": "sequential"}, 12, False),
        ("griffin", {"scan_backend": "parallel", "attention_backend": "flex"}, 12, False),  # local: masked SDPA
        ("transformer", {}, 12, False),  # auto on a CPU: the reference
        ("transformer_vanilla", {"attention_backend": "flex"}, 12, False),  # global: causal SDPA
        ("transformer", {"attention_backend": "flex"}, 12, True),  # under vmap: the reference
        ("simplicial", {}, 12, False),
        ("lstm", {}, 12, False),
        ("gru", {}, 12, True),  # under vmap: the step loop
    ]),
    # local at T >= FLEX_MIN_LEN: FlexAttention (eager on a CPU, which has no backward for it: evaluation);
    # on a GPU only with heads of >= FLEX_MIN_HEAD_DIM (16 here), else the masked SDPA (8 here)
    ("local_transformer", {"attention_backend": "flex", "d_model": 32}, flex.FLEX_MIN_LEN, False, False),
    ("local_transformer", {"attention_backend": "flex"}, flex.FLEX_MIN_LEN, False, False),
]


@pytest.mark.filterwarnings("ignore:flex_attention called without torch.compile")  # eager on a CPU: meant
@pytest.mark.parametrize("name,changes,T,stacked,training", CASES,
                         ids=[f"{c[0]}-{c[2]}-{'stack' if c[3] else 'one'}-{'train' if c[4] else 'eval'}"
                              + (f"-d{c[1]['d_model']}" if "d_model" in c[1] else "") for c in CASES])
@pytest.mark.parametrize("device", ["cpu", pytest.param("cuda", marks=pytest.mark.gpu)])
def test_the_stated_mode_is_the_path_that_runs(name, changes, T, stacked, training, device, spied):
    cfg = ModelConfig(**{"name": name, "d_model": 16, "n_layers": 1, "num_heads": 2, "window": 4, **changes})
    (kind,) = cfg.block_types
    mode, why = MIXERS[kind].kernel_mode(cfg, Where(torch.device(device), T, training, stacked))
    assert why
    torch.manual_seed(0)
    model = build_model(cfg, SPEC).to(device).train(training)
    inputs = torch.randint(0, VOCAB, (2, T), device=device)
    with torch.set_grad_enabled(training):
        if stacked:
            params, buffers = stack_module_state([model, copy.deepcopy(model)])
            vmap(lambda p, b: functional_call(model, (p, b), (inputs,))[0])(params, buffers)
        else:
            model(inputs)
    assert spied == {mode}, (kind, mode, spied)


def test_auto_backends_on_cuda_take_the_fused_scan_and_the_fast_attention_path(monkeypatch):
    """On a CUDA device, ``auto`` picks the fused scan where one is registered, else the PyTorch scan
    (saying why), and the attention paths that ``attention_backend=flex`` takes on any device."""
    cuda = torch.device("cuda")
    hawk = ModelConfig(name="hawk", d_model=16, num_heads=2)
    monkeypatch.setattr(seqlib.kernels, "FUSED_SCANS", {})
    mode, why = MIXERS["recurrent"].kernel_mode(hawk, Where(cuda, 64, True))
    assert mode == "parallel" and str(seqlib.kernels.TRITON_UNAVAILABLE) in why
    monkeypatch.setattr(seqlib.kernels, "FUSED_SCANS", {"triton": None})
    assert MIXERS["recurrent"].kernel_mode(hawk, Where(cuda, 64, True))[0] == "triton"
    for kind in ("local_attention", "global_attention"):
        for T in (flex.FLEX_MIN_LEN - 1, flex.FLEX_MIN_LEN):
            auto, forced = (ModelConfig(name="griffin", d_model=32, num_heads=2, attention_backend=b) for b in ("auto", "flex"))
            assert MIXERS[kind].kernel_mode(auto, Where(cuda, T, True)) == MIXERS[kind].kernel_mode(forced, Where(CPU, T, True))
            assert MIXERS[kind].kernel_mode(auto, Where(cuda, T, True, stacked=True))[0] == "reference"
    narrow = ModelConfig(name="griffin", d_model=16, num_heads=2)  # head_dim 8 < FLEX_MIN_HEAD_DIM
    mode, why = MIXERS["local_attention"].kernel_mode(narrow, Where(cuda, flex.FLEX_MIN_LEN, True))
    assert mode == "sdpa_mask" and "head_dim 8 < 16" in why
    assert MIXERS["local_attention"].kernel_mode(narrow, Where(CPU, flex.FLEX_MIN_LEN, False))[0] == "reference"


LENGTHS = range(1, 3 * flex.FLEX_MIN_LEN, 7)


@pytest.mark.parametrize("kind", sorted(MIXERS))
@pytest.mark.parametrize("device", ["cpu", "cuda"])
def test_no_rule_switches_more_than_once_in_T(kind, device):
    """kernel_modes reads a phase's modes at its shortest and longest input: that is every mode a
    length in between gives only if a rule switches at most once, in one direction, as T grows."""
    cfg = ModelConfig(name="griffin", d_model=16, num_heads=2)  # the rules read its backends only
    if device == "cuda" and kind in FLA_LAYERS:
        pytest.importorskip("fla")
    for training in (True, False):
        seen = [MIXERS[kind].kernel_mode(cfg, Where(torch.device(device), T, training))[0] for T in LENGTHS]
        changes = sum(a != b for a, b in zip(seen, seen[1:]))
        assert changes <= 1, (kind, device, training, list(dict.fromkeys(seen)))


def test_input_lengths_are_the_shortest_and_longest_inputs_of_the_splits():
    task = get_task("parity_check", train_max_length=9, max_test_length=14)
    widths = [task.sample(split, 1, 0, length=n).inputs.shape[1] for split in ("train", "test")
              for n in task.lengths(split)]
    assert input_lengths(task, ["train", "test"]) == (min(widths), max(widths))
    flipflop = get_task("flipflop", seq_len=40)  # a split of one length
    assert input_lengths(flipflop, ["train"]) == (40, 40)


def test_a_phase_across_a_switch_states_both_modes():
    task = get_task("parity_check", train_max_length=50, max_test_length=90)
    cfg = ModelConfig(name="deltanet", d_model=16, num_heads=2)
    pytest.importorskip("fla")
    modes = kernel_modes(cfg, task, "cuda", ["test"])["deltanet"]
    lo, hi = input_lengths(task, ["test"])
    assert lo <= 64 < hi and modes["eval"] == "fused_recurrent, chunk"
    assert modes["train"] == "fused_recurrent" and "T <= 64" in modes["why"]


@pytest.mark.parametrize("model,status", [("griffin", "ok"), ("mamba2", "skipped")])
def test_every_run_record_states_its_kernel_modes(tiny_config, tmp_path, model, status):
    """The record (as stored) has, per block kind, the mode of each phase and why; a
    GPU-only model on a CPU is skipped with the reason, its record saying no kernel ran."""
    if torch.cuda.is_available():
        pytest.skip("checks the CPU records")
    cfg = tiny_config(tmp_path, model).for_run(3e-3, 0)
    outcome = run_one(cfg)
    record = read_record(cfg.run.results_dir, cfg.task.name, model, cfg.hash())
    assert record.status == outcome.record.status == status
    modes = record.measure["kernel_mode"]
    assert sorted(modes) == sorted(set(cfg.model.block_types))
    task = get_task(cfg.task.name, **cfg.task.params)
    for kind, entry in modes.items():
        for phase, training, splits in (("train", True, ["train"]), ("eval", False, list(task.splits))):
            T = input_lengths(task, splits)[1]
            assert entry[phase].split(", ")[-1] == MIXERS[kind].kernel_mode(cfg.model, Where(CPU, T, training))[0]
    if status == "skipped":
        assert "needs a CUDA GPU" in record.reason and modes["mamba2"]["train"] == "unavailable"


def test_every_record_of_a_stack_states_the_stacked_modes(tiny_config, tmp_path):
    """A stack's records (every one, not only the first) say what a stacked instance runs, and why:
    the reference attention because of vmap (on a CUDA device a run alone would take SDPA or
    FlexAttention; on this CPU both take the reference path, for different reasons)."""
    from seqlib.stack import execute_stack
    from seqlib.train import new_record, run_model_config

    cfgs = [tiny_config(tmp_path, "griffin").for_run(lr, seed) for lr, seed in ((3e-3, 0), (1e-3, 1), (3e-3, 2))]
    records = [new_record(c) for c in cfgs]
    execute_stack(cfgs, records)
    task = get_task(cfgs[0].task.name, **cfgs[0].task.params)
    stacked = kernel_modes(cfgs[0].model, task, CPU, task.splits, stacked=True)
    assert all(r.measure["kernel_mode"] == stacked for r in records)
    alone = new_record(cfgs[0])
    run_model_config(cfgs[0], task.spec, alone)
    assert "stacked instances" in stacked["local_attention"]["why"]
    assert "stacked" not in alone.measure["kernel_mode"]["local_attention"]["why"]


def test_a_run_whose_backward_is_refused_here_is_skipped_with_the_reason_before_it_builds(
        tiny_config, tmp_path, monkeypatch):
    """Gated DeltaNet on Hopper with Triton < 3.7.1 (fla #640): its runs failed only at the first
    backward, after compiling their kernels, in every grid call; now they are skipped at once."""
    from seqlib.models import modes as modes_module
    from seqlib.models.mixers import BACKWARD_REFUSED
    from seqlib.models.modes import training_refused

    assert training_refused({"recurrent": {"train": "fused", "eval": "fused", "why": "w"}}) is None
    refused = {"gated_deltanet": {"train": f"chunk{BACKWARD_REFUSED}", "eval": "chunk", "why": "fla #640"},
               "mlp": {"train": "torch", "eval": "torch", "why": "-"}}
    assert training_refused(refused) == "gated_deltanet: fla #640"
    monkeypatch.setattr(modes_module, "kernel_modes", lambda *a, **k: refused)
    built = []
    monkeypatch.setattr("seqlib.train.build_model", lambda *a, **k: built.append(a) or pytest.fail("built"))
    cfg = tiny_config(tmp_path, "griffin").for_run(3e-3, 0)
    record = run_one(cfg).record
    assert record.status == "skipped" and not built
    assert record.reason == "model unavailable: cannot train here: gated_deltanet: fla #640"
