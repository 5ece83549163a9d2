"""The stacked trainer (seqlib.stack) is the same experiment as separate runs: K = 3 instances with
different seeds and learning rates equal 3 runs of seqlib.train (fp32, CPU) at every step's loss, in
their evaluations, metrics and records; a NaN in one instance's batch fails that instance alone."""

from __future__ import annotations

import re

import pytest
import torch
from test_engine_train import DP, _inject_nan

from seqlib.models.zoo import FLA_LAYERS, graphs_refused
from seqlib.record import RunRecord
from seqlib.results import read_record
from seqlib.stack import (
    GraphedStep,
    Stack,
    default_instances,
    execute_stack,
    instance_map,
    run_stack,
    scored_positions,
    stack_key,
    stack_problem,
)
from seqlib.tasks import get_task
from seqlib.train import execute, new_record, run_one

STEPS = 20
MQAR = {"vocab_size": 80, "seq_len": 16, "num_kv_pairs": 2}
CHOMSKY = {"train_max_length": 9, "max_test_length": 12}  # a length per batch: the stack pads
RUNS = [(0, 3e-3), (1, 1e-3), (1, 3e-3)]  # (seed, lr): two seeds, and one seed at two rates


def configs(tiny_config, tmp_path, model, task, params, run_kw=None, **optim):
    base = tiny_config(tmp_path, model, task, params, steps=STEPS, warmup_steps=3, min_lr=1e-4,
                       run_kw={"eval_every": 7, "log_every": 1, **(run_kw or {})}, **optim)
    return [base.for_run(lr, seed) for seed, lr in RUNS]


def alone(cfg, task=None) -> RunRecord:
    record = new_record(cfg)
    execute(cfg, record, task)
    return record


def stacked(cfgs, task=None) -> list[RunRecord]:
    return [o.record for o in run_stack(cfgs, force=True, task=task)]


def assert_same_run(a: RunRecord, b: RunRecord, rel: float = 1e-5) -> None:
    """Two records of one configuration: same hash, curves within ``rel``, same evaluation results."""
    assert (a.config_hash, a.status, a.lr, a.seed) == (b.config_hash, b.status, b.lr, b.seed)
    assert a.train["steps_done"] == b.train["steps_done"] and a.train["stopped_early"] == b.train["stopped_early"]
    la, lb = a.train["loss_curve"], b.train["loss_curve"]
    assert [s for s, _ in la] == [s for s, _ in lb]
    for (step, x), (_, y) in zip(la, lb):
        assert abs(x - y) <= rel * abs(x), (step, x, y)
    assert [s for s, _ in a.train["eval_curve"]] == [s for s, _ in b.train["eval_curve"]]
    assert a.reason == b.reason
    for (_, x), (_, y) in zip(a.train["eval_curve"], b.train["eval_curve"]):
        assert x == pytest.approx(y, rel=rel, abs=1e-6)
    key = [(m["split"], m["metric"], m["slice_key"], m["slice_value"]) for m in a.metrics]
    assert key == [(m["split"], m["metric"], m["slice_key"], m["slice_value"]) for m in b.metrics]
    for m, n in zip(a.metrics, b.metrics):
        assert m["value"] == pytest.approx(n["value"], rel=1e-4, abs=1e-6), (m, n)
    for k in ("num_params", "state_size") if a.status == "ok" else ():  # a failed run is not measured
        assert a.measure[k] == b.measure[k]


@pytest.mark.parametrize("model", ["hawk", "griffin", "local_transformer", "transformer", "lstm", "gru"])
def test_three_stacked_instances_equal_three_runs_on_variable_lengths(tmp_path, tiny_config, model):
    """Parity with one length per batch: the instances' batches differ in length at most steps."""
    cfgs = configs(tiny_config, tmp_path, model, "parity_check", CHOMSKY)
    runs = [alone(c) for c in cfgs]
    assert len({len(r.train["loss_curve"]) for r in runs}) == 1
    for a, b in zip(runs, stacked(cfgs)):
        assert_same_run(a, b)
        assert b.measure["stack_size"] == 3


@pytest.mark.parametrize("model", ["griffin", "lstm"])
def test_stacked_mqar_scores_only_the_scored_positions(tmp_path, tiny_config, model):
    cfgs = configs(tiny_config, tmp_path, model, "mqar", MQAR)
    for a, b in zip([alone(c) for c in cfgs], stacked(cfgs)):
        assert_same_run(a, b)


