"""The whole experiment, as Ray tasks and Tune runs driven from here.

profile targets -> the strategy prepares its shared state -> searches (Tune) -> random baselines
(Tune) -> retrain every finalist, hand-designed references included (Tune) -> measure on the
targets -> results, record, report, MLflow. Strategies are plug-ins (``raynas/strategies/``): this
sequence is the same for every one of them.
"""

from __future__ import annotations

import dataclasses
import datetime as _dt
import shutil
import time
from pathlib import Path
from typing import Any, Callable, Sequence

import pyarrow as pa
import pyarrow.parquet as pq
import ray
import yaml
from ray import tune
from ray.tune import ResultGrid
from torch import nn

from raynas.checkpoints import load_state_dict
from raynas.config import ConfigError, ExperimentConfig, parse_config
from raynas.data.datasets import load_splits
from raynas.evaluation.compare import ASHA, HAND, RESULTS_SCHEMA, paired_comparisons
from raynas.evaluation.record import PhaseClock, reproducibility_record, write_json
from raynas.evaluation.report import write_report
from raynas.export import deployment_path, export_network
from raynas.hardware.cache import OpCache
from raynas.hardware.estimates import estimated_table
from raynas.hardware.lut import LatencyTable
from raynas.hardware.targets import get_target
from raynas.orchestration.asha import PerScenario, anytime, standalone_trial, survivor, window_candidates
from raynas.orchestration.runtime import check_cpus, check_data_root, check_gpus, check_shared, check_writable, cluster_cpus, connect
from raynas.orchestration.tasks import cache_update, measure_latencies, on_target, profile_target
from raynas.orchestration.trials import WEIGHTS_FILE, retrain_trial, searcher_trial
from raynas.space.architecture import Architecture
from raynas.space.macro import get_space
from raynas.space.network import ChildNetwork
from raynas.space.reference import mobilenet_v2_like, width_multiplier
from raynas.strategies import Finalist, Job, Scenario, get_strategy
from raynas.tracking.mlflow_tracker import ExperimentTracker, default_tracking_uri
from raynas.tracking.sync import frontier_path, lut_path, record_finalist, record_outputs, sync_run, weights_path
from raynas.tracking.tune_callback import MlflowTrialCallback

CURVES_FILE = "curves.json"  # performance over time of every search (the report's over-time panels)
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


def written_paths(cfg: ExperimentConfig, run_dir: Path) -> dict[str, str | None]:
    """Folders the run writes besides the run directory, by config field."""
    return {
        "ray.storage_path": tune_storage(cfg, run_dir),
        "profile.cache_dir": cfg.profile.cache_dir,
        "data.cache_dir": cfg.data.cache_dir,
    }


def run_experiment(
    cfg: ExperimentConfig, run_dir: Path, log: Callable[[str], None] = print, callbacks: Sequence[tune.Callback] = (), resume: bool = False
) -> dict[str, Any]:
    """Run every (target, budget, seed) scenario and its baselines end to end; returns the summary also written to run_dir.

    ``callbacks`` join every Tune run (to watch trials, or to inject faults in tests). ``resume``
    continues a run directory whose driver died: saved latency tables and warm-up checkpoints are
    reused, finished Tune trials are kept (``Tuner.restore``), MLflow runs are found again.
    """
    if not resume:
        (run_dir / "config.yaml").write_text(yaml.safe_dump(cfg.to_dict(), sort_keys=False))
    if cfg.data.cache_dir is None:  # trials decode an image folder once per run, not once each
        cfg = dataclasses.replace(cfg, data=dataclasses.replace(cfg.data, cache_dir=str(run_dir / "data-cache")))
    uri = cfg.tracking.mlflow_uri or default_tracking_uri(run_dir)
    tracker = ExperimentTracker(uri, cfg.tracking.experiment, run_dir, run_name=run_dir.name)
    if not tracker.resumed:
        tracker.log_params(tracker.parent_id, _flatten(cfg.to_dict()))
    experiment = Experiment(cfg, run_dir, tracker, PhaseClock(), log, list(callbacks), resume)
    started = False
    try:
        check_writable(written_paths(cfg, run_dir))
        started = connect(cfg.ray.address, cfg.ray.num_cpus, [t.name for t in cfg.targets if not t.estimated])
        check_shared({"ray.storage_path": tune_storage(cfg, run_dir), "run_root": cfg.run_root, "data.cache_dir": cfg.data.cache_dir})
        check_gpus(gpu_requests(cfg))
        check_cpus(get_strategy(cfg.strategy).held_cpus(cfg), cfg.ray.cpus_per_trial)
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
    tracker = ExperimentTracker(
        uri or cfg.tracking.mlflow_uri or default_tracking_uri(run_dir), cfg.tracking.experiment, run_dir, run_name=run_dir.name
    )
    if not tracker.resumed:
        tracker.log_params(tracker.parent_id, _flatten(cfg.to_dict()))
    return sync_run(tracker, run_dir, tune_storage(cfg, run_dir), pq.read_table(run_dir / "results.parquet").to_pylist(), cfg.space)


