"""The papermill grid runner (seqlib.book.grid): failures are recorded and the grid goes on, finished runs
are skipped, a failed re-run keeps the earlier output, and the Dask path runs jobs on a local cluster."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import nbformat
import pytest
import yaml
from nbformat.v4 import new_code_cell, new_markdown_cell, new_notebook

from seqlib.provenance import REPO

pytestmark = pytest.mark.book


def chapter(path: Path, body: str) -> None:
    nb = new_notebook(cells=[
        new_markdown_cell(f"# {path.stem}"),
        new_code_cell('profile = "smoke"\nseed = 0\nmodel = "none"\ntask = "none"\nstored_only = False',
                      metadata={"tags": ["parameters"]}),
        new_code_cell(body),
    ])
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    nbformat.write(nb, path)


def grid(tmp: Path, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "seqlib.book.grid", "--grid", str(tmp / "grid.yaml"), "--chapters", str(tmp / "chapters"),
         "--out", str(tmp / "runs"), "--failed", str(tmp / "failed"), "--results", str(tmp / "results"),
         "--profile", "tiny", *args],
        capture_output=True, text=True, timeout=300)


@pytest.fixture
def book(tmp_path: Path) -> Path:
    (tmp_path / "chapters").mkdir()
    chapter(tmp_path / "chapters" / "concept.ipynb", 'print("concept", profile)')
    chapter(tmp_path / "chapters" / "task.ipynb",
            'if model == "broken":\n    raise RuntimeError("this model is broken")\nprint(task, model, seed)')
    (tmp_path / "grid.yaml").write_text(
        "runs:\n  - chapter: concept\n  - chapter: task\n    task: toy\n    models: [good, broken]\n"
        "    params: {seed: 3}\n")
    return tmp_path


def outputs(path: Path) -> str:
    return "".join(o.get("text", "") for c in nbformat.read(path, 4).cells if c.cell_type == "code" for o in c.outputs)


def test_failure_is_recorded_and_the_grid_goes_on_then_resume_skips(book):
    first = grid(book)
    assert first.returncode == 1, first.stdout + first.stderr
    assert "profile tiny" in first.stdout
    assert "FAILED toy/broken: RuntimeError: this model is broken" in first.stdout
    assert "1 failed, 0 remaining" in first.stdout
    assert outputs(book / "runs" / "concept.ipynb") == "concept tiny\n"
    assert outputs(book / "runs" / "toy" / "good.ipynb") == "toy good 3\n"
    assert not (book / "runs" / "toy" / "broken.ipynb").exists()
    failed = nbformat.read(book / "failed" / "toy" / "broken.ipynb", 4)
    assert failed.metadata["papermill"]["exception"] is True
    assert not list((book / "runs").rglob(".*"))  # no temporary files left behind

    stamp = (book / "runs" / "concept.ipynb").stat().st_mtime_ns
    second = grid(book)
    assert "2 up to date, 1 to run" in second.stdout, second.stdout
    assert (book / "runs" / "concept.ipynb").stat().st_mtime_ns == stamp

    (book / "grid.yaml").write_text((book / "grid.yaml").read_text().replace("seed: 3", "seed: 4"))
    third = grid(book)
    assert "1 up to date, 2 to run" in third.stdout, third.stdout
    assert outputs(book / "runs" / "toy" / "good.ipynb") == "toy good 4\n"


def test_failed_rerun_keeps_the_earlier_output(book):
    (book / "grid.yaml").write_text("runs:\n  - chapter: concept\n")
    assert grid(book).returncode == 0
    before = (book / "runs" / "concept.ipynb").read_bytes()
    chapter(book / "chapters" / "concept.ipynb", "1 / 0")
    result = grid(book)
    assert result.returncode == 1 and "ZeroDivisionError" in result.stdout, result.stdout
    assert (book / "runs" / "concept.ipynb").read_bytes() == before
    assert json.loads(before)["metadata"]["seqbook"]["params"] == {"profile": "tiny", "seed": 0}


def test_dask_local_cluster_runs_two_jobs(book):
    (book / "grid.yaml").write_text("runs:\n  - chapter: task\n    task: toy\n    models: [a, b]\n")
    result = grid(book, "--workers", "2")
    assert result.returncode == 0, result.stdout + result.stderr
    assert "local Dask cluster, 2 workers" in result.stdout
    assert "2 ran, 0 up to date, 0 failed" in result.stdout
    assert outputs(book / "runs" / "toy" / "a.ipynb") == "toy a 0\n"
    assert outputs(book / "runs" / "toy" / "b.ipynb") == "toy b 0\n"


def test_results_summaries_run_last_and_rerun_when_the_store_changes(book):
    """A ``reads_results`` chapter runs after the runs that write the store, and again when it changes."""
    store = book / "results"
    chapter(book / "chapters" / "writer.ipynb",
            f"from pathlib import Path\np = Path({str(store)!r}) / task / model\np.mkdir(parents=True, exist_ok=True)\n"
            "(p / 'run.json').write_text('{}')")
    chapter(book / "chapters" / "summary.ipynb",
            f"from pathlib import Path\nprint(sorted(str(p.relative_to({str(store)!r})) for p in Path({str(store)!r}).rglob('*.json')))")
    (book / "grid.yaml").write_text("runs:\n  - chapter: summary\n    reads_results: true\n"
                                    "  - chapter: writer\n    task: toy\n    models: [a, b]\n")
    for workers in ([], ["--workers", "2"]):
        result = grid(book, "--force", *workers)
        assert result.returncode == 0, result.stdout + result.stderr
        assert outputs(book / "runs" / "summary.ipynb") == "['toy/a/run.json', 'toy/b/run.json']\n"
    again = grid(book)
    assert "summaries of the results store: 1 up to date, 0 to run" in again.stdout, again.stdout
    (store / "toy" / "c").mkdir()
    (store / "toy" / "c" / "run.json").write_text("{}")
    changed = grid(book)
    assert "summaries of the results store: 0 up to date, 1 to run" in changed.stdout, changed.stdout
    assert "toy/c/run.json" in outputs(book / "runs" / "summary.ipynb")
    (store / "toy" / "c" / "run.json").write_text('{"changed": true}')  # same names, new content
    assert "summaries of the results store: 0 up to date, 1 to run" in grid(book).stdout


def test_training_phase_trains_planned_runs_first_and_a_deadline_leaves_them_listed(book):
    """``train: true``: the grid trains the chapter's planned runs as jobs, then the chapter shows the
    stored records without training; a deadline that has passed starts no run and the chapter says
    which planned runs have no record."""
    from seqlib.book.chapter import planned_configs
    from seqlib.results import record_path

    (planned,) = planned_configs(["parity_check"], "lstm", "tiny")
    record = REPO / planned.run.results_dir / record_path("", "parity_check", "lstm", planned.hash())
    record.unlink(missing_ok=True)
    chapter(book / "chapters" / "shows.ipynb",
            "import os\nfrom seqlib.book.chapter import load_tasks, train_runs\nfrom seqlib.provenance import REPO\n"
            "os.chdir(REPO)  # as seqlib.book.chapter.setup: the store's path is relative to the repository\n"
            "configs, tasks = load_tasks([task], model, profile)\n"
            "records, note = train_runs(configs, tasks, stored_only)\n"
            "print(len(records), [r.status for r in records], note)")
    (book / "grid.yaml").write_text("runs:\n  - chapter: shows\n    task: parity_check\n    train: true\n"
                                    "    models: [lstm]\n")
    late = grid(book, "--deadline", "0")  # 0: no training run at all
    assert late.returncode == 0, late.stdout + late.stderr
    assert "1 training runs to do first" in late.stdout
    assert "1 not started before the deadline" in late.stdout, late.stdout
    shown = outputs(book / "runs" / "parity_check" / "lstm.ipynb").splitlines()[-1]
    assert shown.startswith("0 [] **1 of the 1 planned runs have no record yet** (parity_check lr=0.003 seed=0)")
    assert not record.exists()

    done = grid(book)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "parity_check/lstm/lr=0.003/seed=0: ok" in done.stdout, done.stdout
    assert record.exists()
    shown = outputs(book / "runs" / "parity_check" / "lstm.ipynb").splitlines()[-1]
    assert shown == "1 ['ok'] None"  # the chapter ran again: its records changed
    again = grid(book)
    assert "0 training runs to do first" in again.stdout and "runs: 1 up to date, 0 to run" in again.stdout


def test_unknown_grid_key_is_an_error(book):
    (book / "grid.yaml").write_text("runs:\n  - chapter: concept\n    trian: true\n")
    result = grid(book)
    assert result.returncode != 0 and "unknown key(s) ['trian']" in result.stderr, result.stderr


def test_a_kernel_that_dies_at_start_is_retried_but_a_failing_cell_is_not(tmp_path, monkeypatch):
    """Parallel kernels can race for their ports; a kernel that never started is started again."""
    import papermill

    from seqlib.book import grid as grid_module
    from seqlib.book.plots import BOOK_RUN_ENV

    monkeypatch.delenv(BOOK_RUN_ENV, raising=False)
    calls = []

    def flaky(chapter, out, **kwargs):
        calls.append(out)
        if len(calls) == 1:
            raise RuntimeError("Kernel died before replying to kernel_info")
        nbformat.write(new_notebook(cells=[new_code_cell("1")]), out)

    monkeypatch.setattr(papermill, "execute_notebook", flaky)
    out = tmp_path / "runs" / "x.ipynb"
    record = grid_module.execute("x.ipynb", str(out), str(tmp_path / "failed.ipynb"), {}, {"params_hash": "p"})
    assert record["status"] == "ok" and len(calls) == 2 and out.exists()
    assert all(Path(c).parent == grid_module.SCRATCH_DIR for c in calls)  # never beside the pages
    assert not any(Path(c).exists() for c in calls)
    assert BOOK_RUN_ENV not in os.environ  # set for the kernel only: no lasting side effect here

    def broken(chapter, out, **kwargs):
        calls.append(out)
        raise RuntimeError("a cell raised this")

    calls.clear()
    monkeypatch.setattr(papermill, "execute_notebook", broken)
    record = grid_module.execute("x.ipynb", str(out), str(tmp_path / "failed.ipynb"), {}, {"params_hash": "p"})
    assert record["status"] == "failed" and "a cell raised this" in record["error"] and len(calls) == 1


def test_no_temporary_notebook_is_tracked_among_the_pages():
    tracked = subprocess.run(["git", "ls-files", "book/runs"], cwd=REPO, capture_output=True, text=True,
                             check=True).stdout.split()
    assert not [f for f in tracked if Path(f).name.startswith(".")]


def test_the_local_cluster_and_its_dashboard_listen_on_this_machine_only():
    import psutil  # a dependency of distributed

    from seqlib.book.grid import local_cluster

    cluster = local_cluster(1, [])
    try:
        listening = {x.laddr.port: x.laddr.ip for x in psutil.Process().net_connections(kind="inet")
                     if x.status == psutil.CONN_LISTEN}
        dashboard = cluster.scheduler.http_server.port
        assert listening.get(dashboard) == "127.0.0.1", listening
        assert set(listening.values()) == {"127.0.0.1"}, listening
    finally:
        cluster.close()


def _child_exit_code_and_cores() -> tuple[int, str | None]:
    import multiprocessing as mp
    import os

    child = mp.get_context("spawn").Process(target=int)  # what a Prefetcher's pool does on a GPU
    child.start()
    child.join()
    return child.exitcode, os.environ.get("SEQLIB_CORES")


def test_a_job_on_the_local_cluster_can_start_processes_with_its_share_of_the_cores():
    """On a GPU a training job starts processes that generate its batches: a daemonic Dask worker
    refused them (AssertionError: daemonic processes are not allowed to have children)."""
    import os

    from distributed import Client

    from seqlib.book.grid import local_cluster

    cluster = local_cluster(2, [])
    try:
        with Client(cluster) as client:
            code, cores = client.submit(_child_exit_code_and_cores, pure=False).result(timeout=120)
    finally:
        cluster.close()
    assert code == 0
    assert cores == str(max(1, (os.cpu_count() or 1) // 2))


def test_each_local_worker_is_told_how_many_workers_share_its_gpu():
    from seqlib.book.grid import local_cluster

    cluster = local_cluster(3, ["0", "1"])  # worker i on GPU i mod 2: two on GPU 0, one on GPU 1
    try:
        envs = [cluster.worker_spec[f"worker-{i}"]["options"]["env"] for i in range(3)]
    finally:
        cluster.close()
    assert [(e["CUDA_VISIBLE_DEVICES"], e["SEQLIB_GPU_SHARE"]) for e in envs] == [("0", "2"), ("1", "1"), ("0", "2")]


def test_batch_processes_take_the_share_of_the_cores_they_are_given(monkeypatch):
    from seqlib import data

    monkeypatch.setattr(data.torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(data.os, "cpu_count", lambda: 16)
    monkeypatch.delenv(data.CORES_ENV, raising=False)
    assert data.default_workers() == 8
    monkeypatch.setenv(data.CORES_ENV, "4")
    assert data.default_workers() == 2
    monkeypatch.setenv(data.CORES_ENV, "2")
    assert data.default_workers() == 1


def test_place_is_atomic_across_file_systems(tmp_path, monkeypatch):
    """Across file systems the copy lands beside the destination, then a rename replaces it."""
    from seqlib.book import grid as grid_module

    src, dest = tmp_path / "src.ipynb", tmp_path / "pages" / "dest.ipynb"
    dest.parent.mkdir()
    src.write_text("new")
    dest.write_text("old")
    copies = []
    monkeypatch.setattr(grid_module, "same_file_system", lambda a, b: False)
    monkeypatch.setattr(grid_module.shutil, "copyfile", lambda a, b: copies.append(Path(b)) or Path(b).write_bytes(
        Path(a).read_bytes()))
    grid_module.place(src, dest)
    assert copies == [dest.parent / ".dest.ipynb.partial"]  # the copy lands beside the page, then a rename
    assert dest.read_text() == "new" and not src.exists() and not copies[0].exists()


def test_training_rounds_take_the_headline_tasks_then_the_rest_then_the_cells():
    """next_round without a train_order (one tier: the tasks of several seeds): of the runs not
    attempted, the first class present; a headline task's second stage, planned after its first
    round, comes before any other task's run."""
    from seqlib.book.grid import TrainOrder, next_round

    def names(todo):
        return [name for name, _ in todo]

    first = [("parity_check/hawk/lr=0.001/seed=0", {}), ("even_pairs/hawk/lr=0.001/seed=0", {}),
             ("mqar:zoology/hawk/lr=0.001/seed=0", {}), ("mqar/hawk/lr=0.001/seed=0", {})]
    order = TrainOrder((("mqar", "parity_check"),))
    attempted: set[str] = set()
    round_one = next_round(first, attempted, order)
    assert names(round_one) == ["parity_check/hawk/lr=0.001/seed=0", "mqar/hawk/lr=0.001/seed=0"]
    attempted |= set(names(round_one))
    planned_again = first + [("mqar/hawk/lr=0.001/seed=1", {})]  # the second stage, planned from round one
    assert names(next_round(planned_again, attempted, order)) == ["mqar/hawk/lr=0.001/seed=1"]
    attempted.add("mqar/hawk/lr=0.001/seed=1")
    assert names(next_round(planned_again, attempted, order)) == ["even_pairs/hawk/lr=0.001/seed=0"]
    attempted.add("even_pairs/hawk/lr=0.001/seed=0")
    assert names(next_round(planned_again, attempted, order)) == ["mqar:zoology/hawk/lr=0.001/seed=0"]
    attempted.add("mqar:zoology/hawk/lr=0.001/seed=0")
    assert next_round(planned_again, attempted, order) == []