def test_stacked_pooled_feature_task_and_the_records_in_the_store(tmp_path, tiny_config):
    cfgs = configs(tiny_config, tmp_path, "hawk", "knapsack", DP)
    for a, b in zip([alone(c) for c in cfgs], stacked(cfgs)):
        assert_same_run(a, b)
        assert read_record(tmp_path, b.task, b.model, b.config_hash).to_json() == b.to_json()


def test_instances_with_their_own_steps_and_early_stopping(tmp_path, tiny_config):
    """An instance with fewer steps leaves the stack at its last step, as its run alone ends there."""
    cfgs = configs(tiny_config, tmp_path, "hawk", "parity_check", CHOMSKY)
    cfgs[1] = cfgs[1].model_copy(update={"optim": cfgs[1].optim.model_copy(update={"steps": 9})})
    cfgs[2] = cfgs[2].model_copy(update={"optim": cfgs[2].optim.model_copy(update={"early_stop_accuracy": 0.05})})
    runs = [alone(c) for c in cfgs]
    assert runs[1].train["steps_done"] == 9 and runs[2].train["stopped_early"]
    for a, b in zip(runs, stacked(cfgs)):
        assert_same_run(a, b)


NAN_STACKED = (r"NonFiniteError: non-finite loss \(nan\) at step 3 of hawk on knapsack \(lr=0\.001, seed=1\); "
               r"non-finite grads in: adamw:decay(, adamw:no_decay)?; non-finite params in: none")


def test_a_nan_in_one_instance_fails_it_alone(tmp_path, tiny_config, tampered):
    cfgs = configs(tiny_config, tmp_path, "hawk", "knapsack", DP)
    task = tampered(cfgs[1], _inject_nan, run_seed=1, steps=(3,))  # seed 1: runs 1 and 2 see it
    cfgs = cfgs[:2] + [cfgs[2].for_run(3e-3, 2)]  # run 2 on seed 2 instead: clean
    clean = [alone(cfgs[0]), alone(cfgs[2])]
    got = stacked(cfgs, task)
    assert got[1].status == "failed" and re.fullmatch(NAN_STACKED, got[1].reason), got[1].reason
    assert got[1].train["steps_done"] == 3 and [s for s, _ in got[1].train["loss_curve"]] == [0, 1, 2]
    alone_failed = run_one(cfgs[1], force=True, task=task).record
    assert alone_failed.status == "failed" and alone_failed.train["steps_done"] == 3
    assert [v for _, v in got[1].train["loss_curve"]] == pytest.approx(
        [v for _, v in alone_failed.train["loss_curve"]], rel=1e-5)
    assert_same_run(clean[0], got[0])
    assert_same_run(clean[1], got[2])


def test_stacks_only_what_keeps_the_shapes(tmp_path, tiny_config):
    a = tiny_config(tmp_path, "hawk", "parity_check", CHOMSKY)
    assert stack_key(a.for_run(1e-3, 0)) == stack_key(a.for_run(3e-3, 5))
    wider = tiny_config(tmp_path, "hawk", "parity_check", CHOMSKY, model_kw={"d_model": 32})
    assert stack_key(wider) != stack_key(a)
    assert "differ" in stack_problem([a.for_run(1e-3, 0), wider.for_run(1e-3, 0)])
    muon = tiny_config(tmp_path, "hawk", "parity_check", CHOMSKY, optimizer="muon")
    assert "Muon" in stack_problem([muon.for_run(1e-3, 0)])
    assert stack_problem([a.for_run(1e-3, 0), a.for_run(1e-3, 1)]) is None
    zoo = tiny_config(tmp_path, "gla", "parity_check", CHOMSKY)
    assert stack_problem([zoo.for_run(1e-3, 0), zoo.for_run(1e-3, 1)]) is None  # it stacks, looped
    assert default_instances(zoo) == "loop" and default_instances(a) == "vmap"


@pytest.mark.parametrize("model,task,params", [("hawk", "parity_check", CHOMSKY), ("transformer", "mqar", MQAR),
                                               ("lstm", "parity_check", CHOMSKY), ("gru", "knapsack", DP)])
