"""A sticky CUDA error (seqlib.cuda_context): the run that hit it is recorded failed with a note, no
later run starts in that process (none is recorded), and on the grid's Dask cluster the worker exits,
its nanny starts a fresh one and the job trains there."""

from __future__ import annotations

import os

import pytest
import torch

from seqlib import cuda_context
from seqlib.results import read_record
from seqlib.train import execute as real_execute
from seqlib.train import run_one

ILLEGAL = "CUDA error: an illegal memory access was encountered"


@pytest.fixture
def fresh_context(monkeypatch):
    """This process as one with a working CUDA context (faked on a CPU); ``lose()`` makes its probe fail."""
    monkeypatch.setattr(cuda_context, "_lost", None)
    monkeypatch.setattr(cuda_context, "in_use", lambda: True)
    monkeypatch.setattr(cuda_context, "probe", lambda: None)

    def lose():
        def broken():
            raise RuntimeError(ILLEGAL)

        monkeypatch.setattr(cuda_context, "probe", broken)

    return lose


def failing(message: str):
    def execute(cfg, record, task=None):
        raise RuntimeError(message)

    return execute


def test_a_sticky_error_fails_its_run_with_a_note_and_no_later_run_starts(tmp_path, tiny_config, monkeypatch,
                                                                        fresh_context):
    first, second = (tiny_config(tmp_path, "hawk", steps=2, seeds=[s]) for s in (0, 1))
    monkeypatch.setattr("seqlib.train.execute", failing(ILLEGAL))
    fresh_context()  # the kernel's error left the context unusable
    failed = run_one(first).record
    assert failed.status == "failed"
    assert failed.reason.startswith(f"RuntimeError: {ILLEGAL} [this process's CUDA context is unusable")
    monkeypatch.setattr("seqlib.train.execute", real_execute)
    with pytest.raises(cuda_context.CudaContextLost, match="lost to an earlier run's error"):
        run_one(second)
    assert read_record(tmp_path, "parity_check", "hawk", second.hash()) is None  # not recorded as failed
    assert read_record(tmp_path, "parity_check", "hawk", first.hash()).status == "failed"


def test_an_ordinary_failure_leaves_the_context_usable_and_the_next_run_trains(tmp_path, tiny_config,
                                                                               monkeypatch, fresh_context):
    first, second = (tiny_config(tmp_path, "hawk", steps=2, seeds=[s]) for s in (0, 1))
    monkeypatch.setattr("seqlib.train.execute", failing("a Python error in the model"))
    assert run_one(first).record.reason == "RuntimeError: a Python error in the model"  # no note
    monkeypatch.setattr("seqlib.train.execute", real_execute)
    assert run_one(second).record.status == "ok"


def test_a_stack_does_not_start_in_a_lost_context(tmp_path, tiny_config, monkeypatch):
    from seqlib.stack import run_stack

    monkeypatch.setattr(cuda_context, "_lost", f"AcceleratorError: {ILLEGAL}")
    cfgs = [tiny_config(tmp_path, "hawk", steps=2, seeds=[s]) for s in (0, 1)]
    with pytest.raises(cuda_context.CudaContextLost):
        run_stack(cfgs)
    assert all(read_record(tmp_path, "parity_check", "hawk", c.hash()) is None for c in cfgs)


def lose_context() -> int:
    """On a worker: mark its CUDA context lost, as a sticky error does -> its process id."""
    cuda_context._lost = f"AcceleratorError: {ILLEGAL}"
    return os.getpid()


def process_id() -> int:
    return os.getpid()


@pytest.mark.book
def test_a_grid_worker_with_a_lost_context_exits_and_its_job_trains_on_a_fresh_worker(tmp_path, tiny_config):
    from distributed import Client, LocalCluster

    from seqlib.book import grid

    cfg = tiny_config(tmp_path, "hawk", steps=2)
    with LocalCluster(n_workers=1, threads_per_worker=1, processes=True, dashboard_address=None) as cluster, \
            Client(cluster) as client:
        lost = client.submit(lose_context, pure=False).result()
        ((name, status),) = grid.dispatch(grid.train, [("the run", {"config": cfg.model_dump(mode="json")})],
                                          client)
        assert (name, status["status"]) == ("the run", "ok"), status
        assert client.submit(process_id, pure=False).result() != lost  # the worker that trained it is new
    assert read_record(tmp_path, "parity_check", "hawk", cfg.hash()).status == "ok"


WILD_STORE = """
import torch, triton, triton.language as tl
from seqlib import cuda_context

@triton.jit
def wild(p):
    tl.store(p + (1 << 40), 1.0)  # a terabyte past a one-element tensor: an illegal address

x = torch.zeros(1, device="cuda")
try:
    wild[(1,)](x)
    torch.cuda.synchronize()
    print("no error")
except Exception as err:
    print("raised", type(err).__name__)
print("note:" + cuda_context.lost_after_failure())
try:
    cuda_context.require_usable()
    print("started")
except cuda_context.CudaContextLost:
    print("refused")
"""


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")
def test_a_real_illegal_memory_access_is_seen_as_a_lost_context(tmp_path):
    """On a GPU, in a fresh process (the error ends its CUDA context): a kernel's illegal memory access is
    probed as a lost context, noted, and the next run refused. The script is a file: ``triton.jit`` reads
    its kernel's source, which ``python -c`` does not have."""
    import subprocess
    import sys

    from seqlib.provenance import REPO

    script = tmp_path / "wild_store.py"
    script.write_text(WILD_STORE)
    proc = subprocess.run([sys.executable, str(script)], capture_output=True, text=True, timeout=600, cwd=REPO)
    assert proc.stdout.startswith("raised"), proc.stdout + proc.stderr
    assert f"note: [{cuda_context.LOST_NOTE} (" in proc.stdout and proc.stdout.rstrip().endswith("refused"), \
        proc.stdout + proc.stderr
