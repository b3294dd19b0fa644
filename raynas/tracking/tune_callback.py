"""Streams Tune trial results into the scenario's MLflow child run, from the driver."""

from __future__ import annotations

from ray import tune

from raynas.tracking.mlflow_tracker import ExperimentTracker

_TUNE_KEYS = {"epoch", "training_iteration", "iterations_since_restore", "timestamp", "pid", "done"}


class MlflowTrialCallback(tune.Callback):
    """Logs each reported epoch as ``<phase>/<metric>`` at step = epoch."""

    def __init__(self, tracker: ExperimentTracker, phase: str) -> None:
        self.tracker, self.phase = tracker, phase

    def on_trial_result(self, iteration, trials, trial, result, **info) -> None:
        run_id = self.tracker.child(trial.config["scenario"])
        self.tracker.log_metrics(run_id, trial_metrics(result), step=int(result.get("epoch", 0)), prefix=f"{self.phase}/")


def trial_metrics(result: dict) -> dict:
    """A Tune result without Tune's own bookkeeping (kept: what the trial reported)."""
    return {k: v for k, v in result.items() if k not in _TUNE_KEYS and not k.startswith("time") and k != "config"}
