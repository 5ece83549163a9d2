"""Typed, validated run configuration loaded from ``params/*.yaml`` with profile overlays.

A run is one (task, model) pair resolved from four files, each overlaid in this order (later wins):

1. ``params/defaults.yaml``  -- sections ``optim``, ``run`` (and optionally ``param_budget``);
2. ``params/models.yaml``    -- ``<model name>: {ModelConfig fields}``;
3. ``params/tasks.yaml``     -- ``<task name>: {params: {...}, model: {...}, optim: {...}, run: {...}}``;
4. ``--set key.sub=value`` overrides (values parsed as YAML: ``optim.seeds=[0,1,2]``).

Every file may carry a top-level ``profiles:`` mapping ``<profile>: <same shape as the file>``; the
selected profile's block is deep-merged over that file's base entries before the next file is applied.

Unlike the Zoology harness, whose pydantic configs silently drop unknown fields
(``../shared/reference/tasks.md`` §1.2), every model here is ``extra="forbid"``: an unknown key, a
wrong type or an impossible value raises :class:`ConfigError` naming the dotted key and the file (and
the path inside the file) that set it.
"""

from __future__ import annotations

import copy
import hashlib
import inspect
import json
import math
import re
import reprlib
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from seqlib import tasks as task_registry
from seqlib.models import ModelConfig

PARAM_FILES = ("defaults.yaml", "models.yaml", "tasks.yaml")
PROFILES_KEY = "profiles"
# Fields that change where or how loudly a run is written, not what it computes: left out of the hash.
UNHASHED = {"run": ("results_dir", "progress", "progress_interval", "save_checkpoint")}
# Fields added after runs were stored: hashed only when they differ from their default, so a
# configuration that leaves them at the default keeps the hash (and the run id) it had before.
HASHED_WHEN_SET = {"optim": ("stop_at_solve", "plateau_evals", "plateau_delta", "sweep_seeds"), "model": ("pattern",)}


class ConfigError(ValueError):
    """A configuration problem; the message names the key and where it was set."""


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", allow_inf_nan=False)  # inf / nan is never a valid setting


class TaskConfig(_Strict):
    """A registry task name plus the keyword arguments of its constructor (checked by building it)."""

    name: str
    params: dict[str, Any] = Field(default_factory=dict)


