"""Typed experiment configuration loaded from YAML and validated once, at the edge."""

from __future__ import annotations

import dataclasses
import types
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from raynas.compute import DEVICES, PRECISIONS, ComputeConfig
from raynas.data.datasets import DATASETS, DataConfig
from raynas.hardware.estimates import DeviceSpec
from raynas.hardware.targets import TARGETS
from raynas.search.evolution import EvolutionConfig
from raynas.search.proxyless import BINARIZATIONS, WEIGHT_OPTIMIZERS, SearchConfig
from raynas.space.macro import SPACES
from raynas.supernet.loss import LATENCY_LOSSES
from raynas.supernet.progressive import ShrinkConfig
from raynas.training import RetrainConfig


class ConfigError(ValueError):
    """A configuration problem; the message names the field and the fix."""


@dataclass(frozen=True)
class EstimateConfig:
    """Latency of hardware we cannot reach: a per-op table measured elsewhere, or a roofline of a device spec."""

    table: str | None = None  # YAML/JSON per-op table (format: raynas/hardware/estimates.py)
    device: DeviceSpec | None = None  # or peak GFLOP/s, bandwidth GB/s and per-op overhead for a roofline
    batch_size: int = 1  # roofline batch (an imported table states its own)


@dataclass(frozen=True)
class TargetConfig:
    """One hardware target and the latency budgets to search under."""

    name: str
    budgets_ms: tuple[float, ...] = ()  # absolute budgets in ms
    budget_fractions: tuple[float, ...] = ()  # or positions in (0, 1] between the space's fastest and slowest net
    estimate: EstimateConfig | None = None  # set for unreachable hardware: latencies are estimated, never measured

    @property
    def estimated(self) -> bool:
        return self.estimate is not None


@dataclass(frozen=True)
class ProfileConfig:
    """How latency tables and final networks are measured."""

    warmup: int = 10  # untimed calls before timing each module
    repeats: int = 100  # timed calls per module, each paired with a yardstick call (raynas/hardware/timing.py)
    calibration_archs: int = 8  # whole random networks measured to calibrate the per-network overhead
    fit_scale: bool = True  # also fit a scale on summed ops (needs >= 4 networks; false: overhead only, see README)
    settle_seconds: float = 10.0  # pause before profiling and before final measurement so the node's own work (worker starts) is done
    cache_dir: str | None = None  # reuse op latencies measured by earlier runs on the same setting (off: None)


@dataclass(frozen=True)
class EvaluationConfig:
    """The honest comparison every experiment makes (Lindauer & Hutter's NAS checklist)."""

    seeds: int = 1  # independent replicates (warm-up, search, retraining) of every scenario: seed, seed+1, ...
    random_search: bool = True  # random search in the same latency window, pipeline and wall-clock budget
    random_train_fraction: float = 0.5  # share of the random search's time spent training the shared weights
    hand_designed_widths: tuple[float, ...] = (0.5, 1.0)  # MobileNetV2-style references (k3e6 everywhere); () for none
    report: bool = True  # write report.md / report.html with plots at the end


@dataclass(frozen=True)
class OFAConfig:
    """The Once-for-All strategy: supernet training, replicas, accuracy predictor, evolutionary search."""

    shrink: ShrinkConfig = field(default_factory=ShrinkConfig)
    evolution: EvolutionConfig = field(default_factory=EvolutionConfig)
    replicas: int = 2  # SupernetReplica actors serving shared-weight evaluations (per seed)
    replica_cpus: float = 0.5  # CPUs each replica reserves (> 0: counted by Ray, and never placed on a 0-CPU head node)
    replica_gpus: float = 0  # GPUs (fractions allowed) each replica reserves and evaluates on
    calibration_batches: int = 4  # training batches for BatchNorm recalibration per evaluation
    eval_batches: int = 4  # validation batches per evaluation
    predictor_samples: int = 150  # random subnets evaluated on the replicas to train the predictor
    finetune: bool = False  # train OFA and random-subnet finalists from their supernet weights instead of from scratch


STRATEGIES = ("proxyless", "ofa")


@dataclass(frozen=True)
class TrackingConfig:
    mlflow_uri: str | None = None  # default: sqlite:///<run_dir>/mlflow.db
    experiment: str = "raynas"


@dataclass(frozen=True)
class RayConfig:
    address: str | None = None  # None: join RAY_ADDRESS / a running cluster, else start a local Ray
    num_cpus: int | None = None  # CPUs of a local Ray (None: all)
    cpus_per_trial: int = 1
    gpus_per_trial: float = 0  # GPUs each search / retraining trial reserves and trains on; 0.25: four trials share one GPU
    gpus_per_task: float = 0  # GPUs of the one-off training tasks (supernet warm-up, OFA progressive shrinking)
    max_concurrent_trials: int = 0  # 0: as many as resources allow
    max_failures: int = 3  # retries of a trial whose worker or node died (Tune FailureConfig)
    storage_path: str | None = None  # Tune results; None: <run_dir>/tune. Multi-machine clusters need a URI or NFS path


