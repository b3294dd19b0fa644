"""Typed experiment configuration loaded from YAML and validated once, at the edge."""

from __future__ import annotations

import dataclasses
import os
import re
import types
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from raynas.api import strategy_class, strategy_names
from raynas.compute import BATCH_NORMS, DEVICES, PRECISIONS, ComputeConfig
from raynas.data.datasets import DATASETS, DataConfig
from raynas.hardware.estimates import DeviceSpec
from raynas.hardware.targets import TARGETS
from raynas.space.catalog import known_space, space_names
from raynas.space.cells import is_cell_space
from raynas.supernet.supernet import SHARINGS, SupernetConfig
from raynas.training import RetrainConfig


class ConfigError(ValueError):
    """A configuration problem; the message names the field and the fix."""


@dataclass(frozen=True)
class EstimateConfig:
    """Latency of hardware we cannot reach: a per-op table measured elsewhere, a roofline of a device
    spec, or (cell spaces) a tabular benchmark's per-architecture column."""

    table: str | None = None  # YAML/JSON per-op table (format: raynas/hardware/estimates.py)
    device: DeviceSpec | None = None  # or peak GFLOP/s, bandwidth GB/s and per-op overhead for a roofline
    lookup: str | None = None  # or a tabular benchmark CSV (nb201_hw.csv): the target's name is one of its latency_ms.<device>
    batch_size: int = 1  # roofline batch (an imported table states its own)


@dataclass(frozen=True)
class TargetConfig:
    """One hardware target and the latency budgets to search under."""

    name: str  # a registered target (raynas targets) or, with estimate, any name
    budgets_ms: tuple[float, ...] = ()  # absolute budgets in ms
    budget_fractions: tuple[float, ...] = ()  # or positions in (0, 1] between the space's fastest and slowest net
    estimate: EstimateConfig | None = None  # set for unreachable hardware: latencies are estimated, never measured

    @property
    def estimated(self) -> bool:
        return self.estimate is not None

    def budgets(self, fastest_ms: float, slowest_ms: float) -> list[float]:
        """The budgets in ms: as given, or the fractions placed between the fastest and slowest network."""
        return list(self.budgets_ms) or [fastest_ms + f * (slowest_ms - fastest_ms) for f in self.budget_fractions]


@dataclass(frozen=True)
class ProfileConfig:
    """How latency tables and final networks are measured."""

    warmup: int = 10  # untimed calls before timing each module
    repeats: int = 100  # timed calls per module, each paired with a yardstick call (raynas/hardware/timing.py)
    calibration_archs: int = 8  # whole networks timed to calibrate the overhead: fastest and slowest (3 or more), then random ones
    fit_scale: bool = True  # also fit a scale on summed ops (needs >= 4 networks; false: overhead only, see README)
    settle_seconds: float = 10.0  # pause before profiling and before final measurement so the node's own work (worker starts) is done
    cache_dir: str | None = None  # reuse op latencies measured by earlier runs on the same setting (off: None)


SCHEDULERS = ("asha", "hyperband")


@dataclass(frozen=True)
class ASHAConfig:
    """The early-stopping random search (``evaluation.asha``)."""

    enabled: bool = False  # run the early-stopped random search as a third baseline
    scheduler: str = "asha"  # asha | hyperband
    max_epochs: int = 4  # epochs a trial may train (Tune's max_t)
    grace_epochs: int = 1  # epochs before a trial may be stopped
    reduction_factor: int = 3  # keep 1 in this many trials at each rung
    candidates: int = 64  # architectures drawn from the window; the compute budget usually ends the run first
    budget_floor: float = 0.9  # candidates are drawn from the latency window [floor * B, B] of each budget B
    eval_batches: int = 8  # validation batches scoring each epoch


@dataclass(frozen=True)
class EvaluationConfig:
    """The honest comparison every experiment makes (Lindauer & Hutter's NAS checklist)."""

    seeds: int = 1  # independent replicates (warm-up, search, retraining) of every scenario: seed, seed+1, ...
    random_search: bool = True  # random search in the same latency window, pipeline and wall-clock budget
    random_train_fraction: float = 0.5  # share of the random search's time training shared weights (all with search.final_top_k > 0)
    hand_designed_widths: tuple[float, ...] = (0.5, 1.0)  # MobileNetV2-style references (k3e6 everywhere); () for none
    report: bool = True  # write report.md / report.html with plots at the end
    tuning: str = ""  # how the search settings were chosen: which split, which trials, what they cost (record and report show it)
    asha: ASHAConfig = field(default_factory=ASHAConfig)  # random search with early stopping (standalone training, Tune scheduler)