class OptimConfig(_Strict):
    """Optimisation. ``optimizer="muon"`` uses ``torch.optim.Muon`` for hidden 2-D matrices only
    (see :func:`seqlib.train.build_optimizer`) and AdamW for everything else.

    The schedule is linear warmup over ``warmup_steps`` then cosine decay to ``min_lr`` at ``steps``.
    ``lr_sweep`` (empty = just ``lr``) and ``seeds`` define the runs of a sweep; the best learning rate
    is chosen afterwards from the stored results, on each run's selection split
    (:func:`seqlib.book.report.select_lr`). ``sweep_seeds`` makes the sweep two-stage: those seeds run
    every rate, and the other seeds run only at the rate chosen on them
    (:func:`seqlib.train.sweep_plan`); None: every seed runs every rate.

    Stopping (:func:`seqlib.train.validate`, at each evaluation of the selection split, every
    ``run.eval_every`` steps); ``steps`` is the cap. ``stop_at_solve`` stops once the split reaches the
    solve threshold of the task's scoring card (its metric, in its direction); ``plateau_evals = N``
    once the card's metric there has improved by no more than ``plateau_delta`` over the last N
    evaluations (their best against the best before them); ``early_stop_accuracy`` once the split's
    accuracy reaches it. A rule must stop on an in-distribution split (:func:`check_stopping`).
    """

    optimizer: Literal["adamw", "muon"] = "adamw"
    lr: float = Field(1e-3, gt=0)
    min_lr: float = Field(0.0, ge=0)
    weight_decay: float = Field(0.1, ge=0)
    betas: tuple[float, float] = (0.9, 0.98)
    warmup_steps: int = Field(0, ge=0)
    grad_clip: float | None = Field(1.0, gt=0)
    batch_size: int = Field(64, ge=1)
    steps: int = Field(1000, ge=1)
    early_stop_accuracy: float | None = Field(None, gt=0, le=1)
    stop_at_solve: bool = False
    plateau_evals: int | None = Field(None, ge=1)
    plateau_delta: float = Field(0.0, ge=0)
    lr_sweep: list[float] = Field(default_factory=list)
    seeds: list[int] = Field(default_factory=lambda: [0], min_length=1)
    sweep_seeds: list[int] | None = Field(None, min_length=1)

    @field_validator("betas")
    @classmethod
    def _betas(cls, v: tuple[float, float]) -> tuple[float, float]:
        if not all(0 <= b < 1 for b in v):
            raise ValueError(f"betas must lie in [0, 1), got {list(v)}")
        return v

    @field_validator("lr_sweep")
    @classmethod
    def _sweep(cls, v: list[float]) -> list[float]:
        if any(lr <= 0 for lr in v):
            raise ValueError(f"every learning rate must be > 0, got {v}")
        if len(set(v)) != len(v):
            raise ValueError(f"duplicate learning rates in {v}")
        return v

    @field_validator("seeds")
    @classmethod
    def _seeds(cls, v: list[int]) -> list[int]:
        if any(s < 0 for s in v) or len(set(v)) != len(v):
            raise ValueError(f"seeds must be distinct non-negative integers, got {v}")
        return v

    @model_validator(mode="after")
    def _consistent(self) -> OptimConfig:
        if self.warmup_steps >= self.steps:
            raise ValueError(f"warmup_steps ({self.warmup_steps}) must be < steps ({self.steps})")
        for lr in self.lrs:
            if self.min_lr > lr:
                raise ValueError(f"min_lr ({self.min_lr}) exceeds the learning rate {lr}")
        if self.plateau_delta and self.plateau_evals is None:
            raise ValueError(f"plateau_delta ({self.plateau_delta}) is set but plateau_evals is not")
        if self.sweep_seeds is not None and not set(self.sweep_seeds) <= set(self.seeds):
            raise ValueError(f"sweep_seeds {self.sweep_seeds} must be some of the seeds {self.seeds}")
        return self

    @property
    def stopping_rules(self) -> list[str]:
        """The dotted keys of the stopping rules that are set (the cap, ``steps``, aside)."""
        rules = {"stop_at_solve": self.stop_at_solve, "plateau_evals": self.plateau_evals is not None,
                 "early_stop_accuracy": self.early_stop_accuracy is not None}
        return [f"optim.{k}" for k, on in rules.items() if on]

    @property
    def lrs(self) -> list[float]:
        return self.lr_sweep or [self.lr]


class RunConfig(_Strict):
    """Where and how a run executes and is evaluated.

    ``eval_splits`` (None = every split of the task) are evaluated at the end on ``eval_size`` examples
    each (``eval_size_per_split`` overrides per split), drawn with ``eval_seed`` so every model and
    seed sees the same evaluation examples. Every ``eval_every`` steps the ``select_split`` (None = the
    first non-train split, :func:`select_split`) is evaluated for the training curve and stopping.
    """

    profile: str = "default"
    device: Literal["auto", "cpu", "cuda"] = "auto"
    dtype: Literal["auto", "float32", "bfloat16"] = "auto"
    eval_every: int = Field(100, ge=1)
    eval_splits: list[str] | None = None
    eval_size: int = Field(256, ge=1)
    eval_size_per_split: dict[str, int] = Field(default_factory=dict)
    eval_batch_size: int = Field(64, ge=1)
    eval_seed: int = Field(0, ge=0)
    select_split: str | None = None
    log_every: int = Field(1, ge=1)
    results_dir: str = "results"
    save_checkpoint: bool = True
    progress: bool = True
    progress_interval: float = Field(10.0, ge=0)

    @field_validator("eval_size_per_split")
    @classmethod
    def _sizes(cls, v: dict[str, int]) -> dict[str, int]:
        bad = {k: n for k, n in v.items() if n < 1}
        if bad:
            raise ValueError(f"eval sizes must be >= 1, got {bad}")
        return v


