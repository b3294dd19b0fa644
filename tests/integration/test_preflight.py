"""Checks before anything trains: GPU reservations against the cluster (refused here, honoured on CUDA)
and splits that would leave a phase with nothing to do."""

from __future__ import annotations

import pytest
from mlflow.tracking import MlflowClient

from raynas.config import parse_config
from raynas.data.datasets import DatasetError
from raynas.execution.runtime import ClusterError, check_cpus, check_gpus
from raynas.orchestration.pipeline import new_run_dir, run_experiment
from raynas.orchestration.rundir import gpu_requests

pytestmark = pytest.mark.integration


def _tiny(root, store, **extra) -> dict:
    return {
        "name": "gpu",
        "run_root": str(root),
        "targets": [{"name": "cpu-1t", "budget_fractions": [0.5]}],
        "data": {"limit": 128, "batch_size": 32},
        "search": {"warmup_epochs": 1, "search_epochs": 1, "eval_batches": 2},
        "retrain": {"epochs": 1},
        "profile": {"warmup": 2, "repeats": 10, "calibration_archs": 1, "settle_seconds": 0},
        "evaluation": {"hand_designed_widths": [0.5], "random_search": False},
        "tracking": {"mlflow_uri": store(root / "mlflow.db"), "experiment": "gpu"},
        **extra,
    }


@pytest.mark.faults
def test_gpu_requests_on_a_cluster_without_gpus_are_refused_naming_the_field(ray_session, tmp_path, sqlite_store):
    import ray

    if ray.cluster_resources().get("GPU", 0):
        pytest.skip("this Ray cluster has GPUs")
    check_gpus({"ray.gpus_per_trial": 0.0})  # nothing asked, nothing refused
    with pytest.raises(ClusterError, match=r"config field ray.gpus_per_trial: asks for 0.25 GPU\(s\) but no node"):
        check_gpus({"ray.gpus_per_trial": 0.25})
    cfg = parse_config(_tiny(tmp_path, sqlite_store, ray={"gpus_per_task": 1}))
    run_dir = new_run_dir(cfg)
    with pytest.raises(ClusterError, match="config field ray.gpus_per_task"):
        run_experiment(cfg, run_dir, log=lambda _: None)
    assert not (run_dir / "results.parquet").exists()
    assert (run_dir / "FAILED").read_text().startswith("ClusterError: config field ray.gpus_per_task")
    runs = MlflowClient(cfg.tracking.mlflow_uri).search_runs(
        [MlflowClient(cfg.tracking.mlflow_uri).get_experiment_by_name("gpu").experiment_id]
    )
    assert [r.info.status for r in runs] == ["FAILED"] and "ray.gpus_per_task" in runs[0].data.tags["raynas.failure"]
    assert gpu_requests(cfg) == {"ray.gpus_per_trial": 0.0, "ray.gpus_per_task": 1.0}


@pytest.mark.faults
def test_replicas_that_leave_no_cpu_for_a_search_trial_are_refused_before_training(ray_session, tmp_path, sqlite_store):
    check_cpus({"ofa.replica_cpus": 1.0}, 1.0)  # 2 CPUs: one for the replicas, one for a trial
    ofa = {"replicas": 2, "replica_cpus": 0.5}  # 3 seeds x 2 replicas x 0.5 = 3 CPUs of the session Ray's 2
    cfg = parse_config(
        _tiny(tmp_path, sqlite_store, space="mnist-ofa", strategy="ofa", ofa=ofa, evaluation={"seeds": 3, "hand_designed_widths": []})
    )
    run_dir = new_run_dir(cfg)
    with pytest.raises(ClusterError, match=r"config field ofa.replica_cpus: its actors hold 3 CPUs .* the cluster has 2 CPUs"):
        run_experiment(cfg, run_dir, log=lambda _: None)
    assert not (run_dir / "luts").exists()


@pytest.mark.faults
def test_an_empty_test_split_is_refused_before_profiling(ray_session, tmp_path, sqlite_store):
    cfg = parse_config(_tiny(tmp_path, sqlite_store, data={"test_fraction": 0.0}))
    run_dir = new_run_dir(cfg)
    with pytest.raises(DatasetError, match="test split is empty"):
        run_experiment(cfg, run_dir, log=lambda _: None)
    assert not (run_dir / "luts").exists() and not (run_dir / "results.parquet").exists()


@pytest.mark.needs_cuda
@pytest.mark.parametrize("precision", ["fp16", "bf16"])
def test_tiny_pipeline_trains_every_phase_on_cuda_with_amp(ray_session, tmp_path, sqlite_store, precision):
    """Warm-up, searches and retraining on a shared GPU (fractional trials) in mixed precision."""
    import ray

    if not ray.cluster_resources().get("GPU", 0):
        pytest.skip("the session Ray sees no GPU")
    cfg = parse_config(
        _tiny(
            tmp_path,
            sqlite_store,
            compute={"device": "cuda", "precision": precision, "channels_last": True},
            ray={"gpus_per_trial": 0.5, "gpus_per_task": 1},
        )
    )
    summary = run_experiment(cfg, new_run_dir(cfg), log=lambda _: None)
    rows = summary["results"]
    assert rows and all(0.0 <= r["test_acc"] <= 1.0 for r in rows)
    assert max(r["test_acc"] for r in rows) > 0.3  # learned something in one epoch on 128 images