def test_a_train_order_puts_its_tiers_and_their_cells_first():
    """train_order: each tier's tasks and cells (every combination of a cell's axes) in one round, tier
    after tier; then the tasks no tier names, then the other cells; a task that trains last after all."""
    from seqlib.book.grid import TrainOrder, next_round

    todo = [("lis/hawk/lr=0.001/seed=0", {}), ("mqar:window-w16/griffin/lr=0.001/seed=0", {}),
            ("flipflop/hawk/lr=0.001/seed=0", {}), ("text/hawk/lr=0.001/seed=0", {}),
            ("mqar:sweep-d64-L64/hawk/lr=0.001/seed=0", {}), ("mqar/hawk/lr=0.001/seed=0", {}),
            ("mqar:sweep_other-x/hawk/lr=0.001/seed=0", {})]
    order = TrainOrder((("mqar", "mqar:sweep"), ("flipflop",)), frozenset({"text"}))
    attempted: set[str] = set()
    rounds = []
    while batch := next_round(todo, attempted, order):
        rounds.append(sorted(name.split("/")[0] for name, _ in batch))
        attempted |= {name for name, _ in batch}
    assert rounds == [["mqar", "mqar:sweep-d64-L64"], ["flipflop"], ["lis"],
                      ["mqar:sweep_other-x", "mqar:window-w16"], ["text"]]
    assert order.place("mqar:sweep-d64-L64") == (0, 1) and order.place("flipflop") == (1, 0)