class ExperimentConfig(_Strict):
    """One fully resolved (task, model) configuration; ``param_budget`` sizes the model with
    :func:`seqlib.models.sizing.match_budget` when set."""

    model: ModelConfig
    task: TaskConfig
    optim: OptimConfig = Field(default_factory=OptimConfig)
    run: RunConfig = Field(default_factory=RunConfig)
    param_budget: int | None = Field(None, ge=1)

    def for_run(self, lr: float, seed: int) -> ExperimentConfig:
        """The configuration of one run of the sweep: a single learning rate and seed."""
        optim = self.optim.model_copy(update={"lr": lr, "lr_sweep": [], "seeds": [seed], "sweep_seeds": None})
        return self.model_copy(update={"optim": optim})

    def hash(self) -> str:
        """sha256 of the canonical JSON (sorted keys, no whitespace) minus the UNHASHED fields and the
        HASHED_WHEN_SET fields at their defaults."""
        data = self.model_dump(mode="json")
        for section, keys in UNHASHED.items():
            for key in keys:
                data[section].pop(key, None)
        for section, keys in HASHED_WHEN_SET.items():
            fields = type(getattr(self, section)).model_fields
            for key in keys:
                if data[section][key] == fields[key].default:
                    del data[section][key]
        return hashlib.sha256(canonical_json(data).encode()).hexdigest()


def canonical_json(obj: Any) -> str:
    return json.dumps(obj, sort_keys=True, separators=(",", ":"), ensure_ascii=True)


# --------------------------------------------------------------------------- loading


def _merge(base: dict, overlay: dict, sources: dict[str, str], label: str, prefix: str = "") -> None:
    """Deep-merge ``overlay`` into ``base`` in place, recording ``label`` as the source of each leaf.

    An empty mapping in the overlay replaces the base's mapping (so ``{}`` clears a setting)."""
    for key, value in overlay.items():
        if not isinstance(key, str):
            raise ConfigError(f"{label}: key {key!r} at {prefix or '<top>'} must be a string")
        path = f"{prefix}{key}"
        if isinstance(value, dict) and value and isinstance(base.get(key), dict):
            _merge(base[key], value, sources, label, path + ".")
            continue
        if isinstance(value, dict):
            base[key] = {}
            sources[path] = label
            _merge(base[key], value, sources, label, path + ".")
            continue
        base[key] = copy.deepcopy(value)
        for stale in [k for k in sources if k.startswith(path + ".")]:
            del sources[stale]
        sources[path] = label


ECHO_LIMIT = 200  # characters of a bad value echoed in an error message (a YAML alias bomb is huge)
MAX_ERROR_LINES = 10  # problems listed in one error message
_REPR = reprlib.Repr()
_REPR.maxlevel = 3
_REPR.maxtuple = _REPR.maxlist = _REPR.maxarray = _REPR.maxdict = _REPR.maxset = _REPR.maxfrozenset = 6
_REPR.maxdeque = 6
_REPR.maxstring = _REPR.maxlong = _REPR.maxother = ECHO_LIMIT


def short(text: str, limit: int = ECHO_LIMIT) -> str:
    """``text`` cut to ``limit`` characters, saying how long it was."""
    return text if len(text) <= limit else f"{text[:limit]}... ({len(text):,} characters)"


def short_repr(value: Any) -> str:
    """A repr of ``value`` of at most about ``ECHO_LIMIT`` characters, without building the whole
    repr (the repr of a YAML alias bomb grows exponentially)."""
    return short(_REPR.repr(value))


_PARSED: dict[tuple[str, int, int], dict] = {}  # (path, mtime, size) -> its parsed YAML


