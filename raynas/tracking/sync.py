"""What a run puts into MLflow, shared by the live pipeline and ``raynas sync-mlflow``.

Everything logged here can be rebuilt from the run directory and Tune storage alone, which is
what lets a run whose MLflow server died mid-way upload its results later.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pyarrow.fs as pafs

from raynas.api import HAND, strategy_class, strategy_names
from raynas.export import deployment_path
from raynas.space.architecture import Architecture
from raynas.space.macro import scaled_name
from raynas.tracking.mlflow_tracker import OFFLINE, ExperimentTracker
from raynas.tracking.models import log_model, registered_name, servable
from raynas.tracking.tune_callback import trial_metrics


def phases() -> list[str]:
    """Tune experiments a run may hold: every registered strategy's, then the retraining."""
    return list(dict.fromkeys(p for name in strategy_names() for p in strategy_class(name).phases)) + ["retrain"]


PARENT_FILES = ("config.yaml", "results.parquet", "results.json", "record.json", "curves.json", "report.md", "report.html")


def weights_path(run_dir: Path, key: str) -> Path:
    return run_dir / "weights" / f"{key.replace(':', '_').replace('#', '_')}.pt"


ARTIFACTS_FILE = "artifacts.json"  # files a strategy added to the run (``RunContext.add_artifact``): path and MLflow folder


def read_artifacts(run_dir: Path) -> list[dict[str, str]]:
    """The strategy artifacts listed in the run directory, each ``{"path": relative path, "folder": MLflow folder}``."""
    path = run_dir / ARTIFACTS_FILE
    return json.loads(path.read_text()) if path.is_file() else []


def _unlisted_frontiers(run_dir: Path) -> list[dict[str, str]]:
    """A run directory written before the manifest: its frontier files were its only strategy artifacts."""
    return [{"path": str(p.relative_to(run_dir)), "folder": "frontiers"} for p in sorted((run_dir / "frontiers").glob("*.json"))]


def lut_path(run_dir: Path, target: str, space: str | None = None) -> Path:
    """The target's table for the run's space, or for another space (an OFA resolution variant)."""
    return run_dir / "luts" / (f"{target}.parquet" if space is None else f"{target}-{space}.parquet")


def record_finalist(tracker: ExperimentTracker, run_dir: Path, rows: list[dict[str, Any]], *, arch: Architecture, strategy: str) -> None:
    """A finalist's child run: its measured rows (one per target), architecture, weights and tables."""
    first = rows[0]
    run_id = tracker.child(first["key"])
    per_target = first["method"] == HAND  # references are measured on every target
    for r in rows:
        suffix = f"/{r['target']}" if per_target else ""
        tracker.log_metrics(run_id, {f"measured_ms{suffix}": r["measured_ms"], f"predicted_ms{suffix}": r["predicted_ms"]})
    tracker.log_params(
        run_id,
        {
            "method": first["method"],
            "target": None if per_target else first["target"],
            "budget_ms": first["budget_ms"],
            "arch": first["arch"],
            "arch_id": first["arch_id"],
            "seed": first["seed"],
        },
    )
    tracker.log_metrics(run_id, {"test_acc": first["test_acc"]})
    tracker.log_json(run_id, arch.to_dict(), "architecture.json")
    tracker.log_file(run_id, weights_path(run_dir, first["key"]), "retrained")
    for r in rows:
        if lut_path(run_dir, r["target"]).is_file():  # a tabular target's lookup is read in place, never copied
            tracker.log_file(run_id, lut_path(run_dir, r["target"]), "lut")
        record_deployment(tracker, run_id, run_dir, row=r, strategy=strategy)


