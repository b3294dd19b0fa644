"""The whole pipeline, tiny: 2 targets x 1 budget x 2 seeds, NAS + random + ASHA + one hand-designed
net, on a session Ray with a temp SQLite MLflow store (the shared ``tiny_sweep`` run)."""

from __future__ import annotations

import json
from pathlib import Path

import pyarrow.parquet as pq
import pytest
from mlflow.tracking import MlflowClient

from raynas.api import ASHA, HAND, RANDOM_WS
from raynas.export import RECIPE_FILE, deployment_path
from raynas.orchestration.pipeline import sync_mlflow
from raynas.space.architecture import Architecture
from raynas.tracking.models import registered_name
from raynas.tracking.sync import weights_path

PROXYLESS = "proxyless"
SEEDS = (0, 1)
TARGETS = ("ort-cpu-1t", "executorch-xnnpack-1t-b16")  # make run's kinds: torch targets compile every network (tests/unit)
FINALISTS = 2 * (3 * len(TARGETS) + 1)  # per seed: NAS, random and ASHA per target, one hand-designed net

pytestmark = pytest.mark.integration

PHASES = {"profile", "warmup", "search", "random_search", "asha_search", "retrain", "measure"}


@pytest.fixture(scope="module")
def tiny_run(tiny_sweep):
    summary, run_dir, _ = tiny_sweep
    return summary, run_dir


def test_every_scenario_and_baseline_has_a_measured_retrained_network(tiny_run):
    summary, run_dir = tiny_run
    results = summary["results"]
    assert (run_dir / "results.parquet").is_file() and not (run_dir / "FAILED").exists()
    methods = sorted((r["target"], r["method"], r["seed"]) for r in results)
    assert methods == sorted((t, m, s) for t in TARGETS for m in (PROXYLESS, RANDOM_WS, ASHA, HAND) for s in SEEDS)
    for r in results:
        assert r["measured_ms"] > 0 and 0 <= r["test_acc"] <= 1
        if r["method"] == HAND:
            assert r["budget_ms"] is None and r["predicted_ms"] is None and r["width_mult"] == 0.5
            continue
        Architecture.from_string("mnist-small", r["arch"])
        assert 0 < r["predicted_ms"] <= r["budget_ms"] + 1e-6 and r["search_seconds"] > 0
    nas = {(r["target"], r["seed"]): r for r in results if r["method"] == PROXYLESS}
    for r in results:
        if r["method"] == RANDOM_WS:  # the random search had the NAS search's wall-clock, to within one candidate
            assert r["search_seconds"] >= 0.9 * nas[(r["target"], r["seed"])]["search_seconds"]
    assert pq.read_table(run_dir / "results.parquet").to_pylist() == results
    assert json.loads((run_dir / "results.json").read_text()) == results
    assert [c["target"] for c in summary["comparisons"]] == sorted(TARGETS)
    assert all(c["asha_acc_mean"] is not None for c in summary["comparisons"])
    assert {p.name for p in (run_dir.parent / "opcache").iterdir()} == {f"{t}.parquet" for t in TARGETS}


def test_report_and_reproducibility_record_are_written(tiny_run):
    _, run_dir = tiny_run
    record = json.loads((run_dir / "record.json").read_text())
    assert set(record["phase_seconds"]) == PHASES and all(v > 0 for v in record["phase_seconds"].values())
    assert set(record["trial_seconds"]) == {PROXYLESS, RANDOM_WS, ASHA, HAND}
    assert record["seeds"] == list(SEEDS) and set(record["hardware"]) == set(TARGETS)
    assert record["hyperparameters"]["search"]["search_epochs"] == 2
    for name in (
        "report.md",
        "report.html",
        "report/pareto-ort-cpu-1t.png",
        "report/pareto-executorch-xnnpack-1t-b16.png",
        "report/architectures.png",
        "report/over-time-ort-cpu-1t.png",
    ):
        assert (run_dir / name).stat().st_size > 0


def test_performance_over_time_of_every_search_ends_at_its_answer(tiny_run):
    summary, run_dir = tiny_run
    curves = json.loads((run_dir / "curves.json").read_text())
    assert {(c["method"], c["target"]) for c in curves} == {(m, t) for m in (PROXYLESS, RANDOM_WS, ASHA) for t in TARGETS}
    for key in {c["key"] for c in curves}:
        mine = [c for c in curves if c["key"] == key]
        assert [c["seconds"] for c in mine] == sorted(c["seconds"] for c in mine)
        if mine[0]["method"] != PROXYLESS:  # the baselines return the best they saw: never falls
            assert [c["score"] for c in mine] == sorted(c["score"] for c in mine)


def test_the_early_stopped_random_search_keeps_to_its_budget_and_window(tiny_run):
    summary, _ = tiny_run
    client = MlflowClient(summary["mlflow_uri"])
    runs = client.search_runs([client.get_experiment_by_name("tiny").experiment_id])
    early = [r for r in runs if r.data.tags.get("raynas.method") == ASHA]
    assert len(early) == len(TARGETS) * len(SEEDS)
    for r in early:
        m = r.data.metrics
        assert (
            m["asha/trials"] >= 1 and m["asha/device_seconds"] <= m["asha/budget_device_seconds"] + 2 * m["asha/longest_epoch_seconds"]
        )  # the stopper acts between epochs
    for row in (r for r in summary["results"] if r["method"] == ASHA):
        assert 0.9 * row["budget_ms"] - 1e-6 <= row["predicted_ms"] <= row["budget_ms"] + 1e-6


