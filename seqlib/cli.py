"""Command line: ``python -m seqlib {train,eval,results,list,bench}`` (also the ``seqlib`` console script)."""

from __future__ import annotations

import argparse
import importlib
import json
import sys
import time
from pathlib import Path
from typing import TYPE_CHECKING

import pandas as pd

if TYPE_CHECKING:
    from seqlib.record import RunRecord

EPILOG = """examples:
  python -m seqlib list
  python -m seqlib train --task mqar --model griffin --profile smoke
  python -m seqlib train --task mqar --model hawk --set optim.lr_sweep=[1e-3,3e-3] --set optim.seeds=[0,1]
  python -m seqlib train --task all --model all --profile smoke      # every pair, one at a time
  python -m seqlib results --task mqar --best test
  python -m seqlib eval 3f2a9c0d1e2b4a5c --split test_length --n 512
  python -m seqlib bench scan --sweep                               # GPU benchmarks into results/bench

configuration: params/defaults.yaml, params/models.yaml, params/tasks.yaml, each with a `profiles:`
overlay (smoke, full); --set key.sub=value overrides any field (values are YAML). Unknown keys, wrong
types and impossible values are errors naming the key and the file that set it."""

BENCHMARKS = {"scan": "seqlib.bench.scan", "attention": "seqlib.bench.attention", "models": "seqlib.bench.models",
              "sweep": "seqlib.bench.sweep"}


def _usage_error(command: str, message: str) -> SystemExit:
    """Print ``seqlib COMMAND: error: MESSAGE`` to stderr; the SystemExit to raise (status 2, as argparse)."""
    print(f"seqlib {command}: error: {message}", file=sys.stderr)
    return SystemExit(2)


def _int_at_least(low: int):
    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected an integer, got {text!r}") from None
        if value < low:
            raise argparse.ArgumentTypeError(f"must be >= {low}, got {value}")
        return value
    parse.__name__ = f"integer >= {low}"
    return parse


def _results_dir(command: str, path: str) -> Path:
    """``--dir``: an existing directory, else a usage error (not an empty table or 'no match')."""
    root = Path(path)
    if not root.is_dir():
        raise _usage_error(command, f"results directory {root} does not exist" if not root.exists()
                           else f"--dir {root} is not a directory")
    return root


def _names(arg: str, known: list[str], kind: str) -> list[str]:
    names = known if arg == "all" else [s.strip() for s in arg.split(",") if s.strip()]
    unknown = [n for n in names if n not in known]
    if unknown:
        raise SystemExit(f"error: unknown {kind}(s) {unknown}; known: {', '.join(known)}")
    return names


def _fmt(value) -> str:
    if value is None or (isinstance(value, float) and pd.isna(value)):
        return "-"
    if isinstance(value, float):
        return f"{value:.4g}"
    return str(value)


def _headline(record: RunRecord) -> str:
    """'accuracy test=0.93 test_length=0.41' (or loss for regression) from a record's whole-split metrics."""
    rows = [m for m in record.metrics if m["slice_key"] == "all"]
    metric = "accuracy" if any(m["metric"] == "accuracy" for m in rows) else "loss"
    return f"{metric} " + " ".join(f"{m['split']}={m['value']:.3f}" for m in rows if m["metric"] == metric)


