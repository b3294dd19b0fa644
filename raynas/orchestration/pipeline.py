"""The whole experiment, as Ray tasks and Tune runs driven from here.

profile targets -> warm up one supernet per seed -> ProxylessNAS searches (Tune) -> random searches
with the same window, weights and wall-clock (Tune) -> retrain every finalist, hand-designed
references included (Tune) -> measure on the targets -> results, record, report, MLflow.
"""

from __future__ import annotations

import dataclasses
import datetime as _dt
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
from raynas.evaluation.compare import HAND, PROXYLESS, RANDOM, RESULTS_SCHEMA, paired_comparisons
from raynas.evaluation.record import PhaseClock, reproducibility_record, write_json
from raynas.evaluation.report import write_report
from raynas.hardware.lut import LatencyTable
from raynas.orchestration.host import SupernetHost
from raynas.orchestration.runtime import connect
from raynas.orchestration.tasks import measure_latency, on_target, profile_target, warm_up_supernet
from raynas.orchestration.trials import WEIGHTS_FILE, random_trial, retrain_trial, search_trial
from raynas.space.architecture import Architecture
from raynas.space.macro import get_space
from raynas.space.reference import mobilenet_v2_like, width_multiplier
from raynas.tracking.mlflow_tracker import ExperimentTracker, default_tracking_uri
from raynas.tracking.tune_callback import MlflowTrialCallback


def new_run_dir(cfg: ExperimentConfig) -> Path:
    stamp = _dt.datetime.now().strftime("%Y%m%d-%H%M%S")
    run_dir = (Path(cfg.run_root) / f"{cfg.name}-{stamp}").resolve()
    run_dir.mkdir(parents=True, exist_ok=False)
    return run_dir


def run_experiment(cfg: ExperimentConfig, run_dir: Path, log: Callable[[str], None] = print) -> dict[str, Any]:
    """Run every (target, budget, seed) scenario and its baselines end to end; returns the summary also written to run_dir."""
    (run_dir / "config.yaml").write_text(yaml.safe_dump(dataclasses.asdict(cfg), sort_keys=False))
    uri = cfg.tracking.mlflow_uri or default_tracking_uri(run_dir)
    tracker = ExperimentTracker(uri, cfg.tracking.experiment, run_dir, run_name=run_dir.name)
    tracker.log_params(tracker.parent_id, _flatten(dataclasses.asdict(cfg)))
    target_names = [t.name for t in cfg.targets]
    clock = PhaseClock()
    started = connect(cfg.ray.address, cfg.ray.num_cpus, target_names)
    try:
        results, context = _run(cfg, run_dir, tracker, clock, log)
    except BaseException:
        tracker.fail()
        raise
    finally:
        if started:
            ray.shutdown()
    summary = {"results": results, "comparisons": paired_comparisons(results), "mlflow_uri": uri, "run_dir": str(run_dir)}
    _write_results(run_dir, results, tracker)
    record = reproducibility_record(cfg, clock, results, **context)
    tracker.log_json(tracker.parent_id, record, "record.json")
    tracker.log_metrics(tracker.parent_id, {f"phase_seconds/{k}": v for k, v in clock.seconds.items()})
    write_json(run_dir / "record.json", record)
    if cfg.evaluation.report:
        for path in write_report(run_dir):
            tracker.log_file(tracker.parent_id, path, "report" if path.suffix == ".png" else None)
    tracker.finish()
    return summary


