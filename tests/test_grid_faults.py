"""The run grid (seqlib.book.grid) on shared clusters and under store faults: Dask keys do not collide
across grids, workers write where the client resolved the store, a corrupt record or notebook is
reported and done again, an unwritable store stops the grid before any work, a failing write fails
one run only, and two grids at once train a run once."""

from __future__ import annotations

import errno
import json
import os
import threading
import time
from pathlib import Path

import nbformat
import pytest
import test_book_grid as toy
from nbformat.v4 import new_code_cell, new_notebook

from seqlib.book import grid as grid_module
from seqlib.provenance import REPO

book = toy.book  # the toy book fixture (a concept chapter and a task chapter) of the grid tests

pytestmark = pytest.mark.book


def tiny_config(store: Path):
    """A planned tiny run (its record goes to ``store``), as the grid's training jobs hold it."""
    from seqlib.book.chapter import planned_configs

    (cfg,) = planned_configs(["parity_check"], "lstm", "tiny")
    return cfg.model_copy(update={"run": cfg.run.model_copy(update={"results_dir": str(store)})})


@pytest.fixture
def fake_training(monkeypatch):
    """``seqlib.train.execute`` replaced by one that counts its calls and finishes at once (ok)."""
    import seqlib.train

    calls = []

    def fake(cfg, record, task=None):
        calls.append(cfg.hash())
        time.sleep(0.3)  # long enough for a second caller to arrive while it runs
        record.metrics, record.status, record.reason = [], "ok", None

    monkeypatch.setattr(seqlib.train, "execute", fake)
    return calls


# -- 1. Dask keys -------------------------------------------------------------------------------


def tagged(who: str, i: int) -> str:
    time.sleep(0.05)
    return f"{who}:{i}"


def test_two_grids_on_one_scheduler_each_get_their_own_results():
    """The same job names from two clients of one cluster: each client gets its own results."""
    from distributed import Client, LocalCluster

    with LocalCluster(n_workers=1, processes=False, threads_per_worker=1, dashboard_address=None) as cluster, \
            Client(cluster) as one, Client(cluster) as two:
        jobs = {who: [(f"job-{i}", {"who": who, "i": i}) for i in range(4)] for who in ("one", "two")}
        got: dict[str, list] = {}

        def collect(who, client):
            got[who] = list(grid_module.dispatch(tagged, jobs[who], client))

        threads = [threading.Thread(target=collect, args=(w, c)) for w, c in (("one", one), ("two", two))]
        for t in threads:
            t.start()
        for t in threads:
            t.join(60)
        for who in ("one", "two"):
            assert sorted(got[who]) == [(f"job-{i}", f"{who}:{i}") for i in range(4)], got

        # the same arguments twice (two grids of one configuration): still two sets of results
        same = [("job-0", {"who": "same", "i": 0})]
        first, second = grid_module.dispatch(tagged, same, one), grid_module.dispatch(tagged, same, two)
        assert next(first) == next(second) == ("job-0", "same:0")


# -- 2. absolute store paths --------------------------------------------------------------------


def test_training_jobs_hold_an_absolute_store_with_the_same_hash(tmp_path, monkeypatch):
    from seqlib.book.chapter import planned_configs
    from seqlib.config import ExperimentConfig

    monkeypatch.chdir(tmp_path)
    (cfg,) = planned_configs(["parity_check"], "lstm", "tiny")
    assert not Path(cfg.run.results_dir).is_absolute()  # relative in the params: the case this is about
    run = grid_module.Run(tmp_path / "c.ipynb", tmp_path / "out.ipynb",
                          {"task": "parity_check", "model": "lstm", "profile": "tiny"}, trains=["parity_check"])
    monkeypatch.setattr("seqlib.train.stored_record", lambda c: None)
    ((_, job),) = grid_module.planned_training([run], {run.out: [cfg]})
    sent = ExperimentConfig.model_validate(job["config"])
    assert sent.run.results_dir == str(tmp_path / cfg.run.results_dir)
    assert sent.hash() == cfg.hash()  # results_dir is not hashed: same run id, same record name


