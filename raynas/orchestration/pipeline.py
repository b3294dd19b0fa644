"""The whole experiment, as Ray tasks and Tune runs driven from here.

profile targets -> search -> retrain every finalist, hand-designed references included (Tune) ->
measure on the targets -> results, record, report, MLflow. The search is one of two strategies:
* proxyless: warm up one supernet per seed -> ProxylessNAS searches (Tune) -> random searches with
  the same window, weights and wall-clock (Tune);
* ofa: train one elastic supernet per seed -> replicas -> accuracy predictor -> evolutionary
  searches (Tune) -> random subnet searches on the same replicas and wall-clock (Tune).
"""

from __future__ import annotations

import dataclasses
import datetime as _dt
import shutil
from pathlib import Path
from typing import Any, Callable, Sequence

import pyarrow as pa
import pyarrow.parquet as pq
import ray
import torch
import yaml
from ray import tune
from ray.util.scheduling_strategies import NodeAffinitySchedulingStrategy

from raynas.checkpoints import load_state_dict
from raynas.config import ConfigError, ExperimentConfig, parse_config
from raynas.data.datasets import load_splits
from raynas.evaluation.compare import HAND, OFA, PROXYLESS, RANDOM, RESULTS_SCHEMA, paired_comparisons
from raynas.evaluation.record import PhaseClock, reproducibility_record, write_json
from raynas.evaluation.report import write_report
from raynas.hardware.cache import OpCache
from raynas.hardware.estimates import estimated_table
from raynas.hardware.lut import LatencyTable
from raynas.orchestration.host import SupernetHost
from raynas.orchestration.ofa import (
    collect_and_fit_predictor, evolution_trial, predictor_payload, random_subnet_trial, resolution_spaces, resolutions, run_elastic_training, train_elastic_supernet,
)
from raynas.orchestration.replicas import ReplicaPool, start_replicas
from raynas.orchestration.runtime import check_data_root, check_gpus, check_shared, check_writable, connect
from raynas.orchestration.tasks import cache_update, measure_latencies, on_target, profile_target, warm_up_supernet
from raynas.orchestration.trials import WEIGHTS_FILE, random_trial, retrain_trial, search_trial
from raynas.search.evolution import SubnetGenes, SubnetLatency
from raynas.space.architecture import Architecture
from raynas.space.macro import get_space
from raynas.space.reference import mobilenet_v2_like, width_multiplier
from raynas.tracking.mlflow_tracker import ExperimentTracker, default_tracking_uri
from raynas.tracking.sync import lut_path, record_finalist, record_outputs, sync_run, weights_path
from raynas.tracking.tune_callback import MlflowTrialCallback


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
        raise ConfigError(f"config field run_root: cannot create {run_dir} ({exc.strerror or exc}); point it at a writable folder") from None
    return run_dir


def written_paths(cfg: ExperimentConfig, run_dir: Path) -> dict[str, str | None]:
    """Folders the run writes besides the run directory, by config field."""
    return {"ray.storage_path": tune_storage(cfg, run_dir), "profile.cache_dir": cfg.profile.cache_dir, "data.cache_dir": cfg.data.cache_dir}


