"""Small Griffin, Hawk and Transformer models learn tiny task instances on CPU within a step budget.

Each run stops early once its selection split reaches the threshold; the test asserts the final
accuracy on that split (fresh evaluation examples), so a broken loss, mask, optimiser or schedule fails.
"""

from __future__ import annotations

import pytest
import torch

from seqlib.train import execute, new_record

MQAR = {"vocab_size": 32, "seq_len": 16, "num_kv_pairs": 2, "random_non_queries": False}
SHORT = {"train_max_length": 8, "max_test_length": 10}



@pytest.fixture(autouse=True)
def one_thread():
    """Tiny models gain nothing from intra-op threads, and a busy 2-core machine makes them spin."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


CASES = [
    # model, task, params, split, model size, max steps, accuracy asserted
    ("hawk", "mqar", MQAR, "test", {"d_model": 64, "n_layers": 2}, 1200, 0.9),
    ("hawk", "parity_check", SHORT, "val", {"d_model": 32, "n_layers": 2}, 800, 0.9),
    ("griffin", "even_pairs", SHORT, "val", {"d_model": 32, "n_layers": 3}, 400, 0.95),
    ("griffin", "parity_check", SHORT, "val", {"d_model": 32, "n_layers": 3}, 800, 0.8),
    ("transformer", "even_pairs", SHORT, "val", {"d_model": 32, "n_layers": 2}, 500, 0.95),
]


@pytest.mark.slow
@pytest.mark.parametrize(("model", "task", "params", "split", "size", "steps", "target"), CASES,
                         ids=[f"{c[0]}-{c[1]}" for c in CASES])
def test_small_model_learns(tmp_path, model, task, params, split, size, steps, target, tiny_config):
    cfg = tiny_config(tmp_path, model, task, params, model_kw={**size, "window": 8}, steps=steps, batch_size=32,
                      warmup_steps=10, early_stop_accuracy=min(1.0, target + 0.05),
                      run_kw={"eval_every": 25, "eval_size": 256, "eval_batch_size": 128, "eval_splits": [split],
                              "select_split": split})
    record = new_record(cfg)
    execute(cfg, record)
    accuracy = next(m["value"] for m in record.metrics
                    if m["split"] == split and m["slice_key"] == "all" and m["metric"] == "accuracy")
    assert accuracy >= target, f"{model} on {task}: accuracy {accuracy:.3f} after {record.train['steps_done']} steps"