def test_looped_instances_equal_separate_runs_and_the_vmapped_stack(tmp_path, tiny_config, model, task, params):
    """``instances="loop"`` (how the fla zoo stacks): each instance is its run alone, step by step and
    in every evaluation, and the vmapped stack of the same runs agrees with it; the records say which."""
    cfgs = configs(tiny_config, tmp_path, model, task, params)
    looped = [new_record(c) for c in cfgs]
    execute_stack(cfgs, looped, instances="loop")
    vmapped = [new_record(c) for c in cfgs]
    execute_stack(cfgs, vmapped, instances="vmap")
    for a, b, c in zip([alone(c) for c in cfgs], looped, vmapped):
        assert_same_run(a, b)
        assert_same_run(b, c)
        assert (b.measure["stack_instances"], c.measure["stack_instances"]) == ("loop", "vmap")
    with pytest.raises(ValueError, match="instances must be one of"):
        execute_stack(cfgs, [new_record(c) for c in cfgs], instances="threads")


def test_instance_map_loops_as_vmap_maps():
    """The looped map slices dim 0 of every mapped tensor (also inside dicts) and passes the rest whole."""
    def fn(params, x, index):
        return (params["w"] @ x).sum() + (0 if index is None else index.sum())

    params, x = {"w": torch.randn(4, 3, 5)}, torch.randn(4, 5, 2)
    for index, dims in ((None, (0, 0, None)), (torch.arange(8).view(4, 2), (0, 0, 0))):
        want = instance_map(fn, dims, "vmap")(params, x, index)
        assert torch.allclose(instance_map(fn, dims, "loop")(params, x, index), want)
    shared = instance_map(fn, (0, None, None), "loop")(params, x[0], None)
    assert torch.allclose(shared, torch.stack([(w @ x[0]).sum() for w in params["w"]]))


def test_scored_positions_match_the_boolean_selection():
    task = get_task("mqar", **MQAR)
    from seqlib.data import stack_batches

    batches = [task.sample("train", 4, seed=s) for s in range(3)]
    index, targets, valid = scored_positions(stack_batches(batches))
    for k, b in enumerate(batches):
        n = int(b.mask.sum())
        assert valid[k].sum() == n
        assert torch.equal(index[k, :n], b.mask.flatten().nonzero().squeeze(1))
        assert torch.equal(targets[k, :n], b.targets[b.mask])


def test_an_instance_frozen_at_a_nan_keeps_its_parameters(tmp_path, tiny_config):
    """The update of a failing instance is skipped: its row and moments stay as they were."""
    from seqlib.models import build_model
    from seqlib.stack import Layout

    cfgs = configs(tiny_config, tmp_path, "hawk", "parity_check", CHOMSKY)
    spec = get_task("parity_check", **CHOMSKY).spec
    models = [build_model(cfgs[0].model, spec) for _ in cfgs]
    stack = Stack(cfgs, models, Layout.of(models[0]), torch.device("cpu"))
    before = stack.flat.detach().clone()
    stack.flat.grad = torch.ones_like(stack.flat)
    stack.flat.grad[1, 0] = float("nan")
    stack.update(torch.tensor([1.0, 1.0, 1.0]), torch.tensor(0))
    assert torch.equal(stack.flat[1].detach(), before[1]) and not torch.equal(stack.flat[0].detach(), before[0])
    assert stack.first_bad.tolist() == [-1, 0, -1] and stack.frozen.tolist() == [False, True, False]


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")
@pytest.mark.parametrize("model", ["hawk", "griffin", "local_transformer", "transformer", "lstm", "gru"])
def test_stacked_equals_separate_runs_on_the_gpu(tmp_path, tiny_config, model, monkeypatch):
    """CUDA kernels under vmap (the fused scan's vmap rule; stacked attention takes the reference path,
    the LSTM/GRU their step loop, where the runs alone take FlexAttention/SDPA and cuDNN): fp32 within
    1e-4 of the runs alone, TF32 off (cuDNN's default is on)."""
    base = tiny_config(tmp_path, model, "parity_check", CHOMSKY, steps=STEPS, warmup_steps=3, min_lr=1e-4,
                       model_kw={"d_model": 64}, run_kw={"eval_every": 7, "log_every": 1, "device": "cuda",
                                                         "dtype": "float32"})
    cfgs = [base.for_run(lr, seed) for seed, lr in RUNS]
    monkeypatch.setattr(torch.backends.cudnn, "allow_tf32", False)  # cuDNN's RNNs default to TF32
    monkeypatch.setattr(torch.backends.cuda.matmul, "allow_tf32", False)
    for a, b in zip([alone(c) for c in cfgs], stacked(cfgs)):
        assert_same_run(a, b, rel=1e-4)


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")
@pytest.mark.parametrize("model", ["hawk", "griffin", "transformer", "lstm"])
def test_stacked_bf16_on_the_gpu_starts_where_the_runs_alone_start(tmp_path, tiny_config, model):
    base = tiny_config(tmp_path, model, "mqar", MQAR, steps=6, model_kw={"d_model": 64},
                       run_kw={"log_every": 1, "device": "cuda"})
    cfgs = [base.for_run(lr, seed) for seed, lr in RUNS]
    for a, b in zip([alone(c) for c in cfgs], stacked(cfgs)):
        assert b.status == "ok", b.reason
        assert b.train["loss_curve"][0][1] == pytest.approx(a.train["loss_curve"][0][1], rel=2e-2)