def test_a_worker_in_another_directory_writes_where_the_client_resolved(tmp_path, monkeypatch, fake_training):
    from seqlib.train import record_file

    client_dir, worker_dir = tmp_path / "client", tmp_path / "worker"
    client_dir.mkdir()
    worker_dir.mkdir()
    monkeypatch.chdir(client_dir)
    cfg = grid_module.absolute_store(tiny_config(Path("store")))
    expected = record_file(cfg)
    assert expected.is_absolute() and expected.is_relative_to(client_dir)
    monkeypatch.chdir(worker_dir)  # the worker's working directory
    record = grid_module.check_trained(grid_module.train(cfg.model_dump(mode="json")), str(expected))
    assert record["status"] == "ok", record
    assert expected.is_file() and not (worker_dir / "store").exists()
    # a record that is not where the client expects it (a worker on another filesystem) fails the run
    elsewhere = grid_module.check_trained(record, str(client_dir / "missing.json"))
    assert elsewhere["status"] == "failed" and "no record at" in elsewhere["error"] and elsewhere["unrecorded"]


# -- 3. store faults -----------------------------------------------------------------------------


def test_a_corrupt_record_is_reported_and_trained_again(tmp_path, fake_training):
    from seqlib.train import record_file

    cfg = tiny_config(tmp_path / "store")
    path = record_file(cfg)
    path.parent.mkdir(parents=True)
    path.write_text("{not json")
    run = grid_module.Run(tmp_path / "c.ipynb", tmp_path / "out.ipynb",
                          {"task": "parity_check", "model": "lstm", "profile": "tiny"}, trains=["parity_check"])
    problems: list[str] = []
    jobs = grid_module.planned_training([run], {run.out: [cfg]}, problems)
    assert len(jobs) == 1 and len(problems) == 1 and str(path) in problems[0], problems
    record = grid_module.train(**jobs[0][1])
    assert record["status"] == "ok" and not record["reused"] and len(fake_training) == 1
    assert json.loads(path.read_text())["status"] == "ok"


@pytest.mark.parametrize("procs,share,retried", [(8, 8, False), (8, 16, False), (8, 4, True), (None, 8, True)])
def test_a_run_out_of_memory_within_its_share_waits_for_fewer_workers_per_gpu(tmp_path, procs, share, retried):
    """A run whose record ran out of GPU memory within 1/procs of the GPU is held back from a grid
    whose workers get no more (1/share <= 1/procs), named in ``held``; with more memory each, or
    with no share recorded, it is trained again; a grid without a share (no GPU, a plan) keeps it."""
    from seqlib.results import write_record
    from seqlib.train import new_record

    cfg = tiny_config(tmp_path / "store")
    record = new_record(cfg)
    record.status, record.reason = "failed", "OutOfMemoryError: CUDA out of memory. Tried to allocate 7.00 GiB"
    record.measure = {} if procs is None else {"device_processes": procs}
    write_record(cfg.run.results_dir, record)
    run = grid_module.Run(tmp_path / "c.ipynb", tmp_path / "out.ipynb",
                          {"task": "parity_check", "model": "lstm", "profile": "tiny"}, trains=["parity_check"])
    held: list[str] = []
    jobs = grid_module.planned_training([run], {run.out: [cfg]}, None, share, held)
    assert (len(jobs) == 1) == retried and (held == [] if retried else held == [jobs_name(cfg)])
    assert len(grid_module.planned_training([run], {run.out: [cfg]})) == 1  # no share: kept


@pytest.mark.parametrize("note,held_back", [(True, True), (False, False)])
def test_a_run_that_crashed_its_process_waits_for_retry_crashed(tmp_path, note, held_back):
    """A run whose record failed with a CUDA error that left its process's context unusable
    (seqlib.cuda_context) is held back, named in ``crashes``, unless the grid retries crashes (no
    list); a run that failed otherwise, the same error in another process included, is trained again."""
    from seqlib.cuda_context import LOST_NOTE
    from seqlib.results import write_record
    from seqlib.train import new_record

    cfg = tiny_config(tmp_path / "store")
    record = new_record(cfg)
    record.status = "failed"
    record.reason = "AcceleratorError: CUDA error: an illegal memory access was encountered" + (
        f" [{LOST_NOTE} (AcceleratorError: ...): no later run starts in it]" if note else "")
    write_record(cfg.run.results_dir, record)
    run = grid_module.Run(tmp_path / "c.ipynb", tmp_path / "out.ipynb",
                          {"task": "parity_check", "model": "lstm", "profile": "tiny"}, trains=["parity_check"])
    crashes: list[str] = []
    jobs = grid_module.planned_training([run], {run.out: [cfg]}, None, 8, [], crashes)
    assert (jobs == []) == held_back and crashes == ([jobs_name(cfg)] if held_back else [])
    assert len(grid_module.planned_training([run], {run.out: [cfg]}, None, 8, [])) == 1  # --retry-crashed


