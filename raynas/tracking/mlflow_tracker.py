"""All MLflow writes happen in the driver through this class (no concurrent SQLite writers)."""

from __future__ import annotations

import json
import math
import os
import sys
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any, Callable

from mlflow.entities import RunStatus
from mlflow.tracking import MlflowClient

PARENT_TAG = "mlflow.parentRunId"
RUN_DIR_TAG = "raynas.run_dir"
PENDING_FILE = "mlflow-pending.txt"  # written when the store failed mid-run; removed by sync-mlflow
OFFLINE = "offline"  # run id handed out while the store is unreachable
SCENARIO_TAG = "raynas.scenario"
FAILURE_TAG = "raynas.failure"


class TrackingError(RuntimeError):
    """The tracking store cannot be used; the message carries the URI."""


def default_tracking_uri(run_dir: Path) -> str:
    return f"sqlite:///{(run_dir / 'mlflow.db').resolve()}"


def check_reachable(uri: str, timeout: float = 5.0) -> None:
    """Fail in seconds when an ``mlflow server`` URI does not answer (the client would retry for minutes)."""
    if not uri.startswith(("http://", "https://")):
        return
    try:
        with urllib.request.urlopen(f"{uri.rstrip('/')}/health", timeout=timeout) as reply:
            if reply.status == 200:
                return
            problem = f"HTTP {reply.status}"
    except urllib.error.HTTPError as exc:
        problem = f"HTTP {exc.code} {exc.reason}"
    except (OSError, ValueError) as exc:
        problem = str(getattr(exc, "reason", exc))
    raise TrackingError(f"MLflow tracking server {uri} is unreachable ({problem}); start it (cluster/README.md) or fix tracking.mlflow_uri")