def test_scored_positions_pad_to_a_bucket():
    """Padded scored positions are invalid and point at position 0: they add nothing to the loss."""
    from seqlib.data import stack_batches

    batches = [get_task("mqar", **MQAR).sample("train", 3, seed=s) for s in range(2)]
    index, targets, valid = scored_positions(stack_batches(batches))
    n = max(int(b.mask.sum()) for b in batches)
    assert index.shape[1] >= n and not valid[:, n:].any() and not index[~valid].any() and not targets[~valid].any()


GPU_FP32 = {"device": "cuda", "dtype": "float32"}


def eager_and_graphed(cfgs, task=None) -> tuple[list[RunRecord], list[RunRecord]]:
    """The same stack trained twice on the GPU: eagerly, and replayed from CUDA graphs."""
    out = []
    for graphs in (False, True):
        records = [new_record(c) for c in cfgs]
        execute_stack(cfgs, records, task, cuda_graphs=graphs)
        assert all(r.measure["cuda_graphs"] is graphs for r in records)
        out.append(records)
    return out[0], out[1]


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")
@pytest.mark.parametrize("model", ["hawk", "griffin", "local_transformer", "transformer", "lstm", "gru"])
@pytest.mark.parametrize("task,params", [("parity_check", CHOMSKY), ("mqar", MQAR)])
def test_cuda_graphs_replay_the_eager_stack(tmp_path, tiny_config, model, task, params, monkeypatch):
    """Parity meets several padded lengths (a graph each, captured after two eager warm-up steps),
    MQAR one; the replayed steps give the eager stack's curves, evaluations and records."""
    monkeypatch.setattr(torch.backends.cudnn, "allow_tf32", False)
    monkeypatch.setattr(torch.backends.cuda.matmul, "allow_tf32", False)
    cfgs = configs(tiny_config, tmp_path, model, task, params, run_kw=GPU_FP32, model_kw={"d_model": 64})
    for a, b in zip(*eager_and_graphed(cfgs)):
        assert_same_run(a, b)


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")
@pytest.mark.parametrize("case", ["own_steps", "nan"])
def test_cuda_graphs_through_instances_leaving_and_failing(tmp_path, tiny_config, tampered, case, monkeypatch):
    """Instances leave the stack (their last step, early stopping) or fail (a NaN at step 3): the
    graphs are captured anew for the smaller stack, and every record is the eager stack's."""
    monkeypatch.setattr(torch.backends.cuda.matmul, "allow_tf32", False)
    task = None
    if case == "own_steps":
        cfgs = configs(tiny_config, tmp_path, "hawk", "parity_check", CHOMSKY, run_kw=GPU_FP32)
        cfgs[1] = cfgs[1].model_copy(update={"optim": cfgs[1].optim.model_copy(update={"steps": 9})})
        cfgs[2] = cfgs[2].model_copy(update={"optim": cfgs[2].optim.model_copy(update={"early_stop_accuracy": 0.05})})
    else:
        cfgs = configs(tiny_config, tmp_path, "hawk", "knapsack", DP, run_kw=GPU_FP32)
        task = tampered(cfgs[1], _inject_nan, run_seed=1, steps=(3,))
        cfgs = cfgs[:2] + [cfgs[2].for_run(3e-3, 2)]
    eager, graphed = eager_and_graphed(cfgs, task)
    for a, b in zip(eager, graphed):
        assert_same_run(a, b)
    if case == "nan":
        assert graphed[1].status == "failed" and re.fullmatch(NAN_STACKED, graphed[1].reason), graphed[1].reason
    else:
        assert graphed[1].train["steps_done"] == 9 and graphed[2].train["stopped_early"]


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")
def test_graphed_step_runs_every_call_once():
    """Warm-up calls run eagerly, the capturing call still runs its step, replays see new inputs."""
    total = torch.zeros((), device="cuda")

    def fn(x):
        total.add_(x["v"].sum())
        return {"double": x["v"] * 2}

    step = GraphedStep(fn, enabled=True, warmup=2)
    shapes, expected = [3, 3, 3, 3, 5, 3, 5, 5, 5, 5], 0.0
    for n in shapes:
        v = torch.randn(n, device="cuda")
        out = step({"v": v})
        expected += float(v.sum())
        assert torch.allclose(out["double"], v * 2)
    assert float(total) == pytest.approx(expected, rel=1e-5, abs=1e-5)
    assert step.captures == 2 and len(step.graphs) == 2
    step.reset()
    assert not step.graphs and step.captures == 0


