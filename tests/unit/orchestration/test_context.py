"""The run context's bookkeeping verbs, against a real SQLite MLflow store (no Ray)."""

from __future__ import annotations

from raynas.api import Job
from raynas.config import parse_config
from raynas.orchestration.context import PipelineContext
from raynas.orchestration.tuner import TuneRunner
from raynas.tracking.mlflow_tracker import ExperimentTracker
from raynas.tracking.sync import record_outputs


def context(tmp_path, sqlite_store) -> PipelineContext:
    cfg = parse_config({"name": "ctx", "targets": [{"name": "cpu-1t", "budget_fractions": [0.5]}]})
    tracker = ExperimentTracker(sqlite_store(tmp_path / "mlflow.db"), "ctx", tmp_path, run_name="ctx")
    return PipelineContext(cfg, tmp_path, tracker, TuneRunner(cfg, str(tmp_path / "tune")), log=lambda _: None)


def test_an_added_artifact_is_listed_once_and_reaches_mlflow_with_the_run_outputs(tmp_path, sqlite_store):
    ctx = context(tmp_path, sqlite_store)
    frontier = tmp_path / "frontiers" / "cpu-1t-s0.json"
    frontier.parent.mkdir()
    frontier.write_text("{}")
    ctx.add_artifact(frontier, folder="frontiers")
    ctx.add_artifact(frontier, folder="frontiers")  # a resumed run adds it again
    assert (tmp_path / "artifacts.json").read_text().count("cpu-1t-s0.json") == 1
    record_outputs(ctx.tracker, tmp_path)
    logged = [a.path for a in ctx.tracker.client.list_artifacts(ctx.tracker.parent_id, "frontiers")]
    assert logged == ["frontiers/cpu-1t-s0.json"]


def test_phases_metrics_and_curves_are_recorded(tmp_path, sqlite_store):
    ctx = context(tmp_path, sqlite_store)
    with ctx.phase("warmup"):
        ctx.log_metrics({"warmup_loss/s0": 1.5})
    job = Job("proxyless:cpu-1t@1.000ms#s0", "proxyless", "cpu-1t", seed=0, budget_ms=1.0)
    ctx.add_curve(job, [(1.0, 0.5), (2.0, 0.75)])
    ctx.save_curves()
    assert "warmup" in ctx.clock.seconds
    assert ctx.tracker.client.get_run(ctx.tracker.parent_id).data.metrics["warmup_loss/s0"] == 1.5
    assert [(c["seconds"], c["score"]) for c in ctx.curves] == [(1.0, 0.5), (2.0, 0.75)]
    assert (tmp_path / "curves.json").is_file()
