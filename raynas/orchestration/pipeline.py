"""The whole experiment: profile -> warm up -> search (Tune) -> retrain (Tune) -> measure -> record."""

from __future__ import annotations

import dataclasses
import datetime as _dt
import json
from pathlib import Path
from typing import Any, Callable

import pyarrow as pa
import pyarrow.parquet as pq
import ray
import yaml
from ray import tune

from raynas.checkpoints import load_state_dict
from raynas.config import ConfigError, ExperimentConfig
from raynas.data.datasets import load_splits
from raynas.hardware.lut import LatencyTable
from raynas.orchestration.host import SupernetHost
from raynas.orchestration.runtime import connect
from raynas.orchestration.tasks import measure_latency, on_target, profile_target, warm_up_supernet
from raynas.orchestration.trials import WEIGHTS_FILE, retrain_trial, search_trial
from raynas.space.architecture import Architecture
from raynas.space.macro import get_space
from raynas.tracking.mlflow_tracker import ExperimentTracker, default_tracking_uri
from raynas.tracking.tune_callback import MlflowTrialCallback


def new_run_dir(cfg: ExperimentConfig) -> Path:
    stamp = _dt.datetime.now().strftime("%Y%m%d-%H%M%S")
    run_dir = (Path(cfg.run_root) / f"{cfg.name}-{stamp}").resolve()
    run_dir.mkdir(parents=True, exist_ok=False)
    return run_dir


def run_experiment(cfg: ExperimentConfig, run_dir: Path, log: Callable[[str], None] = print) -> dict[str, Any]:
    """Run every (target, budget) scenario end to end; returns the summary also written to run_dir."""
    (run_dir / "config.yaml").write_text(yaml.safe_dump(dataclasses.asdict(cfg), sort_keys=False))
    uri = cfg.tracking.mlflow_uri or default_tracking_uri(run_dir)
    tracker = ExperimentTracker(uri, cfg.tracking.experiment, run_dir, run_name=run_dir.name)
    tracker.log_params(tracker.parent_id, _flatten(dataclasses.asdict(cfg)))
    target_names = [t.name for t in cfg.targets]
    started = connect(cfg.ray.address, cfg.ray.num_cpus, target_names)
    try:
        results = _run(cfg, run_dir, tracker, log)
    except BaseException:
        tracker.fail()
        raise
    finally:
        if started:
            ray.shutdown()
    summary = {"results": results, "mlflow_uri": uri, "run_dir": str(run_dir)}
    _write_results(run_dir, results, tracker)
    tracker.finish()
    return summary


def _run(cfg: ExperimentConfig, run_dir: Path, tracker: ExperimentTracker, log: Callable[[str], None]) -> list[dict]:
    macro = get_space(cfg.space)
    splits = load_splits(cfg.data)
    if (splits.in_channels, splits.input_size) != (macro.in_channels, macro.input_size):
        raise ConfigError(f"config field space: {macro.name!r} expects {macro.in_channels}x{macro.input_size}px images, data gives {splits.in_channels}x{splits.input_size}px")
    log(f"[raynas] profiling {len(cfg.targets)} targets on their nodes")
    luts = {t.name: _profile(cfg, t.name, splits.num_classes, run_dir, tracker, log) for t in cfg.targets}
    scenarios = resolve_scenarios(cfg, luts)
    for s in scenarios:
        tracker.child(s["key"], {"raynas.target": s["target"], "raynas.budget_ms": str(s["budget_ms"])})
    log(f"[raynas] warming up the supernet ({cfg.search.warmup_epochs} epochs, uniform path sampling)")
    checkpoint = run_dir / "supernet" / "warmup.pt"
    cpus = _cluster_cpus()
    warm_stats = ray.get(warm_up_supernet.options(num_cpus=cpus).remote(cfg.space, cfg.data, cfg.search, cfg.seed, str(checkpoint), cpus))
    tracker.log_metrics(tracker.parent_id, warm_stats)
    host = SupernetHost.remote(str(checkpoint))
    log(f"[raynas] searching {len(scenarios)} scenarios from shared weights ({ray.get(host.num_parameters.remote()):,} parameters)")
    search = _tune(search_trial, dict(host=host, luts=luts, cfg=cfg), "search", scenarios, cfg, run_dir, tracker)
    derived = [s | {"arch": Architecture.from_string(cfg.space, search[s["key"]].metrics["arch"]).to_dict()} for s in scenarios]
    log("[raynas] retraining the derived architectures from scratch")
    retrained = _tune(retrain_trial, dict(cfg=cfg), "retrain", derived, cfg, run_dir, tracker)
    log("[raynas] measuring the retrained networks on their targets")
    return [
        _finalize(cfg, s, search[s["key"]], retrained[s["key"]], luts[s["target"]], _lut_path(run_dir, s["target"]), splits.num_classes, tracker)
        for s in derived
    ]


def _lut_path(run_dir: Path, target: str) -> Path:
    return run_dir / "luts" / f"{target}.parquet"