def saved_config(run_dir: Path) -> ExperimentConfig:
    saved = run_dir / "config.yaml"
    if not saved.is_file():
        raise ConfigError(f"{run_dir} is not a raynas run directory (no config.yaml); pass the directory `raynas run` printed")
    return parse_config(yaml.safe_load(saved.read_text()))


@dataclasses.dataclass
class Experiment:
    """One run's context: config, run directory, tracker, phase clock, extra Tune callbacks; strategies
    reach the cluster through it (``profile``, ``tune``, ``search_jobs``)."""

    cfg: ExperimentConfig
    run_dir: Path
    tracker: ExperimentTracker
    clock: PhaseClock
    log: Callable[[str], None]
    callbacks: list
    resume: bool

    def run(self) -> list[dict]:
        """profile -> prepare -> search -> random baseline -> retrain -> measure -> result rows."""
        cfg, clock, log = self.cfg, self.clock, self.log
        macro, self.luts, self.tables, self.curves = get_space(cfg.space), {}, {}, []
        strategy = get_strategy(cfg.strategy)
        self.splits = splits = load_splits(cfg.data, materialize=False)  # sizes and shapes; trials load the images
        splits.check(cfg.data.batch_size)  # an empty split is refused here, not after profiling
        if (splits.in_channels, splits.input_size) != (macro.in_channels, macro.input_size):
            raise ConfigError(
                f"config field space: {macro.name!r} expects {macro.in_channels}x{macro.input_size}px images, data gives {splits.in_channels}x{splits.input_size}px"
            )
        log(f"[raynas] profiling {len(cfg.targets)} targets on their nodes")
        with clock("profile"):
            self.luts = {t.name: self.profile(t.name) for t in cfg.targets}
            strategy.latency_tables(self)
        scenarios = resolve_scenarios(cfg, self.luts, strategy.budget_ranges(self))
        began = time.perf_counter()
        strategy.prepare(self, sorted({s.seed for s in scenarios}))
        prepare_share = (
            (time.perf_counter() - began) * (cfg.ray.gpus_per_task or cluster_cpus()) / len(scenarios)
        )  # device-seconds per scenario
        log(f"[raynas] {strategy.label}: {len(scenarios)} scenarios")
        with clock("search"):
            found = strategy.search(self, scenarios)
        finalists = list(found)
        if cfg.evaluation.random_search:
            log("[raynas] random search: same window, budget and pipeline as each NAS search")
            with clock("random_search"):
                finalists += strategy.random_baseline(self, scenarios, found)
        if cfg.evaluation.asha.enabled:
            log(
                f"[raynas] random search with early stopping ({cfg.evaluation.asha.scheduler}): standalone trials within each NAS search's device-seconds"
            )
            spent = {f.key: f.search_seconds * trial_devices(cfg) + prepare_share for f in found}
            with clock("asha_search"):
                finalists += self.early_stopped_random([Job.of(s, ASHA, budget_seconds=spent[s.key(strategy.name)]) for s in scenarios])
        strategy.release(self)
        finalists += hand_designed(cfg, sorted({s.seed for s in scenarios}))
        log(f"[raynas] retraining {len(finalists)} finalists with one recipe")
        with clock("retrain"):
            jobs = {f.key: f for f in finalists}
            retrained = self.tune(retrain_trial, dict(cfg=cfg, payload=strategy.retrain_payload()), "retrain", list(jobs.values()))
        log("[raynas] measuring the retrained networks on their targets")
        with clock("measure"):
            measured = self.measure(finalists, retrained)
        return [row for f in finalists for row in self.finalize(f, retrained[f.key], measured)]

    def early_stopped_random(self, jobs: list[Job]) -> list[Finalist]:
        """For each job, random architectures from its scenario's window trained standalone under a Tune
        scheduler until its trials' device-seconds reach ``job.budget_seconds``; each scenario's survivor
        is its finalist. One Tune run holds every scenario, each judged and budgeted on its own."""
        cfg, asha = self.cfg, self.cfg.evaluation.asha
        archs, seeds = {}, {job.key: job.seed for job in jobs}
        for job in jobs:
            self.open_child(job)
            archs[job.key] = window_candidates(
                self.luts[job.target], get_space(cfg.space), job.budget_ms, cfg.search.budget_floor, asha.candidates, job.seed
            )
        trainable = tune.with_resources(
            tune.with_parameters(standalone_trial, archs=archs, seeds=seeds, space=cfg.space, cfg=cfg), trial_resources(cfg)
        )
        grid = self.finished_before("asha", trainable)
        if grid is None:
            grid = self.early_stopping_run(trainable, jobs, archs)
        ran = [r for r in grid if r.config is not None]  # a trial stopped before it started has no config
        return [self.asha_survivor(job, [r for r in ran if r.config["scenario"] == job.key]) for job in jobs]

    def finished_before(self, name: str, trainable) -> ResultGrid | None:
        """When resuming, the results of Tune experiment ``name`` if it had finished; None to run it
        (again: its schedulers keep no state a restored run could go on from)."""
        path = f"{tune_storage(self.cfg, self.run_dir)}/{name}"
        if not (self.resume and tune.Tuner.can_restore(path)):
            return None
        grid = tune.Tuner.restore(path, trainable).get_results()
        if not grid.num_errors and grid.num_terminated == len(grid):
            self.log(f"[raynas] {name}: finished before the interruption; its results are kept")
            return grid
        self.log(f"[raynas] {name}: interrupted; it runs again from the start")
        return None

    def early_stopping_run(self, trainable, jobs: list[Job], archs: dict[str, list[str]]) -> ResultGrid:
        cfg, asha = self.cfg, self.cfg.evaluation.asha
        per_scenario = PerScenario(asha, {job.key: job.budget_seconds for job in jobs}, trial_devices(cfg))
        tuner = tune.Tuner(
            trainable,
            param_space={"scenario": tune.grid_search(list(archs)), "candidate": tune.grid_search(list(range(asha.candidates)))},
            tune_config=tune.TuneConfig(
                metric="val_acc",
                mode="max",
                scheduler=per_scenario,
                max_concurrent_trials=cfg.ray.max_concurrent_trials or None,
                reuse_actors=True,
            ),
            run_config=tune.RunConfig(
                name="asha",
                storage_path=tune_storage(cfg, self.run_dir),
                callbacks=list(self.callbacks),
                failure_config=tune.FailureConfig(max_failures=cfg.ray.max_failures),
                checkpoint_config=tune.CheckpointConfig(num_to_keep=1),
            ),
        )
        return tuner.fit()

    def asha_survivor(self, job: Job, results: list) -> Finalist:
        """The job's finalist from its scenario's trials; its curve and costs go to the run's records."""
        frames = [r.metrics_dataframe for r in results if r.metrics_dataframe is not None and "val_acc" in r.metrics_dataframe]
        if not frames:
            raise RuntimeError(
                f"{job.key}: no early-stopped random trial reported within {job.budget_seconds:.1f} device-seconds; raise the budget or lower evaluation.asha.max_epochs"
            )
        curve = anytime(frames, trial_devices(self.cfg))
        self.add_curve(job, curve)
        best = survivor([r.metrics for r in results if r.metrics and "val_acc" in r.metrics])
        self.tracker.log_metrics(
            self.tracker.child(job.key),
            {
                "asha/device_seconds": curve[-1][0],
                "asha/budget_device_seconds": job.budget_seconds,
                "asha/longest_epoch_seconds": max(float(f["time_this_iter_s"].max()) for f in frames),
                "asha/trials": len(frames),
                "asha/val_acc": best["val_acc"],
            },
        )
        return Finalist.found(
            job, Architecture.from_string(self.cfg.space, best["arch"]), {"search_seconds": curve[-1][0], "evaluations": len(frames)}
        )

    def open_child(self, job: Job | Finalist) -> str:
        """The job's MLflow child run, tagged with its method, target, budget and seed (found again on resume)."""
        return self.tracker.child(
            job.key,
            {
                "raynas.method": job.method,
                "raynas.target": str(job.target),
                "raynas.budget_ms": str(job.budget_ms),
                "raynas.seed": str(job.seed),
            },
        )

    def table(self, target: str, space: str) -> LatencyTable | None:
        """The target's table for ``space``: the run's, or one a strategy profiled (an OFA resolution)."""
        return self.luts[target] if space == self.cfg.space else self.tables.get((target, space))

    def search_jobs(self, name: str, jobs: list[Job], build: Callable, shared: Any) -> dict[str, Any]:
        """One checkpointed search trial per job (``build(job, shared, cfg)`` makes its searcher): a
        retried trial resumes from its last step. Returns Tune's results by job key."""
        results = self.tune(searcher_trial, dict(build=build, shared=shared, cfg=self.cfg), name, jobs)
        for job in jobs:
            if job.budget_ms is not None:
                self.add_curve(job, trial_curve(results[job.key]))
        return results

    def add_curve(self, job: Job, points: list[tuple[float, float]]) -> None:
        """Performance over time of one search: (its seconds so far, validation accuracy of what it would return then)."""
        self.curves += [
            {
                "key": job.key,
                "method": job.method,
                "target": job.target,
                "budget_ms": job.budget_ms,
                "seed": job.seed,
                "seconds": round(float(t), 3),
                "score": float(score),
            }
            for t, score in points
        ]

    def save_frontier(self, target: str, seed: int, label: str, models: list[dict]) -> Path:
        """A search's whole (predicted latency, validation accuracy) set, for the report's frontier panel."""
        path = frontier_path(self.run_dir, target, seed)
        path.parent.mkdir(exist_ok=True)
        return write_json(path, {"target": target, "seed": seed, "method": label, "models": models})

    def finish(self, results: list[dict]) -> dict[str, Any]:
        """Results table, reproducibility record and report into the run directory, then MLflow."""
        write_json(self.run_dir / CURVES_FILE, self.curves)
        write_outputs(
            self.run_dir,
            results,
            reproducibility_record(self.cfg, self.clock, results, self.luts, self.splits) | {"resumed": self.resume},
            self.cfg.evaluation.report,
        )
        record_outputs(self.tracker, self.run_dir)
        self.tracker.log_metrics(self.tracker.parent_id, {f"phase_seconds/{k}": v for k, v in self.clock.seconds.items()})
        self.tracker.finish()
        return {
            "results": results,
            "comparisons": paired_comparisons(results),
            "mlflow_uri": self.tracker.uri,
            "run_dir": str(self.run_dir),
        }

    def profile(self, target: str, space: str | None = None) -> LatencyTable:
        """The target's latency table for the run's space (or ``space``), profiled on its node; when
        resuming, the one saved."""
        path = lut_path(self.run_dir, target, space)
        if self.resume and path.is_file():
            self.log(f"[raynas] {target}: resuming with the latency table saved in the run directory")
            return self._keep(target, space, LatencyTable.load(path))
        estimate = self.target(target).estimate
        if estimate is not None:
            lut = estimated_table(target, get_space(space or self.cfg.space), estimate.table, estimate.device, estimate.batch_size)
            self.log(f"[raynas] {target}: {lut.metadata['provenance']} estimate, not measured")
            lut.save(path)
            return self._keep(target, space, lut)
        profile = self.cfg.profile
        if profile.cache_dir:
            profile = dataclasses.replace(profile, cache_dir=str(Path(profile.cache_dir).resolve()))
        unit = self.luts[target].yardstick_ms if space and target in self.luts else None  # one unit for all of a target's tables
        cache = (
            OpCache(profile.cache_dir, target) if profile.cache_dir else None
        )  # read and written here: the driver's disk, not the target node's
        cached = cache.read() if cache else None
        lut = ray.get(
            on_target(profile_target, target).remote(
                target,
                space or self.cfg.space,
                self.splits.num_classes,
                profile,
                self.cfg.seed,
                unit,
                cached,
                str(cache.path) if cache else "",
            )
        )
        if cache:
            cache.save(cache_update(lut, cached))
        self.log(f"[raynas] {target}: {lut.metadata['cache']}")
        lut.save(path)
        return self._keep(target, space, lut)

    def _keep(self, target: str, space: str | None, lut: LatencyTable) -> LatencyTable:
        if space is not None:
            self.tables[(target, space)] = lut
        return lut

    def tune(self, trainable, params: dict, name: str, jobs: list) -> dict:
        """One trial per job (``Job`` or ``Finalist``); the grid is over readable job keys, details travel as parameters.

        A trial whose worker or node dies is retried up to ``ray.max_failures`` times (from its last
        checkpoint where it keeps one). When resuming, an experiment found in Tune storage is
        restored: finished trials are kept, the rest rerun.
        """
        cfg, tracker = self.cfg, self.tracker
        by_key = {j.key: j for j in jobs}
        for j in jobs:
            self.open_child(j)
        trainable = tune.with_resources(tune.with_parameters(trainable, jobs=by_key, **params), trial_resources(cfg))
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
                    checkpoint_config=tune.CheckpointConfig(num_to_keep=1),  # a search's latest state; a retraining's weights
                ),
            )
        grid = tuner.fit()
        failed = [r for r in grid if r.error is not None]
        if failed:
            raise RuntimeError(f"{len(failed)} {name} trial(s) failed; first error: {failed[0].error}")
        return {r.config["scenario"]: r for r in grid}

    def target(self, name: str):
        return next(t for t in self.cfg.targets if t.name == name)

    def targets_of(self, finalist: Finalist) -> list[str]:
        """The search's own target, or every target for a hand-designed reference."""
        return [finalist.target] if finalist.target else [t.name for t in self.cfg.targets]

    def measure(self, finalists: list[Finalist], retrained: dict) -> dict[tuple[str, str], tuple[float, float]]:
        """Latency of every retrained finalist on its target(s), in the table's unit and in wall-clock ms:
        one task per target times all of that target's networks in interleaved rounds, so methods are
        compared under the same machine state."""
        nets: dict[str, dict] = {t.name: {} for t in self.cfg.targets}
        for f in finalists:
            weights = weights_path(self.run_dir, f.key)
            weights.parent.mkdir(exist_ok=True)
            with retrained[f.key].checkpoint.as_directory() as local:  # downloads when Tune storage is remote
                shutil.copyfile(Path(local) / WEIGHTS_FILE, weights)
            state = {k: v.numpy() for k, v in load_state_dict(weights).items()}
            for target in self.targets_of(f):
                nets[target][f.key] = (f.arch.to_dict(), state)
        p, out = self.cfg.profile, {}
        for target, mine in nets.items():
            if self.target(target).estimated:
                continue  # unreachable hardware: its rows carry the estimate only
            unit = self.luts[target].yardstick_ms
            times = ray.get(
                on_target(measure_latencies, target).remote(
                    mine, target, self.splits.num_classes, p.warmup, p.repeats, p.settle_seconds, unit
                )
            )
            out |= {(key, target): (ms, ms * times.wall_per_unit) for key, ms in times.items()}
        return out

    def finalize(self, finalist: Finalist, retrain_result, measured: dict[tuple[str, str], tuple[float, float]]) -> list[dict]:
        """The finalist's result rows (one per target it was measured on), its exports, and its MLflow child run."""
        arch, rows = finalist.arch, []
        net = ChildNetwork(arch, self.splits.num_classes)
        net.load_state_dict(load_state_dict(weights_path(self.run_dir, finalist.key)))
        for target in self.targets_of(finalist):
            lut = self.table(target, arch.space)
            predicted = lut.predict(arch, get_space(arch.space)) if lut is not None else None
            if predicted is None and (finalist.key, target) not in measured:
                continue  # a scaled reference on an estimated target: no table covers it
            unit_ms, wall_ms = measured.get((finalist.key, target), (None, None))
            rows.append(
                {
                    "key": finalist.key,
                    "target": target,
                    "budget_ms": finalist.budget_ms,
                    "method": finalist.method,
                    "seed": finalist.seed,
                    "arch": arch.to_string(),
                    "space": arch.space,
                    "arch_id": arch.arch_id,
                    "width_mult": width_multiplier(arch.space),
                    "predicted_ms": None if predicted is None else round(predicted, 4),
                    "measured_ms": _rounded(unit_ms),
                    "measured_wall_ms": _rounded(wall_ms),
                    "estimated": self.target(target).estimated,
                    "val_acc": round(retrain_result.metrics["val_acc"], 4),
                    "test_acc": round(retrain_result.metrics["test_acc"], 4),
                    "constrained": finalist.constrained,
                    "argmax_ms": _rounded(finalist.argmax_ms),
                    "search_seconds": round(finalist.search_seconds, 2),
                    "evaluations": None if finalist.evaluations is None else int(finalist.evaluations),
                    "retrain_seconds": round(retrain_result.metrics["retrain_seconds"], 2),
                }
            )
            self.export(net, rows[-1])
        record_finalist(self.tracker, self.run_dir, rows, arch)
        return rows

    def export(self, net: nn.Module, row: dict) -> None:
        """The network as its target runs it (TorchScript or ONNX) with its recipe (raynas/export.py)."""
        estimated = self.target(row["target"]).estimated
        target = None if estimated else get_target(row["target"])
        batch = self.table(row["target"], row["space"]).batch_size if estimated else target.batch_size
        macro = get_space(row["space"])
        facts = {
            k: row[k]
            for k in (
                "key",
                "method",
                "arch",
                "space",
                "budget_ms",
                "predicted_ms",
                "measured_ms",
                "measured_wall_ms",
                "test_acc",
                "estimated",
            )
        }
        export_network(
            net,
            (batch, macro.in_channels, macro.input_size, macro.input_size),
            deployment_path(self.run_dir, row["key"], row["target"]),
            target=target,
            facts=facts,
        )