def test_mlflow_holds_parent_children_metrics_and_artifacts(tiny_run, tmp_path):
    summary, _ = tiny_run
    client = MlflowClient(summary["mlflow_uri"])
    exp = client.get_experiment_by_name("tiny")
    runs = client.search_runs([exp.experiment_id])
    parents = [r for r in runs if "mlflow.parentRunId" not in r.data.tags]
    children = [r for r in runs if "mlflow.parentRunId" in r.data.tags]
    assert len(parents) == 1 and len(children) == FINALISTS
    assert all(c.data.tags["mlflow.parentRunId"] == parents[0].info.run_id for c in children)
    assert all(r.info.status == "FINISHED" for r in runs)
    parent_files = {a.path for a in client.list_artifacts(parents[0].info.run_id)}
    assert {"luts", "results.parquet", "results.json", "record.json", "report.md", "report.html", "report"} <= parent_files
    rows = {(r["method"], r["target"], r["seed"]): r for r in summary["results"]}
    for child in children:
        run_id, method = child.info.run_id, child.data.tags["raynas.method"]
        if method == PROXYLESS:
            assert [m.step for m in client.get_metric_history(run_id, "search/val_acc")] == [0, 1]
        if method == RANDOM_WS:
            assert (
                max(client.get_metric_history(run_id, "random-ws/candidates"), key=lambda m: m.step).value >= 2
            )  # one step trains, later ones score
        assert len(client.get_metric_history(run_id, "retrain/val_acc")) == 1
        if method == ASHA:
            continue  # its Tune runs report no per-step curve to MLflow; checked above
        if method == HAND:
            seed = int(child.data.params["seed"])
            assert child.data.metrics["measured_ms/ort-cpu-1t"] == pytest.approx(rows[(HAND, "ort-cpu-1t", seed)]["measured_ms"])
        else:
            row = rows[(method, child.data.params["target"], int(child.data.params["seed"]))]
            assert child.data.params["arch"] == row["arch"]
            assert child.data.metrics["measured_ms"] == pytest.approx(row["measured_ms"])
        paths = {a.path for a in client.list_artifacts(run_id)}
        assert {"architecture.json", "retrained", "lut"} <= paths
        assert [a.path for a in client.list_artifacts(run_id, "retrained")] == [
            f"retrained/{weights_path(Path('.'), child.data.tags['raynas.scenario']).name}"
        ]
        local = client.download_artifacts(run_id, "architecture.json", str(tmp_path))
        assert Architecture.from_json(open(local).read()).to_string() == child.data.params["arch"]


def test_every_result_ships_its_export_and_nas_finalists_are_registered_by_target_and_budget(tiny_run):
    summary, run_dir = tiny_run
    for r in summary["results"]:
        folder = deployment_path(run_dir, r["key"], r["target"])
        recipe = json.loads((folder / RECIPE_FILE).read_text())
        assert (folder / recipe["file"]).is_file() and recipe["target"] == r["target"] and recipe["measured_ms"] == r["measured_ms"]
        assert recipe["input_shape"][0] == (16 if r["target"] == "executorch-xnnpack-1t-b16" else 1)
        assert r["measured_wall_ms"] > 0
        assert (folder / "serving.pt2").is_file() == (r["method"] == PROXYLESS)  # the any-batch program NAS finalists' Models serve
    client = MlflowClient(summary["mlflow_uri"])
    nas = [r for r in summary["results"] if r["method"] == PROXYLESS]
    names = {registered_name("tiny", r["target"], r["budget_ms"]) for r in nas}
    assert {m.name for m in client.search_registered_models()} == names
    for name in names:
        versions = client.search_model_versions(f"name = '{name}'")
        assert sorted(v.tags["seed"] for v in versions) == ["0", "1"]
        assert {"MLmodel", "artifacts"} <= {a.path.rsplit("/", 1)[-1] for a in client.list_artifacts(versions[0].run_id, "model")}


@pytest.mark.faults
def test_sync_mlflow_uploads_a_finished_run_to_a_fresh_store_once(tiny_run, tmp_path, sqlite_store):
    """What `raynas sync-mlflow` does after the server was down: rebuild every run from the run
    directory and Tune storage; a second sync adds nothing."""
    summary, run_dir = tiny_run
    uri = sqlite_store(tmp_path / "fresh.db")
    first = sync_mlflow(run_dir, uri)
    assert (
        first["finalists"] == FINALISTS and first["results_replayed"] >= len(TARGETS) * len(SEEDS) * (2 + 1) + FINALISTS
    )  # NAS epochs, random, retraining
    client = MlflowClient(uri)
    exp = client.get_experiment_by_name("tiny")
    runs = client.search_runs([exp.experiment_id])
    children = {r.data.tags["raynas.scenario"]: r for r in runs if "mlflow.parentRunId" in r.data.tags}
    assert len(runs) == FINALISTS + 1 and len(children) == FINALISTS
    nas = next(r for k, r in children.items() if k.startswith("proxyless:"))
    assert [m.step for m in client.get_metric_history(nas.info.run_id, "search/val_acc")] == [0, 1]
    assert {"architecture.json", "retrained", "lut"} <= {a.path for a in client.list_artifacts(nas.info.run_id)}
    again = sync_mlflow(run_dir, uri)
    assert again["finalists"] == FINALISTS and len(client.search_runs([exp.experiment_id])) == FINALISTS + 1
    assert all(len(client.search_model_versions(f"name = '{m.name}'")) == len(SEEDS) for m in client.search_registered_models())
    assert [m.step for m in client.get_metric_history(nas.info.run_id, "search/val_acc")] == [0, 1]