@dataclass(frozen=True)
class TrackingConfig:
    mlflow_uri: str | None = None  # default: sqlite:///<run_dir>/mlflow.db
    experiment: str = "raynas"  # MLflow experiment; registered models are named <experiment>-<target>-<budget>ms


@dataclass(frozen=True)
class RayConfig:
    address: str | None = None  # None: join RAY_ADDRESS / a running cluster, else start a local Ray
    num_cpus: int | None = None  # CPUs of a local Ray (None: all)
    cpus_per_trial: int = 1  # CPUs each search / retraining trial reserves (and its torch threads)
    gpus_per_trial: float = 0  # GPUs each search / retraining trial reserves and trains on; 0.25: four trials share one GPU
    gpus_per_task: float = 0  # GPUs of the one-off training tasks (supernet warm-up, OFA progressive shrinking)
    workers_per_trial: int = (
        1  # Ray Train workers per search / retraining trial, each cpus_per_trial CPUs + gpus_per_trial GPUs; data.batch_size is global
    )
    workers_per_task: int = 1  # Train workers of the warm-up and OFA's shrinking (each cpus_per_trial CPUs, gpus_per_task GPUs); 1: a task
    max_concurrent_trials: int = 0  # 0: as many as resources allow
    max_failures: int = 3  # retries of a trial whose worker or node died (Tune FailureConfig)
    checkpoint_seconds: float = (
        10.0  # a search trial saves its state after a step once this long has passed since the last save (0: every step)
    )
    storage_path: str | None = None  # Tune results; None: <run_dir>/tune. Multi-machine clusters need a URI or NFS path


@dataclass(frozen=True)
class ExperimentConfig:
    name: str  # the experiment; runs go to <run_root>/<name>/<timestamp>
    targets: tuple[TargetConfig, ...]  # hardware targets, each with its budgets (budgets_ms or budget_fractions)
    space: str = "mnist-small"  # the search space (raynas spaces)
    strategy: str = "proxyless"  # proxyless: one gradient search per scenario; ofa: one elastic supernet, evolution per scenario
    seed: int = 0  # first seed; evaluation.seeds replicates use seed, seed+1, ...
    run_root: str = "runs"  # run directories are created under this folder
    data: DataConfig = field(default_factory=DataConfig)  # the dataset and its splits
    compute: ComputeConfig = field(default_factory=ComputeConfig)  # device and numerics of training
    retrain: RetrainConfig = field(default_factory=RetrainConfig)  # training every finalist from scratch
    supernet: SupernetConfig = field(default_factory=SupernetConfig)  # how weight-sharing supernets hold their candidates
    profile: ProfileConfig = field(default_factory=ProfileConfig)  # latency tables and final measurement
    evaluation: EvaluationConfig = field(default_factory=EvaluationConfig)  # baselines and seeds
    tracking: TrackingConfig = field(default_factory=TrackingConfig)  # MLflow
    ray: RayConfig = field(default_factory=RayConfig)  # the cluster and what each trial reserves
    sections: dict[str, Any] = field(default_factory=dict)  # every strategy's own section (search, ofa, ...), by section name

    def __getattr__(self, name: str) -> Any:
        """A strategy's section as an attribute: ``cfg.search``, ``cfg.ofa``, ``cfg.petridish``."""
        sections = self.__dict__.get("sections") or {}
        if name.startswith("_") or name not in sections:
            raise AttributeError(f"{type(self).__name__} has no field or strategy section {name!r}")
        return sections[name]

    def to_dict(self) -> dict[str, Any]:
        """The config as YAML holds it: strategy sections at the top level."""
        out = dataclasses.asdict(self)
        return out | out.pop("sections")


