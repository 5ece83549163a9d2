"""Registry and the invariants every task shares: determinism, split streams, dtypes, errors."""

import numpy as np
import pytest
import torch

from seqlib.tasks import TASKS, get_task, list_tasks
from seqlib.tasks.chomsky import ChomskyTask

SMALL = {
    "mqar": {"vocab_size": 512, "seq_len": 64, "num_kv_pairs": 4},
    "selective_copying": {"seq_len": 64, "num_tokens": 4, "test_lengths": (96,)},
    "induction_heads": {"seq_len": 32, "test_lengths": (64,)},
    "flipflop": {"seq_len": 64},
    "text": {"seq_len": 32, "long_lengths": (64,)},
}


def small(name):
    params = SMALL.get(name, {})
    if issubclass(TASKS[name], ChomskyTask):
        params = {"train_max_length": 10, "max_test_length": 20}
    return get_task(name, **params)


def test_registry_lists_every_family():
    names = list_tasks()
    assert len(names) == 1 + 15 + 1 + 5 + 2 + 1
    assert {"mqar", "flipflop", "knapsack", "selective_copying", "induction_heads", "bucket_sort"} <= set(names)


def test_unknown_task_names_valid_ones():
    with pytest.raises(ValueError, match="valid names:.*mqar"):
        get_task("mqra")


@pytest.mark.parametrize("name", list_tasks())
def test_batch_contract(name):
    task = small(name)
    spec = task.spec
    for split in task.splits:
        b = task.sample(split, 6, seed=3)
        assert len(b) == 6
        if spec.input_kind == "tokens":
            assert b.inputs.dtype == torch.int64 and b.inputs.ndim == 2
            assert 0 <= int(b.inputs.min()) and int(b.inputs.max()) < spec.vocab_size
        else:
            assert b.inputs.dtype == torch.float32 and b.inputs.shape[2] == spec.feature_dim
        assert b.mask.dtype == torch.bool and b.mask.shape == b.targets.shape
        assert b.targets.dtype == (torch.int64 if spec.loss == "ce" else torch.float32)
        assert b.segment_pos.shape == b.inputs.shape[:2]
        if spec.output_kind == "pooled":
            assert b.targets.shape == (6,)
        else:
            assert b.mask.any(dim=1).all()  # every example is scored somewhere
            assert (b.segment_pos[b.mask] >= 0).all()
        if spec.loss == "ce":
            assert int(b.targets[b.mask].max()) < spec.num_outputs
        for v in b.meta.values():
            assert isinstance(v, np.ndarray) and len(v) == 6


@pytest.mark.parametrize("name", list_tasks())
def test_deterministic_and_seed_sensitive(name):
    task, other = small(name), small(name)
    split = task.splits[-1]
    a, b, c = task.sample(split, 8, 11), other.sample(split, 8, 11), task.sample(split, 8, 12)
    for f in ("inputs", "targets", "mask", "segment_pos"):
        assert torch.equal(getattr(a, f), getattr(b, f))
    assert not (a.inputs.shape == c.inputs.shape and torch.equal(a.inputs, c.inputs))


@pytest.mark.parametrize("name", list_tasks())
def test_splits_use_disjoint_streams(name):
    task = small(name)
    first = task.sample(task.splits[0], 8, 0)
    for split in task.splits[1:]:
        b = task.sample(split, 8, 0)
        assert not (b.inputs.shape == first.inputs.shape and torch.equal(b.inputs, first.inputs)), split


@pytest.mark.parametrize("name", list_tasks())
def test_unknown_split_and_bad_n(name):
    task = small(name)
    with pytest.raises(ValueError, match="unknown split"):
        task.sample("tset", 2, 0)
    with pytest.raises(ValueError, match="n=0"):
        task.sample(task.splits[0], 0, 0)
