"""Multi-node checks on one simulated cluster (a CPU-less head, a 2-CPU worker, a 1-CPU node without
the dataset): a node without the dataset is named before training; OFA's phase checkpoints travel to
the driver, so after the node that trained is gone a resumed run finds every phase and trains nothing
again; OFA replicas reserve real CPUs, so they never land on a head that offers none.

Runs in a subprocess: a ``ray.cluster_utils.Cluster`` cannot share a process with the session Ray.
"""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest

from tests import background
from tests.scripts import run_json_script

SCRIPT = textwrap.dedent(
    """
    import json, os, sys
    from pathlib import Path
    import numpy as np, ray
    from ray.cluster_utils import Cluster
    from raynas.data.datasets import DataConfig
    from raynas.execution.ofa import run_elastic_training, train_elastic_supernet
    from raynas.execution.replicas import start_replicas
    from raynas.execution.runtime import ClusterError, check_data_root, connect
    from raynas.search.ofa import OFAConfig
    from raynas.supernet.progressive import ShrinkConfig

    @ray.remote(num_cpus=0, max_retries=0)
    def probe(path):
        # each simulated node has its own "disk": a node labelled without_data lacks the dataset
        node = ray.get_runtime_context().get_node_id()
        labels = next(n["Resources"] for n in ray.nodes() if n["NodeID"] == node)
        return os.path.isdir(path) and "without_data" not in labels

    directory = Path(sys.argv[1]) / "supernet" / "ofa-s0"
    data = DataConfig(limit=64, eval_limit=64, batch_size=16)
    shrink = ShrinkConfig(largest_epochs=1, kernel_epochs=1, depth_epochs=1, width_epochs=1)
    cluster = Cluster(initialize_head=True, head_node_args={"num_cpus": 0, "include_dashboard": False})
    worker = cluster.add_node(num_cpus=2)
    without = cluster.add_node(num_cpus=1, resources={"without_data": 1})
    cluster.wait_for_nodes()
    try:
        connect(cluster.address, None, [])
        out = {"head": cluster.head_node.node_id, "without": without.node_id}
        try:
            check_data_root(sys.argv[1], probe=probe)
            out["refused"] = ""
        except ClusterError as exc:
            out["refused"] = str(exc)
        check_data_root(sys.argv[1])  # the real probe: the simulated nodes share this machine's disk
        task = train_elastic_supernet.options(num_cpus=2, max_retries=0)  # only the 2-CPU worker can run it
        out["first"], state = run_elastic_training(task, directory, space="mnist-ofa", data=data, shrink=shrink, seed=0, threads=2)
        out["files"] = sorted(p.name for p in directory.iterdir())
        cluster.remove_node(worker)
        cluster.add_node(num_cpus=2)
        cluster.wait_for_nodes()
        out["again"], state_again = run_elastic_training(task, directory, space="mnist-ofa", data=data, shrink=shrink, seed=0, threads=2)
        out["same"] = all(np.array_equal(state[k], state_again[k]) for k in state)
        ofa = OFAConfig(shrink=shrink, replicas=2, calibration_batches=1, eval_batches=1)
        replicas, _ = start_replicas(state, "mnist-ofa", ofa, data=data, seed=0)
        out["replica_nodes"] = ray.get([r.__ray_call__.remote(lambda self: ray.get_runtime_context().get_node_id()) for r in replicas])
        print(json.dumps(out))
    finally:
        ray.shutdown()
        cluster.shutdown()
    """
)


def cluster_job(root: Path) -> dict:
    return run_json_script(SCRIPT, str(root), timeout=400)


pytestmark = [pytest.mark.integration, pytest.mark.faults, pytest.mark.background.with_args(cluster_job)]


@pytest.fixture(scope="module")
def cluster_run() -> dict:
    return background.result(cluster_job)


def test_a_node_without_the_dataset_is_named_before_training(cluster_run):
    out = cluster_run
    assert (
        "config field data.root" in out["refused"] and "missing on 1 of 2 nodes" in out["refused"] and out["without"][:8] in out["refused"]
    )


def test_resume_finds_every_ofa_phase_after_the_training_node_is_gone(cluster_run):
    out, phases = cluster_run, ("largest", "kernel", "depth", "width")
    assert out["files"] == sorted([f"{n}-{p}.pt" for n, p in enumerate(phases)] + [f"{n}-{p}.loader.pt" for n, p in enumerate(phases)])
    assert all(f"{p}_loss" in out["first"] for p in phases)
    assert all(out["again"].get(f"{p}_resumed") == 1.0 for p in phases) and out["same"]


def test_replicas_avoid_a_cpu_less_head(cluster_run):
    assert cluster_run["replica_nodes"] and cluster_run["head"] not in cluster_run["replica_nodes"]