def _run(cfg: ExperimentConfig, run_dir: Path, tracker: ExperimentTracker, clock: PhaseClock, log: Callable[[str], None]) -> tuple[list[dict], dict]:
    macro = get_space(cfg.space)
    splits = load_splits(cfg.data)
    if (splits.in_channels, splits.input_size) != (macro.in_channels, macro.input_size):
        raise ConfigError(f"config field space: {macro.name!r} expects {macro.in_channels}x{macro.input_size}px images, data gives {splits.in_channels}x{splits.input_size}px")
    log(f"[raynas] profiling {len(cfg.targets)} targets on their nodes")
    with clock("profile"):
        luts = {t.name: _profile(cfg, t.name, splits.num_classes, run_dir, tracker, log) for t in cfg.targets}
    scenarios = resolve_scenarios(cfg, luts)
    seeds = sorted({s["seed"] for s in scenarios})
    log(f"[raynas] warming up {len(seeds)} supernet(s) ({cfg.search.warmup_epochs} epochs each, uniform path sampling)")
    with clock("warmup"):
        hosts = {seed: _warm_up(cfg, seed, run_dir, tracker) for seed in seeds}
    log(f"[raynas] ProxylessNAS: {len(scenarios)} searches from shared weights")
    nas = [s | {"key": f"{PROXYLESS}:{s['pair']}", "method": PROXYLESS} for s in scenarios]
    with clock("search"):
        found = _tune(search_trial, dict(hosts=hosts, luts=luts, cfg=cfg), "search", nas, cfg, run_dir, tracker)
    finalists = [s | {"arch": _arch(cfg, found[s["key"]]), "search_seconds": found[s["key"]].metrics["search_seconds"]} for s in nas]
    if cfg.evaluation.random_search:
        log("[raynas] random search: same window, weights and wall-clock as each NAS search")
        rand = [s | {"key": f"{RANDOM}:{s['pair']}", "method": RANDOM, "budget_seconds": found[f"{PROXYLESS}:{s['pair']}"].metrics["search_seconds"]} for s in scenarios]
        with clock("random_search"):
            picked = _tune(random_trial, dict(hosts=hosts, luts=luts, cfg=cfg), "random", rand, cfg, run_dir, tracker)
        finalists += [s | {"arch": _arch(cfg, picked[s["key"]]), "search_seconds": picked[s["key"]].metrics["search_seconds"]} for s in rand]
    finalists += hand_designed(cfg, seeds)
    log(f"[raynas] retraining {len(finalists)} finalists from scratch with one recipe")
    with clock("retrain"):
        retrained = _tune(retrain_trial, dict(cfg=cfg), "retrain", finalists, cfg, run_dir, tracker)
    log("[raynas] measuring the retrained networks on their targets")
    with clock("measure"):
        rows = [row for f in finalists for row in _finalize(cfg, f, found.get(f["key"]), retrained[f["key"]], luts, run_dir, splits.num_classes, tracker)]
    return rows, {"luts": luts, "splits": splits}


def _arch(cfg: ExperimentConfig, result) -> dict:
    return Architecture.from_string(cfg.space, result.metrics["arch"]).to_dict()


def hand_designed(cfg: ExperimentConfig, seeds: list[int]) -> list[dict]:
    """MobileNetV2-style references at each width multiplier and seed; measured on every target."""
    return [
        {"key": f"{HAND}:w{w:g}#s{seed}", "method": HAND, "target": None, "budget_ms": None, "seed": seed, "pair": None,
         "arch": mobilenet_v2_like(cfg.space, w).to_dict(), "search_seconds": 0.0}
        for w in cfg.evaluation.hand_designed_widths
        for seed in seeds
    ]


def _warm_up(cfg: ExperimentConfig, seed: int, run_dir: Path, tracker: ExperimentTracker):
    """Warm up one seed's supernet on the largest node and hand its weights to a host actor."""
    checkpoint = run_dir / "supernet" / f"warmup-s{seed}.pt"
    cpus = _cluster_cpus()
    stats = ray.get(warm_up_supernet.options(num_cpus=cpus).remote(cfg.space, cfg.data, cfg.search, seed, str(checkpoint), cpus))
    tracker.log_metrics(tracker.parent_id, {f"{k}/s{seed}": v for k, v in stats.items()})
    return SupernetHost.remote(str(checkpoint))


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
    """One scenario per (target, budget, seed); fractional budgets resolve inside the space's latency range."""
    macro, scenarios = get_space(cfg.space), []
    for tgt in cfg.targets:
        low, high = luts[tgt.name].latency_range(macro)
        budgets = list(tgt.budgets_ms) or [low + f * (high - low) for f in tgt.budget_fractions]
        for b in budgets:
            if b < low:
                raise ConfigError(f"config field targets ({tgt.name}): budget {b:.3f} ms is below the fastest architecture of the space ({low:.3f} ms on this target); raise it")
            for seed in range(cfg.seed, cfg.seed + cfg.evaluation.seeds):
                pair = f"{tgt.name}@{b:.3f}ms#s{seed}"
                scenarios.append({"pair": pair, "target": tgt.name, "budget_ms": round(b, 4), "seed": seed})
    return scenarios


