"""Petridish through the whole pipeline, tiny: one growth run per (target, seed) serving every budget,
its standalone random baseline, the frontier file and panel, retraining, measurement, MLflow."""

from __future__ import annotations

import json

import pytest
from mlflow.tracking import MlflowClient

from raynas.api import RANDOM_WS, strategy_class
from raynas.config import parse_config
from raynas.orchestration.pipeline import new_run_dir, run_experiment

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def petridish_run(ray_session, tmp_path_factory, sqlite_store):
    root = tmp_path_factory.mktemp("petridish-runs")
    cfg = parse_config(
        {
            "name": "tiny-petridish",
            "strategy": "petridish",
            "run_root": str(root),
            "targets": [{"name": "ort-cpu-1t", "budget_fractions": [0.3, 0.7]}],
            "data": {"limit": 256, "eval_limit": 256, "batch_size": 32},
            "retrain": {"epochs": 1},
            "petridish": strategy_class("petridish").smoke,
            "profile": {
                "warmup": 1,
                "repeats": 5,
                "calibration_archs": 0,
                "settle_seconds": 0,
            },  # uncalibrated: the tiny sweep checks calibration
            "evaluation": {"hand_designed_widths": []},
            "ray": {
                "max_concurrent_trials": 1
            },  # on 2 cores a second actor costs more to start than it gains; the tiny sweep runs trials concurrently
            "tracking": {"mlflow_uri": sqlite_store(root / "mlflow.db"), "experiment": "tiny-petridish"},
        }
    )
    run_dir = new_run_dir(cfg)
    return run_experiment(cfg, run_dir, log=lambda _: None), run_dir, cfg


def test_the_pipeline_completes(petridish_run):
    _, run_dir, _ = petridish_run
    assert (run_dir / "results.parquet").is_file() and not (run_dir / "FAILED").exists()


def test_one_growth_run_serves_every_budget_and_each_pick_fits(petridish_run):
    summary, run_dir, _ = petridish_run
    rows = summary["results"]
    assert sorted((r["method"], r["budget_ms"]) for r in rows) == sorted(
        (m, b) for m in ("petridish", RANDOM_WS) for b in {r["budget_ms"] for r in rows}
    )
    frontier = json.loads((run_dir / "frontiers" / "ort-cpu-1t-s0.json").read_text())
    assert frontier["method"] == "Petridish" and len(frontier["models"]) >= 3
    for r in (r for r in rows if r["method"] == "petridish"):
        assert r["predicted_ms"] <= r["budget_ms"] + 1e-6
        within = [m for m in frontier["models"] if m["latency_ms"] <= r["budget_ms"]]
        assert r["arch"] == max(within, key=lambda m: m["val_acc"])["arch"]  # the most accurate model within the budget
    searched = [r for r in rows if r["method"] == "petridish"]
    assert len({r["search_seconds"] for r in searched}) == 1  # the run's time, shared between its two budgets
    assert (run_dir / "report" / "frontier-ort-cpu-1t.png").is_file() and "frontier-ort-cpu-1t.png" in (run_dir / "report.md").read_text()


def test_record_and_mlflow_name_the_strategy_and_keep_the_frontier(petridish_run):
    _, run_dir, cfg = petridish_run
    record = json.loads((run_dir / "record.json").read_text())
    assert record["strategy"] == "petridish" and "petridish" in record["hyperparameters"]
    client = MlflowClient(cfg.tracking.mlflow_uri)
    [parent] = [
        r
        for r in client.search_runs([client.get_experiment_by_name("tiny-petridish").experiment_id])
        if "mlflow.parentRunId" not in r.data.tags
    ]
    assert "frontiers/ort-cpu-1t-s0.json" in {a.path for a in client.list_artifacts(parent.info.run_id, "frontiers")}
