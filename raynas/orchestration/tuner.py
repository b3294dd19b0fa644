"""The run's Tune experiments: one trial per job over readable job keys, or one per candidate a
search algorithm proposes; restored from Tune storage when an interrupted run resumes."""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from typing import Any, Callable, Sequence

from ray import tune
from ray.tune import ResultGrid

from raynas.api import SampledTrial
from raynas.config import ExperimentConfig
from raynas.execution.data_parallel import concurrent_trials, driver_resources


def trial_devices(cfg: ExperimentConfig) -> float:
    """Devices a trial holds, for device-seconds: its GPU share when it has one, else its CPUs, times
    its Ray Train workers (a data-parallel trial's seconds are wall-clock seconds of all of them)."""
    return (cfg.ray.gpus_per_trial or cfg.ray.cpus_per_trial) * cfg.ray.workers_per_trial


def placed(trainable, cfg: ExperimentConfig, *, data_parallel: bool):
    """``trainable`` with what each trial reserves (a data-parallel trial: only what driving its Train job
    takes, its workers hold the rest), and how many may run at once (data-parallel: as many jobs as the
    alive nodes hold; else as resources allow, unless ``ray.max_concurrent_trials`` says)."""
    resources = driver_resources() if data_parallel else trial_resources(cfg)
    concurrent = cfg.ray.max_concurrent_trials or (concurrent_trials(cfg) if data_parallel else None)
    return tune.with_resources(trainable, resources), concurrent


def trial_resources(cfg: ExperimentConfig) -> dict[str, float]:
    """What every search / retraining trial reserves: its CPUs and its (possibly fractional) GPU share."""
    return {"cpu": cfg.ray.cpus_per_trial, "gpu": cfg.ray.gpus_per_trial}


def trial_curve(result) -> list[tuple[float, float]]:
    """(search_seconds, score) of every step a search trial reported that had a score."""
    frame = result.metrics_dataframe
    if frame is None or "score" not in frame:
        return []
    frame = frame.dropna(subset=["score"]).sort_values("search_seconds")
    return list(zip(frame["search_seconds"].tolist(), frame["score"].tolist()))


OUTPUT_ENGINE = "RAY_AIR_NEW_OUTPUT"  # read by Tune when an experiment starts


def fit_quietly(tuner: tune.Tuner) -> ResultGrid:
    """``tuner.fit()`` under Tune's legacy output engine, which prints nothing at ``verbose=0``; the new
    engine prints a configuration table, the results path and a TensorBoard command per experiment at
    every verbosity. A phase's one progress view is ``Progress``'s lines."""
    before = os.environ.get(OUTPUT_ENGINE)
    os.environ[OUTPUT_ENGINE] = "0"
    try:
        return tuner.fit()
    finally:
        if before is None:
            del os.environ[OUTPUT_ENGINE]
        else:
            os.environ[OUTPUT_ENGINE] = before


def finished(grid: ResultGrid, name: str) -> ResultGrid:
    """The grid of a Tune run, refused when a trial failed (after its retries)."""
    failed = [r for r in grid if r.error is not None]
    if failed:
        raise RuntimeError(f"{len(failed)} {name} trial(s) failed; first error: {failed[0].error}")
    return grid


def grid_size(space: dict) -> int:
    """How many configs a param_space's grid searches (nested ones too) multiply each sample into."""
    size = 1
    for value in space.values():
        if isinstance(value, dict):
            size *= len(value["grid_search"]) if set(value) == {"grid_search"} else grid_size(value)
    return size