def read_yaml_mapping(path: str | Path, what: str, hint: str) -> dict[str, Any]:
    """A YAML file holding a mapping; a missing file, bad YAML or another shape is a ConfigError
    naming ``what`` and the path (``hint``: what to pass instead of a missing file)."""
    path = Path(path)
    if not path.is_file():
        raise ConfigError(f"{what} {path} does not exist; {hint}")
    try:
        raw = yaml.safe_load(path.read_text())
    except yaml.YAMLError as exc:
        raise ConfigError(f"{what} {path} is not valid YAML: {exc}") from None
    if not isinstance(raw, dict):
        raise ConfigError(f"{what} {path} must hold a mapping of fields, got {type(raw).__name__}")
    return raw


def load_config(path: str | Path, overrides: dict[str, Any] | None = None, *, check_data: bool = True) -> ExperimentConfig:
    """Read, parse and validate a YAML config; every problem is a ConfigError naming the field.
    ``check_data=False`` leaves the dataset folder to a later ``check_dataset_folder`` (see ``raynas run``)."""
    raw = read_yaml_mapping(path, "config file", "pass one of experiments/configs/*.yaml")
    for dotted, value in (overrides or {}).items():
        _set_dotted(raw, dotted, value)
    return parse_config(raw, check_data=check_data)


def parse_config(raw: dict[str, Any], *, check_data: bool = True) -> ExperimentConfig:
    """Build and validate; each registered strategy's section is parsed into that strategy's dataclass."""
    if not isinstance(raw, dict):
        raise ConfigError(f"config field (top level): expected a mapping, got {raw!r}")
    if "sections" in raw:
        raise ConfigError("config field sections: unknown key; give each strategy's section at the top level (search:, ofa:, ...)")
    classes = {strategy_class(name).section: strategy_class(name) for name in strategy_names()}
    rest = {k: v for k, v in raw.items() if k not in classes}
    sections = {name: _build(cls.config_type, raw.get(name) or {}, f"{name}.") for name, cls in classes.items()}
    cfg = _build(ExperimentConfig, rest, "", extra=tuple(classes))
    cfg = _expand_paths(dataclasses.replace(cfg, sections=sections))
    _validate(cfg, classes)
    if check_data:
        check_dataset_folder(cfg)
    return cfg


_VARIABLE = re.compile(r"\$\{(\w+)(?::-([^}]*))?\}")


def expand_path(text: str) -> str:
    """``~`` and ``${NAME}`` / ``${NAME:-default}`` in a path field, as a shell expands them, so one
    config serves every clone (``${RAYNAS_DATA:-../shared/data}``). An unset name without a default stays."""
    return os.path.expanduser(_VARIABLE.sub(lambda m: os.environ.get(m[1]) or (m[0] if m[2] is None else m[2]), text))


def _expand_paths(cfg: ExperimentConfig) -> ExperimentConfig:
    """Data root and latency-table paths with their variables expanded and made absolute against the
    driver's directory, since trials run in directories of their own (the saved config holds the result)."""
    full = lambda text: os.path.abspath(expand_path(text))  # noqa: E731
    targets = tuple(dataclasses.replace(t, estimate=_expanded_estimate(t.estimate, full)) if t.estimate else t for t in cfg.targets)
    data = dataclasses.replace(cfg.data, root=full(cfg.data.root)) if cfg.data.root else cfg.data
    return dataclasses.replace(cfg, targets=targets, data=data)


def _expanded_estimate(est: EstimateConfig, full) -> EstimateConfig:
    return dataclasses.replace(est, table=est.table and full(est.table), lookup=est.lookup and full(est.lookup))


def check_dataset_folder(cfg: ExperimentConfig) -> None:
    """The dataset folder exists (every dataset but the embedded MNIST reads one)."""
    if cfg.data.dataset != "mnist-embedded":
        _check(
            bool(cfg.data.root) and Path(cfg.data.root).expanduser().is_dir(),
            "data.root",
            f"{cfg.data.root!r} is not an existing directory; point it at the dataset on disk",
        )


def _set_dotted(raw: dict, dotted: str, value: Any) -> None:
    *parents, leaf = dotted.split(".")
    node = raw
    for key in parents:
        node = node.setdefault(key, {})
    node[leaf] = value