def _read_yaml(path: Path) -> dict:
    """The mapping a params file holds (a fresh copy: callers change it), parsed once per version of
    the file: a plan or a page loads hundreds of configurations from the same few files."""
    try:
        stat = path.stat()
    except OSError as e:
        raise ConfigError(f"{path}: cannot read it: {e.strerror or e}") from None
    key = (str(path.resolve()), stat.st_mtime_ns, stat.st_size)
    if key not in _PARSED:
        _PARSED[key] = _parse_yaml(path)
    return copy.deepcopy(_PARSED[key])


def _parse_yaml(path: Path) -> dict:
    try:
        data = yaml.safe_load(path.read_bytes().decode("utf-8")) or {}
    except UnicodeDecodeError as e:
        raise ConfigError(f"{path}: not a UTF-8 text file ({e.reason} at byte {e.start})") from None
    except OSError as e:
        raise ConfigError(f"{path}: cannot read it: {e.strerror or e}") from None
    except yaml.YAMLError as e:
        raise ConfigError(f"{path}: not valid YAML: {short(' '.join(str(e).split()), 400)}") from None
    if not isinstance(data, dict):
        raise ConfigError(f"{path}: the top level must be a mapping, got {type(data).__name__}")
    return data


def _layers(path: Path, profile: str) -> list[tuple[dict, str]]:
    """The base entries of a params file and its profile overlay, each with a source label."""
    data = _read_yaml(path)
    profiles = data.pop(PROFILES_KEY, {}) or {}
    if not isinstance(profiles, dict):
        raise ConfigError(f"{path}: '{PROFILES_KEY}' must map profile names to overlays")
    layers = [(data, str(path))]
    overlay = profiles.get(profile)
    if overlay is not None:
        if not isinstance(overlay, dict):
            raise ConfigError(f"{path}: {PROFILES_KEY}.{profile} must be a mapping")
        layers.append((overlay, f"{path} [{PROFILES_KEY}.{profile}]"))
    return layers


def _unknown_keys(data: dict, model: type[BaseModel], prefix: str = "") -> list[str]:
    """Dotted keys of ``data`` that ``model`` (recursively, through its sub-model fields) has no field for."""
    out = []
    for key, value in data.items():
        field = model.model_fields.get(key) if isinstance(key, str) else None
        if field is None:
            out.append(f"{prefix}{key}")
            continue
        sub = field.annotation
        if isinstance(value, dict) and isinstance(sub, type) and issubclass(sub, BaseModel):
            out += _unknown_keys(value, sub, f"{prefix}{key}.")
    return out


def _unknown_task_params(task: str, params: dict) -> list[str]:
    """Keys of ``params`` that the constructor of the registered task ``task`` does not take."""
    cls = task_registry.TASKS.get(task)
    if cls is None:
        return []
    sig = inspect.signature(cls.__init__).parameters
    if any(p.kind is inspect.Parameter.VAR_KEYWORD for p in sig.values()):
        return []
    return sorted(str(k) for k in params if k not in sig or k == "self")


def _check_layer(data: dict, fname: str, label: str) -> None:
    """Every key of one layer (a file's base entries or one profile overlay) is a known field; the
    error reads like :func:`validate`'s: ``<config key>: <problem> (set in <file> [<entry>])``."""
    extra = "Extra inputs are not permitted"
    lines = []
    if fname == "defaults.yaml":
        lines += [f"{key}: {extra} (set in {label})" for key in _unknown_keys(data, ExperimentConfig)]
    else:
        _check_entries(data, fname, label)
        for name, entry in data.items():
            if str(name).startswith("_") or entry is None:
                continue
            where = f"{label} [{name}]"
            if not isinstance(entry, dict):
                raise ConfigError(f"{where}: entry {name!r} must be a mapping")
            if fname == "models.yaml":
                lines += [f"{key}: {extra} (set in {where})" for key in _unknown_keys(entry, ModelConfig, "model.")]
                continue
            raw = _task_entry(entry, where)
            params = raw.pop("task", {}).get("params") or {}
            if not isinstance(params, dict):
                raise ConfigError(f"{where}: params must be a mapping")
            lines += [f"{key}: {extra} (set in {where})" for key in _unknown_keys(raw, ExperimentConfig)]
            lines += [f"task.params.{key}: not a parameter of task {name!r} (set in {where})"
                      for key in _unknown_task_params(name, params)]
    if lines:
        if len(lines) > MAX_ERROR_LINES:
            lines = lines[:MAX_ERROR_LINES] + [f"... and {len(lines) - MAX_ERROR_LINES} more problem(s)"]
        raise ConfigError("invalid configuration:\n  " + "\n  ".join(short(line, 400) for line in lines))