def _profile(cfg: ExperimentConfig, target: str, num_classes: int, run_dir: Path, tracker: ExperimentTracker, log: Callable[[str], None]) -> LatencyTable:
    profile = cfg.profile
    if profile.cache_dir:
        profile = dataclasses.replace(profile, cache_dir=str(Path(profile.cache_dir).resolve()))
    lut = ray.get(on_target(profile_target, target).remote(target, cfg.space, num_classes, profile, cfg.seed))
    log(f"[raynas] {target}: {lut.metadata['cache']}")
    path = lut.save(_lut_path(run_dir, target))
    tracker.log_file(tracker.parent_id, path, "luts")
    return lut


def resolve_scenarios(cfg: ExperimentConfig, luts: dict[str, LatencyTable]) -> list[dict]:
    """One scenario per (target, budget); fractional budgets resolve inside the space's latency range."""
    macro, scenarios = get_space(cfg.space), []
    for tgt in cfg.targets:
        low, high = luts[tgt.name].latency_range(macro)
        budgets = list(tgt.budgets_ms) or [low + f * (high - low) for f in tgt.budget_fractions]
        for b in budgets:
            if b < low:
                raise ConfigError(f"config field targets ({tgt.name}): budget {b:.3f} ms is below the fastest architecture of the space ({low:.3f} ms on this target); raise it")
            key = f"{tgt.name}@{b:.3f}ms"
            scenarios.append({"key": key, "target": tgt.name, "budget_ms": round(b, 4), "seed": cfg.seed + len(scenarios)})
    return scenarios


def _tune(trainable, params: dict, name: str, scenarios: list[dict], cfg: ExperimentConfig, run_dir: Path, tracker: ExperimentTracker) -> dict:
    """One trial per scenario; the grid is over readable scenario keys, details travel as parameters."""
    by_key = {s["key"]: s for s in scenarios}
    tuner = tune.Tuner(
        tune.with_resources(tune.with_parameters(trainable, scenarios=by_key, **params), {"cpu": cfg.ray.cpus_per_trial}),
        param_space={"scenario": tune.grid_search(list(by_key))},
        tune_config=tune.TuneConfig(max_concurrent_trials=cfg.ray.max_concurrent_trials or None),
        run_config=tune.RunConfig(name=name, storage_path=str(run_dir / "tune"), callbacks=[MlflowTrialCallback(tracker, name)]),
    )
    grid = tuner.fit()
    failed = [r for r in grid if r.error is not None]
    if failed:
        raise RuntimeError(f"{len(failed)} {name} trial(s) failed; first error: {failed[0].error}")
    return {r.config["scenario"]: r for r in grid}


def _finalize(cfg, scenario, search_result, retrain_result, lut: LatencyTable, lut_path: Path, num_classes: int, tracker: ExperimentTracker) -> dict:
    """Measure the retrained net on its target and record everything in the scenario's child run."""
    arch = Architecture.from_dict(scenario["arch"])
    weights = Path(retrain_result.checkpoint.path) / WEIGHTS_FILE
    state = {k: v.numpy() for k, v in load_state_dict(weights).items()}
    p = cfg.profile
    measured = ray.get(on_target(measure_latency, scenario["target"]).remote(arch.to_dict(), scenario["target"], num_classes, p.warmup, p.repeats, state))
    row = {
        "target": scenario["target"],
        "budget_ms": scenario["budget_ms"],
        "arch": arch.to_string(),
        "arch_id": arch.arch_id,
        "predicted_ms": round(lut.predict(arch, get_space(cfg.space)), 4),
        "measured_ms": round(measured, 4),
        "test_acc": round(retrain_result.metrics["test_acc"], 4),
        "constrained": bool(search_result.metrics["constrained"]),
    }
    run_id = tracker.child(scenario["key"])
    tracker.log_params(run_id, {"target": row["target"], "budget_ms": row["budget_ms"], "arch": row["arch"], "arch_id": row["arch_id"], "seed": scenario["seed"]})
    tracker.log_metrics(run_id, {k: row[k] for k in ("predicted_ms", "measured_ms", "test_acc")} | {"search_val_acc": search_result.metrics["val_acc"], "retrain_val_acc": retrain_result.metrics["val_acc"]})
    tracker.log_json(run_id, arch.to_dict(), "architecture.json")
    tracker.log_file(run_id, weights, "retrained")
    tracker.log_file(run_id, lut_path, "lut")
    return row


def _write_results(run_dir: Path, results: list[dict], tracker: ExperimentTracker) -> None:
    table = pa.Table.from_pylist(results)
    pq.write_table(table, run_dir / "results.parquet")
    (run_dir / "results.json").write_text(json.dumps(results, indent=2))
    tracker.log_file(tracker.parent_id, run_dir / "results.parquet")
    tracker.log_file(tracker.parent_id, run_dir / "results.json")


def _cluster_cpus() -> int:
    """CPUs of the largest alive node: a single task cannot span nodes."""
    return max(1, int(max(n["Resources"].get("CPU", 0) for n in ray.nodes() if n["Alive"])))


def _flatten(d: dict, prefix: str = "") -> dict[str, Any]:
    out: dict[str, Any] = {}
    for k, v in d.items():
        if isinstance(v, dict):
            out |= _flatten(v, f"{prefix}{k}.")
        else:
            out[f"{prefix}{k}"] = v
    return out