@pytest.mark.parametrize("change,held_back", [(None, True), ("triton", False), ("device_name", False)])
def test_a_run_skipped_on_this_gpu_and_software_is_not_tried_again(tmp_path, change, held_back):
    """A run whose record was skipped (its model cannot train there) on a GPU of this name with these
    versions is left out, named in ``skipped``; another version or GPU tries it again, and so does a
    grid that passes no list (a plan, a CPU grid)."""
    from seqlib.provenance import Provenance
    from seqlib.results import write_record
    from seqlib.train import new_record

    here = Provenance(commit=None, dirty=None, device="cuda", device_name="NVIDIA H200",
                      versions={"torch": "2.11.0", "triton": "3.6.0"}, hostname="vm", start_time="2026-12-03T00:00:00")
    cfg = tiny_config(tmp_path / "store")
    record = new_record(cfg)
    record.status, record.reason = "skipped", "model unavailable: cannot train here: ..."
    record.provenance = Provenance(**{**here.to_dict(), "versions": {**here.versions}})
    if change == "triton":
        record.provenance.versions["triton"] = "3.7.1"
    elif change == "device_name":
        record.provenance.device_name = "NVIDIA A100"
    write_record(cfg.run.results_dir, record)
    run = grid_module.Run(tmp_path / "c.ipynb", tmp_path / "out.ipynb",
                          {"task": "parity_check", "model": "lstm", "profile": "tiny"}, trains=["parity_check"])
    skipped: list[str] = []
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr("seqlib.provenance.this_process", lambda device=None: here)
        jobs = grid_module.planned_training([run], {run.out: [cfg]}, None, 8, [], [], skipped=skipped)
        assert len(grid_module.planned_training([run], {run.out: [cfg]}, None, 8, [], [])) == 1  # no list: tried
    assert (jobs == []) == held_back and skipped == ([jobs_name(cfg)] if held_back else [])


def jobs_name(cfg) -> str:
    return f"{cfg.task.name}/{cfg.model.name}/lr={cfg.optim.lr:g}/seed={cfg.optim.seeds[0]}"


def test_a_corrupt_stored_notebook_is_reported_and_executed_again(book):
    (book / "grid.yaml").write_text("runs:\n  - chapter: concept\n")
    assert toy.grid(book).returncode == 0
    (book / "runs" / "concept.ipynb").write_text('{"cells": [')  # truncated
    again = toy.grid(book)
    assert again.returncode == 0, again.stdout + again.stderr
    assert "runs: 0 up to date, 1 to run" in again.stdout, again.stdout
    assert "1 store problem(s)" in again.stdout and "unreadable stored notebook" in again.stdout, again.stdout
    assert toy.outputs(book / "runs" / "concept.ipynb") == "concept tiny\n"


def test_is_done_of_a_corrupt_notebook_is_false_and_listed(tmp_path):
    out = tmp_path / "x.ipynb"
    out.write_bytes(b"\xff\xfe not a notebook")
    problems: list[str] = []
    assert not grid_module.is_done(grid_module.Run(tmp_path / "c.ipynb", out), "code", problems)
    assert len(problems) == 1 and str(out) in problems[0]


def refuse(error: OSError):
    def write(*args, **kwargs):
        raise error
    return write


@pytest.mark.parametrize("error", [PermissionError(errno.EACCES, "Permission denied"),
                                   OSError(errno.EROFS, "Read-only file system"),
                                   OSError(errno.ENOSPC, "No space left on device")])
def test_an_unwritable_store_stops_the_grid_before_any_work(book, monkeypatch, error):
    """Checked with a real write (as root, permission bits stop nothing): simulated by a failing write."""
    monkeypatch.setattr(grid_module.tempfile, "mkstemp", refuse(error))
    with pytest.raises(grid_module.StoreError, match=str(book / "store")):
        grid_module.check_writable(book / "store")

    started = []
    monkeypatch.setattr(grid_module, "dispatch", lambda *a, **k: started.append(a) or iter(()))
    (book / "grid.yaml").write_text("runs:\n  - chapter: concept\n")
    monkeypatch.chdir(REPO)  # main changes into the repository; undone afterwards
    args = ["--grid", str(book / "grid.yaml"), "--chapters", str(book / "chapters"), "--out", str(book / "runs"),
            "--failed", str(book / "failed"), "--results", str(book / "results"), "--profile", "tiny"]
    assert grid_module.main(args) == 2
    assert not started and not (book / "runs" / "concept.ipynb").exists()


def test_a_read_only_store_folder_is_refused(tmp_path):
    store = tmp_path / "store"
    store.mkdir()
    store.chmod(0o555)
    try:
        if os.access(store, os.W_OK):
            pytest.skip("this user can write to a read-only folder (root): see the simulated cases")
        with pytest.raises(grid_module.StoreError, match=str(store)):
            grid_module.check_writable(store)
    finally:
        store.chmod(0o755)