def cmd_train(args: argparse.Namespace) -> int:
    from seqlib.config import ConfigError, load_config
    from seqlib.models import list_models
    from seqlib.tasks import list_tasks
    from seqlib.train import run_sweep

    tasks = _names(args.task, list_tasks(), "task")
    models = _names(args.model, list_models(), "model")
    overrides = list(args.set or [])
    if args.results_dir:
        overrides.append(f"run.results_dir={args.results_dir}")
    if args.no_progress:
        overrides.append("run.progress=false")
    counts = {"ok": 0, "failed": 0, "skipped": 0, "reused": 0}
    failures, timings = [], []
    for task in tasks:
        for model in models:
            try:
                cfg = load_config(task, model, args.profile, overrides, args.params)
            except ConfigError as e:
                print(f"config error for {task} x {model}:\n{e}", file=sys.stderr)
                counts["failed"] += 1
                failures.append(f"{task} x {model}: config error")
                continue
            t0 = time.perf_counter()
            print(f"== {task} x {model} (profile {args.profile}) -> {cfg.run.results_dir}", flush=True)

            def report(outcome, i, n, task=task, model=model):
                rec = outcome.record
                tag = f"  [{i + 1}/{n}] lr={rec.lr:g} seed={rec.seed} {rec.run_id}"
                if outcome.reused:
                    counts["reused"] += 1
                    print(f"{tag}: already done ({_headline(rec)}); --force re-runs it", flush=True)
                    return
                counts[rec.status] += 1
                if rec.status == "ok":
                    m = rec.measure
                    print(f"{tag}: ok {_headline(rec)} | {m['num_params']:,} params, state {m['state_size']:,}, "
                          f"{m['tokens_per_s']:,.0f} tok/s, step {m['step_time_s'] * 1e3:.1f} ms, "
                          f"peak {m['peak_memory_bytes'] / 2**20:,.0f} MiB ({m['peak_memory_kind']}), "
                          f"{rec.train['steps_done']} steps, {m['wall_time_s']:.1f} s", flush=True)
                else:
                    print(f"{tag}: {rec.status.upper()}: {rec.reason}", flush=True)
                    if rec.status == "failed":
                        failures.append(f"{task} x {model} lr={rec.lr:g} seed={rec.seed}: {rec.reason}")

            outcomes = run_sweep(cfg, force=args.force, on_result=report)
            timings.append((task, model, time.perf_counter() - t0))
            if len(cfg.optim.lrs) > 1:
                _print_best([o.record for o in outcomes])
    print(f"\nsummary: {counts['ok']} ok, {counts['reused']} already done, {counts['skipped']} skipped, "
          f"{counts['failed']} failed; {sum(t for *_, t in timings):.1f} s")
    if len(timings) > 1:
        for task, model, t in timings:
            print(f"  {task:28s} {model:18s} {t:7.1f} s")
    for line in failures:
        print(f"FAILED {line}", file=sys.stderr)
    return 1 if failures else 0


def _print_best(records: list[RunRecord]) -> None:
    from seqlib.book.report import leaderboard, selection_note

    for _, row in leaderboard(records).iterrows():
        note = selection_note(row)
        print(f"  chosen lr {row['lr']:g} on {row['select_split']} ({row['select_metric']} mean "
              f"{row['select_mean']:.3f}): {row['label']} on {row['split']} mean {row['mean']:.3f} "
              f"(95% bootstrap CI {_fmt(row['ci_low'])}..{_fmt(row['ci_high'])}), median {row['median']:.3f}, "
              f"best {row['best']:.3f}, {row['n_seeds']} seed(s)" + (f"; {note}" if note else ""))


def cmd_results(args: argparse.Namespace) -> int:
    from seqlib.book.report import at_chosen_lr, chosen_on, select_lr, selection_note
    from seqlib.results import load_records, records_frame, runs_table
    from seqlib.stats import GROUP, summarize_seeds

    records = [r for r in load_records(_results_dir("results", args.dir), strict=args.strict)
               if all(not value or getattr(r, col) == value
                      for col, value in (("task", args.task), ("model", args.model), ("profile", args.profile)))]
    df = records_frame(records)
    if df.empty:
        print(f"no results under {args.dir}")
        return 0
    for option, col, value in (("--metric", "metric", args.metric), ("--best", "split", args.best)):
        known = sorted(df[col].dropna().unique())
        if value is not None and known and value not in known:
            what = "metric" if col == "metric" else "split"
            raise _usage_error("results", f"{option}: unknown {what} {value!r}; the selected records have "
                               f"{', '.join(map(str, known))}")
    if args.best:
        try:
            chosen = select_lr(records)
        except ValueError as e:
            raise SystemExit(f"seqlib results: error: {e}") from None
        rows = at_chosen_lr(df, chosen)
        rows = rows[(rows["split"] == args.best) & (rows["metric"] == args.metric) & (rows["slice_key"] == "all")]
        table = summarize_seeds(rows).merge(chosen_on(chosen), on=GROUP)
        table["note"] = [selection_note(r) for _, r in table.iterrows()]
        table = table[["task", "model", "profile", "lr", "select_split", "select_metric", "select_mean", "n_seeds",
                       "mean", "ci_low", "ci_high", "median", "best", "note"]]
        print(f"{args.metric} on {args.best} at the learning rate chosen per (task, model) on its runs' selection "
              "split and metric (select_split, select_metric; select_mean, the mean there): over seeds the mean "
              "with its 95% bootstrap CI, the median and the best:")
    else:
        table = _display(runs_table(df, args.metric))
    with pd.option_context("display.width", 250, "display.max_columns", 50, "display.max_rows", 10_000):
        print(table.to_string(index=False, na_rep="-", formatters={c: _fmt for c in table.columns}))
    return 0


