"""ProxylessNAS through the whole pipeline with ``ray.workers_per_trial: 2`` and ``ray.workers_per_task: 2``:
the warm-up and every search, random-search and retraining trial run as 2-worker Ray Train jobs (gloo,
one CPU each), the trials' inside their Tune trials."""

from __future__ import annotations

import pytest
from mlflow.tracking import MlflowClient

from raynas.api import RANDOM_WS
from raynas.config import parse_config
from raynas.orchestration.pipeline import new_run_dir, run_experiment

pytestmark = pytest.mark.integration

ROOFLINE = {"name": "phone-ish", "peak_gflops": 20.0, "bandwidth_gbs": 8.0}
PHONE = {"name": "phone", "budget_fractions": [0.5], "estimate": {"device": ROOFLINE}}


@pytest.fixture(scope="module")
def data_parallel_run(ray_session, tmp_path_factory, sqlite_store):
    """A roofline target (no profiling: what this checks is the training path), one seed, 2 workers per trial."""
    root = tmp_path_factory.mktemp("dp-runs")
    cfg = parse_config(
        {
            "name": "tiny-dp",
            "run_root": str(root),
            "targets": [PHONE],
            "data": {"limit": 256, "eval_limit": 128, "batch_size": 32},
            "search": {"warmup_epochs": 1, "search_epochs": 2, "eval_batches": 2},
            "retrain": {"epochs": 1},
            "evaluation": {"hand_designed_widths": [], "asha": {"enabled": False}},
            "ray": {"workers_per_trial": 2, "workers_per_task": 2, "checkpoint_seconds": 0},
            "tracking": {"mlflow_uri": sqlite_store(root / "mlflow.db"), "experiment": "tiny-dp"},
        }
    )
    run_dir = new_run_dir(cfg)
    return run_experiment(cfg, run_dir, log=lambda _: None), run_dir, cfg


def test_data_parallel_trials_search_retrain_and_report_through_tune(data_parallel_run):
    summary, run_dir, cfg = data_parallel_run
    assert (run_dir / "results.parquet").is_file() and not (run_dir / "FAILED").exists()
    assert sorted(r["method"] for r in summary["results"]) == ["proxyless", RANDOM_WS]
    assert all(r["test_acc"] > 0 for r in summary["results"])
    client = MlflowClient(cfg.tracking.mlflow_uri)
    runs = client.search_runs([client.get_experiment_by_name("tiny-dp").experiment_id])
    workers = {k: v for run in runs for k, v in run.data.metrics.items() if k.endswith("/workers")}
    assert set(workers) == {"search/workers", "random-ws/workers", "retrain/workers"} and set(workers.values()) == {2.0}
    assert list((run_dir / "tune").glob("*-train/*/checkpoint_*")), "rank 0 checkpoints through Ray Train"
    assert list((run_dir / "supernet" / "train" / "warmup-s0").glob("checkpoint_*"))  # the warm-up ran as a 2-worker job too
    assert (run_dir / "supernet" / "warmup-s0.pt").is_file()