def test_a_train_order_that_names_what_no_entry_trains_is_refused(tmp_path):
    """load_order: an unknown task or cell, a name listed twice, a task that trains last or a tier that is
    not a list of names is an error naming it; no train_order is the default order."""
    from seqlib.book.grid import GRID, TrainOrder, default_order, load_grid, load_order

    runs = load_grid(GRID, REPO / "chapters", REPO / "book" / "runs", "book")
    spec = yaml.safe_load(GRID.read_text())
    book = load_order(GRID, runs)
    assert book.tiers[0][:3] == ("mqar", "mqar:zoology", "mqar:sweep") and book.last == frozenset({"text"})
    grid = tmp_path / "grid.yaml"
    for tiers, message in (([["mqar", "nope"]], "'nope' is no task"), ([["mqar:nocell"]], "'mqar:nocell' is no task"),
                           ([["mqar"], ["mqar"]], "'mqar' is listed twice"), ([["text"]], "trains last"),
                           (["mqar"], "a list of tiers"), ([[]], "a list of tiers")):
        grid.write_text(yaml.safe_dump({**spec, "train_order": tiers}))
        with pytest.raises(ValueError, match=message):
            load_order(grid, runs)
    grid.write_text(yaml.safe_dump({k: v for k, v in spec.items() if k != "train_order"}))
    assert load_order(grid, runs) == default_order(runs)
    assert isinstance(default_order(runs), TrainOrder) and set(default_order(runs).tiers[0]) == {"mqar", "parity_check"}