def run_experiment(
    cfg: ExperimentConfig, run_dir: Path, log: Callable[[str], None] = print, callbacks: Sequence[tune.Callback] = (), resume: bool = False
) -> dict[str, Any]:
    """Run every (target, budget, seed) scenario and its baselines end to end; returns the summary also written to run_dir.

    ``callbacks`` join every Tune run (to watch trials, or to inject faults in tests). ``resume``
    continues a run directory whose driver died: saved latency tables and warm-up checkpoints are
    reused, finished Tune trials are kept (``Tuner.restore``), MLflow runs are found again.
    """
    if not resume:
        (run_dir / "config.yaml").write_text(yaml.safe_dump(dataclasses.asdict(cfg), sort_keys=False))
    if cfg.data.cache_dir is None:  # trials decode an image folder once per run, not once each
        cfg = dataclasses.replace(cfg, data=dataclasses.replace(cfg.data, cache_dir=str(run_dir / "data-cache")))
    uri = cfg.tracking.mlflow_uri or default_tracking_uri(run_dir)
    tracker = ExperimentTracker(uri, cfg.tracking.experiment, run_dir, run_name=run_dir.name)
    if not tracker.resumed:
        tracker.log_params(tracker.parent_id, _flatten(dataclasses.asdict(cfg)))
    experiment = Experiment(cfg, run_dir, tracker, PhaseClock(), log, list(callbacks), resume)
    started = False
    try:
        check_writable(written_paths(cfg, run_dir))
        started = connect(cfg.ray.address, cfg.ray.num_cpus, [t.name for t in cfg.targets if not t.estimated])
        check_shared({"ray.storage_path": tune_storage(cfg, run_dir), "run_root": cfg.run_root, "data.cache_dir": cfg.data.cache_dir})
        check_gpus(gpu_requests(cfg))
        if cfg.data.root:
            check_data_root(cfg.data.root)
        results = experiment.run()
    except BaseException as exc:
        reason = f"{type(exc).__name__}: {exc}"
        (run_dir / FAILED_FILE).write_text(reason + "\n")
        tracker.fail(reason)
        raise
    finally:
        if started:
            ray.shutdown()
    (run_dir / FAILED_FILE).unlink(missing_ok=True)  # a resumed run that finishes is no longer failed
    return experiment.finish(results)


def resume_experiment(run_dir: str | Path, log: Callable[[str], None] = print, callbacks: Sequence[tune.Callback] = ()) -> dict[str, Any]:
    """Continue the run in ``run_dir`` with the config it was started with."""
    run_dir = Path(run_dir).resolve()
    cfg = saved_config(run_dir)
    if (run_dir / FAILED_FILE).is_file():
        log(f"[raynas] {run_dir.name} had stopped on: {(run_dir / FAILED_FILE).read_text().strip()}; continuing it")
    return run_experiment(cfg, run_dir, log, callbacks, resume=True)


def sync_mlflow(run_dir: str | Path, uri: str | None = None) -> dict[str, int]:
    """Upload a finished run whose MLflow store was down mid-run (``raynas sync-mlflow``)."""
    run_dir = Path(run_dir).resolve()
    cfg = saved_config(run_dir)
    if not (run_dir / "results.parquet").is_file():
        raise ConfigError(f"{run_dir} has no results.parquet: the run did not finish; finish it first with `raynas run --resume {run_dir}`")
    tracker = ExperimentTracker(uri or cfg.tracking.mlflow_uri or default_tracking_uri(run_dir), cfg.tracking.experiment, run_dir, run_name=run_dir.name)
    if not tracker.resumed:
        tracker.log_params(tracker.parent_id, _flatten(dataclasses.asdict(cfg)))
    return sync_run(tracker, run_dir, tune_storage(cfg, run_dir), pq.read_table(run_dir / "results.parquet").to_pylist(), cfg.space)


def saved_config(run_dir: Path) -> ExperimentConfig:
    saved = run_dir / "config.yaml"
    if not saved.is_file():
        raise ConfigError(f"{run_dir} is not a raynas run directory (no config.yaml); pass the directory `raynas run` printed")
    return parse_config(yaml.safe_load(saved.read_text()))