def _build(cls: type, raw: Any, prefix: str, extra: tuple[str, ...] = ()) -> Any:
    if not isinstance(raw, dict):
        raise ConfigError(f"config field {prefix.rstrip('.') or '(top level)'}: expected a mapping, got {raw!r}")
    hints = typing.get_type_hints(cls)
    names = {f.name for f in dataclasses.fields(cls)} - {"sections"}
    unknown = sorted(set(raw) - names, key=str)
    if unknown:
        raise ConfigError(
            f"config field {prefix}{_shown(unknown[0])}: unknown key; valid keys here: {', '.join(sorted(names | set(extra)))}"
        )
    missing = [
        f.name
        for f in dataclasses.fields(cls)
        if f.name not in raw and f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING
    ]
    if missing:
        raise ConfigError(f"config field {prefix}{missing[0]}: required but missing")
    return cls(**{key: _coerce(hints[key], value, f"{prefix}{key}") for key, value in raw.items()})


def _shown(key: Any) -> str:
    """A key as typed when it is a plain name, else its repr (never a raw newline in a message)."""
    return key if isinstance(key, str) and key.isprintable() and key.strip() == key and key else repr(key)


def _coerce(tp: Any, value: Any, name: str) -> Any:
    origin, args = typing.get_origin(tp), typing.get_args(tp)
    if origin in (typing.Union, types.UnionType):
        if value is None and type(None) in args:
            return None
        return _coerce(next(a for a in args if a is not type(None)), value, name)
    if dataclasses.is_dataclass(tp):
        return _build(tp, value, f"{name}.")
    if origin is tuple:
        if not isinstance(value, (list, tuple)):
            raise ConfigError(f"config field {name}: expected a list, got {value!r}")
        return tuple(_coerce(args[0], v, f"{name}[{i}]") for i, v in enumerate(value))
    if tp is float and isinstance(value, (int, float)) and not isinstance(value, bool):
        return float(value)
    if tp in (int, str, bool) and type(value) is tp:
        return value
    raise ConfigError(f"config field {name}: expected {getattr(tp, '__name__', tp)}, got {value!r}")


def _validate(cfg: ExperimentConfig, strategies: dict[str, type]) -> None:
    _check(known_space(cfg.space), "space", f"unknown search space {cfg.space!r}; valid: {', '.join(space_names())}")
    _check(cfg.data.dataset in DATASETS, "data.dataset", f"unknown dataset {cfg.data.dataset!r}; valid: {', '.join(DATASETS)}")
    _check(
        0 < cfg.data.val_fraction < 1 and 0 <= cfg.data.test_fraction < 1 and cfg.data.val_fraction + cfg.data.test_fraction < 1,
        "data.val_fraction",
        "fractions must be in (0, 1) and sum below 1",
    )
    _check(
        cfg.strategy in strategy_names(),
        "strategy",
        f"unknown search strategy {cfg.strategy!r}; valid: {', '.join(strategy_names())}",
    )
    _check(cfg.supernet.sharing in SHARINGS, "supernet.sharing", f"unknown sharing {cfg.supernet.sharing!r}; valid: {', '.join(SHARINGS)}")
    _validate_compute(cfg, strategies)
    _validate_cell_space(cfg)
    _check(len(cfg.targets) > 0, "targets", "list at least one hardware target")
    for i, tgt in enumerate(cfg.targets):
        where = f"targets[{i}]"
        if tgt.estimated:
            _check_estimate(tgt.estimate, f"{where}.estimate")
        else:
            _check(
                tgt.name in TARGETS,
                f"{where}.name",
                f"unknown hardware target {tgt.name!r}; valid: {', '.join(TARGETS.names())} "
                "(or give `estimate:` for hardware you cannot reach)",
            )
        _check(bool(tgt.budgets_ms) != bool(tgt.budget_fractions), where, "give exactly one of budgets_ms or budget_fractions (non-empty)")
        _check(all(b > 0 for b in tgt.budgets_ms), f"{where}.budgets_ms", "budgets must be positive milliseconds")
        _check(all(0 < f <= 1 for f in tgt.budget_fractions), f"{where}.budget_fractions", "fractions must lie in (0, 1]")
    ev = cfg.evaluation
    _check(ev.random_train_fraction < 1, "evaluation.random_train_fraction", "must lie in [0, 1): the rest of the time scores candidates")
    check(0 < ev.asha.budget_floor <= 1, "evaluation.asha.budget_floor", "must lie in (0, 1]")
    check(ev.asha.scheduler in SCHEDULERS, "evaluation.asha.scheduler", f"must be one of {', '.join(SCHEDULERS)}")
    check(
        ev.asha.grace_epochs <= ev.asha.max_epochs and ev.asha.reduction_factor >= 2,
        "evaluation.asha",
        "grace_epochs at most max_epochs, reduction_factor at least 2",
    )
    widths = ev.hand_designed_widths
    _check(
        all(0 < w <= 4 for w in widths) and len(set(widths)) == len(widths),
        "evaluation.hand_designed_widths",
        "distinct width multipliers in (0, 4]",
    )
    names = [t.name for t in cfg.targets]
    _check(len(set(names)) == len(names), "targets", "each target may appear once; list several budgets under it instead")
    for section, obj in (
        ("retrain", cfg.retrain),
        ("profile", cfg.profile),
        ("data", cfg.data),
        ("ray", cfg.ray),
        ("evaluation", ev),
        ("compute", cfg.compute),
        *cfg.sections.items(),
    ):
        _check_numbers(section, obj)
    for name, cls in strategies.items():
        cls().validate(cfg.sections[name], cfg)


