"""A run's directory and the checks made before anything expensive starts."""

from __future__ import annotations

import datetime as _dt
from pathlib import Path
from typing import Any

import yaml

from raynas.api import get_strategy
from raynas.config import ConfigError, ExperimentConfig, parse_config
from raynas.execution.data_parallel import check_workers
from raynas.execution.runtime import check_cpus, check_data_root, check_gpus, check_shared, check_writable, connect, tune_storage

FAILED_FILE = "FAILED"  # written when a run stops on an error: its reason; removed when a resumed run finishes


def new_run_dir(cfg: ExperimentConfig) -> Path:
    """A fresh ``<run_root>/<name>-<timestamp>`` folder; a run_root that cannot be created is named."""
    stamp = _dt.datetime.now().strftime("%Y%m%d-%H%M%S")
    run_dir = (Path(cfg.run_root).expanduser() / f"{cfg.name}-{stamp}").resolve()
    try:
        run_dir.mkdir(parents=True, exist_ok=False)
    except FileExistsError:
        raise ConfigError(f"run directory {run_dir} already exists (two runs started in the same second); start again") from None
    except OSError as exc:
        raise ConfigError(
            f"config field run_root: cannot create {run_dir} ({exc.strerror or exc}); point it at a writable folder"
        ) from None
    return run_dir


def saved_config(run_dir: Path) -> ExperimentConfig:
    saved = run_dir / "config.yaml"
    if not saved.is_file():
        raise ConfigError(f"{run_dir} is not a raynas run directory (no config.yaml); pass the directory `raynas run` printed")
    return parse_config(yaml.safe_load(saved.read_text()))


def written_paths(cfg: ExperimentConfig, run_dir: Path) -> dict[str, str | None]:
    """Folders the run writes besides the run directory, by config field."""
    return {
        "ray.storage_path": tune_storage(cfg, run_dir),
        "profile.cache_dir": cfg.profile.cache_dir,
        "data.cache_dir": cfg.data.cache_dir,
    }


def gpu_requests(cfg: ExperimentConfig) -> dict[str, float]:
    """GPU reservations by config field, checked against the cluster before anything runs."""
    requests = {"ray.gpus_per_trial": cfg.ray.gpus_per_trial, "ray.gpus_per_task": cfg.ray.gpus_per_task}
    return requests | get_strategy(cfg.strategy).gpu_requests(cfg)


def preflight(cfg: ExperimentConfig, run_dir: Path) -> bool:
    """Join (or start) Ray and check paths, GPUs, CPUs and the dataset folder against it; True if Ray was started here."""
    check_writable(written_paths(cfg, run_dir))
    started = connect(cfg.ray.address, cfg.ray.num_cpus, [t.name for t in cfg.targets if not t.estimated])
    check_shared({"ray.storage_path": tune_storage(cfg, run_dir), "run_root": cfg.run_root, "data.cache_dir": cfg.data.cache_dir})
    check_gpus(gpu_requests(cfg))
    check_cpus(get_strategy(cfg.strategy).held_cpus(cfg), cfg.ray.cpus_per_trial)
    check_workers(cfg)
    if cfg.data.root:
        check_data_root(cfg.data.root)
    return started


def flatten(d: dict, prefix: str = "") -> dict[str, Any]:
    """A nested config as MLflow parameters: ``{"ray.num_cpus": 2, ...}``."""
    out: dict[str, Any] = {}
    for k, v in d.items():
        if isinstance(v, dict):
            out |= flatten(v, f"{prefix}{k}.")
        else:
            out[f"{prefix}{k}"] = v
    return out
