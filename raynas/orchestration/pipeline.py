"""The whole experiment, the same sequence for every strategy (plug-ins: ``raynas/strategies/``):

latency models on the targets' nodes -> the strategy prepares its shared state -> searches (Tune)
-> random baselines (the strategy's, then early-stopped random search) -> retrain every finalist,
hand-designed references included (Tune) -> measure on the targets -> results, record, report, MLflow.
Each step's machinery has its own module here; this one is the sequence.
"""

from __future__ import annotations

import dataclasses
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Sequence

import pyarrow as pa
import pyarrow.parquet as pq
import ray
import yaml
from ray import tune

from raynas.api import ASHA, Finalist, Job, RunInputs, Strategy, get_strategy, scenario_of
from raynas.config import ConfigError, ExperimentConfig
from raynas.data.datasets import Splits, load_splits
from raynas.evaluation.compare import RESULTS_SCHEMA, ResultRow, paired_comparisons
from raynas.evaluation.record import reproducibility_record
from raynas.evaluation.report import write_report
from raynas.execution.runtime import cluster_cpus, tune_storage
from raynas.execution.trials import retrain_trial
from raynas.files import write_json
from raynas.hardware.models import LatencyModels
from raynas.orchestration.asha import early_stopped_random
from raynas.orchestration.context import PipelineContext
from raynas.orchestration.latency import Profiler
from raynas.orchestration.measure import Measurement
from raynas.orchestration.rundir import FAILED_FILE, flatten, new_run_dir, preflight, saved_config
from raynas.orchestration.scenarios import hand_designed, resolve_scenarios
from raynas.orchestration.tuner import TuneRunner, trial_devices
from raynas.space.catalog import image_shape
from raynas.tracking.mlflow_tracker import ExperimentTracker, default_tracking_uri
from raynas.tracking.sync import record_outputs, sync_run

__all__ = ["new_run_dir", "resume_experiment", "run_experiment", "sync_mlflow"]  # the entry points (raynas run, experiments/)