def _validate_cell_space(cfg: ExperimentConfig) -> None:
    """A cell space (nb201) is searched by a black-box strategy on tabular targets; chains never use lookups."""
    cells = is_cell_space(cfg.space)
    _check(
        not (cells and cfg.evaluation.asha.enabled),
        "evaluation.asha.enabled",
        f"the ASHA baseline samples MBConv chains; on {cfg.space!r} use strategy: random with blackbox.scheduler: asha",
    )
    if cells:
        cls = strategy_class(cfg.strategy)
        _check(
            cls.cell_spaces,
            "strategy",
            f"{cfg.strategy!r} searches MBConv chain spaces only; space {cfg.space!r} takes one of "
            f"{', '.join(n for n in strategy_names() if strategy_class(n).cell_spaces)}",
        )
    for i, tgt in enumerate(cfg.targets):
        lookup = tgt.estimate is not None and tgt.estimate.lookup is not None
        _check(
            lookup == cells,
            f"targets[{i}].estimate.lookup",
            f"space {cfg.space!r} needs a tabular benchmark per target (estimate: {{lookup: .../nb201_hw.csv}})"
            if cells
            else f"a tabular lookup holds cells of a cell space, not {cfg.space!r}; set space: nb201 or drop lookup",
        )


def _validate_compute(cfg: ExperimentConfig, strategies: dict[str, type]) -> None:
    """Device, precision and GPU reservations that agree with each other (the cluster is checked at connect)."""
    c, gpus = cfg.compute, {"ray.gpus_per_trial": cfg.ray.gpus_per_trial, "ray.gpus_per_task": cfg.ray.gpus_per_task}
    for cls in strategies.values():
        gpus |= cls().gpu_requests(cfg)
    _check(c.device in DEVICES, "compute.device", f"must be one of {', '.join(DEVICES)}")
    _check(c.precision in PRECISIONS, "compute.precision", f"must be one of {', '.join(PRECISIONS)}")
    _check(c.batch_norm in BATCH_NORMS, "compute.batch_norm", f"must be one of {', '.join(BATCH_NORMS)}")
    for name, value in gpus.items():
        _check(
            value >= 0 and (value <= 1 or float(value).is_integer()),
            name,
            f"must be 0, a fraction of one GPU, or a whole number of GPUs; got {value}",
        )
    _check(
        not (c.device == "cuda" and cfg.ray.gpus_per_trial == 0),
        "ray.gpus_per_trial",
        "compute.device is cuda, so trials need GPUs: set ray.gpus_per_trial (e.g. 1, or 0.25 to share)",
    )
    _validate_workers(cfg)
    _check(
        not (c.precision == "fp16" and (c.device == "cpu" or cfg.ray.gpus_per_trial == 0)),
        "compute.precision",
        "fp16 runs on CUDA only: reserve GPUs (ray.gpus_per_trial) or use bf16 / fp32 on the CPU",
    )