def record_deployment(tracker: ExperimentTracker, run_id: str, run_dir: Path, *, row: dict[str, Any], strategy: str) -> None:
    """The finalist's export for one target; a NAS finalist's also as an MLflow Model, registered
    under its (target, budget) so users find it by name (``models:/<experiment>-<target>-<budget>ms/<version>``)."""
    folder = deployment_path(run_dir, row["key"], row["target"])
    if not folder.is_dir():
        return
    tracker.log_dir(run_id, folder, f"deploy/{row['target']}")
    if row["method"] != strategy or not servable(folder):  # a baseline's or reference's export is logged, not registered
        return
    tags = {
        "seed": str(row["seed"]),
        "test_acc": str(row["test_acc"]),
        "predicted_ms": str(row["predicted_ms"]),
        "measured_ms": str(row["measured_ms"]),
        "arch": row["arch"],
    }
    log_model(tracker, run_id, folder, register_as=registered_name(tracker.experiment, row["target"], row["budget_ms"]), tags=tags)


def record_outputs(tracker: ExperimentTracker, run_dir: Path) -> None:
    """The parent run's files: config, results, record, latency tables, report and plots."""
    for name in PARENT_FILES:
        if (run_dir / name).is_file():
            tracker.log_file(tracker.parent_id, run_dir / name)
    for path in sorted((run_dir / "luts").glob("*.parquet")):
        tracker.log_file(tracker.parent_id, path, "luts")
    for path in sorted((run_dir / "report").glob("*.png")):
        tracker.log_file(tracker.parent_id, path, "report")
    for entry in read_artifacts(run_dir) or _unlisted_frontiers(run_dir):
        tracker.log_file(tracker.parent_id, run_dir / entry["path"], entry["folder"])


def replay_curves(tracker: ExperimentTracker, storage: str, already: dict[str, set[str]]) -> int:
    """Log every trial's per-epoch results from Tune storage as ``<phase>/<metric>``; returns the
    number of results replayed. Metrics a child run already holds (``already[key]``) are skipped."""
    fs, root = pafs.FileSystem.from_uri(storage) if "://" in storage else (pafs.LocalFileSystem(), str(Path(storage).resolve()))
    replayed = 0
    for phase in phases():
        infos = fs.get_file_info(pafs.FileSelector(f"{root}/{phase}", allow_not_found=True, recursive=True))
        for info in sorted((i for i in infos if i.base_name == "result.json"), key=lambda i: i.path):
            with fs.open_input_stream(info.path) as f:
                lines = f.read().decode().splitlines()
            for line in filter(None, lines):
                result = json.loads(line)
                if "arch" in result["config"]:
                    break  # a black-box candidate's trial: its search's curve is curves.json, not one child run's steps
                key = result["config"]["scenario"]
                metrics = {k: v for k, v in trial_metrics(result).items() if f"{phase}/{k}" not in already.get(key, set())}
                tracker.log_metrics(tracker.child(key), metrics, step=int(result.get("epoch", 0)), prefix=f"{phase}/")
                replayed += 1
    return replayed


def sync_run(
    tracker: ExperimentTracker, run_dir: Path, storage: str, *, rows: list[dict[str, Any]], space: str, strategy: str
) -> dict[str, int]:
    """Upload a finished run to ``tracker``'s store; idempotent for runs and files, never duplicating a curve."""
    already = {key: set(tracker.client.get_run(run_id).data.metrics) for key, run_id in tracker.children.items()}
    replayed = replay_curves(tracker, storage, already)
    by_key: dict[str, list[dict]] = {}
    for r in rows:
        by_key.setdefault(r["key"], []).append(r)
    for key, mine in by_key.items():
        record_finalist(
            tracker,
            run_dir,
            mine,
            arch=Architecture.from_string(mine[0].get("space") or scaled_name(space, mine[0]["width_mult"]), mine[0]["arch"]),
            strategy=strategy,
        )
    record_outputs(tracker, run_dir)
    tracker.finish()
    if tracker.offline or tracker.child(rows[0]["key"]) == OFFLINE:
        raise RuntimeError(f"MLflow store {tracker.uri} failed during the sync; run it again when the store is up")
    tracker.pending.unlink(missing_ok=True)
    return {"finalists": len(by_key), "results_replayed": replayed}