def trial_curve(result) -> list[tuple[float, float]]:
    """(search_seconds, score) of every step a search trial reported that had a score."""
    frame = result.metrics_dataframe
    if frame is None or "score" not in frame:
        return []
    frame = frame.dropna(subset=["score"]).sort_values("search_seconds")
    return list(zip(frame["search_seconds"].tolist(), frame["score"].tolist()))


def hand_designed(cfg: ExperimentConfig, seeds: list[int]) -> list[Finalist]:
    """MobileNetV2-style references at each width multiplier and seed; measured on every target."""
    return [
        Finalist(f"{HAND}:w{w:g}#s{seed}", HAND, seed, mobilenet_v2_like(cfg.space, w))
        for w in cfg.evaluation.hand_designed_widths
        for seed in seeds
    ]


def trial_devices(cfg: ExperimentConfig) -> float:
    """Devices a trial holds, for device-seconds: its GPU share when it has one, else its CPUs."""
    return cfg.ray.gpus_per_trial or cfg.ray.cpus_per_trial


def trial_resources(cfg: ExperimentConfig) -> dict[str, float]:
    """What every search / retraining trial reserves: its CPUs and its (possibly fractional) GPU share."""
    return {"cpu": cfg.ray.cpus_per_trial, "gpu": cfg.ray.gpus_per_trial}


