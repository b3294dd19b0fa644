"""The driver dies (SIGKILL) mid-experiment; ``--resume RUN_DIR`` finishes it without rerunning
finished trials and without duplicating MLflow runs.

Both halves run in subprocesses with their own local Ray (the session Ray cannot be killed).
The driver kills itself from a Tune callback when the first retraining trial reports, so the
NAS searches are finished and the retraining is not. Baselines are off to keep the test short.
"""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
from mlflow.tracking import MlflowClient

pytestmark = [pytest.mark.integration, pytest.mark.faults]

SCRIPT = textwrap.dedent(
    """
    import json, os, signal, sys, ray
    from ray import tune
    from raynas.config import parse_config
    from raynas.hardware.targets import TARGETS
    from raynas.orchestration.pipeline import new_run_dir, resume_experiment, run_experiment
    from raynas.orchestration.runtime import target_resources

    class KillDriver(tune.Callback):
        # Pickled into Tune's experiment state, so it must be importable (here: __main__) on resume;
        # it only kills while RAYNAS_KILL_DRIVER is set.
        def on_trial_result(self, iteration, trials, trial, result, **info):
            if os.environ.get("RAYNAS_KILL_DRIVER") and trial.trainable_name == "retrain_trial":
                os.kill(os.getpid(), signal.SIGKILL)

    mode, root = sys.argv[1], sys.argv[2]
    ray.init(address="local", num_cpus=2, include_dashboard=False, resources=target_resources(TARGETS.names()), log_to_driver=False)
    if mode == "start":
        cfg = parse_config({
            "name": "driver-loss", "run_root": root,
            "targets": [{"name": "cpu-1t", "budget_fractions": [0.5]}, {"name": "cpu-1t-b16", "budget_fractions": [0.5]}],
            "data": {"limit": 128, "batch_size": 32},
            "search": {"warmup_epochs": 1, "search_epochs": 2, "eval_batches": 2},
            "retrain": {"epochs": 1},
            "profile": {"warmup": 1, "repeats": 5, "calibration_archs": 1, "settle_seconds": 0},
            "evaluation": {"random_search": False, "hand_designed_widths": []},
        })
        run_experiment(cfg, new_run_dir(cfg), log=lambda _: None, callbacks=[KillDriver()])
    else:
        summary = resume_experiment(mode, log=lambda _: None)
        print(json.dumps(summary))
    ray.shutdown()
    """
)


def last_results(run_dir: Path, phase: str) -> dict[str, float]:
    """Timestamp of each trial's last reported result in a Tune phase."""
    out = {}
    for path in (run_dir / "tune" / phase).glob("*/result.json"):
        last = json.loads(path.read_text().strip().splitlines()[-1])
        out[last["config"]["scenario"]] = last["timestamp"]
    return out


def test_resume_after_driver_loss_keeps_finished_trials_and_mlflow_runs(tmp_path):
    killed = subprocess.run([sys.executable, "-c", SCRIPT, "start", str(tmp_path)], capture_output=True, text=True, timeout=400, env=_env(kill=True))
    assert killed.returncode == -signal.SIGKILL, killed.stderr[-3000:]
    [run_dir] = [p for p in tmp_path.iterdir() if p.name.startswith("driver-loss")]
    searched = last_results(run_dir, "search")
    assert len(searched) == 2 and not (run_dir / "results.parquet").exists()

    resumed = subprocess.run([sys.executable, "-c", SCRIPT, str(run_dir), str(tmp_path)], capture_output=True, text=True, timeout=400, env=_env(kill=False))
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    summary = json.loads(resumed.stdout.strip().splitlines()[-1])
    assert last_results(run_dir, "search") == searched  # finished NAS searches were not rerun
    keys = sorted((r["method"], r["target"]) for r in summary["results"])
    assert keys == [("proxyless", "cpu-1t"), ("proxyless", "cpu-1t-b16")]
    client = MlflowClient(summary["mlflow_uri"])
    runs = client.search_runs([client.get_experiment_by_name("raynas").experiment_id])
    parents = [r for r in runs if "mlflow.parentRunId" not in r.data.tags]
    children = [r.data.tags["raynas.scenario"] for r in runs if "mlflow.parentRunId" in r.data.tags]
    assert len(parents) == 1 and len(children) == len(set(children)) == 2
    assert all(r.info.status == "FINISHED" for r in runs)


def _env(kill: bool) -> dict:
    import os

    env = {k: v for k, v in os.environ.items() if k != "RAYNAS_KILL_DRIVER"}
    return env | ({"RAYNAS_KILL_DRIVER": "1"} if kill else {})