def _display(table: pd.DataFrame) -> pd.DataFrame:
    """Human units for the runs table: MiB, milliseconds, thousands separators, short reasons."""
    out = table.drop(columns=["config_hash"]).rename(columns={
        "num_params": "params", "state_size": "state", "tokens_per_s": "tok/s", "steps_done": "steps"})
    out["step_ms"] = table["step_time_s"] * 1e3
    out["peak_MiB"] = table["peak_memory_bytes"] / 2**20
    out["wall_s"] = table["wall_time_s"]
    for col in ("params", "state", "tok/s", "steps", "peak_MiB"):
        out[col] = out[col].map(lambda v: "-" if pd.isna(v) else f"{v:,.0f}")
    out["reason"] = table["reason"].map(lambda r: "" if not isinstance(r, str) else r[:70])
    metric_cols = [c for c in out.columns if ":" in c]
    keep = ["run_id", "task", "model", "profile", "lr", "seed", "status", "steps", "params", "state", "tok/s",
            "step_ms", "peak_MiB", "wall_s", *metric_cols]
    return out[keep + (["reason"] if out["reason"].str.len().any() else [])]


def _stored_run(command: str, root: Path, run_id: str):
    """The ok record whose run id starts with ``run_id`` under ``root`` and its checkpoint's path, else a
    usage error naming the problem (no match, an ambiguous prefix, no checkpoint)."""
    from seqlib.results import load_records, record_path

    if not run_id.strip():
        raise _usage_error(command, "the run id is empty")
    matches = [r for r in load_records(root) if r.run_id.startswith(run_id)]
    if len(matches) != 1:
        which = ", ".join(r.run_id for r in matches[:5]) + (", ..." if len(matches) > 5 else "")
        raise _usage_error(command, f"run id {run_id!r} matches no record under {root} (see `seqlib results --dir "
                           f"{root}`)" if not matches else f"run id prefix {run_id!r} is ambiguous: {len(matches)} "
                           f"records under {root} ({which}); give more characters")
    rec = matches[0]
    ckpt = record_path(root, rec.task, rec.model, rec.config_hash).with_suffix(".pt")
    if rec.status != "ok" or not ckpt.exists():
        raise _usage_error(command, f"run {rec.run_id} has status {rec.status} and {'a' if ckpt.exists() else 'no'} "
                           f"checkpoint at {ckpt}; only an ok run with a checkpoint can be evaluated")
    return rec, ckpt


def _device(command: str, name: str):
    from seqlib.train import resolve_device

    try:
        return resolve_device(name)
    except RuntimeError as e:
        raise _usage_error(command, f"--device {name}: {e}") from None


def _checkpoint_model(command: str, ckpt: Path, task, params: dict, device):
    """The model of checkpoint ``ckpt`` for ``task`` (built with ``params``) on ``device`` and the
    checkpoint's state, else a usage error (an unreadable file, a task the model cannot take, a model
    unavailable here)."""
    import pickle

    import torch

    from seqlib.config import max_len_problem, short
    from seqlib.models import ModelConfig, ModelUnavailable, build_model

    try:
        state = torch.load(ckpt, map_location=device, weights_only=True)
    except (OSError, RuntimeError, EOFError, pickle.UnpicklingError) as e:
        raise _usage_error(command, f"cannot read the checkpoint {ckpt}: {short(str(e))}") from None
    problem = max_len_problem(ModelConfig.model_validate(state["model_config"]), task)
    if problem:
        raise _usage_error(command, f"--task-param: task params {params}: {problem}")
    try:
        model = build_model(state["model_config"], task.spec).to(device)
    except ModelUnavailable as e:
        raise _usage_error(command, str(e)) from None
    model.load_state_dict(state["model"])
    return model, state