def check_params_files(params_dir: Path) -> None:
    """Check every params file and every profile in it, not just the selected one: a typo in a profile
    is an error naming the file and the profile as soon as any configuration is loaded."""
    stamp = tuple((str(p.resolve()), p.stat().st_mtime_ns, p.stat().st_size) for p in
                  (params_dir / f for f in PARAM_FILES) if p.exists())
    if stamp in _CHECKED:
        return
    _check_params_files(params_dir)
    _CHECKED.add(stamp)


_CHECKED: set[tuple] = set()  # params files (path, mtime, size) already checked in this process


def _check_params_files(params_dir: Path) -> None:
    for fname in PARAM_FILES:
        path = params_dir / fname
        if not path.exists():
            continue
        data = _read_yaml(path)
        profiles = data.pop(PROFILES_KEY, {}) or {}
        if not isinstance(profiles, dict):
            raise ConfigError(f"{path}: '{PROFILES_KEY}' must map profile names to overlays")
        _check_layer(data, fname, str(path))
        for name, overlay in profiles.items():
            label = f"{path} [{PROFILES_KEY}.{name}]"
            if overlay is None:
                continue
            if not isinstance(overlay, dict):
                raise ConfigError(f"{label}: must be a mapping")
            _check_layer(overlay, fname, label)


def known_profiles(params_dir: Path) -> set[str]:
    names: set[str] = set()
    for fname in PARAM_FILES:
        path = params_dir / fname
        if path.exists():
            names |= set((_read_yaml(path).get(PROFILES_KEY) or {}).keys())
    return names


def parse_set(item: str) -> tuple[str, Any]:
    """``"optim.lr=3e-4"`` -> ``("optim.lr", 3e-4)``; the value is parsed as YAML."""
    key, sep, raw = item.partition("=")
    if not sep or not key.strip():
        raise ConfigError(f"--set {item!r}: expected key.sub=value")
    try:
        value = yaml.safe_load(raw)
    except yaml.YAMLError as e:
        raise ConfigError(f"--set {item!r}: value is not valid YAML: {e}") from e
    return key.strip(), value


def _nest(dotted: str, value: Any) -> dict:
    out: Any = value
    for part in reversed(dotted.split(".")):
        out = {part: out}
    return out


def default_params_dir() -> Path:
    """``./params`` if it exists, else the repository's ``params/`` next to the package."""
    here = Path("params")
    return here if here.is_dir() else Path(__file__).resolve().parent.parent / "params"