def test_a_stack_out_of_gpu_memory_trains_in_halves(tmp_path, tiny_config, monkeypatch, capsys):
    """A stack of more than 2 runs raises the CUDA out-of-memory error (after run 0 of the first stack
    ended): it is split in halves until the stacks fit; run 0 keeps its record, every run ends ok as it
    would alone, in a stack of at most 2."""
    import seqlib.stack as stack_module

    real, sizes = stack_module.execute_stack, []

    def small_gpu(cfgs, records, task=None, on_done=None, **kw):
        sizes.append(len(cfgs))
        if len(cfgs) > 2:
            if len(sizes) == 1:  # the first stack: its first run ends, then the memory runs out
                real(cfgs[:1], records[:1], task, on_done=on_done, **kw)
            raise torch.cuda.OutOfMemoryError("CUDA out of memory (simulated)")
        real(cfgs, records, task, on_done=on_done, **kw)

    monkeypatch.setattr(stack_module, "execute_stack", small_gpu)
    base = configs(tiny_config, tmp_path, "hawk", "parity_check", CHOMSKY)[0]
    cfgs = [base.for_run(lr, seed) for seed in range(3) for lr in (1e-3, 3e-3)]  # 6 runs
    seen = []
    got = run_stack(cfgs, force=True, on_result=lambda o, i, n: seen.append((i, n)))
    assert sizes == [6, 2, 3, 1, 2]  # 6: run 0 ends, 5 left -> halves of 2 and 3; 3 -> 1 and 2
    assert sorted(seen) == [(i, 6) for i in range(6)]
    assert all(o.record.status == "ok" for o in got)
    assert [o.record.config_hash for o in got] == [c.hash() for c in cfgs]
    assert_same_run(alone(cfgs[4]), got[4].record)
    assert "ran out of GPU memory; training it as stacks of 2 and 3" in capsys.readouterr().err


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")
@pytest.mark.parametrize("model", sorted(n for n in FLA_LAYERS if not FLA_LAYERS[n].limit))
def test_the_zoo_stacks_looped_under_cuda_graphs(tmp_path, tiny_config, model, monkeypatch):
    """An fla model's instances run one after the other in one CUDA graph per padded length: the
    capture succeeds (no fla kernel syncs with the host), the replayed stack gives the eager stack's
    curves, evaluations and records, and each instance starts where its run alone starts (fp32;
    fla's Triton dots may round through TF32, hence 1e-3). The book's width and heads (params/models.yaml):
    at 2 heads of 64, fla's PaTH backward needs 240 KB of shared memory in fp32 (the H200 has 227 KB).
    A model whose layer refuses the graphs (FlaLayer.graphs) trains eagerly by default and says why."""
    monkeypatch.setattr(torch.backends.cuda.matmul, "allow_tf32", False)
    cfgs = configs(tiny_config, tmp_path, model, "parity_check", CHOMSKY, run_kw=GPU_FP32,
                   model_kw={"d_model": 128, "num_heads": 4})
    refused = FLA_LAYERS[model].graphs
    if refused:
        with pytest.raises(ValueError, match="cuda_graphs=True"):
            execute_stack(cfgs, [new_record(c) for c in cfgs], cuda_graphs=True)
        got = [new_record(c) for c in cfgs]
        execute_stack(cfgs, got)
        for b, c in zip(got, [alone(c) for c in cfgs]):
            assert b.measure["cuda_graphs"] is False and b.measure["cuda_graphs_failure"] == refused
            assert b.status == "ok" and b.train["loss_curve"][0][1] == pytest.approx(c.train["loss_curve"][0][1], rel=1e-3)
        return
    runs = {}
    for graphs in (False, True):
        runs[graphs] = [new_record(c) for c in cfgs]
        execute_stack(cfgs, runs[graphs], cuda_graphs=graphs)
    for a, b, c in zip(runs[False], runs[True], [alone(c) for c in cfgs]):
        assert b.measure.get("cuda_graphs_failure") is None, b.measure["cuda_graphs_failure"]
        assert b.measure["cuda_graphs"] and b.measure["stack_instances"] == "loop"
        assert_same_run(a, b, rel=1e-3)
        assert b.train["loss_curve"][0][1] == pytest.approx(c.train["loss_curve"][0][1], rel=1e-3)