def cmd_eval(args: argparse.Namespace) -> int:
    """Re-evaluate a stored checkpoint (never retrains); prints tidy metrics, optionally saves JSON."""
    from seqlib.config import ConfigError, ExperimentConfig, parse_set, short
    from seqlib.evaluate import evaluate_split, summarize
    from seqlib.tasks import get_task
    from seqlib.train import resolve_dtype

    def fail(message: str) -> SystemExit:
        return _usage_error("eval", message)

    rec, ckpt = _stored_run("eval", _results_dir("eval", args.dir), args.run_id)
    cfg = ExperimentConfig.model_validate(rec.config)
    params = dict(cfg.task.params)
    try:
        for item in args.task_param or []:
            key, value = parse_set(item)
            params[key] = value
    except ConfigError as e:
        raise fail(short(str(e).replace("--set", "--task-param", 1))) from None
    try:
        task = get_task(cfg.task.name, **params)
    except (TypeError, ValueError) as e:
        raise fail(f"--task-param: task {cfg.task.name!r} rejects {params}: {short(str(e))}") from None
    unknown = [s for s in args.split or [] if s not in task.splits]
    if unknown:
        raise fail(f"--split: unknown split(s) {unknown} of task {cfg.task.name!r}; its splits are "
                   f"{list(task.splits)}")
    device = _device("eval", args.device)
    model, state = _checkpoint_model("eval", ckpt, task, params, device)
    eval_seed = cfg.run.eval_seed if args.eval_seed is None else args.eval_seed
    rows = []
    for split in args.split or list(task.splits):
        per_example = evaluate_split(model, task, split, args.n or cfg.run.eval_size_per_split.get(
            split, cfg.run.eval_size), eval_seed, cfg.run.eval_batch_size, device,
            resolve_dtype("auto", device))
        rows += summarize(per_example, task.spec, split)
    print(f"checkpoint {ckpt} ({rec.task} x {rec.model}, lr={rec.lr:g}, seed={rec.seed}, "
          f"{state['steps_done']} steps); task params {params}")
    table = pd.DataFrame(rows)
    if not args.slices:
        table = table[table["slice_key"] == "all"]
    print(table.pivot_table(index=["split", "slice_key", "slice_value"], columns="metric", values="value",
                            sort=False).to_string(float_format=lambda v: f"{v:.4f}"))
    if args.json:
        Path(args.json).write_text(json.dumps({"run_id": rec.run_id, "task_params": params,
                                               "eval_seed": eval_seed, "metrics": rows}, indent=1))
        print(f"wrote {args.json}")
    return 0


def cmd_downstream(args: argparse.Namespace) -> int:
    """Score a stored run of the text task on a benchmark's items (:mod:`seqlib.downstream`)."""
    from seqlib.config import ExperimentConfig
    from seqlib.downstream import read_items, score_items, summary
    from seqlib.tasks import get_task

    try:
        items = read_items(args.items)
    except (OSError, ValueError) as e:
        raise _usage_error("downstream", f"--items: {e}") from None
    rec, ckpt = _stored_run("downstream", _results_dir("downstream", args.dir), args.run)
    if rec.task != "text":
        raise _usage_error("downstream", f"run {rec.run_id} is a run of {rec.task!r}: the benchmarks score a "
                           "language model, a run of the 'text' task")
    params = dict(ExperimentConfig.model_validate(rec.config).task.params)
    task = get_task(rec.task, **params)
    device = _device("downstream", args.device)
    model, _ = _checkpoint_model("downstream", ckpt, task, params, device)
    scores = summary(score_items(model, items, device))
    print(f"{args.items}: {rec.model} (run {rec.run_id}): " + ", ".join(
        f"{k} {v:.4f}" if k != "n" else f"{v} items" for k, v in scores.items()))
    if args.json:
        Path(args.json).write_text(json.dumps({"run_id": rec.run_id, "items": str(args.items), **scores}, indent=1))
        print(f"wrote {args.json}")
    return 0


def cmd_list(args: argparse.Namespace) -> int:
    from seqlib.models import MODELS
    from seqlib.tasks import get_task, list_tasks

    print("models:")
    for name, entry in sorted(MODELS.items()):
        gpu = " [GPU only]" if entry.requires_gpu else ""
        print(f"  {name:20s} {entry.description}{gpu}")
    print("tasks:")
    for name in list_tasks():
        task = get_task(name)
        spec = task.spec
        print(f"  {name:28s} splits {', '.join(task.splits)}; {spec.input_kind}->{spec.output_kind}, loss {spec.loss}")
    return 0


