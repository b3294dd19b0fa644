"""The Once-for-All strategy through the whole pipeline, tiny: elastic supernet, replicas, predictor,
evolution and the paired random subnet search, then the same retrain -> measure -> MLflow path."""

from __future__ import annotations

import json

import pytest
from mlflow.tracking import MlflowClient

from raynas.api import RANDOM_WS
from raynas.config import parse_config
from raynas.orchestration.pipeline import new_run_dir, run_experiment
from raynas.space.architecture import Architecture
from raynas.space.macro import get_space
from raynas.supernet.elastic import ElasticSupernet

OFA = "ofa"

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def ofa_run(ray_session, tmp_path_factory, sqlite_store):
    root = tmp_path_factory.mktemp("ofa-runs")
    cfg = parse_config(
        {
            "name": "tiny-ofa",
            "space": "mnist-ofa",
            "strategy": "ofa",
            "run_root": str(root),
            "targets": [
                {"name": "ort-cpu-1t-b16", "budget_fractions": [0.6]},
                {
                    "name": "phone",
                    "budget_fractions": [0.6],
                    "estimate": {"device": {"name": "phone-ish", "peak_gflops": 20.0, "bandwidth_gbs": 8.0, "op_overhead_us": 40.0}},
                },
            ],
            "data": {"limit": 128, "eval_limit": 128, "batch_size": 32},
            "retrain": {"epochs": 1},
            # tables uncalibrated: calibration is the tiny sweep's and test_build's to check; on a busy machine its retries
            # took two thirds of this run's profiling
            "profile": {"warmup": 1, "repeats": 3, "calibration_archs": 0, "settle_seconds": 0},
            "evaluation": {"hand_designed_widths": []},
            "ray": {
                "max_concurrent_trials": 1
            },  # on 2 cores a second actor costs more to start than it gains; the tiny sweep runs trials concurrently
            "ofa": {
                "shrink": {"resolutions": [24, 28], "largest_epochs": 1, "kernel_epochs": 1, "depth_epochs": 1, "width_epochs": 1},
                "evolution": {"population": 8, "generations": 2, "recheck_top": 2},
                "replicas": 2,
                "calibration_batches": 1,
                "eval_batches": 1,
                "predictor_samples": 12,
                "finetune": True,
            },
            "tracking": {"mlflow_uri": sqlite_store(root / "mlflow.db"), "experiment": "tiny-ofa"},
        }
    )
    run_dir = new_run_dir(cfg)
    return run_experiment(cfg, run_dir, log=lambda _: None), run_dir


def test_ofa_and_its_random_baseline_give_retrained_subnets_under_budget(ofa_run):
    summary, run_dir = ofa_run
    rows = {(r["target"], r["method"]): r for r in summary["results"]}
    assert set(rows) == {(t, m) for t in ("ort-cpu-1t-b16", "phone") for m in (OFA, RANDOM_WS)}
    for (target, method), r in rows.items():
        assert r["space"] in ("mnist-ofa", "mnist-ofa@r24") and 0 <= r["test_acc"] <= 1
        assert 0 < r["predicted_ms"] <= r["budget_ms"] + 1e-6
        net = ElasticSupernet(get_space("mnist-ofa"), 10, min_depth=2, resolutions=(24, 28))
        net.check(Architecture.from_string(r["space"], r["arch"]))
        assert r["estimated"] == (target == "phone") and (r["measured_ms"] is None) == (target == "phone")
        assert r["measured_ms"] is None or r["measured_ms"] > 0
        assert r["evaluations"] == 12 + 2  # the random baseline scores as many subnets as OFA spent: predictor samples + re-checks
    assert [c["nas_method"] for c in summary["comparisons"]] == [OFA, OFA]
    luts = sorted(p.name for p in (run_dir / "luts").iterdir())
    assert luts == ["ort-cpu-1t-b16-mnist-ofa@r24.parquet", "ort-cpu-1t-b16.parquet", "phone-mnist-ofa@r24.parquet", "phone.parquet"]
    phone_rows = [
        line
        for line in (run_dir / "report.md").read_text().splitlines()
        if line.startswith("| phone |") and ("| ofa |" in line or "| random-ws |" in line)
    ]
    assert len(phone_rows) == 2 and all("| estimated |" in line for line in phone_rows)
    assert sorted(p.name for p in (run_dir / "supernet" / "ofa-s0").glob("?-*[!r].pt")) == [
        "0-largest.pt",
        "1-kernel.pt",
        "2-depth.pt",
        "3-width.pt",
    ]
    assert len(list((run_dir / "supernet" / "ofa-s0").glob("*.loader.pt"))) == 4  # the data order after each phase, for --resume


def test_phases_predictor_and_mlflow_records(ofa_run):
    summary, run_dir = ofa_run
    record = json.loads((run_dir / "record.json").read_text())
    assert {"profile", "supernet", "predictor", "search", "random_search", "retrain", "measure"} <= set(record["phase_seconds"])
    report = json.loads((run_dir / "predictor" / "s0" / "report.json").read_text())
    assert report["n_train"] + report["n_heldout"] == 12 and report["rmse_heldout"] >= 0
    client = MlflowClient(summary["mlflow_uri"])
    parent = client.search_runs([client.get_experiment_by_name("tiny-ofa").experiment_id], "tags.`raynas.run_dir` != ''")[0]
    assert "predictor_rmse_heldout/s0" in parent.data.metrics
    assert {a.path for a in client.list_artifacts(parent.info.run_id, "predictor/s0")} >= {
        "predictor/s0/predictor.pt",
        "predictor/s0/report.json",
    }