class ExperimentTracker:
    """Parent run for the experiment; child runs keyed by scenario (e.g. ``proxyless:cpu-1t@1.4ms#s0``).

    Idempotent per run directory: the parent carries the tag ``raynas.run_dir`` and is found again
    when a run is resumed, with its children, so a resumed run never duplicates MLflow runs.
    """

    def __init__(self, uri: str, experiment: str, run_dir: Path, *, run_name: str) -> None:
        self.uri, self.experiment = uri, experiment
        if uri.startswith(("http://", "https://")):  # a server that dies mid-run should cost seconds, not minutes of retries
            os.environ.setdefault("MLFLOW_HTTP_REQUEST_MAX_RETRIES", "2")
            os.environ.setdefault("MLFLOW_HTTP_REQUEST_TIMEOUT", "20")
        check_reachable(uri)
        self.client = MlflowClient(tracking_uri=uri)
        tag = str(Path(run_dir).resolve())
        try:
            self.experiment_id = self._experiment(experiment, run_dir)
            found = self._search(f"tags.`{RUN_DIR_TAG}` = '{tag}'")
            parents = [r for r in found if PARENT_TAG not in r.data.tags]
            self.parent_id = (
                parents[0].info.run_id
                if parents
                else self.client.create_run(self.experiment_id, run_name=run_name, tags={RUN_DIR_TAG: tag}).info.run_id
            )
            children = self._search(f"tags.`{PARENT_TAG}` = '{self.parent_id}'")
        except Exception as exc:  # noqa: BLE001 - any store failure means the same thing to the user
            raise TrackingError(f"MLflow tracking store {uri} is unusable: {exc}; check the URI or start the server") from None
        self.children: dict[str, str] = {r.data.tags[SCENARIO_TAG]: r.info.run_id for r in children if SCENARIO_TAG in r.data.tags}
        self.resumed = bool(parents)
        self.pending = Path(run_dir) / PENDING_FILE
        self.offline = False

    def _safe(self, action: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
        """Run one write; if the store fails mid-run, go offline instead of failing the experiment.

        Results stay in Tune storage and the run directory; ``raynas sync-mlflow RUN_DIR`` uploads
        them later. The marker file says so, and why.
        """
        if self.offline:
            return None
        try:
            return action(*args, **kwargs)
        except Exception as exc:  # noqa: BLE001 - any store failure means the same: stop writing, keep results
            self.offline = True
            self.pending.write_text(
                f"MLflow store {self.uri} failed mid-run: {exc}\nUpload later with: raynas sync-mlflow {self.pending.parent}\n"
            )
            print(
                f"[raynas] MLflow store {self.uri} failed ({exc}); continuing without it. "
                f"Upload later: raynas sync-mlflow {self.pending.parent}",
                file=sys.stderr,
                flush=True,
            )
            return None

    def _search(self, filter_string: str) -> list:
        """Every run of the experiment matching ``filter_string`` (all pages)."""
        runs, token = [], None
        while True:
            page = self.client.search_runs([self.experiment_id], filter_string, max_results=1000, page_token=token)
            runs += list(page)
            token = page.token
            if not token:
                return runs

    def _experiment(self, name: str, run_dir: Path) -> str:
        found = self.client.get_experiment_by_name(name)
        if found is not None:
            return found.experiment_id
        artifacts = (run_dir / "mlartifacts").resolve().as_uri() if self.uri.startswith("sqlite:") else None
        return self.client.create_experiment(name, artifact_location=artifacts)

    def child(self, key: str, tags: dict[str, str] | None = None) -> str:
        """Run id of the scenario's child run, created on first use (``OFFLINE`` while the store is down)."""
        if key not in self.children:
            run = self._safe(
                self.client.create_run,
                self.experiment_id,
                run_name=key,
                tags={PARENT_TAG: self.parent_id, SCENARIO_TAG: key, **(tags or {})},
            )
            if run is None:
                return OFFLINE
            self.children[key] = run.info.run_id
        return self.children[key]

    def log_params(self, run_id: str, params: dict[str, Any]) -> None:
        self._safe(lambda: [self.client.log_param(run_id, k, str(v)[:6000]) for k, v in params.items()])

    def log_metrics(self, run_id: str, metrics: dict[str, Any], *, step: int | None = None, prefix: str = "") -> None:
        finite = {
            f"{prefix}{k}": float(v)
            for k, v in metrics.items()
            if isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v)
        }
        self._safe(lambda: [self.client.log_metric(run_id, k, v, step=step or 0) for k, v in finite.items()])

    def log_json(self, run_id: str, data: Any, artifact_file: str) -> None:
        self._safe(self.client.log_text, run_id, json.dumps(data, indent=2, sort_keys=True), artifact_file)

    def log_file(self, run_id: str, path: str | Path, artifact_path: str | None = None) -> None:
        self._safe(self.client.log_artifact, run_id, str(path), artifact_path)

    def log_dir(self, run_id: str, path: str | Path, artifact_path: str | None = None) -> None:
        self._safe(self.client.log_artifacts, run_id, str(path), artifact_path)

    def register(self, name: str, run_id: str, *, artifact_path: str, tags: dict[str, str]) -> str | None:
        """Register the run's model at ``artifact_path`` as a new version of ``name`` (once per run:
        a resumed run does not add a second version). Returns the version, None if already there."""

        def register() -> str | None:
            if self.client.search_model_versions(f"name = '{name}' and run_id = '{run_id}'"):
                return None
            if not self.client.search_registered_models(f"name = '{name}'"):
                self.client.create_registered_model(
                    name, description="raynas: the NAS finalist of one (target, budget); versions are seeds and reruns"
                )
            source = f"{self.client.get_run(run_id).info.artifact_uri}/{artifact_path}"
            return self.client.create_model_version(name, source, run_id=run_id, tags=tags).version

        return self._safe(register)

    def finish(self, status: str = "FINISHED") -> None:
        self._safe(lambda: [self.client.set_terminated(run_id, status) for run_id in [*self.children.values(), self.parent_id]])

    def fail(self, reason: str | None = None) -> None:
        """End the parent and children FAILED; ``reason`` (the error) is kept as the parent's tag ``raynas.failure``."""
        if reason:
            self._safe(self.client.set_tag, self.parent_id, FAILURE_TAG, reason[:4000])
        self.finish(RunStatus.to_string(RunStatus.FAILED))