def resolve(
    task: str,
    model: str,
    profile: str = "smoke",
    overrides: list[str] | tuple[str, ...] = (),
    params_dir: str | Path | None = None,
) -> tuple[dict, dict[str, str]]:
    """Merge the params files, the profile overlays and ``overrides`` into a raw config dict.

    Returns the dict and a map from each dotted key to the file (and path inside it) that set it.
    """
    pdir = Path(params_dir) if params_dir is not None else default_params_dir()
    if not pdir.is_dir():
        raise ConfigError(f"params directory {pdir} does not exist" if not pdir.exists()
                          else f"params path {pdir} is not a directory")
    check_params_files(pdir)
    profiles = known_profiles(pdir)
    if profile not in profiles and profile != "default":
        raise ConfigError(f"unknown profile {profile!r}; the files in {pdir} define {sorted(profiles)}")
    raw: dict = {"model": {"name": model}, "task": {"name": task}, "run": {"profile": profile}}
    sources = {"model.name": "--model", "task.name": "--task", "run.profile": "--profile"}
    for fname in PARAM_FILES:
        path = pdir / fname
        if not path.exists():
            raise ConfigError(f"{path}: missing params file")
        for data, label in _layers(path, profile):
            if fname == "defaults.yaml":
                _merge(raw, data, sources, label)
                continue
            entry_name = model if fname == "models.yaml" else task
            _check_entries(data, fname, label)
            entry = data.get(entry_name)
            if entry is None:
                continue
            if not isinstance(entry, dict):
                raise ConfigError(f"{label}: entry {entry_name!r} must be a mapping")
            entry_label = f"{label} [{entry_name}]"
            _merge(raw, {"model": entry} if fname == "models.yaml" else _task_entry(entry, entry_label),
                   sources, entry_label)
    for item in overrides:
        key, value = parse_set(item)
        _merge(raw, _nest(key, value), sources, f"--set {item}")
    return raw, sources


def _check_entries(data: dict, fname: str, label: str) -> None:
    """Every entry of models.yaml / tasks.yaml names a registered model / task (``_x``: anchors only)."""
    from seqlib.models import list_models

    known = list_models() if fname == "models.yaml" else task_registry.list_tasks()
    kind = "model" if fname == "models.yaml" else "task"
    unknown = sorted(k for k in data if not str(k).startswith("_") and k not in known)
    if unknown:
        raise ConfigError(f"{label}: unknown {kind}(s) {unknown}; known {kind}s: {', '.join(known)}")


def _task_entry(entry: dict, label: str) -> dict:
    allowed = {"params", "model", "optim", "run", "param_budget"}
    unknown = sorted(set(entry) - allowed)
    if unknown:
        raise ConfigError(f"{label}: unknown key(s) {unknown}; a task entry may hold {sorted(allowed)}")
    out = {k: v for k, v in entry.items() if k != "params"}
    if "params" in entry:
        out["task"] = {"params": entry["params"]}
    return out


def _source(loc: tuple, sources: dict[str, str], message: str = "") -> str:
    """Where the value at ``loc`` was set. For a whole-section error (a cross-field check) the leaf
    keys named in ``message`` are listed with their files instead."""
    parts = [str(p) for p in loc]
    prefix = ".".join(parts)
    named = [k for k in sources if k.startswith(prefix + ".") and re.search(rf"\b{k.rsplit('.', 1)[1]}\b", message)]
    if parts and named:
        return "; ".join(f"{k} in {sources[k]}" for k in sorted(named))
    for n in range(len(parts), 0, -1):
        key = ".".join(parts[:n])
        if key in sources:
            return sources[key]
    return "(default value)"


def validate(raw: dict, sources: dict[str, str]) -> ExperimentConfig:
    """Validate a raw dict into an :class:`ExperimentConfig`, then check it against its task.

    Errors read ``<key>: <problem> (set in <file> [<path in file>])``, one line per problem.
    """
    try:
        cfg = ExperimentConfig.model_validate(raw)
    except ValidationError as e:
        lines = []
        for err in e.errors():
            loc = tuple(p for p in err["loc"] if not str(p).startswith("function-"))
            key = ".".join(str(p) for p in loc) or "<config>"
            got = f" [got {short_repr(err['input'])}]" if err["type"] != "missing" and not isinstance(
                err["input"], dict) else ""
            lines.append(f"{key}: {short(err['msg'])}{got} (set in {_source(loc, sources, err['msg'])})")
        if len(lines) > MAX_ERROR_LINES:
            lines = lines[:MAX_ERROR_LINES] + [f"... and {len(lines) - MAX_ERROR_LINES} more problem(s)"]
        raise ConfigError("invalid configuration:\n  " + "\n  ".join(lines)) from None
    check_against_task(cfg, sources)
    check_device(cfg, sources)
    return cfg


