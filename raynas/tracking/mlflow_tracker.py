"""All MLflow writes happen in the driver through this class (no concurrent SQLite writers)."""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

from mlflow.entities import RunStatus
from mlflow.tracking import MlflowClient

PARENT_TAG = "mlflow.parentRunId"


class TrackingError(RuntimeError):
    """The tracking store cannot be used; the message carries the URI."""


def default_tracking_uri(run_dir: Path) -> str:
    return f"sqlite:///{(run_dir / 'mlflow.db').resolve()}"


class ExperimentTracker:
    """Parent run for the experiment; child runs keyed by scenario (``target@budget``)."""

    def __init__(self, uri: str, experiment: str, run_dir: Path, run_name: str) -> None:
        self.uri = uri
        self.client = MlflowClient(tracking_uri=uri)
        try:
            self.experiment_id = self._experiment(experiment, run_dir)
            self.parent_id = self.client.create_run(self.experiment_id, run_name=run_name).info.run_id
        except Exception as exc:  # noqa: BLE001 - any store failure means the same thing to the user
            raise TrackingError(f"MLflow tracking store {uri} is unusable: {exc}; check the URI or start the server") from None
        self.children: dict[str, str] = {}

    def _experiment(self, name: str, run_dir: Path) -> str:
        found = self.client.get_experiment_by_name(name)
        if found is not None:
            return found.experiment_id
        artifacts = (run_dir / "mlartifacts").resolve().as_uri() if self.uri.startswith("sqlite:") else None
        return self.client.create_experiment(name, artifact_location=artifacts)

    def child(self, key: str, tags: dict[str, str] | None = None) -> str:
        """Run id of the scenario's child run, created on first use."""
        if key not in self.children:
            run = self.client.create_run(self.experiment_id, run_name=key, tags={PARENT_TAG: self.parent_id, "raynas.scenario": key, **(tags or {})})
            self.children[key] = run.info.run_id
        return self.children[key]

    def log_params(self, run_id: str, params: dict[str, Any]) -> None:
        for k, v in params.items():
            self.client.log_param(run_id, k, str(v)[:6000])

    def log_metrics(self, run_id: str, metrics: dict[str, Any], step: int | None = None, prefix: str = "") -> None:
        for k, v in metrics.items():
            if isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v):
                self.client.log_metric(run_id, f"{prefix}{k}", float(v), step=step or 0)

    def log_json(self, run_id: str, data: Any, artifact_file: str) -> None:
        self.client.log_text(run_id, json.dumps(data, indent=2, sort_keys=True), artifact_file)

    def log_file(self, run_id: str, path: str | Path, artifact_path: str | None = None) -> None:
        self.client.log_artifact(run_id, str(path), artifact_path)

    def finish(self, status: str = "FINISHED") -> None:
        for run_id in self.children.values():
            self.client.set_terminated(run_id, status)
        self.client.set_terminated(self.parent_id, status)

    def fail(self) -> None:
        self.finish(RunStatus.to_string(RunStatus.FAILED))