@dataclasses.dataclass
class Experiment:
    """One run's context: config, run directory, tracker, phase clock, extra Tune callbacks."""

    cfg: ExperimentConfig
    run_dir: Path
    tracker: ExperimentTracker
    clock: PhaseClock
    log: Callable[[str], None]
    callbacks: list
    resume: bool

    def run(self) -> list[dict]:
        cfg, clock, log = self.cfg, self.clock, self.log
        macro, self.luts, self.variant_luts, self.supernets, self.weight_refs = get_space(cfg.space), {}, {}, {}, {}
        self.splits = splits = load_splits(cfg.data, materialize=False)  # sizes and shapes; trials load the images
        splits.check(cfg.data.batch_size)  # an empty split is refused here, not after profiling
        if (splits.in_channels, splits.input_size) != (macro.in_channels, macro.input_size):
            raise ConfigError(f"config field space: {macro.name!r} expects {macro.in_channels}x{macro.input_size}px images, data gives {splits.in_channels}x{splits.input_size}px")
        log(f"[raynas] profiling {len(cfg.targets)} targets on their nodes")
        with clock("profile"):
            self.luts = {t.name: self.profile(t.name) for t in cfg.targets}
            self.tables = self.resolution_tables() if cfg.strategy == "ofa" else {}
        scenarios = resolve_scenarios(cfg, self.luts, self.budget_ranges())
        seeds = sorted({s["seed"] for s in scenarios})
        finalists, self.found = (self.once_for_all if cfg.strategy == "ofa" else self.proxyless)(scenarios, seeds)
        finalists += hand_designed(cfg, seeds)
        log(f"[raynas] retraining {len(finalists)} finalists from scratch with one recipe")
        with clock("retrain"):
            retrained = self.tune(retrain_trial, dict(cfg=cfg, supernets=self.supernets), "retrain", finalists)
        log("[raynas] measuring the retrained networks on their targets")
        with clock("measure"):
            measured = self.measure(finalists, retrained)
        return [row for f in finalists for row in self.finalize(f, self.found.get(f["key"]), retrained[f["key"]], measured)]

    def proxyless(self, scenarios: list[dict], seeds: list[int]) -> tuple[list[dict], dict]:
        """Warm up one supernet per seed, one ProxylessNAS search per scenario, then the paired random searches."""
        cfg, clock, log = self.cfg, self.clock, self.log
        log(f"[raynas] warming up {len(seeds)} supernet(s) ({cfg.search.warmup_epochs} epochs each, uniform path sampling)")
        with clock("warmup"):
            hosts = {seed: self.warm_up(seed) for seed in seeds}
        log(f"[raynas] ProxylessNAS: {len(scenarios)} searches from shared weights")
        nas = [s | {"key": f"{PROXYLESS}:{s['pair']}", "method": PROXYLESS} for s in scenarios]
        with clock("search"):
            found = self.tune(search_trial, dict(hosts=hosts, luts=self.luts, cfg=cfg), "search", nas)
        finalists = [s | {"arch": _arch(cfg.space, found[s["key"]]), "search_seconds": found[s["key"]].metrics["search_seconds"]} for s in nas]
        if cfg.evaluation.random_search:
            log("[raynas] random search: same window, weights and wall-clock as each NAS search")
            rand = self.random_pairs(scenarios, found, PROXYLESS)
            with clock("random_search"):
                picked = self.tune(random_trial, dict(hosts=hosts, luts=self.luts, cfg=cfg), "random", rand)
            finalists += [s | {"arch": _arch(cfg.space, picked[s["key"]]), "search_seconds": picked[s["key"]].metrics["search_seconds"]} for s in rand]
        return finalists, found

    def once_for_all(self, scenarios: list[dict], seeds: list[int]) -> tuple[list[dict], dict]:
        """Train one elastic supernet per seed, serve it from replicas, fit the accuracy predictor on their
        evaluations, then one evolutionary search per scenario and the paired random subnet searches."""
        cfg, clock, log, ofa, tables = self.cfg, self.clock, self.log, self.cfg.ofa, self.tables
        self.variant_luts = {(target, space): lut for target, by_space in tables.items() for space, lut in by_space.items()}
        log(f"[raynas] Once-for-All: training {len(seeds)} elastic supernet(s) by progressive shrinking")
        with clock("supernet"):
            states = {seed: self.train_elastic(seed) for seed in seeds}
        with clock("predictor"):
            replicas = {seed: self.replicas(seed, state) for seed, state in states.items()}
            predictors = {seed: self.fit_predictor(seed, replicas[seed]) for seed in seeds}
        log(f"[raynas] Once-for-All: {len(scenarios)} evolutionary searches on the accuracy predictor")
        evo = [s | {"key": f"{OFA}:{s['pair']}", "method": OFA} for s in scenarios]
        params = dict(replicas=replicas, tables=tables, space=cfg.space, cfg=ofa)
        with clock("search"):
            found = self.tune(evolution_trial, params | {"predictors": predictors}, "evolution", evo)
        finalists = [s | {"arch": _arch(found[s["key"]].metrics["space"], found[s["key"]]), "search_seconds": found[s["key"]].metrics["search_seconds"]} for s in evo]
        if cfg.evaluation.random_search:
            log("[raynas] random search: uniform subnets under the same budget, same replicas and wall-clock")
            rand = self.random_pairs(scenarios, found, OFA)
            with clock("random_search"):
                picked = self.tune(random_subnet_trial, params, "random", rand)
            finalists += [s | {"arch": _arch(picked[s["key"]].metrics["space"], picked[s["key"]]), "search_seconds": picked[s["key"]].metrics["search_seconds"]} for s in rand]
        for replica in (r for pool in replicas.values() for r in pool):
            ray.kill(replica)  # their CPU (and GPU) shares go back to retraining; Tune may still hold their handles
        if ofa.finetune:
            self.supernets = {seed: [self.weight_refs[seed]] for seed in seeds}
            finalists = [f | {"finetune_seed": f["seed"]} for f in finalists]
        return finalists, found

    def resolution_tables(self) -> dict[str, dict]:
        """OFA: every target's latency table for each elastic input resolution of the space."""
        spaces = resolution_spaces(self.cfg.space, self.cfg.ofa.shrink)
        return {t.name: {space: self.luts[t.name] if space == self.cfg.space else self.profile(t.name, space) for space in spaces} for t in self.cfg.targets}

    def budget_ranges(self) -> dict[str, tuple[float, float]]:
        """Per target, the latencies budget fractions span: the space's fastest to slowest network, or
        for OFA its fastest to slowest subnet (shallowest stages and smallest resolution included)."""
        macro = get_space(self.cfg.space)
        if not self.tables:
            return {t.name: self.luts[t.name].latency_range(macro) for t in self.cfg.targets}
        genes = SubnetGenes(macro, self.cfg.ofa.shrink.min_depth, resolutions(macro, self.cfg.ofa.shrink))
        return {target: SubnetLatency(by_space).extremes(genes) for target, by_space in self.tables.items()}

    def random_pairs(self, scenarios: list[dict], found: dict, method: str) -> list[dict]:
        """Random-search scenarios, each with the measured wall-clock of its paired search as budget."""
        return [s | {"key": f"{RANDOM}:{s['pair']}", "method": RANDOM, "budget_seconds": found[f"{method}:{s['pair']}"].metrics["search_seconds"]} for s in scenarios]

    def train_elastic(self, seed: int) -> dict:
        """Progressive shrinking on the largest node; the driver keeps each phase's checkpoint in the run
        directory, which makes it resumable whichever node trained."""
        cfg, cpus = self.cfg, _cluster_cpus()
        directory = self.run_dir / "supernet" / f"ofa-s{seed}"
        task = train_elastic_supernet.options(num_cpus=cpus, num_gpus=cfg.ray.gpus_per_task)
        stats, state = run_elastic_training(task, directory, cfg.space, cfg.data, cfg.ofa.shrink, seed, cpus, cfg.compute)
        self.tracker.log_metrics(self.tracker.parent_id, {f"ofa_{k}/s{seed}": v for k, v in stats.items()})
        return state

    def replicas(self, seed: int, state: dict) -> list:
        ofa = self.cfg.ofa
        replicas, ref = start_replicas(
            state, ofa.replicas, self.cfg.space, ofa.shrink.min_depth, resolutions(get_space(self.cfg.space), ofa.shrink), self.cfg.data, ofa.calibration_batches, ofa.eval_batches, seed,
            ofa.replica_cpus, ofa.replica_gpus, self.cfg.compute,
        )
        self.weight_refs[seed] = ref  # the driver owns the weights while replicas live (a restarted one rereads them)
        return replicas

    def fit_predictor(self, seed: int, replicas: list) -> dict:
        """Accuracy predictor from replica evaluations; saved with its held-out RMSE and logged to MLflow."""
        predictor, report, _, _ = collect_and_fit_predictor(ReplicaPool(replicas), self.cfg.space, self.cfg.ofa, seed)
        directory = predictor.save(self.run_dir / "predictor" / f"s{seed}", report)
        self.tracker.log_metrics(self.tracker.parent_id, {f"predictor_{k}/s{seed}": float(v) for k, v in report.items()})
        for path in sorted(directory.iterdir()):
            self.tracker.log_file(self.tracker.parent_id, path, f"predictor/s{seed}")
        self.log(f"[raynas] accuracy predictor (seed {seed}): held-out RMSE {report['rmse_heldout']:.4f}, predicting the mean {report['rmse_heldout_mean_baseline']:.4f}")
        return predictor_payload(predictor)

    def finish(self, results: list[dict]) -> dict[str, Any]:
        """Results table, reproducibility record and report into the run directory, then MLflow."""
        write_outputs(self.run_dir, results, reproducibility_record(self.cfg, self.clock, results, self.luts, self.splits) | {"resumed": self.resume}, self.cfg.evaluation.report)
        record_outputs(self.tracker, self.run_dir)
        self.tracker.log_metrics(self.tracker.parent_id, {f"phase_seconds/{k}": v for k, v in self.clock.seconds.items()})
        self.tracker.finish()
        return {"results": results, "comparisons": paired_comparisons(results), "mlflow_uri": self.tracker.uri, "run_dir": str(self.run_dir)}

    def profile(self, target: str, space: str | None = None) -> LatencyTable:
        """The target's latency table for the run's space (or ``space``), profiled on its node; when
        resuming, the one saved."""
        path = lut_path(self.run_dir, target, space)
        if self.resume and path.is_file():
            self.log(f"[raynas] {target}: resuming with the latency table saved in the run directory")
            return LatencyTable.load(path)
        estimate = self.target(target).estimate
        if estimate is not None:
            lut = estimated_table(target, get_space(space or self.cfg.space), estimate.table, estimate.device, estimate.batch_size)
            self.log(f"[raynas] {target}: {lut.metadata['provenance']} estimate, not measured")
            lut.save(path)
            return lut
        profile = self.cfg.profile
        if profile.cache_dir:
            profile = dataclasses.replace(profile, cache_dir=str(Path(profile.cache_dir).resolve()))
        unit = self.luts[target].yardstick_ms if space and target in self.luts else None  # one unit for all of a target's tables
        cache = OpCache(profile.cache_dir, target) if profile.cache_dir else None  # read and written here: the driver's disk, not the target node's
        cached = cache.read() if cache else None
        lut = ray.get(on_target(profile_target, target).remote(target, space or self.cfg.space, self.splits.num_classes, profile, self.cfg.seed, unit, cached, str(cache.path) if cache else ""))
        if cache:
            cache.save(cache_update(lut, cached))
        self.log(f"[raynas] {target}: {lut.metadata['cache']}")
        lut.save(path)
        return lut

    def warm_up(self, seed: int):
        """Warm up one seed's supernet on the largest node; the driver keeps the checkpoint and starts a
        host actor on its own node, so a restarted host always finds the file (whichever node trained)."""
        checkpoint = self.run_dir / "supernet" / f"warmup-s{seed}.pt"
        if not (self.resume and checkpoint.is_file()):
            cfg, cpus = self.cfg, _cluster_cpus()
            task = warm_up_supernet.options(num_cpus=cpus, num_gpus=cfg.ray.gpus_per_task)
            stats, state = ray.get(task.remote(cfg.space, cfg.data, cfg.search, seed, cpus, cfg.compute))
            checkpoint.parent.mkdir(parents=True, exist_ok=True)
            tmp = checkpoint.with_suffix(".tmp")
            torch.save({k: torch.from_numpy(v.copy()) for k, v in state.items()}, tmp)
            tmp.replace(checkpoint)
            self.tracker.log_metrics(self.tracker.parent_id, {f"{k}/s{seed}": v for k, v in stats.items()})
        here = NodeAffinitySchedulingStrategy(ray.get_runtime_context().get_node_id(), soft=False)
        return SupernetHost.options(scheduling_strategy=here).remote(str(checkpoint))

    def tune(self, trainable, params: dict, name: str, scenarios: list[dict]) -> dict:
        """One trial per scenario; the grid is over readable scenario keys, details travel as parameters.

        A trial whose worker or node dies is retried up to ``ray.max_failures`` times. When resuming,
        an experiment found in Tune storage is restored: finished trials are kept, the rest rerun.
        """
        cfg, tracker = self.cfg, self.tracker
        by_key = {s["key"]: s for s in scenarios}
        for s in scenarios:
            tracker.child(s["key"], {"raynas.method": s["method"], "raynas.target": str(s["target"]), "raynas.budget_ms": str(s["budget_ms"]), "raynas.seed": str(s["seed"])})
        trainable = tune.with_resources(tune.with_parameters(trainable, scenarios=by_key, **params), trial_resources(cfg))
        path = f"{tune_storage(cfg, self.run_dir)}/{name}"
        if self.resume and tune.Tuner.can_restore(path):
            self.log(f"[raynas] {name}: restoring the Tune experiment; finished trials are kept")
            tuner = tune.Tuner.restore(path, trainable, resume_unfinished=True, restart_errored=True)
        else:
            tuner = tune.Tuner(
                trainable,
                param_space={"scenario": tune.grid_search(list(by_key))},
                # reused actors skip a worker start and the torch import per trial (~6 s each on 2 cores)
                tune_config=tune.TuneConfig(max_concurrent_trials=cfg.ray.max_concurrent_trials or None, reuse_actors=True),
                run_config=tune.RunConfig(
                    name=name,
                    storage_path=tune_storage(cfg, self.run_dir),
                    callbacks=[MlflowTrialCallback(tracker, name), *self.callbacks],
                    failure_config=tune.FailureConfig(max_failures=cfg.ray.max_failures),
                ),
            )
        grid = tuner.fit()
        failed = [r for r in grid if r.error is not None]
        if failed:
            raise RuntimeError(f"{len(failed)} {name} trial(s) failed; first error: {failed[0].error}")
        return {r.config["scenario"]: r for r in grid}

    def target(self, name: str):
        return next(t for t in self.cfg.targets if t.name == name)

    def targets_of(self, finalist: dict) -> list[str]:
        """The search's own target, or every target for a hand-designed reference."""
        return [finalist["target"]] if finalist["target"] else [t.name for t in self.cfg.targets]

    def measure(self, finalists: list[dict], retrained: dict) -> dict[tuple[str, str], float]:
        """Latency of every retrained finalist on its target(s): one task per target times all of that
        target's networks in interleaved rounds, so methods are compared under the same machine state."""
        nets: dict[str, dict] = {t.name: {} for t in self.cfg.targets}
        for f in finalists:
            weights = weights_path(self.run_dir, f["key"])
            weights.parent.mkdir(exist_ok=True)
            with retrained[f["key"]].checkpoint.as_directory() as local:  # downloads when Tune storage is remote
                shutil.copyfile(Path(local) / WEIGHTS_FILE, weights)
            state = {k: v.numpy() for k, v in load_state_dict(weights).items()}
            for target in self.targets_of(f):
                nets[target][f["key"]] = (f["arch"], state)
        p, out = self.cfg.profile, {}
        for target, mine in nets.items():
            if self.target(target).estimated:
                continue  # unreachable hardware: its rows carry the estimate only
            unit = self.luts[target].yardstick_ms
            times = ray.get(on_target(measure_latencies, target).remote(mine, target, self.splits.num_classes, p.warmup, p.repeats, p.settle_seconds, unit))
            out |= {(key, target): ms for key, ms in times.items()}
        return out

    def finalize(self, finalist: dict, search_result, retrain_result, measured: dict[tuple[str, str], float]) -> list[dict]:
        """The finalist's result rows (one per target it was measured on), recorded in its MLflow child run."""
        arch, rows = Architecture.from_dict(finalist["arch"]), []
        for target in self.targets_of(finalist):
            lut = self.luts[target] if arch.space == self.cfg.space else self.variant_luts.get((target, arch.space))
            predicted = lut.predict(arch, get_space(arch.space)) if lut is not None else None
            if predicted is None and (finalist["key"], target) not in measured:
                continue  # a scaled reference on an estimated target: no table covers it
            rows.append({
                "key": finalist["key"],
                "target": target,
                "budget_ms": finalist["budget_ms"],
                "method": finalist["method"],
                "seed": finalist["seed"],
                "arch": arch.to_string(),
                "space": arch.space,
                "arch_id": arch.arch_id,
                "width_mult": width_multiplier(arch.space),
                "predicted_ms": None if predicted is None else round(predicted, 4),
                "measured_ms": _rounded(measured.get((finalist["key"], target))),
                "estimated": self.target(target).estimated,
                "test_acc": round(retrain_result.metrics["test_acc"], 4),
                "constrained": bool(search_result.metrics["constrained"]) if search_result is not None and "constrained" in search_result.metrics else None,
                "argmax_ms": _rounded(search_result.metrics.get("argmax_latency_ms")) if search_result is not None else None,
                "search_seconds": round(finalist["search_seconds"], 2),
                "retrain_seconds": round(retrain_result.metrics["retrain_seconds"], 2),
            })
        record_finalist(self.tracker, self.run_dir, rows, arch)
        return rows