def check_device(cfg: ExperimentConfig, sources: dict[str, str] | None = None) -> None:
    """``run.device=cuda`` needs CUDA here: refused when the configuration is resolved, not when the
    run starts."""
    if cfg.run.device == "cuda":
        import torch

        if not torch.cuda.is_available():
            raise ConfigError("run.device: cuda, but CUDA is not available on this machine; use auto or cpu "
                              f"(set in {_source(('run', 'device'), sources or {})})")


def check_against_task(cfg: ExperimentConfig, sources: dict[str, str] | None = None) -> None:
    """Build the task (so its constructor validates ``task.params``) and check split names."""
    sources = sources or {}
    where = sorted({v for k, v in sources.items() if k.startswith("task.")}) or ["(default value)"]
    for key, value in cfg.task.params.items():
        if isinstance(value, float) and not math.isfinite(value):
            raise ConfigError(f"task.params.{key}: {value} is not a finite number "
                              f"(set in {_source(('task', 'params', key), sources)})")
    try:
        task = task_registry.get_task(cfg.task.name, **cfg.task.params)
    except (TypeError, ValueError, KeyError) as e:
        raise ConfigError(f"task.params: {short(str(e))} (task {cfg.task.name!r}; set in {', '.join(where)})") from None
    splits = list(task.splits)
    named = [("run.eval_splits", s) for s in cfg.run.eval_splits or []]
    named += [(f"run.eval_size_per_split.{s}", s) for s in cfg.run.eval_size_per_split]
    if cfg.run.select_split is not None:
        named.append(("run.select_split", cfg.run.select_split))
    for key, split in named:
        if split not in splits:
            raise ConfigError(
                f"{key}: unknown split {split!r} of task {cfg.task.name!r}; its splits are {splits} "
                f"(set in {_source(tuple(key.split('.')), sources)})"
            )
    problem = max_len_problem(cfg.model, task)
    if problem:
        raise ConfigError(f"model.max_len: {problem} (task {cfg.task.name!r}; max_len set in "
                          f"{_source(('model', 'max_len'), sources)}; task params in {', '.join(where)})")
    check_stopping(cfg, task, sources)


def select_split(cfg: ExperimentConfig, task: task_registry.Task) -> str:
    """The split for the training curve and the stopping rules: ``run.select_split``, else the task's
    first non-train split."""
    return cfg.run.select_split or next((s for s in task.splits if s != "train"), task.splits[0])


OOD_PROBE = 64  # examples of a split, and of train, that distribution_shift compares


def out_of_distribution(task: task_registry.Task, split: str) -> str | None:
    """Why ``split`` is not drawn from the training distribution, or None. The task's declaration
    decides (``Task.in_distribution``); the reason is what its samples show (:func:`distribution_shift`),
    else the declaration itself: MQAR's ``test_value`` differs only in ids no metadata carries. A task
    that declares nothing (a wrapper) is judged by its samples alone. ``tests/test_convergence.py``
    checks that no declared split shows a shift."""
    task.check_split(split)
    declared = task.in_distribution
    if declared is not None and split in declared:
        return None
    shift = distribution_shift(task, split)
    if shift or declared is None:
        return shift
    return (f"task {task.name!r} does not declare it in distribution (its in-distribution splits: "
            f"{', '.join(declared)})")


def in_distribution_splits(task: task_registry.Task) -> tuple[str, ...]:
    """The splits of ``task`` drawn from the training distribution, as :func:`out_of_distribution` judges
    them: its declaration, else the splits whose samples show no shift."""
    if task.in_distribution is not None:
        return task.in_distribution
    return tuple(s for s in task.splits if distribution_shift(task, s) is None)


