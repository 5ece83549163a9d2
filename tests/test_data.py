"""Padding, stacking and prefetching of stacked training batches (seqlib.data)."""

from __future__ import annotations

import multiprocessing as mp
import time

import pytest
import torch

from seqlib.data import Prefetcher, bucket, pad_batch, stack_batches
from seqlib.objective import derive_seed
from seqlib.tasks import get_task
from seqlib.tasks.base import Task

FIELDS = ("inputs", "targets", "mask", "segment_pos")


def direct(task, batch_size, seed, step):
    return task.sample("train", batch_size, seed=derive_seed("train", seed, step))


def test_pad_batch_per_position_tokens():
    batch = get_task("parity_check").sample("train", 8, seed=3)
    t = batch.inputs.shape[1]
    out = pad_batch(batch, t + 5)
    for f in FIELDS:
        x, y = getattr(batch, f), getattr(out, f)
        assert y.dtype == x.dtype and y.shape == (8, t + 5)
        assert torch.equal(y[:, :t], x)
    assert (out.inputs[:, t:] == 0).all() and (out.targets[:, t:] == 0).all()
    assert not out.mask[:, t:].any() and (out.segment_pos[:, t:] == -1).all()
    assert out.meta is batch.meta


def test_pad_batch_pooled_features_keep_targets():
    batch = get_task("subset_sum").sample("train", 8, seed=3)
    b, t, f = batch.inputs.shape
    assert batch.targets.shape == (b,)
    out = pad_batch(batch, t + 3)
    assert out.inputs.dtype == torch.float32 and out.inputs.shape == (b, t + 3, f)
    assert torch.equal(out.inputs[:, :t], batch.inputs) and (out.inputs[:, t:] == 0.0).all()
    assert out.targets is batch.targets and out.mask is batch.mask
    assert out.segment_pos.dtype == torch.int64
    assert torch.equal(out.segment_pos[:, :t], batch.segment_pos) and (out.segment_pos[:, t:] == -1).all()


def test_pad_batch_same_length_and_too_short():
    batch = get_task("parity_check").sample("train", 4, seed=1)
    t = batch.inputs.shape[1]
    assert pad_batch(batch, t) is batch
    with pytest.raises(ValueError, match=rf"length {t}\b.*length {t - 1}\b"):
        pad_batch(batch, t - 1)


def test_stack_batches_shapes_and_rows():
    task = get_task("parity_check")
    batches = [task.sample("train", 4, seed=s) for s in range(5)]
    widths = [b.inputs.shape[1] for b in batches]
    assert len(set(widths)) > 1  # the padding is exercised
    out = stack_batches(batches)
    for f in FIELDS:
        assert getattr(out, f).shape == (5, 4, max(widths))
    for k, b in enumerate(batches):
        padded = pad_batch(b, max(widths))
        assert all(torch.equal(getattr(out, f)[k], getattr(padded, f)) for f in FIELDS)
    assert out.meta == [b.meta for b in batches]
    assert stack_batches(batches, length=60).inputs.shape == (5, 4, 60)


def test_bucket_rounds_up_by_at_most_a_quarter_to_few_values():
    assert [bucket(n) for n in (1, 7, 8, 9, 10, 11, 17, 33, 40, 41, 256, 257)] == [
        1, 7, 8, 10, 10, 12, 20, 40, 40, 48, 256, 320]
    got = [bucket(n) for n in range(1, 2049)]
    assert all(n <= b <= 1.25 * n for n, b in zip(range(1, 2049), got))
    assert got == sorted(got) and all(bucket(b) == b for b in got)
    assert len(set(got[40:])) < 40  # lengths 41..2048: a few dozen shapes
    with pytest.raises(ValueError, match="n >= 1"):
        bucket(0)


