"""Profiling runs on the node labelled with the target, in a simulated two-node cluster.

Runs in a subprocess: a ``ray.cluster_utils.Cluster`` cannot share a process with the session Ray.
"""

from __future__ import annotations

import textwrap

import pytest

from tests.scripts import run_json_script

pytestmark = pytest.mark.integration

SCRIPT = textwrap.dedent(
    """
    import json, ray
    from ray.cluster_utils import Cluster
    from raynas.config import ProfileConfig
    from raynas.orchestration.runtime import ClusterError, connect
    from raynas.orchestration.tasks import on_target, profile_target

    cluster = Cluster(initialize_head=True, head_node_args={"num_cpus": 1, "include_dashboard": False})
    worker = cluster.add_node(num_cpus=1, resources={"raynas_target:cpu-1t-b16": 10})
    cluster.wait_for_nodes()
    try:
        connect(cluster.address, None, ["cpu-1t-b16"])
        profile = ProfileConfig(warmup=1, repeats=2, calibration_archs=0, settle_seconds=0)
        table = ray.get(on_target(profile_target, "cpu-1t-b16").remote("cpu-1t-b16", "mnist-small", 10, profile, 0))
        try:
            connect(cluster.address, None, ["cpu-1t"])
            refused = ""
        except ClusterError as exc:
            refused = str(exc)
        print(json.dumps({"profiled_on": table.metadata["ray_node_id"], "worker": worker.node_id,
                          "head": cluster.head_node.node_id, "refused": refused}))
    finally:
        ray.shutdown()
        cluster.shutdown()
    """
)


def test_profiling_task_runs_on_the_labelled_node_and_unlabelled_targets_are_refused():
    out = run_json_script(SCRIPT, timeout=300)
    assert out["profiled_on"] == out["worker"] != out["head"]
    assert "raynas_target:cpu-1t" in out["refused"]
