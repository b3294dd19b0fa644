"""Two faults in one simulated three-node cluster run (targets pinned to labelled nodes), each checked by its own test:

1. a worker node dies mid-search: the search trial it ran resumes on another node from its last
   epoch checkpoint;
2. the driver dies (SIGKILL) when the first retraining trial reports: ``resume_experiment`` on a
   fresh cluster finishes the run without rerunning the finished searches (NAS and the early-stopped
   random search), without duplicating MLflow runs, and with exactly one result per (target, budget,
   method).

Both halves run in subprocesses (a ``ray.cluster_utils.Cluster`` cannot share a process with the
session Ray); the killed half runs in its own process group, so nothing it started outlives the test.
The node is removed from a Tune callback (the driver's main thread) as soon as Tune has registered
the first epoch checkpoint of a search trial running on it, so the loss always lands mid-search.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
from mlflow.tracking import MlflowClient

from raynas.evaluation.compare import ASHA
from raynas.hardware.lut import LatencyTable
from tests import background
from tests.scripts import run_json_script

SCRIPT = textwrap.dedent(
    """
    import json, os, signal, sys, ray
    from ray import tune
    from ray.cluster_utils import Cluster
    from raynas.config import parse_config
    from raynas.orchestration.pipeline import new_run_dir, resume_experiment, run_experiment
    from raynas.execution.runtime import ClusterError, connect

    mode, root = sys.argv[1], sys.argv[2]
    cluster = Cluster(
        initialize_head=True, head_node_args={"num_cpus": 1, "include_dashboard": False, "resources": {"raynas_target:ort-cpu-1t": 100}}
    )
    b16 = cluster.add_node(num_cpus=1, resources={"raynas_target:ort-cpu-1t-b16": 100})
    nodes = {"ort-cpu-1t": cluster.head_node.node_id, "ort-cpu-1t-b16": b16.node_id}
    doomed = cluster.add_node(num_cpus=1) if mode == "start" else None
    cluster.wait_for_nodes()
    ray.init(address=cluster.address, log_to_driver=False)

    class LoseNodeThenDriver(tune.Callback):
        # Reaches the cluster through sys.modules: Tune pickles its callbacks, and a Cluster cannot be pickled.
        # Tune's experiment state keeps it, so the resumed half unpickles it (from __main__) and it must do nothing there.
        removed, recovered, victim, after = False, 0, None, []

        def on_trial_result(self, iteration, trials, trial, result, **info):
            if sys.modules["__main__"].doomed is None:
                return
            if self.removed and trial.config["scenario"] == self.victim and "restored_step" in result:  # search results, not retraining
                self.after.append((result["epoch"], result["restored_step"]))
            if trial.trainable_name == "retrain_trial":  # searches are done, retraining is not: the driver dies
                alive = [n["NodeID"] for n in ray.nodes() if n["Alive"]]
                seen = {"removed": self.removed, "recovered": self.recovered, "victim_after_loss": self.after,
                        "doomed_alive": sys.modules["__main__"].doomed.node_id in alive, "nodes": nodes}
                with open(os.path.join(root, "node-loss.json"), "w") as f:
                    json.dump(seen, f)
                os.kill(os.getpid(), signal.SIGKILL)

        def on_trial_save(self, iteration, trials, trial, **info):
            # once Tune holds a search trial's first epoch checkpoint, the node under it goes
            main, last = sys.modules["__main__"], trial.last_result
            if (main.doomed is not None and not self.removed and last.get("node_id") == main.doomed.node_id
                    and last.get("epoch") == 0 and "restored_step" in last):
                main.cluster.remove_node(main.doomed)
                self.removed, self.victim = True, trial.config["scenario"]

        def on_trial_recover(self, iteration, trials, trial, **info):
            self.recovered += 1

    try:
        if mode == "start":
            cfg = parse_config({
                "name": "lost", "run_root": root,
                "targets": [{"name": "ort-cpu-1t", "budget_fractions": [0.3, 0.7]}, {"name": "ort-cpu-1t-b16", "budget_fractions": [0.5]}],
                "data": {"limit": 128, "eval_limit": 128, "batch_size": 32},
                "search": {"warmup_epochs": 1, "search_epochs": 3, "eval_batches": 2},
                "retrain": {"epochs": 1},
                "ray": {"checkpoint_seconds": 0},  # every epoch saved: the loss lands right after the first
                # uncalibrated: the tiny sweep checks calibration
                "profile": {"warmup": 1, "repeats": 5, "calibration_archs": 0, "settle_seconds": 0},
                # NAS and the early-stopped random search alone (keeps the fault tests short); the latter finished
                # before the driver dies, so the resumed run must keep its results
                "evaluation": {
                    "random_search": False, "hand_designed_widths": [],
                    "asha": {"enabled": True, "candidates": 2, "max_epochs": 1, "eval_batches": 1},
                },
            })
            run_experiment(cfg, new_run_dir(cfg), log=lambda _: None, callbacks=[LoseNodeThenDriver()])
        else:
            summary = resume_experiment(mode, log=lambda _: None)
            try:
                connect(cluster.address, None, ["executorch-xnnpack-1t"])  # a registered target no node is labelled with
                summary["refused"] = ""
            except ClusterError as exc:
                summary["refused"] = str(exc)
            print(json.dumps(summary))
    finally:
        ray.shutdown()
        cluster.shutdown()
    """
)


def last_results(run_dir: Path, phase: str) -> dict[str, float]:
    """Timestamp of each trial's last reported result in a Tune phase, by trial folder."""
    out = {}
    for path in (run_dir / "tune" / phase).glob("*/result.json"):
        if lines := path.read_text().strip().splitlines():
            out[path.parent.name] = json.loads(lines[-1])["timestamp"]
    return out


