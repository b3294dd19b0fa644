"""The whole pipeline, tiny: 2 targets x 1 budget on a session Ray with a temp SQLite MLflow store."""

from __future__ import annotations

import json

import pyarrow.parquet as pq
import pytest
from mlflow.tracking import MlflowClient

from raynas.config import parse_config
from raynas.orchestration.pipeline import new_run_dir, run_experiment
from raynas.space.architecture import Architecture

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def tiny_run(ray_session, tmp_path_factory):
    root = tmp_path_factory.mktemp("runs")
    cfg = parse_config(
        {
            "name": "tiny",
            "run_root": str(root),
            "targets": [{"name": "cpu-1t", "budget_fractions": [0.5]}, {"name": "cpu-1t-b16", "budget_fractions": [0.5]}],
            "data": {"limit": 128, "batch_size": 32},
            "search": {"warmup_epochs": 1, "search_epochs": 2, "eval_batches": 2},
            "retrain": {"epochs": 1},
            "profile": {"warmup": 2, "repeats": 10, "calibration_archs": 1, "settle_seconds": 0, "cache_dir": str(root / "opcache")},
            "tracking": {"mlflow_uri": f"sqlite:///{root}/mlflow.db", "experiment": "tiny"},
        }
    )
    run_dir = new_run_dir(cfg)
    return run_experiment(cfg, run_dir, log=lambda _: None), run_dir


def test_every_scenario_has_a_measured_retrained_architecture(tiny_run):
    summary, run_dir = tiny_run
    results = summary["results"]
    assert sorted(r["target"] for r in results) == ["cpu-1t", "cpu-1t-b16"]
    for r in results:
        Architecture.from_string("mnist-small", r["arch"])
        assert r["predicted_ms"] > 0 and r["measured_ms"] > 0 and 0 <= r["test_acc"] <= 1
        assert r["predicted_ms"] <= r["budget_ms"] + 1e-6
    assert pq.read_table(run_dir / "results.parquet").num_rows == 2
    assert json.loads((run_dir / "results.json").read_text()) == results
    assert summary["run_dir"] == str(run_dir)
    assert {p.name for p in (run_dir.parent / "opcache").iterdir()} == {"cpu-1t.parquet", "cpu-1t-b16.parquet"}


def test_mlflow_holds_parent_children_metrics_and_artifacts(tiny_run, tmp_path):
    summary, _ = tiny_run
    client = MlflowClient(summary["mlflow_uri"])
    exp = client.get_experiment_by_name("tiny")
    runs = client.search_runs([exp.experiment_id])
    parents = [r for r in runs if "mlflow.parentRunId" not in r.data.tags]
    children = [r for r in runs if "mlflow.parentRunId" in r.data.tags]
    assert len(parents) == 1 and len(children) == 2
    assert all(c.data.tags["mlflow.parentRunId"] == parents[0].info.run_id for c in children)
    assert all(r.info.status == "FINISHED" for r in runs)
    assert {"luts", "results.parquet", "results.json"} <= {a.path for a in client.list_artifacts(parents[0].info.run_id)}
    by_arch = {r["arch"]: r for r in summary["results"]}
    for child in children:
        run_id = child.info.run_id
        assert [m.step for m in client.get_metric_history(run_id, "search/val_acc")] == [0, 1]
        assert len(client.get_metric_history(run_id, "retrain/val_acc")) == 1
        row = by_arch[child.data.params["arch"]]
        assert child.data.metrics["measured_ms"] == pytest.approx(row["measured_ms"])
        assert 0 <= child.data.metrics["test_acc"] <= 1
        paths = {a.path for a in client.list_artifacts(run_id)} | {a.path for a in client.list_artifacts(run_id, "retrained")}
        assert {"architecture.json", "retrained/weights.pt", "lut"} <= paths
        local = client.download_artifacts(run_id, "architecture.json", str(tmp_path))
        assert Architecture.from_json(open(local).read()).to_string() == child.data.params["arch"]