def test_stack_batches_pooled_and_batch_size_mismatch():
    task = get_task("subset_sum")
    out = stack_batches([task.sample("train", 4, seed=s) for s in range(3)])
    assert out.inputs.shape[:2] == (3, 4) and out.inputs.ndim == 4
    assert out.targets.shape == (3, 4) and out.mask.shape == (3, 4)
    assert out.segment_pos.shape == out.inputs.shape[:3]
    with pytest.raises(ValueError, match=r"batch sizes \[4, 5\]"):
        stack_batches([task.sample("train", 4, seed=0), task.sample("train", 5, seed=0)])


@pytest.mark.parametrize("workers, length, buckets", [(0, None, False), (0, 48, False), (2, None, False),
                                                      (0, None, True), (2, None, True)])
def test_prefetcher_equals_direct_samples(workers, length, buckets):
    task, bs = get_task("parity_check"), 8
    plan = {0: [5, 7, 11, 7], 1: [5, 7, 11, 7], 2: [11, 7, 5, 11], 3: [11, 5], 5: [5, 11, 11]}  # 7 dropped at 3
    with Prefetcher(task, bs, [5, 7, 11], 0, 7, length, workers=workers, ahead=3, buckets=buckets) as pf:
        for step, seeds in plan.items():  # step 4 is skipped
            out = pf.get(step, seeds)
            batches = [direct(task, bs, s, step) for s in seeds]
            width = max(b.inputs.shape[1] for b in batches) if length is None else length
            width = bucket(width) if buckets else width
            for f in FIELDS:
                assert getattr(out, f).shape == (len(seeds), bs, width)
            for k, b in enumerate(batches):
                t = b.inputs.shape[1]
                for f in FIELDS:
                    x = getattr(out, f)[k]
                    assert x.dtype == getattr(b, f).dtype and torch.equal(x[:, :t], getattr(b, f))
                assert (out.inputs[k, :, t:] == 0).all() and (out.segment_pos[k, :, t:] == -1).all()
                assert not out.mask[k, :, t:].any()
                assert out.meta[k].keys() == b.meta.keys()
                assert all((out.meta[k][key] == b.meta[key]).all() for key in b.meta)
        with pytest.raises(ValueError, match=r"seeds \[7\] are not generated"):
            pf.get(6, [7])  # dropped at step 3
        assert pf.data_time_s > 0


def test_prefetcher_rejects_bad_steps_and_seeds():
    with Prefetcher(get_task("parity_check"), 4, [1, 2], 10, 5, None, workers=0) as pf:
        with pytest.raises(ValueError, match="outside the prefetched steps 10..14"):
            pf.get(9, [1])
        with pytest.raises(ValueError, match="outside"):
            pf.get(15, [1])
        with pytest.raises(ValueError, match=r"seeds \[3\]"):
            pf.get(10, [1, 3])
        pf.get(12, [1, 2])
        for step in (12, 11):
            with pytest.raises(ValueError, match="steps must increase"):
                pf.get(step, [1, 2])


class Faulty(Task):
    """parity_check whose train batch of seed 0 raises at step 1 and hangs from step 2 on."""

    name, splits = "faulty", ("train",)

    def __init__(self):
        self.inner = get_task("parity_check")
        self.fails = derive_seed("train", 0, 1)
        self.hangs = {derive_seed("train", 0, s) for s in range(2, 10)}

    def sample(self, split, n, seed):
        if seed == self.fails:
            raise RuntimeError("no batch here: seed 0 step 1")
        if seed in self.hangs:
            time.sleep(60)
        return self.inner.sample(split, n, seed)


def test_worker_exception_surfaces_and_close_is_prompt():
    with pytest.raises(RuntimeError, match="no batch here: seed 0 step 1"):
        with Prefetcher(Faulty(), 4, [0], 0, 10, None, workers=2, ahead=3) as pf:
            assert torch.equal(pf.get(0, [0]).inputs[0], direct(get_task("parity_check"), 4, 0, 0).inputs)
            assert len(mp.active_children()) == 2
            t0 = time.perf_counter()
            pf.get(1, [0])
    assert time.perf_counter() - t0 < 5  # the worker asleep on step 2 is terminated, not awaited
    assert mp.active_children() == []
