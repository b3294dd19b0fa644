"""A worker node dies mid-search in a simulated three-node cluster; the search trial it ran resumes
on another node from its last epoch checkpoint, and the experiment finishes with exactly one result
per (target, budget, method).

Runs in a subprocess: a ``ray.cluster_utils.Cluster`` cannot share a process with the session Ray.
The node is removed from a Tune callback (the driver's main thread) as soon as Tune has registered
the first epoch checkpoint of a search trial running on it, so the loss always lands mid-search.
"""

from __future__ import annotations

import textwrap

import pytest

from tests.scripts import run_json_script

pytestmark = [pytest.mark.integration, pytest.mark.faults]

SCRIPT = textwrap.dedent(
    """
    import json, sys, ray
    from ray import tune
    from ray.cluster_utils import Cluster
    from raynas.config import parse_config
    from raynas.orchestration.pipeline import new_run_dir, run_experiment

    root = sys.argv[1]
    cluster = Cluster(initialize_head=True, head_node_args={"num_cpus": 1, "include_dashboard": False, "resources": {"raynas_target:cpu-1t": 100}})
    cluster.add_node(num_cpus=1, resources={"raynas_target:cpu-1t-b16": 100})
    doomed = cluster.add_node(num_cpus=1)
    cluster.wait_for_nodes()
    ray.init(address=cluster.address, log_to_driver=False)

    class LoseNode(tune.Callback):
        # Reaches the cluster through sys.modules: Tune pickles its callbacks, and a Cluster cannot be pickled.
        removed, recovered, victim, after = False, 0, None, []

        def on_trial_result(self, iteration, trials, trial, result, **info):
            if self.removed and trial.config["scenario"] == self.victim and "restored_step" in result:  # search results, not retraining
                self.after.append((result["epoch"], result["restored_step"]))

        def on_trial_save(self, iteration, trials, trial, **info):
            # once Tune holds a search trial's first epoch checkpoint, the node under it goes
            main, last = sys.modules["__main__"], trial.last_result
            if not self.removed and last.get("node_id") == main.doomed.node_id and last.get("epoch") == 0 and "restored_step" in last:
                main.cluster.remove_node(main.doomed)
                self.removed, self.victim = True, trial.config["scenario"]

        def on_trial_recover(self, iteration, trials, trial, **info):
            self.recovered += 1

    cfg = parse_config({
        "name": "node-loss", "run_root": root,
        "targets": [{"name": "cpu-1t", "budget_fractions": [0.3, 0.7]}, {"name": "cpu-1t-b16", "budget_fractions": [0.5]}],
        "data": {"limit": 128, "batch_size": 32},
        "search": {"warmup_epochs": 1, "search_epochs": 3, "eval_batches": 2},
        "retrain": {"epochs": 1},
        "ray": {"checkpoint_seconds": 0},  # every epoch saved: the loss lands right after the first
        "profile": {"warmup": 1, "repeats": 5, "calibration_archs": 1, "settle_seconds": 0},
        "evaluation": {"random_search": False, "hand_designed_widths": []},  # the NAS path alone: keeps the fault tests short
    })
    loss = LoseNode()
    try:
        summary = run_experiment(cfg, new_run_dir(cfg), log=lambda _: None, callbacks=[loss])
        alive = [n["NodeID"] for n in ray.nodes() if n["Alive"]]
        print(json.dumps({"results": summary["results"], "removed": loss.removed, "recovered": loss.recovered,
                          "doomed_alive": doomed.node_id in alive, "victim_after_loss": loss.after}))
    finally:
        ray.shutdown()
        cluster.shutdown()
    """
)


def test_search_survives_losing_a_worker_node(tmp_path):
    out = run_json_script(SCRIPT, str(tmp_path), timeout=600)
    assert out["removed"] and not out["doomed_alive"] and out["recovered"] >= 1
    keys = [(r["target"], r["budget_ms"], r["method"]) for r in out["results"]]
    assert len(keys) == len(set(keys)) == 3 and {m for _, _, m in keys} == {"proxyless"}
    assert sorted(t for t, _, _ in keys) == ["cpu-1t", "cpu-1t", "cpu-1t-b16"]
    # the search that lost its node went on from its epoch-0 checkpoint: epochs 1 and 2, never epoch 0 again
    assert out["victim_after_loss"] == [[1, 0], [2, 0]]
