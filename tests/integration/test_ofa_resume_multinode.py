"""OFA phase checkpoints travel to the driver: after the node that trained is gone, a resumed run
finds every phase in the run directory and trains nothing again.

Runs in a subprocess: a ``ray.cluster_utils.Cluster`` cannot share a process with the session Ray.
"""

from __future__ import annotations

import textwrap

import pytest

from tests.scripts import run_json_script

pytestmark = [pytest.mark.integration, pytest.mark.faults]

SCRIPT = textwrap.dedent(
    """
    import json, sys
    from pathlib import Path
    import numpy as np, ray
    from ray.cluster_utils import Cluster
    from raynas.data.datasets import DataConfig
    from raynas.orchestration.ofa import run_elastic_training, train_elastic_supernet
    from raynas.orchestration.runtime import connect
    from raynas.supernet.progressive import ShrinkConfig

    directory = Path(sys.argv[1]) / "supernet" / "ofa-s0"
    data, shrink = DataConfig(limit=64, batch_size=16), ShrinkConfig(largest_epochs=1, kernel_epochs=1, depth_epochs=1, width_epochs=1)
    cluster = Cluster(initialize_head=True, head_node_args={"num_cpus": 1, "include_dashboard": False})
    worker = cluster.add_node(num_cpus=2)
    cluster.wait_for_nodes()
    try:
        connect(cluster.address, None, [])
        task = train_elastic_supernet.options(num_cpus=2, max_retries=0)  # only a 2-CPU worker can run it
        first, state = run_elastic_training(task, directory, "mnist-ofa", data, shrink, 0, 2)
        files = sorted(p.name for p in directory.iterdir())
        cluster.remove_node(worker)
        cluster.add_node(num_cpus=2)
        cluster.wait_for_nodes()
        again, state_again = run_elastic_training(task, directory, "mnist-ofa", data, shrink, 0, 2)
        same = all(np.array_equal(state[k], state_again[k]) for k in state)
        print(json.dumps({"files": files, "first": first, "again": again, "same": same}))
    finally:
        ray.shutdown()
        cluster.shutdown()
    """
)


def test_resume_finds_every_phase_after_the_training_node_is_gone(tmp_path):
    out = run_json_script(SCRIPT, str(tmp_path), timeout=400)
    phases = ("largest", "kernel", "depth", "width")
    assert out["files"] == sorted([f"{n}-{p}.pt" for n, p in enumerate(phases)] + [f"{n}-{p}.loader.pt" for n, p in enumerate(phases)])
    assert all(f"{p}_loss" in out["first"] for p in phases)
    assert all(out["again"].get(f"{p}_resumed") == 1.0 for p in phases) and out["same"]