def test_a_layer_that_refuses_cuda_graphs_names_why_and_others_do_not():
    """graphs_refused reads FlaLayer.graphs: DeltaFormer's reason; none for native or other fla models."""
    assert graphs_refused(["deltaformer"]) == FLA_LAYERS["deltaformer"].graphs
    assert "illegal memory access" in graphs_refused(["recurrent", "deltaformer"])
    assert graphs_refused(["recurrent", "local_attention"]) is None and graphs_refused(["deltanet"]) is None


def test_mixers_skip_their_document_check_only_where_the_caller_made_it():
    """restarts_mid_row looks at segment_pos (a host sync) except inside one_document_per_row, which the
    stack enters only for batches it has checked on the host; a failed capture names its first error."""
    from seqlib.layers.segments import one_document_per_row, restarts_mid_row
    from seqlib.stack import capture_failure

    packed = torch.tensor([[0, 1, 0, 1], [0, 1, 2, 3]])
    assert restarts_mid_row(packed) and not restarts_mid_row(torch.tensor([[0, 1, 2, -1]]))
    assert restarts_mid_row(packed[None])  # a stack's [K, B, T]
    with one_document_per_row():
        assert not restarts_mid_row(packed)
    assert restarts_mid_row(packed)
    try:
        try:
            raise RuntimeError("operation not permitted when stream is capturing\nmore")
        except RuntimeError:
            raise RuntimeError("operation failed due to a previous error during capture") from None
    except RuntimeError as e:
        assert capture_failure(e).startswith("RuntimeError: operation failed")  # from None: no context
    try:
        try:
            raise RuntimeError("operation not permitted when stream is capturing\nmore")
        except RuntimeError:
            raise RuntimeError("operation failed due to a previous error during capture")  # noqa: B904
    except RuntimeError as e:
        message = capture_failure(e)
    assert message.startswith("RuntimeError: operation not permitted when stream is capturing at ")
    assert "test_stack.py" in message and "more" not in message


def test_a_compiled_stack_trains_as_the_eager_stack(tmp_path, tiny_config):
    """``compiled=True``: the vmapped forward through torch.compile (inductor on the CPU) gives the runs
    the eager stack gives, within fp32 reordering; a looped stack (an fla mixer) is refused."""
    cfgs = [c.model_copy(update={"model": c.model.model_copy(update={"n_layers": 1})})  # a short compile
            for c in configs(tiny_config, tmp_path, "hawk", "mqar", MQAR)]
    eager = stacked(cfgs)
    compiled = [new_record(c) for c in cfgs]
    execute_stack(cfgs, compiled, compiled=True)
    for a, b in zip(eager, compiled):
        assert_same_run(a, b, rel=1e-4)
        assert b.measure["stack_compiled"] and not a.measure["stack_compiled"]
    with pytest.raises(ValueError, match="compiled=True compiles vmapped instances; these run as a loop"):
        execute_stack(cfgs, [new_record(c) for c in cfgs], compiled=True, instances="loop")


# seen on the lent H200 (torch 2.11, 2026-12-02): hawk and griffin fail, the transformer passes (the failures'
# text was lost with a time-boxed run; the sweep's compiled hawk stack raised functorch's
# `!dynamicLayerStack.empty()` INTERNAL ASSERT there); the CPU test passes on torch 2.13
_COMPILE_ASSERT = pytest.mark.xfail(tuple(int(p) for p in torch.__version__.split(".")[:2]) < (2, 13),
                                    reason="torch < 2.13: functorch's dynamicLayerStack assert on the "
                                           "compiled vmapped RG-LRU stack (stack compilation is off by default)")


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")
@pytest.mark.parametrize("model", [pytest.param("hawk", marks=_COMPILE_ASSERT),
                                   pytest.param("griffin", marks=_COMPILE_ASSERT), "transformer"])