def _validate_workers(cfg: ExperimentConfig) -> None:
    """Data-parallel trials: a global batch that splits evenly, and a whole GPU per worker (NCCL puts one rank on one GPU)."""
    for name, gpu_name in (("workers_per_trial", "gpus_per_trial"), ("workers_per_task", "gpus_per_task")):
        workers, gpus = getattr(cfg.ray, name), getattr(cfg.ray, gpu_name)
        if workers <= 1:
            continue
        _check(
            cfg.data.batch_size % workers == 0,
            "data.batch_size",
            f"is the global batch and must split evenly over ray.{name} = {workers} workers; use a multiple of {workers}",
        )
        _check(
            gpus == 0 or float(gpus).is_integer(),
            f"ray.{gpu_name}",
            f"with ray.{name} above 1 each worker needs whole GPUs (NCCL runs one rank per GPU); use 1, or one worker",
        )
    _check(
        cfg.ray.workers_per_trial <= 1 or not cfg.evaluation.asha.enabled or cfg.evaluation.asha.scheduler != "hyperband",
        "evaluation.asha.scheduler",
        "hyperband pauses and resumes trials, which a data-parallel trial (ray.workers_per_trial above 1) does not support; "
        "use asha, which only stops them",
    )
    _check(
        cfg.ray.workers_per_task <= 1 or cfg.strategy in ("proxyless", "ofa"),
        "ray.workers_per_task",
        f"sizes the ProxylessNAS warm-up and OFA's progressive shrinking; strategy {cfg.strategy!r} has no such task: set it to 1",
    )


def _check_estimate(est: EstimateConfig, where: str) -> None:
    _check(
        sum(x is not None for x in (est.table, est.device, est.lookup)) == 1,
        where,
        "give exactly one of table (a per-op latency file), device (a roofline spec) or lookup (a tabular benchmark CSV)",
    )
    if est.lookup is not None:
        _check(
            Path(est.lookup).is_file(), f"{where}.lookup", f"{est.lookup!r} is not a file; point it at a tabular benchmark (nb201_hw.csv)"
        )
    if est.table is not None:
        _check(
            Path(est.table).expanduser().is_file(),
            f"{where}.table",
            f"{est.table!r} is not a file; point it at a per-op latency table (YAML or JSON)",
        )
    if est.device is not None:
        _check(
            est.device.peak_gflops > 0 and est.device.bandwidth_gbs > 0 and est.device.op_overhead_us >= 0,
            f"{where}.device",
            "peak_gflops and bandwidth_gbs must be positive, op_overhead_us zero or more",
        )
    _check(est.batch_size > 0, f"{where}.batch_size", "must be positive")


# Numeric fields where zero is meaningful; every other number in a section must be positive.
_MAY_BE_ZERO = {
    "settle_seconds",
    "reinforce_decay",
    "seed",
    "max_concurrent_trials",
    "warmup_epochs",
    "label_smoothing",
    "weight_decay",
    "momentum",
    "test_fraction",
    "calibration_archs",
    "random_train_fraction",
    "max_failures",
    "kd_ratio",
    "gamma",
    "aim_floor",
    "sparsity",
    "checkpoint_seconds",
    "arch_every",
    "gpus_per_trial",
    "gpus_per_task",
    "replica_gpus",
    "num_workers",
    "final_top_k",
    "final_train_steps",
}


def _check_numbers(section: str, obj: Any) -> None:
    """Every number positive (or zero where ``_MAY_BE_ZERO`` allows), nested sections included."""
    for f in dataclasses.fields(obj):
        value = getattr(obj, f.name)
        if dataclasses.is_dataclass(value):
            _check_numbers(f"{section}.{f.name}", value)
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            continue
        if f.name in _MAY_BE_ZERO:
            _check(value >= 0, f"{section}.{f.name}", f"must be zero or positive, got {value}")
        else:
            _check(value > 0, f"{section}.{f.name}", f"must be positive, got {value}")


def check(ok: bool, name: str, message: str) -> None:
    """Raise a ConfigError naming the field ``name`` unless ``ok`` (strategies validate their sections with it)."""
    _check(ok, name, message)


def _check(ok: bool, name: str, message: str) -> None:
    if not ok:
        raise ConfigError(f"config field {name}: {message}")