def _arch(space: str, result) -> dict:
    return Architecture.from_string(space, result.metrics["arch"]).to_dict()


def hand_designed(cfg: ExperimentConfig, seeds: list[int]) -> list[dict]:
    """MobileNetV2-style references at each width multiplier and seed; measured on every target."""
    return [
        {"key": f"{HAND}:w{w:g}#s{seed}", "method": HAND, "target": None, "budget_ms": None, "seed": seed, "pair": None,
         "arch": mobilenet_v2_like(cfg.space, w).to_dict(), "search_seconds": 0.0}
        for w in cfg.evaluation.hand_designed_widths
        for seed in seeds
    ]


def trial_resources(cfg: ExperimentConfig) -> dict[str, float]:
    """What every search / retraining trial reserves: its CPUs and its (possibly fractional) GPU share."""
    return {"cpu": cfg.ray.cpus_per_trial, "gpu": cfg.ray.gpus_per_trial}


def gpu_requests(cfg: ExperimentConfig) -> dict[str, float]:
    """GPU reservations by config field, checked against the cluster before anything runs."""
    requests = {"ray.gpus_per_trial": cfg.ray.gpus_per_trial, "ray.gpus_per_task": cfg.ray.gpus_per_task}
    return requests | ({"ofa.replica_gpus": cfg.ofa.replica_gpus} if cfg.strategy == "ofa" else {})