def lost_run_job(root: Path):
    """The run whose worker node and then driver died, resumed: (node-loss observations, search
    timestamps at the kill, the resumed summary, run directory)."""
    killed = subprocess.Popen(
        [sys.executable, "-c", SCRIPT, "start", str(root)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,
    )
    try:
        _, stderr = killed.communicate(timeout=500)
    finally:
        _kill_group(killed.pid)
    assert killed.returncode == -signal.SIGKILL, stderr[-3000:]
    [run_dir] = [p for p in root.iterdir() if p.name.startswith("lost")]
    searched = {phase: last_results(run_dir, phase) for phase in ("search", "asha")}
    assert not (run_dir / "results.parquet").exists()
    summary = run_json_script(SCRIPT, str(run_dir), str(root), timeout=400)
    return json.loads((root / "node-loss.json").read_text()), searched, summary, run_dir


pytestmark = [pytest.mark.integration, pytest.mark.faults, pytest.mark.background.with_args(lost_run_job)]


@pytest.fixture(scope="module")
def lost_run():
    return background.result(lost_run_job)


def test_search_survives_losing_a_worker_node(lost_run):
    seen, _, summary, _ = lost_run
    assert seen["removed"] and not seen["doomed_alive"] and seen["recovered"] >= 1
    keys = [(r["target"], r["budget_ms"], r["method"]) for r in summary["results"]]
    assert len(keys) == len(set(keys)) == 6 and {m for _, _, m in keys} == {"proxyless", ASHA}
    assert sorted(t for t, _, m in keys if m == "proxyless") == ["ort-cpu-1t", "ort-cpu-1t", "ort-cpu-1t-b16"]
    # the search that lost its node went on from its epoch-0 checkpoint: epochs 1 and 2, never epoch 0 again
    assert seen["victim_after_loss"] == [[1, 0], [2, 0]]


def test_resume_after_driver_loss_keeps_finished_trials_and_mlflow_runs(lost_run):
    _, searched, summary, run_dir = lost_run
    assert len(searched["search"]) == 3 and len(searched["asha"]) >= 3
    assert {phase: last_results(run_dir, phase) for phase in searched} == searched  # finished searches were not rerun
    assert (run_dir / "results.parquet").is_file() and not (run_dir / "FAILED").exists()
    client = MlflowClient(summary["mlflow_uri"])
    runs = client.search_runs([client.get_experiment_by_name("raynas").experiment_id])
    parents = [r for r in runs if "mlflow.parentRunId" not in r.data.tags]
    children = [r.data.tags["raynas.scenario"] for r in runs if "mlflow.parentRunId" in r.data.tags]
    assert len(parents) == 1 and len(children) == len(set(children)) == 6
    assert all(r.info.status == "FINISHED" for r in runs)


def test_each_target_was_profiled_on_its_labelled_node_and_unlabelled_targets_are_refused(lost_run):
    seen, _, summary, run_dir = lost_run
    for target, node in seen["nodes"].items():
        assert LatencyTable.load(run_dir / "luts" / f"{target}.parquet").metadata["ray_node_id"] == node
    assert "raynas_target:executorch-xnnpack-1t" in summary["refused"]


def _kill_group(pid: int) -> None:
    """Whatever the killed driver left running in its process group (Ray's agents) goes too."""
    try:
        os.killpg(pid, signal.SIGKILL)
    except ProcessLookupError:
        pass