@pytest.mark.parametrize("error", [OSError(errno.ENOSPC, "No space left on device"),
                                   PermissionError(errno.EACCES, "Permission denied")])
def test_a_failing_record_write_fails_that_run_only(tmp_path, monkeypatch, fake_training, error):
    import seqlib.results

    cfg = tiny_config(tmp_path / "store")
    monkeypatch.setattr(seqlib.results.os, "fsync", refuse(error))  # inside atomic_write_bytes
    record = grid_module.train(cfg.model_dump(mode="json"))
    assert record["status"] == "failed" and record["unrecorded"], record
    assert "could not write the record" in record["error"] and error.strerror in record["error"]
    assert not list((tmp_path / "store").rglob("*.json")) and not list((tmp_path / "store").rglob("*.tmp"))


def test_a_failing_write_in_the_grid_is_listed_in_the_summary_and_the_grid_goes_on(book, monkeypatch, capsys):
    """Two training jobs, the first cannot write its record: the second still runs; the summary
    names the first and the exit status is 1."""
    from seqlib.config import ExperimentConfig

    monkeypatch.setattr(grid_module, "planned_runs", lambda runs: {})
    base = tiny_config(book / "store")
    other = ExperimentConfig.model_validate({**base.model_dump(mode="json"),
                                             "optim": {**base.optim.model_dump(mode="json"), "seeds": [7]}})
    assert other.hash() != base.hash()
    jobs = [("bad", {"config": base.model_dump(mode="json")}), ("good", {"config": other.model_dump(mode="json")})]
    monkeypatch.setattr(grid_module, "planned_training", lambda *args, **kwargs: jobs)
    calls, real_train = [], grid_module.train

    def train(config):
        calls.append(config["optim"]["seeds"][0])
        if config["optim"]["seeds"][0] == base.optim.seeds[0]:
            return {"status": "failed", "seconds": 0.0, "unrecorded": True, "record": "",
                    "error": "could not write the record x: OSError: [Errno 28] No space left on device"}
        return real_train(config)

    monkeypatch.setattr(grid_module, "train", train)
    import seqlib.train

    monkeypatch.setattr(seqlib.train, "execute", lambda cfg, record, task=None: setattr(record, "metrics", [])
                        or setattr(record, "status", "ok"))
    monkeypatch.chdir(REPO)
    (book / "grid.yaml").write_text("runs:\n  - chapter: concept\n")
    args = ["--grid", str(book / "grid.yaml"), "--chapters", str(book / "chapters"), "--out", str(book / "runs"),
            "--failed", str(book / "failed"), "--results", str(book / "results"), "--profile", "tiny", "--train-only"]
    assert grid_module.main(args) == 1
    out = capsys.readouterr().out
    assert calls == [base.optim.seeds[0], 7]
    assert "training 1 ok, 1 failed" in out and "FAILED training bad: could not write the record" in out, out


# -- 4. two grids at once ------------------------------------------------------------------------