class Progress(tune.Callback):
    """The one progress view of a Tune phase: a line as trials end (each one, or about every tenth of a
    long phase), with how many of its trials are done. Tune's own reporter is off: its tables of every
    trial's config and results would fill the console."""

    def __init__(self, name: str, total: int) -> None:
        self.name, self.total, self.done = name, total, 0  # nothing else: Tune pickles its callbacks

    def on_trial_complete(self, iteration, trials, trial, **info) -> None:
        self.done += 1
        if self.done % max(1, self.total // 10) and self.done != self.total:  # about ten lines for a long phase
            return
        seconds = (trial.last_result or {}).get("time_total_s")
        took = f" in {seconds:.0f} s" if seconds is not None else ""
        which = trial.config.get("scenario", trial.trial_id)
        print(f"[raynas] {self.name}: {self.done}/{self.total} trials done ({which}{took})", flush=True)

    def on_trial_error(self, iteration, trials, trial, **info) -> None:
        print(f"[raynas] {self.name}: trial {trial.config.get('scenario', trial.trial_id)} failed ({trial.error_file})", flush=True)


@dataclass
class TuneRunner:
    """Runs the experiment's Tune experiments under one storage folder with the run's callbacks and
    failure policy (a trial whose worker or node dies is retried up to ``ray.max_failures`` times)."""

    cfg: ExperimentConfig
    storage: str
    log: Callable[[str], None] = print
    callbacks: list[tune.Callback] = field(default_factory=list)
    resume: bool = False

    def grid(
        self, name: str, trainable, *, keys: Sequence[str], callbacks: Sequence[tune.Callback] = (), data_parallel: bool = False
    ) -> dict[str, Any]:
        """One trial per key (``config["scenario"]``); Tune's result of each by key. When resuming, an
        experiment found in storage is restored: finished trials are kept, the rest rerun. A
        ``data_parallel`` trial holds only what driving its Ray Train job takes; its workers hold the rest."""
        trainable, concurrent = placed(trainable, self.cfg, data_parallel=data_parallel)
        path = f"{self.storage}/{name}"
        if self.resume and tune.Tuner.can_restore(path):
            self.log(f"[raynas] {name}: restoring the Tune experiment; finished trials are kept")
            tuner = tune.Tuner.restore(path, trainable, resume_unfinished=True, restart_errored=True)
        else:
            # reused actors skip a worker start and the torch import per trial (~6 s each on 2 cores)
            tuner = tune.Tuner(
                trainable,
                param_space={"scenario": tune.grid_search(list(keys))},
                tune_config=tune.TuneConfig(max_concurrent_trials=concurrent, reuse_actors=True),
                run_config=self.run_config(name, [*callbacks, Progress(name, len(keys))]),
            )
        grid = finished(fit_quietly(tuner), name)
        return {r.config["scenario"]: r for r in grid}

    def sampled(
        self,
        name: str,
        trainable,
        *,
        search_alg: Any,
        param_space: dict,
        num_samples: int,
        metric: str,
        mode: str,
        scheduler: Any = None,
        data_parallel: bool = False,
    ) -> list[SampledTrial]:
        """One trial per candidate ``search_alg`` proposes from ``param_space``, ``num_samples`` in all;
        each trial's config and last metrics. Reruns from the start when resuming (a search algorithm's
        state is not restored). A ``data_parallel`` trial's actor only drives its Train job: it holds no
        CPU and is not reused (its job ends with its function, stopped by request: raynas/execution/data_parallel.py)."""
        trainable, concurrent = placed(trainable, self.cfg, data_parallel=data_parallel)
        tuner = tune.Tuner(
            trainable,
            param_space=param_space,
            tune_config=tune.TuneConfig(
                search_alg=search_alg,
                scheduler=scheduler,
                num_samples=num_samples,
                metric=metric,
                mode=mode,
                max_concurrent_trials=concurrent,
                reuse_actors=not data_parallel,
            ),
            run_config=self.run_config(name, [Progress(name, num_samples * grid_size(param_space))]),
        )
        grid = finished(fit_quietly(tuner), name)
        return [SampledTrial(dict(r.config), dict(r.metrics or {})) for r in grid]

    def finished_before(self, name: str, trainable, *, complete: Callable[[ResultGrid], bool]) -> ResultGrid | None:
        """When resuming, the results of Tune experiment ``name`` if it had finished (every trial ended
        and ``complete`` says the trials are all it would have had); None to run it (again: its
        schedulers keep no state a restored run could go on from)."""
        path = f"{self.storage}/{name}"
        if not (self.resume and tune.Tuner.can_restore(path)):
            return None
        grid = tune.Tuner.restore(path, trainable).get_results()
        if not grid.num_errors and grid.num_terminated == len(grid) and complete(grid):
            self.log(f"[raynas] {name}: finished before the interruption; its results are kept")
            return grid
        self.log(f"[raynas] {name}: interrupted; it runs again from the start")
        return None

    def run_config(self, name: str, callbacks: Sequence[tune.Callback]) -> tune.RunConfig:
        return tune.RunConfig(
            name=name,
            storage_path=self.storage,
            callbacks=[*callbacks, *self.callbacks],
            failure_config=tune.FailureConfig(max_failures=self.cfg.ray.max_failures),
            verbose=0,  # the phase's progress is Progress's lines
            # A search's last three states; a retraining's weights (one checkpoint, at its end). Tune forces an
            # experiment snapshot whenever a trial has saved num_to_keep checkpoints since the last one, and
            # warns when forced snapshots come within 5 s. A search saves every ray.checkpoint_seconds and at
            # its end: at 2, a save shortly before the end forced one, and trials ending together warned.
            checkpoint_config=tune.CheckpointConfig(num_to_keep=3),
        )