def tune_storage(cfg: ExperimentConfig, run_dir: Path) -> str:
    """Where Tune keeps trial results and checkpoints: ``ray.storage_path/<run>`` or ``<run_dir>/tune``."""
    if cfg.ray.storage_path is None:
        return str(run_dir / "tune")
    return f"{cfg.ray.storage_path.rstrip('/')}/{run_dir.name}"


def resolve_scenarios(cfg: ExperimentConfig, luts: dict[str, LatencyTable], ranges: dict[str, tuple[float, float]] | None = None) -> list[dict]:
    """One scenario per (target, budget, seed); fractional budgets resolve inside each target's latency
    range (``ranges``: the strategy's own, e.g. OFA's subnets; default the space's)."""
    macro, scenarios = get_space(cfg.space), []
    for tgt in cfg.targets:
        low, high = ranges[tgt.name] if ranges else luts[tgt.name].latency_range(macro)
        budgets = list(tgt.budgets_ms) or [low + f * (high - low) for f in tgt.budget_fractions]
        for b in budgets:
            if b < low:
                raise ConfigError(f"config field targets ({tgt.name}): budget {b:.3f} ms is below the fastest network the search can return ({low:.3f} ms on this target); raise it")
            for seed in range(cfg.seed, cfg.seed + cfg.evaluation.seeds):
                pair = f"{tgt.name}@{b:.3f}ms#s{seed}"
                scenarios.append({"pair": pair, "target": tgt.name, "budget_ms": round(b, 4), "seed": seed})
    return scenarios


def write_outputs(run_dir: Path, results: list[dict], record: dict, report: bool) -> None:
    """results.parquet / .json, record.json and (optionally) the report, all inside the run directory."""
    pq.write_table(pa.Table.from_pylist(results, schema=RESULTS_SCHEMA), run_dir / "results.parquet")
    write_json(run_dir / "results.json", results)
    write_json(run_dir / "record.json", record)
    if report:
        write_report(run_dir)


def _rounded(value: float | None) -> float | None:
    return None if value is None else round(value, 4)


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