def test_a_compiled_stack_replays_under_cuda_graphs_as_the_eager_stack(tmp_path, tiny_config, model, monkeypatch):
    """torch.compile's kernels inside the captured step: fp32, TF32 off, within 1e-4 of the stack
    without compilation, its step replayed from graphs (no capture failure)."""
    base = tiny_config(tmp_path, model, "mqar", MQAR, steps=STEPS, warmup_steps=3, min_lr=1e-4,
                       model_kw={"d_model": 64}, run_kw={"eval_every": 7, "log_every": 1, "device": "cuda",
                                                         "dtype": "float32"})
    cfgs = [base.for_run(lr, seed) for seed, lr in RUNS]
    monkeypatch.setattr(torch.backends.cuda.matmul, "allow_tf32", False)
    eager = stacked(cfgs)
    compiled = [new_record(c) for c in cfgs]
    execute_stack(cfgs, compiled, compiled=True)
    for a, b in zip(eager, compiled):
        assert b.measure["cuda_graphs"] and "cuda_graphs_failure" not in b.measure, b.measure.get("cuda_graphs_failure")
        assert_same_run(a, b, rel=1e-4)


def test_the_grid_compiles_only_vmapped_stacks_when_asked(tmp_path, tiny_config, monkeypatch):
    from seqlib import stack as stack_module
    from seqlib.book import grid
    from seqlib.models import ModelUnavailable

    seen = []

    def execute(cfgs, records, task=None, on_done=None, compiled=False):
        seen.append((cfgs[0].model.name, compiled))
        raise ModelUnavailable("the test trains nothing")  # every run of the stack: skipped, recorded

    monkeypatch.setattr(stack_module, "execute_stack", execute)
    for model, wanted in (("hawk", True), ("mamba2", True), ("hawk", False)):
        cfgs = configs(tiny_config, tmp_path / f"{model}{wanted}", model, "parity_check", CHOMSKY)
        grid.train_stack([c.model_dump(mode="json") for c in cfgs], [f"run{i}" for i in range(len(cfgs))], wanted)
    # a looped stack (the fla zoo's mamba2) is never compiled; the others only when asked
    assert seen == [("hawk", True), ("mamba2", False), ("hawk", False)]


@pytest.mark.parametrize("share", [1, 8])
@pytest.mark.parametrize("path", ["stack", "run"])
def test_a_single_run_out_of_memory_fails_and_names_its_share_of_the_gpu(tmp_path, tiny_config, monkeypatch, share, path):
    """One run out of GPU memory cannot be halved: it fails, and where it had a share of the GPU
    (``SEQLIB_GPU_SHARE``) the reason says so and what gives it more; as a stack of one or run alone
    (seqlib.train.run_one: the grid's jobs of one run)."""
    import seqlib.stack as stack_module
    import seqlib.train as train_module
    from seqlib.measure import SHARE_ENV

    def no_memory(*args, **kw):
        raise torch.cuda.OutOfMemoryError("CUDA out of memory (simulated)")

    monkeypatch.setattr(stack_module, "execute_stack", no_memory)
    monkeypatch.setattr(train_module, "execute", no_memory)
    monkeypatch.setenv(SHARE_ENV, str(share))
    cfg = configs(tiny_config, tmp_path, "hawk", "parity_check", CHOMSKY)[0].for_run(1e-3, 0)
    (got,) = run_stack([cfg], force=True) if path == "stack" else [train_module.run_one(cfg, force=True)]
    assert got.record.status == "failed" and got.record.reason.startswith("OutOfMemoryError: CUDA out of memory")
    assert (f"1/{share} share of the GPU's memory ({SHARE_ENV}={share})" in got.record.reason) == (share > 1)
    # the share is recorded whatever stage failed (here before any step), so a grid with no more
    # memory per worker holds the run back and one with more trains it (seqlib.book.grid.out_of_share)
    from seqlib.book.grid import out_of_share
    from seqlib.train import stored_record

    stored = stored_record(cfg)
    assert stored.measure["device_processes"] == share and stored.traceback
    assert out_of_share(stored, share) and (share == 1 or not out_of_share(stored, share // 2))