@dataclass(frozen=True)
class ExperimentConfig:
    name: str
    targets: tuple[TargetConfig, ...]
    space: str = "mnist-small"
    strategy: str = "proxyless"  # proxyless: one gradient search per scenario; ofa: one elastic supernet, evolution per scenario
    seed: int = 0
    run_root: str = "runs"  # run directories are created under this folder
    data: DataConfig = field(default_factory=DataConfig)
    compute: ComputeConfig = field(default_factory=ComputeConfig)
    search: SearchConfig = field(default_factory=SearchConfig)
    retrain: RetrainConfig = field(default_factory=RetrainConfig)
    profile: ProfileConfig = field(default_factory=ProfileConfig)
    evaluation: EvaluationConfig = field(default_factory=EvaluationConfig)
    ofa: OFAConfig = field(default_factory=OFAConfig)
    tracking: TrackingConfig = field(default_factory=TrackingConfig)
    ray: RayConfig = field(default_factory=RayConfig)


def load_config(path: str | Path, overrides: dict[str, Any] | None = None) -> ExperimentConfig:
    """Read, parse and validate a YAML config; every problem is a ConfigError naming the field."""
    path = Path(path)
    if not path.is_file():
        raise ConfigError(f"config file {path} does not exist; pass one of experiments/configs/*.yaml")
    try:
        raw = yaml.safe_load(path.read_text())
    except yaml.YAMLError as exc:
        raise ConfigError(f"config file {path} is not valid YAML: {exc}") from None
    if not isinstance(raw, dict):
        raise ConfigError(f"config file {path} must hold a mapping of fields, got {type(raw).__name__}")
    for dotted, value in (overrides or {}).items():
        _set_dotted(raw, dotted, value)
    return parse_config(raw)


def parse_config(raw: dict[str, Any]) -> ExperimentConfig:
    cfg = _build(ExperimentConfig, raw, "")
    _validate(cfg)
    return cfg


def _set_dotted(raw: dict, dotted: str, value: Any) -> None:
    *parents, leaf = dotted.split(".")
    node = raw
    for key in parents:
        node = node.setdefault(key, {})
    node[leaf] = value


def _build(cls: type, raw: Any, prefix: str) -> Any:
    if not isinstance(raw, dict):
        raise ConfigError(f"config field {prefix.rstrip('.') or '(top level)'}: expected a mapping, got {raw!r}")
    hints = typing.get_type_hints(cls)
    names = {f.name for f in dataclasses.fields(cls)}
    unknown = sorted(set(raw) - names, key=str)
    if unknown:
        raise ConfigError(f"config field {prefix}{_shown(unknown[0])}: unknown key; valid keys here: {', '.join(sorted(names))}")
    missing = [f.name for f in dataclasses.fields(cls) if f.name not in raw and f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING]
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


def _validate(cfg: ExperimentConfig) -> None:
    _check(cfg.space in SPACES, "space", f"unknown search space {cfg.space!r}; valid: {', '.join(SPACES.names())}")
    _check(cfg.data.dataset in DATASETS, "data.dataset", f"unknown dataset {cfg.data.dataset!r}; valid: {', '.join(DATASETS)}")
    if cfg.data.dataset != "mnist-embedded":
        _check(bool(cfg.data.root) and Path(cfg.data.root).expanduser().is_dir(), "data.root", f"{cfg.data.root!r} is not an existing directory; point it at the dataset on disk")
    _check(0 < cfg.data.val_fraction < 1 and 0 <= cfg.data.test_fraction < 1 and cfg.data.val_fraction + cfg.data.test_fraction < 1, "data.val_fraction", "fractions must be in (0, 1) and sum below 1")
    _validate_compute(cfg)
    _check(cfg.search.latency_loss in LATENCY_LOSSES, "search.latency_loss", f"must be one of {', '.join(LATENCY_LOSSES)}")
    _check(cfg.search.binarization in BINARIZATIONS, "search.binarization", f"must be one of {', '.join(BINARIZATIONS)}")
    _check(cfg.search.weight_optimizer in WEIGHT_OPTIMIZERS, "search.weight_optimizer", f"must be one of {', '.join(WEIGHT_OPTIMIZERS)}")
    _check(0 < cfg.search.budget_floor <= 1, "search.budget_floor", "must lie in (0, 1]")
    _check(0 < cfg.search.aim <= 1, "search.aim", "must lie in (0, 1]: the share of the budget the latency loss steers to")
    _check(0 <= cfg.search.reinforce_decay < 1, "search.reinforce_decay", "must lie in [0, 1)")
    _check(len(cfg.targets) > 0, "targets", "list at least one hardware target")
    for i, tgt in enumerate(cfg.targets):
        where = f"targets[{i}]"
        if tgt.estimated:
            _check_estimate(tgt.estimate, f"{where}.estimate")
        else:
            _check(tgt.name in TARGETS, f"{where}.name", f"unknown hardware target {tgt.name!r}; valid: {', '.join(TARGETS.names())} (or give `estimate:` for hardware you cannot reach)")
        _check(bool(tgt.budgets_ms) != bool(tgt.budget_fractions), where, "give exactly one of budgets_ms or budget_fractions (non-empty)")
        _check(all(b > 0 for b in tgt.budgets_ms), f"{where}.budgets_ms", "budgets must be positive milliseconds")
        _check(all(0 < f <= 1 for f in tgt.budget_fractions), f"{where}.budget_fractions", "fractions must lie in (0, 1]")
    ev = cfg.evaluation
    _check(ev.random_train_fraction < 1, "evaluation.random_train_fraction", "must lie in [0, 1): the rest of the time scores candidates")
    widths = ev.hand_designed_widths
    _check(all(0 < w <= 4 for w in widths) and len(set(widths)) == len(widths), "evaluation.hand_designed_widths", "distinct width multipliers in (0, 4]")
    _check(cfg.strategy in STRATEGIES, "strategy", f"unknown search strategy {cfg.strategy!r}; valid: {', '.join(STRATEGIES)}")
    _check(all(8 < r <= 1024 for r in cfg.ofa.shrink.resolutions), "ofa.shrink.resolutions", "input sizes must lie in (8, 1024]")
    _check(0 < cfg.ofa.evolution.parent_fraction < 1 and cfg.ofa.evolution.mutation_prob <= 1 and cfg.ofa.evolution.mutation_share <= 1, "ofa.evolution", "parent_fraction in (0, 1), mutation_prob and mutation_share in (0, 1]")
    names = [t.name for t in cfg.targets]
    _check(len(set(names)) == len(names), "targets", "each target may appear once; list several budgets under it instead")
    sections = (("search", cfg.search), ("retrain", cfg.retrain), ("profile", cfg.profile), ("data", cfg.data), ("ray", cfg.ray), ("evaluation", ev), ("compute", cfg.compute),
                ("ofa", cfg.ofa), ("ofa.shrink", cfg.ofa.shrink), ("ofa.evolution", cfg.ofa.evolution))
    for section, obj in sections:
        _check_numbers(section, obj)