def cmd_bench(args: argparse.Namespace) -> int:
    """Hand the remaining arguments to the benchmark module's ``main`` (2 = no CUDA GPU)."""
    return importlib.import_module(BENCHMARKS[args.benchmark]).main(args.args)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="seqlib", description="Train, evaluate and tabulate seqlib sequence models on synthetic tasks.",
        epilog=EPILOG, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="command", required=True, metavar="{train,eval,downstream,results,list,bench}")

    p = sub.add_parser("train", help="train + evaluate (task, model) runs: every lr x seed; stores one record each",
                       description="Train and evaluate every learning rate x seed of the resolved config. A run "
                       "whose config hash already has an ok record is skipped unless --force. Exit status 1 if "
                       "any run failed (skipped = model unavailable here, reported with its reason).",
                       formatter_class=argparse.RawDescriptionHelpFormatter, epilog=EPILOG)
    p.add_argument("--task", required=True, help="task name, comma-separated names, or 'all'")
    p.add_argument("--model", required=True, help="model name, comma-separated names, or 'all'")
    p.add_argument("--profile", default="smoke", help="profile overlay from params/*.yaml (default: smoke)")
    p.add_argument("--set", action="append", metavar="KEY=VALUE",
                   help="override a config field, e.g. optim.lr=3e-4, model.d_model=64, task.params.seq_len=128")
    p.add_argument("--force", action="store_true", help="re-run even if a record with the same config hash exists")
    p.add_argument("--params", default=None, help="params directory (default: ./params or the repository's)")
    p.add_argument("--results-dir", default=None, help="shorthand for --set run.results_dir=DIR")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    p.set_defaults(func=cmd_train)

    p = sub.add_parser("eval", help="re-evaluate a stored checkpoint (by run id) on any split / task params",
                       description="Load the checkpoint of a stored ok run and evaluate it again, e.g. on more "
                       "examples or longer lengths. Never retrains and never changes the stored record.")
    p.add_argument("run_id", help="run id or a unique prefix (see `seqlib results`)")
    p.add_argument("--dir", default="results", help="results directory (default: results)")
    p.add_argument("--split", action="append", help="split to evaluate (repeatable; default: all)")
    p.add_argument("--n", type=_int_at_least(1), default=None,
                   help="examples per split, >= 1 (default: the run's eval size)")
    p.add_argument("--task-param", action="append", metavar="KEY=VALUE",
                   help="override a task constructor parameter, e.g. max_test_len=200")
    p.add_argument("--eval-seed", type=_int_at_least(0), default=None,
                   help="evaluation data seed (default: the run's run.eval_seed)")
    p.add_argument("--device", default="auto", choices=["auto", "cpu", "cuda"])
    p.add_argument("--slices", action="store_true", help="also print per-slice rows (length, ...)")
    p.add_argument("--json", default=None, help="write the metrics to this JSON file")
    p.set_defaults(func=cmd_eval)

    p = sub.add_parser("downstream", help="score a stored run of the text task on a benchmark's JSON-lines items",
                       description="Score a language model (a stored ok run of the text task) on items "
                       '{"context": ..., "choices": [...], "answer": i}, one JSON object a line, by the '
                       "log-likelihood of each choice's bytes after the context (seqlib.downstream).")
    p.add_argument("--run", required=True, help="run id or a unique prefix (see `seqlib results --task text`)")
    p.add_argument("--items", required=True, help="the benchmark's items, JSON lines")
    p.add_argument("--dir", default="results", help="results directory (default: results)")
    p.add_argument("--device", default="auto", choices=["auto", "cpu", "cuda"])
    p.add_argument("--json", default=None, help="write the scores to this JSON file")
    p.set_defaults(func=cmd_downstream)

    p = sub.add_parser("results", help="table of stored runs (or SPLIT at the chosen learning rates with --best SPLIT)")
    p.add_argument("--dir", default="results", help="results directory (default: results)")
    p.add_argument("--task")
    p.add_argument("--model")
    p.add_argument("--profile")
    p.add_argument("--metric", default="accuracy", help="metric per split in the table (default: accuracy)")
    p.add_argument("--best", metavar="SPLIT",
                   help="SPLIT at the learning rate chosen per (task, model) on its runs' selection split (never "
                        "the headline's where a run has another); mean, 95%% bootstrap CI, median and best over seeds")
    p.add_argument("--strict", action="store_true", help="fail on a corrupt or partial record instead of warning")
    p.set_defaults(func=cmd_results)

    p = sub.add_parser("list", help="list the models and tasks")
    p.set_defaults(func=cmd_list)

    p = sub.add_parser("bench", help="GPU benchmarks (scan, attention, models) into results/bench",
                       description="Run one benchmark; it writes a JSON record under results/bench/ (the "
                       "Efficiency chapter shows them). `seqlib bench NAME --help` lists its options. Exit "
                       "status 2 without a CUDA GPU.")
    p.add_argument("benchmark", choices=list(BENCHMARKS),
                   help="scan: RG-LRU scan kernels; attention: sliding-window attention; "
                   "models: [train|decode|all] model throughput and decode latency")
    p.add_argument("args", nargs=argparse.REMAINDER, help="the benchmark's own arguments")
    p.set_defaults(func=cmd_bench)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    return args.func(args)