def run_experiment(
    cfg: ExperimentConfig,
    run_dir: Path,
    *,
    log: Callable[[str], None] = print,
    callbacks: Sequence[tune.Callback] = (),
    resume: bool = False,
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
    tracker = ExperimentTracker(
        cfg.tracking.mlflow_uri or default_tracking_uri(run_dir), cfg.tracking.experiment, run_dir, run_name=run_dir.name
    )
    if not tracker.resumed:
        tracker.log_params(tracker.parent_id, flatten(cfg.to_dict()))
    tuner = TuneRunner(cfg, tune_storage(cfg, run_dir), log=log, callbacks=list(callbacks), resume=resume)
    pipeline = Pipeline(PipelineContext(cfg, run_dir, tracker, tuner, log=log), resume=resume)
    started = False
    try:
        started = preflight(cfg, run_dir)
        rows = pipeline.run()
    except BaseException as exc:
        reason = f"{type(exc).__name__}: {exc}"
        (run_dir / FAILED_FILE).write_text(reason + "\n")
        tracker.fail(reason)
        raise
    finally:
        if started:
            ray.shutdown()
    (run_dir / FAILED_FILE).unlink(missing_ok=True)  # a resumed run that finishes is no longer failed
    return pipeline.finish([r.to_dict() for r in rows])


def resume_experiment(
    run_dir: str | Path, *, log: Callable[[str], None] = print, callbacks: Sequence[tune.Callback] = ()
) -> dict[str, Any]:
    """Continue the run in ``run_dir`` with the config it was started with."""
    run_dir = Path(run_dir).resolve()
    cfg = saved_config(run_dir)
    if (run_dir / FAILED_FILE).is_file():
        log(f"[raynas] {run_dir.name} had stopped on: {(run_dir / FAILED_FILE).read_text().strip()}; continuing it")
    return run_experiment(cfg, run_dir, log=log, callbacks=callbacks, resume=True)


def sync_mlflow(run_dir: str | Path, uri: str | None = None) -> dict[str, int]:
    """Upload a finished run whose MLflow store was down mid-run (``raynas sync-mlflow``)."""
    run_dir = Path(run_dir).resolve()
    cfg = saved_config(run_dir)
    if not (run_dir / "results.parquet").is_file():
        raise ConfigError(f"{run_dir} has no results.parquet: the run did not finish; finish it first with `raynas run --resume {run_dir}`")
    uri = uri or cfg.tracking.mlflow_uri or default_tracking_uri(run_dir)
    tracker = ExperimentTracker(uri, cfg.tracking.experiment, run_dir, run_name=run_dir.name)
    if not tracker.resumed:
        tracker.log_params(tracker.parent_id, flatten(cfg.to_dict()))
    rows = pq.read_table(run_dir / "results.parquet").to_pylist()
    return sync_run(tracker, run_dir, tune_storage(cfg, run_dir), rows=rows, space=cfg.space, strategy=cfg.strategy)


@dataclass
class Pipeline:
    """One run's sequence over its context; ``latency`` and ``splits`` are known once it has started."""

    ctx: PipelineContext
    resume: bool = False
    latency: LatencyModels | None = None
    splits: Splits | None = None

    def run(self) -> list[ResultRow]:
        """latency models -> prepare -> search -> baselines -> retrain -> measure -> result rows."""
        ctx, cfg = self.ctx, self.ctx.cfg
        strategy = get_strategy(cfg.strategy)
        self.splits = checked_splits(cfg)
        ctx.log(f"[raynas] profiling {len(cfg.targets)} targets on their nodes")
        with ctx.phase("profile"):
            profiler = Profiler(cfg, ctx.run_dir, self.splits.num_classes, log=ctx.log, resume=self.resume)
            self.latency = profiler.models(strategy.latency_spaces(cfg))
        run = RunInputs(cfg, self.latency, ctx.run_dir, resume=self.resume)
        scenarios = resolve_scenarios(cfg, self.latency.of_space(), strategy.budget_ranges(cfg, self.latency))
        seeds = sorted({s.seed for s in scenarios})
        began = time.perf_counter()
        strategy.prepare(ctx, run, seeds)
        prepare_share = (time.perf_counter() - began) * task_devices(cfg) / len(scenarios)  # device-seconds each
        ctx.log(f"[raynas] {strategy.label}: {len(scenarios)} scenarios")
        with ctx.phase("search"):
            found = strategy.search(ctx, run, scenarios)
        finalists = [*found, *self.baselines(strategy, run, found=found, prepare_share=prepare_share)]
        strategy.release()
        finalists += hand_designed(cfg, seeds)
        ctx.log(f"[raynas] retraining {len(finalists)} finalists with one recipe")
        with ctx.phase("retrain"):
            params = dict(cfg=cfg, payload=strategy.retrain_payload())
            retrained = ctx.tune_jobs("retrain", retrain_trial, jobs=finalists, params=params, workers=cfg.ray.workers_per_trial)
        ctx.log("[raynas] measuring the retrained networks on their targets")
        measurement = Measurement(cfg, ctx.run_dir, self.latency, ctx.tracker, self.splits.num_classes)
        with ctx.phase("measure"):
            measured = measurement.measure(finalists, retrained)
        return [row for f in finalists for row in measurement.rows(f, retrained[f.key], measured)]

    def baselines(self, strategy: Strategy, run: RunInputs, *, found: list[Finalist], prepare_share: float) -> list[Finalist]:
        """The strategy's random search, then random search with early stopping within each search's device-seconds."""
        ctx, cfg, picked = self.ctx, self.ctx.cfg, []
        if cfg.evaluation.random_search:
            ctx.log("[raynas] random search: same window, budget and pipeline as each NAS search")
            with ctx.phase("random_search"):
                picked += strategy.random_baseline(ctx, run, found)
        if cfg.evaluation.asha.enabled:
            ctx.log(
                f"[raynas] random search with early stopping ({cfg.evaluation.asha.scheduler}): "
                "standalone trials within each NAS search's device-seconds"
            )
            spent = {f.key: f.search_seconds * trial_devices(cfg) + prepare_share for f in found}
            with ctx.phase("asha_search"):
                picked += early_stopped_random(
                    ctx, self.latency, [Job.of(scenario_of(f), ASHA, budget_seconds=spent[f.key]) for f in found]
                )
        return picked

    def finish(self, results: list[dict]) -> dict[str, Any]:
        """Results table, reproducibility record and report into the run directory, then MLflow."""
        ctx, cfg = self.ctx, self.ctx.cfg
        ctx.save_curves()
        record = reproducibility_record(cfg, ctx.clock, results, luts=self.latency.of_space(), splits=self.splits)
        write_outputs(ctx.run_dir, results, record=record | {"resumed": self.resume}, report=cfg.evaluation.report)
        record_outputs(ctx.tracker, ctx.run_dir)
        ctx.log_metrics({f"phase_seconds/{k}": v for k, v in ctx.clock.seconds.items()})
        ctx.tracker.finish()
        return {"results": results, "comparisons": paired_comparisons(results), "mlflow_uri": ctx.tracker.uri, "run_dir": str(ctx.run_dir)}


def task_devices(cfg: ExperimentConfig) -> float:
    """Devices a strategy's preparation holds (warm-up, OFA's shrinking): one task with the largest node's
    CPUs or ``ray.gpus_per_task``, or ``ray.workers_per_task`` Train workers of their own CPUs or GPUs."""
    if cfg.ray.workers_per_task > 1:
        return (cfg.ray.gpus_per_task or cfg.ray.cpus_per_trial) * cfg.ray.workers_per_task
    return cfg.ray.gpus_per_task or cluster_cpus()


def checked_splits(cfg: ExperimentConfig) -> Splits:
    """The dataset's sizes and shapes (trials load the images), refused here if a split is empty or
    the images do not fit the space, not after profiling."""
    splits, (channels, side) = load_splits(cfg.data, materialize=False), image_shape(cfg.space)
    splits.check(cfg.data.batch_size)
    if (splits.in_channels, splits.input_size) != (channels, side):
        raise ConfigError(
            f"config field space: {cfg.space!r} expects {channels}x{side}px images, data gives {splits.in_channels}x{splits.input_size}px"
        )
    return splits


def write_outputs(run_dir: Path, results: list[dict], *, record: dict, report: bool) -> None:
    """results.parquet / .json, record.json and (optionally) the report, all inside the run directory."""
    pq.write_table(pa.Table.from_pylist(results, schema=RESULTS_SCHEMA), run_dir / "results.parquet")
    write_json(run_dir / "results.json", results)
    write_json(run_dir / "record.json", record)
    if report:
        write_report(run_dir)