def _validate_compute(cfg: ExperimentConfig) -> None:
    """Device, precision and GPU reservations that agree with each other (the cluster is checked at connect)."""
    c, gpus = cfg.compute, {"ray.gpus_per_trial": cfg.ray.gpus_per_trial, "ray.gpus_per_task": cfg.ray.gpus_per_task, "ofa.replica_gpus": cfg.ofa.replica_gpus}
    _check(c.device in DEVICES, "compute.device", f"must be one of {', '.join(DEVICES)}")
    _check(c.precision in PRECISIONS, "compute.precision", f"must be one of {', '.join(PRECISIONS)}")
    for name, value in gpus.items():
        _check(value >= 0 and (value <= 1 or float(value).is_integer()), name, f"must be 0, a fraction of one GPU, or a whole number of GPUs; got {value}")
    _check(not (c.device == "cuda" and cfg.ray.gpus_per_trial == 0), "ray.gpus_per_trial", "compute.device is cuda, so trials need GPUs: set ray.gpus_per_trial (e.g. 1, or 0.25 to share)")
    _check(not (c.precision == "fp16" and (c.device == "cpu" or cfg.ray.gpus_per_trial == 0)), "compute.precision", "fp16 runs on CUDA only: reserve GPUs (ray.gpus_per_trial) or use bf16 / fp32 on the CPU")


def _check_estimate(est: EstimateConfig, where: str) -> None:
    _check((est.table is None) != (est.device is None), where, "give exactly one of table (a per-op latency file) or device (a roofline spec)")
    if est.table is not None:
        _check(Path(est.table).expanduser().is_file(), f"{where}.table", f"{est.table!r} is not a file; point it at a per-op latency table (YAML or JSON)")
    if est.device is not None:
        _check(est.device.peak_gflops > 0 and est.device.bandwidth_gbs > 0 and est.device.op_overhead_us >= 0, f"{where}.device", "peak_gflops and bandwidth_gbs must be positive, op_overhead_us zero or more")
    _check(est.batch_size > 0, f"{where}.batch_size", "must be positive")


# Numeric fields where zero is meaningful; every other number in a section must be positive.
_MAY_BE_ZERO = {"settle_seconds", "reinforce_decay", "seed", "max_concurrent_trials", "warmup_epochs", "label_smoothing", "weight_decay", "momentum", "test_fraction", "calibration_archs", "random_train_fraction", "max_failures",
                "kd_ratio", "gamma", "gpus_per_trial", "gpus_per_task", "replica_gpus", "num_workers"}


def _check_numbers(section: str, obj: Any) -> None:
    for f in dataclasses.fields(obj):
        value = getattr(obj, f.name)
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            continue
        if f.name in _MAY_BE_ZERO:
            _check(value >= 0, f"{section}.{f.name}", f"must be zero or positive, got {value}")
        else:
            _check(value > 0, f"{section}.{f.name}", f"must be positive, got {value}")


def _check(ok: bool, name: str, message: str) -> None:
    if not ok:
        raise ConfigError(f"config field {name}: {message}")