def gpu_requests(cfg: ExperimentConfig) -> dict[str, float]:
    """GPU reservations by config field, checked against the cluster before anything runs."""
    requests = {"ray.gpus_per_trial": cfg.ray.gpus_per_trial, "ray.gpus_per_task": cfg.ray.gpus_per_task}
    return requests | get_strategy(cfg.strategy).gpu_requests(cfg)


def tune_storage(cfg: ExperimentConfig, run_dir: Path) -> str:
    """Where Tune keeps trial results and checkpoints: ``ray.storage_path/<run>`` or ``<run_dir>/tune``."""
    if cfg.ray.storage_path is None:
        return str(run_dir / "tune")
    return f"{cfg.ray.storage_path.rstrip('/')}/{run_dir.name}"


def resolve_scenarios(
    cfg: ExperimentConfig, luts: dict[str, LatencyTable], ranges: dict[str, tuple[float, float]] | None = None
) -> list[Scenario]:
    """One scenario per (target, budget, seed); fractional budgets resolve inside each target's latency
    range (``ranges``: the strategy's own, e.g. OFA's subnets; default the space's)."""
    macro, scenarios = get_space(cfg.space), []
    for tgt in cfg.targets:
        low, high = ranges[tgt.name] if ranges else luts[tgt.name].latency_range(macro)
        for b in tgt.budgets(low, high):
            if b < low:
                raise ConfigError(
                    f"config field targets ({tgt.name}): budget {b:.3f} ms is below the fastest network the search can return ({low:.3f} ms on this target); raise it"
                )
            scenarios += [Scenario(tgt.name, round(b, 4), seed) for seed in range(cfg.seed, cfg.seed + cfg.evaluation.seeds)]
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


def _flatten(d: dict, prefix: str = "") -> dict[str, Any]:
    out: dict[str, Any] = {}
    for k, v in d.items():
        if isinstance(v, dict):
            out |= _flatten(v, f"{prefix}{k}.")
        else:
            out[f"{prefix}{k}"] = v
    return out
