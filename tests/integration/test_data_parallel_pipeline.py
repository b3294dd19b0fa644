"""ProxylessNAS through the whole pipeline with ``ray.workers_per_trial: 2`` and ``ray.workers_per_task: 2``:
the warm-up and every search, random-search and retraining trial run as 2-worker Ray Train jobs (gloo,
one CPU each), the trials' inside their Tune trials; OFA's progressive shrinking as such a job too."""

from __future__ import annotations

import json
import time

import numpy as np
import pytest
import ray
from mlflow.tracking import MlflowClient
from ray.util import placement_group_table

from raynas.api import ASHA, RANDOM_WS
from raynas.config import parse_config
from raynas.execution.ofa import train_elastic_data_parallel
from raynas.orchestration.pipeline import new_run_dir, run_experiment
from raynas.space.macro import get_space
from raynas.supernet.elastic import ElasticSupernet
from raynas.supernet.progressive import PHASES
from raynas.weights import load_numpy_state

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
            "evaluation": {"hand_designed_widths": [], "asha": {"enabled": True, "max_epochs": 2, "candidates": 4}},
            "ray": {"workers_per_trial": 2, "workers_per_task": 2, "checkpoint_seconds": 0},
            "tracking": {"mlflow_uri": sqlite_store(root / "mlflow.db"), "experiment": "tiny-dp"},
        }
    )
    run_dir = new_run_dir(cfg)
    return run_experiment(cfg, run_dir, log=lambda _: None), run_dir, cfg


def test_data_parallel_trials_search_retrain_and_report_through_tune(data_parallel_run):
    summary, run_dir, cfg = data_parallel_run
    assert (run_dir / "results.parquet").is_file() and not (run_dir / "FAILED").exists()
    assert sorted(r["method"] for r in summary["results"]) == [ASHA, "proxyless", RANDOM_WS]
    assert all(r["test_acc"] > 0 for r in summary["results"])
    client = MlflowClient(cfg.tracking.mlflow_uri)
    runs = client.search_runs([client.get_experiment_by_name("tiny-dp").experiment_id])
    workers = {k: v for run in runs for k, v in run.data.metrics.items() if k.endswith("/workers")}
    assert set(workers) == {"search/workers", "random-ws/workers", "retrain/workers"} and set(workers.values()) == {2.0}
    assert list((run_dir / "tune").glob("*-train/*/checkpoint_*")), "rank 0 checkpoints through Ray Train"
    epochs = [len(f.read_text().splitlines()) for f in (run_dir / "tune" / "retrain").glob("*/result.json")]
    assert epochs and set(epochs) == {cfg.retrain.epochs}  # one report per epoch, the last with the weights
    assert list((run_dir / "supernet" / "train" / "warmup-s0").glob("checkpoint_*"))  # the warm-up ran as a 2-worker job too
    assert (run_dir / "supernet" / "warmup-s0.pt").is_file()


def test_data_parallel_early_stopped_trials_end_with_their_train_jobs(data_parallel_run):
    """The early-stopped random search's standalone trials run as 2-worker Train jobs; once the
    scheduler has stopped them (ASHA, or the spent budget), nothing of their jobs is left holding the cluster."""
    _, run_dir, _ = data_parallel_run
    lines = [json.loads(line) for f in (run_dir / "tune" / "asha").glob("*/result.json") for line in f.read_text().splitlines()]
    assert lines and {line["workers"] for line in lines} == {2}
    assert {g["state"] for g in placement_group_table().values()} <= {"REMOVED"}  # every trial's Train job gave its bundles back
    deadline = time.monotonic() + 60
    while ray.available_resources().get("CPU", 0) < ray.cluster_resources()["CPU"] and time.monotonic() < deadline:
        time.sleep(1)
    assert ray.available_resources().get("CPU", 0) == ray.cluster_resources()["CPU"]


def test_data_parallel_progressive_shrinking_keeps_every_phase_and_resumes_from_them(ray_session, tmp_path):
    """OFA's progressive shrinking as a 2-worker Ray Train job: every phase file reaches the run
    directory, and a second run over the same directory loads every phase instead of training it."""
    shrink = {"largest_epochs": 1, "kernel_epochs": 1, "depth_epochs": 1, "width_epochs": 1, "min_depth": 1}
    cfg = parse_config(
        {
            "name": "tiny-ofa-dp",
            "space": "mnist-small",
            "strategy": "ofa",
            "run_root": str(tmp_path),
            "targets": [PHONE],
            "data": {"limit": 128, "eval_limit": 64, "batch_size": 32},
            "ofa": {"shrink": shrink},
            "ray": {"workers_per_task": 2},
        }
    )
    directory = tmp_path / "supernet" / "ofa-s0"
    stats, weights = train_elastic_data_parallel(cfg, directory, seed=0)
    assert stats["workers"] == 2 and all(stats[f"{phase}_loss"] > 0 for phase in PHASES)
    assert sorted(p.name for p in directory.glob("*.pt") if "loader" not in p.name) == [f"{n}-{p}.pt" for n, p in enumerate(PHASES)]
    net = ElasticSupernet(get_space("mnist-small"), 10, min_depth=1)
    load_numpy_state(net, weights)  # every tensor of the elastic supernet, by name and shape
    again, same = train_elastic_data_parallel(cfg, directory, seed=0)
    assert all(again[f"{phase}_resumed"] == 1.0 for phase in PHASES)
    assert all(np.array_equal(same[k], weights[k]) for k in weights)
