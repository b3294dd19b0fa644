"""The verbs a run offers its strategy (``raynas.api.RunContext``): Tune trials, phases, metrics,
artifacts and curves, backed by the run's Tune runner, MLflow tracker and phase clock."""

from __future__ import annotations

from contextlib import AbstractContextManager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Sequence

from ray import tune

from raynas.api import BuildSearcher, Finalist, Job, SampledTrial
from raynas.config import ExperimentConfig
from raynas.evaluation.record import PhaseClock
from raynas.execution.trials import searcher_trial
from raynas.files import write_json
from raynas.orchestration.tuner import TuneRunner, trial_curve
from raynas.tracking.mlflow_tracker import ExperimentTracker
from raynas.tracking.sync import ARTIFACTS_FILE, read_artifacts
from raynas.tracking.tune_callback import MlflowTrialCallback

CURVES_FILE = "curves.json"  # performance over time of every search (the report's over-time panels)


@dataclass
class PipelineContext:
    """One run's context: its config, directory, tracker, clock and Tune runner, and the curves so far."""

    cfg: ExperimentConfig
    run_dir: Path
    tracker: ExperimentTracker
    tuner: TuneRunner
    clock: PhaseClock = field(default_factory=PhaseClock)
    log: Callable[[str], None] = print
    curves: list[dict] = field(default_factory=list)

    def run_trials(
        self, name: str, jobs: Sequence[Job], build: BuildSearcher, *, shared: Any = None, workers: int = 1
    ) -> dict[str, dict[str, Any]]:
        """One checkpointed search trial per job (``build(job, shared, cfg)`` makes its searcher): a
        retried trial resumes from its last step. Each job's last metrics by key; its curve is kept.
        ``workers`` above 1: each trial trains data-parallel on that many Ray Train workers."""
        params = dict(build=build, shared=shared, cfg=self.cfg)
        results = self.tune_jobs(name, searcher_trial, jobs=jobs, params=params, workers=workers)
        for job in jobs:
            if job.budget_ms is not None:
                self.add_curve(job, trial_curve(results[job.key]))
        return {key: dict(result.metrics) for key, result in results.items()}

    def tune_jobs(self, name: str, trainable, *, jobs: Sequence[Job | Finalist], params: dict, workers: int = 1) -> dict[str, Any]:
        """One trial per job (``Job`` or ``Finalist``) in its MLflow child run; details travel as parameters.
        ``workers`` above 1: each trial runs ``trainable``'s loop as a Ray Train job of that many workers,
        stored beside the Tune experiment."""
        by_key = {j.key: j for j in jobs}
        for j in jobs:
            self.open_child(j)
        if workers > 1:
            params = params | {"workers": workers, "storage": f"{self.tuner.storage}/{name}-train"}
        trainable = tune.with_parameters(trainable, jobs=by_key, **params)
        callbacks = [MlflowTrialCallback(self.tracker, name)]
        return self.tuner.grid(name, trainable, keys=list(by_key), callbacks=callbacks, data_parallel=workers > 1)

    def run_search_alg(
        self,
        name: str,
        trainable: Callable[[dict], None],
        *,
        search_alg: Any,
        param_space: dict,
        num_samples: int,
        metric: str,
        mode: str,
        scheduler: Any = None,
        workers: int = 1,
    ) -> list[SampledTrial]:
        return self.tuner.sampled(
            name,
            trainable,
            search_alg=search_alg,
            param_space=param_space,
            num_samples=num_samples,
            metric=metric,
            mode=mode,
            scheduler=scheduler,
            data_parallel=workers > 1,
        )

    def open_child(self, job: Job | Finalist) -> str:
        """The job's MLflow child run, tagged with its method, target, budget and seed (found again on resume)."""
        tags = {"raynas.method": job.method, "raynas.target": str(job.target), "raynas.budget_ms": str(job.budget_ms)}
        return self.tracker.child(job.key, tags | {"raynas.seed": str(job.seed)})

    def log_metrics(self, metrics: dict[str, float]) -> None:
        self.tracker.log_metrics(self.tracker.parent_id, metrics)

    def phase(self, name: str) -> AbstractContextManager[None]:
        return self.clock(name)

    def add_artifact(self, path: Path, *, folder: str) -> None:
        """List a file of the run directory in its artifacts manifest; MLflow receives it with the run's outputs."""
        entry = {"path": str(Path(path).resolve().relative_to(self.run_dir.resolve())), "folder": folder}
        listed = read_artifacts(self.run_dir)
        if entry not in listed:
            write_json(self.run_dir / ARTIFACTS_FILE, [*listed, entry])

    def add_curve(self, job: Job, points: Sequence[tuple[float, float]]) -> None:
        """Performance over time of one search: (its seconds so far, validation accuracy of what it would return then)."""
        base = {"key": job.key, "method": job.method, "target": job.target, "budget_ms": job.budget_ms, "seed": job.seed}
        self.curves += [base | {"seconds": round(float(t), 3), "score": float(score)} for t, score in points]

    def save_curves(self) -> Path:
        return write_json(self.run_dir / CURVES_FILE, self.curves)