def test_two_grids_training_one_run_at_once_train_it_once(tmp_path, fake_training):
    cfg = tiny_config(tmp_path / "store")
    records = []
    threads = [threading.Thread(target=lambda: records.append(grid_module.train(cfg.model_dump(mode="json"))))
               for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert len(fake_training) == 1, fake_training  # trained once
    assert sorted(r["reused"] for r in records) == [False, True] and all(r["status"] == "ok" for r in records)
    locks = list((tmp_path / "store" / grid_module.LOCKS_DIR).iterdir())
    assert [p.suffix for p in locks] == [".lock"]  # beside the record folders, not in one
    from seqlib.results import load_records

    assert len(load_records(tmp_path / "store", strict=True)) == 1


def test_two_grids_executing_one_notebook_at_once_execute_it_once(tmp_path, monkeypatch):
    import papermill

    monkeypatch.setattr(grid_module, "NOTEBOOK_LOCKS", tmp_path / "locks")
    calls = []

    def slow(chapter, out, **kwargs):
        calls.append(out)
        time.sleep(0.5)
        nbformat.write(new_notebook(cells=[new_code_cell("1")]), out)

    monkeypatch.setattr(papermill, "execute_notebook", slow)
    out = tmp_path / "runs" / "x.ipynb"
    stamp = {"params_hash": "p", "code_hash": "c"}
    records = []

    def run():
        records.append(grid_module.execute("x.ipynb", str(out), str(tmp_path / "failed.ipynb"), {}, stamp))

    threads = [threading.Thread(target=run) for _ in range(2)]
    for t in threads:
        t.start()
        time.sleep(0.1)
    for t in threads:
        t.join(60)
    assert len(calls) == 1 and all(r["status"] == "ok" for r in records), records
    assert sorted(bool(r.get("reused")) for r in records) == [False, True]
    assert json.loads(out.read_text())["metadata"]["seqbook"]["code_hash"] == "c"


def test_a_failing_write_fails_that_run_and_the_sweep_goes_on(tmp_path, monkeypatch):
    """``seqlib train``'s sweep (run_sweep): the first record's write hits a full disk; that run is
    reported failed (not on disk), the second run still trains and is recorded."""
    from conftest import make_tiny_config

    import seqlib.train

    cfg = make_tiny_config(tmp_path, "lstm", "parity_check", seeds=[0, 1])
    real, calls = seqlib.train.write_record, []

    def full_once(folder, record):
        calls.append(record.seed)
        if len(calls) == 1:
            raise OSError(errno.ENOSPC, "No space left on device")
        return real(folder, record)

    monkeypatch.setattr(seqlib.train, "write_record", full_once)
    first, second = seqlib.train.run_sweep(cfg)
    assert calls == [0, 1]
    assert first.record.status == "failed" and not first.written
    assert "could not write the record" in first.record.reason and "No space left" in first.record.reason
    assert "the run ended ok" in first.record.reason
    assert second.written and second.record.status == "ok" and seqlib.train.stored_record(
        cfg.for_run(cfg.optim.lr, 1)) is not None


def test_a_model_whose_instances_loop_gets_jobs_of_the_loop_size(tmp_path, monkeypatch):
    """An fla mixer's stack runs its instances as a loop (no gain per step), so its runs go to jobs of
    ``LOOP_STACK_MAX``, short enough to end before a round's deadline; a vmapped model keeps the size."""
    from conftest import make_tiny_config

    zoo = make_tiny_config(tmp_path, "deltanet", "parity_check", steps=3)
    native = make_tiny_config(tmp_path, "lstm", "parity_check", steps=3)
    training = [(f"{c.model.name}{i}", {"config": c.for_run(lr, 0).model_dump(mode="json")})
                for c in (zoo, native) for i, lr in enumerate((1e-3, 3e-3, 1e-2))]
    for loop in (1, 2):
        monkeypatch.setattr(grid_module, "LOOP_STACK_MAX", loop)
        sizes = [len(job["names"]) for _, job in grid_module.stack_jobs(training, 3)]
        assert sizes == [loop] * (3 // loop) + [3 % loop] * (3 % loop > 0) + [3]


def test_stacked_jobs_group_one_model_and_task_and_record_every_run(tmp_path):
    """``--stack-size``: runs of one (model, task) that differ in seed and rate go to one job (chunks
    of the size, in the planned order); a Muon run stays alone; every run of a stack is recorded."""
    from conftest import make_tiny_config

    from seqlib.results import read_record

    base = make_tiny_config(tmp_path, "lstm", "parity_check", steps=3)
    runs = [base.for_run(lr, seed) for seed in (0, 1) for lr in (1e-3, 3e-3)]
    muon = make_tiny_config(tmp_path, "lstm", "parity_check", steps=3, optimizer="muon").for_run(1e-3, 0)
    other = make_tiny_config(tmp_path, "gru", "parity_check", steps=3).for_run(1e-3, 0)
    training = [(f"r{i}", {"config": c.model_dump(mode="json")}) for i, c in enumerate([*runs, muon, other])]
    jobs = grid_module.stack_jobs(training, 3)
    assert [job["names"] for _, job in jobs] == [["r0", "r1", "r2"], ["r3"], ["r4"], ["r5"]]
    assert jobs[0][0] == "r0 (stack of 3)"
    assert [job["names"] for _, job in grid_module.stack_jobs(training, 1)] == [[f"r{i}"] for i in range(6)]
    results = grid_module.train_stack(**jobs[0][1])
    assert [name for name, _ in results] == ["r0", "r1", "r2"]
    for (_, status), cfg in zip(results, runs):
        assert status["status"] == "ok" and not status["reused"], status
        assert read_record(tmp_path, "parity_check", "lstm", cfg.hash()).measure["stack_size"] == 3
    again = grid_module.train_stack(**jobs[0][1])  # finished runs are kept
    assert all(status["reused"] for _, status in again)
    assert list((tmp_path / ".locks").glob("*.lock"))


def test_grid_refuses_a_stack_size_below_one(tmp_path):
    from test_bad_input import assert_refused, grid

    assert_refused(grid("--stack-size", "0"), "--stack-size must be >= 1")