def test_an_entry_that_trains_last_waits_for_every_other_run_and_cell():
    """``train_last``: the text task's runs, several seeds or not, come after every other class, even the
    cells; its own cells after its runs. In the book's grid it is the text entry, never a headline."""
    from seqlib.book.grid import GRID, TrainOrder, headline_tasks, last_tasks, load_grid, next_round

    todo = [("text/hawk/lr=0.002/seed=1", {}), ("text:large/hawk/lr=0.001/seed=0", {}),
            ("mqar:zoology/hawk/lr=0.001/seed=0", {}), ("even_pairs/hawk/lr=0.001/seed=0", {})]
    attempted: set[str] = set()
    order = []
    while batch := next_round(todo, attempted, TrainOrder((), frozenset({"text"}))):
        order.append([name for name, _ in batch])
        attempted |= set(order[-1])
    assert [names[0].split("/")[0] for names in order] == ["even_pairs", "mqar:zoology", "text", "text:large"]
    runs = load_grid(GRID, REPO / "chapters", REPO / "book" / "runs", "book")
    headline = headline_tasks(runs)
    assert last_tasks(runs) == {"text"} and "text" not in headline and {"mqar", "parity_check"} <= headline


def test_a_task_page_runs_again_when_another_model_of_its_chapter_gets_a_record(book, tmp_path):
    """A task page's findings set its model beside the chapter's other models: its stamp covers their
    records too, but not those of another chapter's pages."""
    from seqlib.book.grid import load_grid, planned_runs, run_code_hash, shown_configs
    from seqlib.results import write_record
    from seqlib.train import new_record

    chapter(book / "chapters" / "shows.ipynb", "print(model)")
    chapter(book / "chapters" / "other.ipynb", "print(model)")
    (book / "grid.yaml").write_text(
        "runs:\n  - chapter: shows\n    task: parity_check\n    train: true\n    models: [lstm, gru]\n"
        "  - chapter: other\n    task: even_pairs\n    train: true\n    models: [hawk]\n")
    runs = load_grid(book / "grid.yaml", book / "chapters", book / "runs", "tiny")
    plans = planned_runs(runs)
    _, gru, _ = runs

    def stamp(run):
        return run_code_hash(run, book / "results", [cfg for _, cfg in shown_configs(run, plans, runs)])

    (gru_cfg,) = plans[gru.out]
    store = tmp_path / "store"
    gru_cfg = gru_cfg.model_copy(update={"run": gru_cfg.run.model_copy(update={"results_dir": str(store)})})
    plans[gru.out] = [gru_cfg]
    before = {run.params["model"]: stamp(run) for run in runs}
    record = new_record(gru_cfg)
    record.status = "ok"
    write_record(store, record)
    after = {run.params["model"]: stamp(run) for run in runs}
    assert after["lstm"] != before["lstm"] and after["gru"] != before["gru"]  # the sibling's record counts
    assert after["hawk"] == before["hawk"]  # another chapter's page does not