def _tune(trainable, params: dict, name: str, scenarios: list[dict], cfg: ExperimentConfig, run_dir: Path, tracker: ExperimentTracker) -> dict:
    """One trial per scenario; the grid is over readable scenario keys, details travel as parameters."""
    by_key = {s["key"]: s for s in scenarios}
    for s in scenarios:
        tracker.child(s["key"], {"raynas.method": s["method"], "raynas.target": str(s["target"]), "raynas.budget_ms": str(s["budget_ms"]), "raynas.seed": str(s["seed"])})
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


def _finalize(cfg, finalist: dict, search_result, retrain_result, luts: dict[str, LatencyTable], run_dir: Path, num_classes: int, tracker: ExperimentTracker) -> list[dict]:
    """Measure a retrained finalist on its target (a hand-designed one on every target); record it."""
    arch = Architecture.from_dict(finalist["arch"])
    weights = Path(retrain_result.checkpoint.path) / WEIGHTS_FILE
    state = {k: v.numpy() for k, v in load_state_dict(weights).items()}
    p, run_id = cfg.profile, tracker.child(finalist["key"])
    targets = [finalist["target"]] if finalist["target"] else [t.name for t in cfg.targets]
    rows = []
    for target in targets:
        measured = ray.get(on_target(measure_latency, target).remote(arch.to_dict(), target, num_classes, p.warmup, p.repeats, state))
        predicted = luts[target].predict(arch, get_space(cfg.space)) if arch.space == cfg.space else None
        rows.append({
            "target": target,
            "budget_ms": finalist["budget_ms"],
            "method": finalist["method"],
            "seed": finalist["seed"],
            "arch": arch.to_string(),
            "arch_id": arch.arch_id,
            "width_mult": width_multiplier(arch.space),
            "predicted_ms": None if predicted is None else round(predicted, 4),
            "measured_ms": round(measured, 4),
            "test_acc": round(retrain_result.metrics["test_acc"], 4),
            "constrained": bool(search_result.metrics["constrained"]) if search_result is not None else None,
            "search_seconds": round(finalist["search_seconds"], 2),
            "retrain_seconds": round(retrain_result.metrics["retrain_seconds"], 2),
        })
        suffix = "" if finalist["target"] else f"/{target}"
        tracker.log_metrics(run_id, {f"measured_ms{suffix}": rows[-1]["measured_ms"], f"predicted_ms{suffix}": rows[-1]["predicted_ms"]})
    tracker.log_params(run_id, {"method": finalist["method"], "target": finalist["target"], "budget_ms": finalist["budget_ms"], "arch": arch.to_string(), "arch_id": arch.arch_id, "seed": finalist["seed"]})
    tracker.log_metrics(run_id, {"test_acc": rows[0]["test_acc"], "retrain_val_acc": retrain_result.metrics["val_acc"]})
    tracker.log_json(run_id, arch.to_dict(), "architecture.json")
    tracker.log_file(run_id, weights, "retrained")
    for target in targets:
        tracker.log_file(run_id, _lut_path(run_dir, target), "lut")
    return rows


def _write_results(run_dir: Path, results: list[dict], tracker: ExperimentTracker) -> None:
    table = pa.Table.from_pylist(results, schema=RESULTS_SCHEMA)
    pq.write_table(table, run_dir / "results.parquet")
    write_json(run_dir / "results.json", results)
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
