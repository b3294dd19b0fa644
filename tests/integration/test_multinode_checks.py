"""Multi-node checks in a simulated cluster: a node without the dataset is named before training,
and OFA replicas reserve real CPUs, so they never land on a head that offers none.

Runs in a subprocess: a ``ray.cluster_utils.Cluster`` cannot share a process with the session Ray.
"""

from __future__ import annotations

import textwrap

import pytest

from tests.scripts import run_json_script

pytestmark = [pytest.mark.integration, pytest.mark.faults]

SCRIPT = textwrap.dedent(
    """
    import json, os, sys, ray
    from ray.cluster_utils import Cluster
    from raynas.data.datasets import DataConfig
    from raynas.orchestration.replicas import start_replicas
    from raynas.orchestration.runtime import ClusterError, check_data_root, connect
    from raynas.space.macro import get_space
    from raynas.supernet.elastic import ElasticSupernet
    from raynas.weights import state_to_numpy

    @ray.remote(num_cpus=0, max_retries=0)
    def probe(path):
        # each simulated node has its own "disk": a node labelled without_data lacks the dataset
        node = ray.get_runtime_context().get_node_id()
        labels = next(n["Resources"] for n in ray.nodes() if n["NodeID"] == node)
        return os.path.isdir(path) and "without_data" not in labels

    cluster = Cluster(initialize_head=True, head_node_args={"num_cpus": 0, "include_dashboard": False})
    with_data = cluster.add_node(num_cpus=1)
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
        net = ElasticSupernet(get_space("mnist-ofa"), 10, 2)
        replicas, _ = start_replicas(state_to_numpy(net), 2, "mnist-ofa", 2, (28,), DataConfig(limit=64, batch_size=16), 1, 1, 0)
        out["replica_nodes"] = ray.get([r.__ray_call__.remote(lambda self: ray.get_runtime_context().get_node_id()) for r in replicas])
        print(json.dumps(out))
    finally:
        ray.shutdown()
        cluster.shutdown()
    """
)


def test_a_node_without_the_dataset_is_named_and_replicas_avoid_a_cpu_less_head(tmp_path):
    out = run_json_script(SCRIPT, str(tmp_path), timeout=300)
    assert "config field data.root" in out["refused"] and "missing on 1 of 2 nodes" in out["refused"] and out["without"][:8] in out["refused"]
    assert out["replica_nodes"] and out["head"] not in out["replica_nodes"]
