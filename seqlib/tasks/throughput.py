"""Generation throughput per task: ``python -m seqlib.tasks.throughput``.

Times ``sample`` for a batch of 256 examples of (about) 512 tokens per task: MQAR at L = 512, D = 64;
Chomsky tasks at the input length whose row (input + empty output tokens) is closest to 512;
flip-flop at T = 512; copying tasks at T = 512; DP tasks (token encoding) with the number of items
whose token row is closest to 512. Reports the median of a few repeats.
"""

from __future__ import annotations

import argparse
import time

import numpy as np

from . import get_task, list_tasks
from .chomsky import ChomskyTask
from .dp import DPTask


def build(name: str, target: int):
    """``(task, split, sample kwargs)`` producing rows of about ``target`` tokens."""
    if name == "mqar":
        return get_task(name, seq_len=target, num_kv_pairs=target // 8), "train", {}
    if name in ("selective_copying", "induction_heads"):
        return get_task(name, seq_len=target, test_lengths=(2 * target,)), "train", {}
    if name == "flipflop":
        return get_task(name, seq_len=target), "train", {}
    task = get_task(name, **({"encoding": "tokens"} if issubclass(type(get_task(name)), DPTask) else {}))
    if isinstance(task, ChomskyTask):
        task = get_task(name, max_test_length=target)
        length = min(task.lengths("test"), key=lambda ell: abs(task.input_length(ell) + task.output_length(ell) - target))
        return task, "test", {"length": length}
    items = min(range(3, target), key=lambda m: abs(get_task(name, encoding="tokens", num_items=m, ood_num_items=m + 1)
                                                    .sample("train", 1, 0).inputs.shape[1] - target))
    return get_task(name, encoding="tokens", num_items=items, ood_num_items=items + 1), "train", {}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--batch", type=int, default=256)
    parser.add_argument("--tokens", type=int, default=512)
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args()
    print(f"{'task':30s} {'shape':>16s} {'ms/batch':>9s} {'examples/s':>11s}")
    for name in list_tasks():
        task, split, kwargs = build(name, args.tokens)
        times = []
        for r in range(args.repeats + 1):
            t0 = time.perf_counter()
            batch = task.sample(split, args.batch, seed=r, **kwargs)
            times.append(time.perf_counter() - t0)
        ms = 1000 * float(np.median(times[1:]))
        shape = "x".join(str(s) for s in batch.inputs.shape)
        print(f"{name:30s} {shape:>16s} {ms:9.2f} {args.batch / ms * 1000:11.0f}")


if __name__ == "__main__":
    main()