def distribution_shift(task: task_registry.Task, split: str) -> str | None:
    """How ``split`` differs from ``train`` as far as the task's samples show it, or None: lengths
    outside its scoring card's ``train_lengths``, or a metadata value constant on both splits but
    different (flip-flop's ``p_i``, the DP tasks' ``value_scale``)."""
    lo, hi = task.scoring.train_lengths
    lengths = task.lengths(split)
    pinned = {"length": lengths[0]} if lengths else {}
    meta = task.sample(split, OOD_PROBE, seed=0, **pinned).meta
    spans = sorted(lengths or set(meta[task_registry.Scoring.length_key].tolist()))
    if not lo <= spans[0] <= spans[-1] <= hi:
        return f"its length {_span(spans[0], spans[-1])} lies outside the training length {_span(lo, hi)}"
    train = task.sample("train", OOD_PROBE, seed=0, **pinned).meta
    for key, values in meta.items():
        ours, theirs = set(values.tolist()), set(train.get(key, values).tolist())
        if len(ours) == len(theirs) == 1 and ours != theirs:
            return f"its {key} is {ours.pop()}, the training split's {theirs.pop()}"
    return None


def _span(lo: int, hi: int) -> str:
    return str(lo) if lo == hi else f"{lo}..{hi}"


def check_stopping(cfg: ExperimentConfig, task: task_registry.Task, sources: dict[str, str] | None = None) -> None:
    """Refuse a stopping rule that would stop on a split out of the training distribution
    (:func:`out_of_distribution`), and ``optim.stop_at_solve`` on a task whose scoring card has no
    solve threshold."""
    rules = cfg.optim.stopping_rules
    if not rules:
        return

    def where(*keys: str) -> str:
        return "; ".join(f"{k} in {_source(tuple(k.split('.')), sources or {})}" for k in keys)

    card = task.scoring
    if cfg.optim.stop_at_solve and card.solve_threshold is None:
        raise ConfigError(f"optim.stop_at_solve: task {cfg.task.name!r} has no solve threshold on its scoring "
                          f"card ({card.threshold_source}); use optim.plateau_evals "
                          f"(set in {where('optim.stop_at_solve')})")
    split = select_split(cfg, task)
    reason = out_of_distribution(task, split)
    if reason:
        fits = [s for s in in_distribution_splits(task) if s != "train"]
        raise ConfigError(
            f"{', '.join(rules)}: would stop on split {split!r} of task {cfg.task.name!r}, which is out of the "
            f"training distribution: {reason}; set run.select_split to an in-distribution split "
            f"({', '.join(fits) or 'the task has none'}) (set in {where(*rules, 'run.select_split')})")


def longest_sequence(task: task_registry.Task) -> tuple[int, str]:
    """The longest input sequence (positions) ``task`` produces over its splits, and that split: one
    example of each split at its longest length."""
    best = (0, "")
    for split in task.splits:
        lengths = task.lengths(split)
        batch = task.sample(split, 1, 0, length=max(lengths)) if lengths else task.sample(split, 1, 0)
        best = max(best, (int(batch.inputs.shape[1]), split))
    return best


def max_len_problem(model: ModelConfig, task: task_registry.Task) -> str | None:
    """Why ``model`` cannot read every sequence of ``task`` (None if it can): learned position
    embeddings (``pos_encoding=learned`` in a global-attention model) exist only for positions below
    ``max_len``."""
    if model.pos_encoding != "learned" or "global_attention" not in model.block_types:
        return None
    longest, split = longest_sequence(task)
    if longest <= model.max_len:
        return None
    return (f"learned position embeddings cover {model.max_len} positions, but split {split!r} has "
            f"sequences of {longest}; set model.max_len >= {longest}")


def load_config(
    task: str,
    model: str,
    profile: str = "smoke",
    overrides: list[str] | tuple[str, ...] = (),
    params_dir: str | Path | None = None,
) -> ExperimentConfig:
    """Resolve and validate the configuration of ``(task, model)`` under ``profile``."""
    raw, sources = resolve(task, model, profile, overrides, params_dir)
    return validate(raw, sources)
