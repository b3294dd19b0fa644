"""Data-parallel trials are refused up front when no set of nodes, alive or addable by the autoscaler,
can hold their workers at once; the refusal names the field."""

from __future__ import annotations

import pytest

from raynas.config import parse_config
from raynas.execution.data_parallel import check_workers, node_types, worker_capacity
from raynas.execution.runtime import ClusterError

pytestmark = pytest.mark.faults

BOOTSTRAP = """
available_node_types:
  head: {resources: {CPU: 0}, max_workers: 0}
  gpu_8x: {resources: {CPU: 96, GPU: 8}, max_workers: 2}
"""


def config(**ray):
    """A config of these workers whose global batch (816 = 48 x 17) splits over every count used here."""
    return parse_config({"name": "t", "targets": [{"name": "cpu-1t", "budget_fractions": [0.5]}], "data": {"batch_size": 816}, "ray": ray})


def test_worker_capacity_counts_whole_workers_per_node():
    nodes = [{"CPU": 96, "GPU": 8}, {"CPU": 3}, {"CPU": 8, "GPU": 1}]
    assert worker_capacity(nodes, cpus=8, gpus=1) == 9  # the 8-GPU node holds 8 (its CPUs allow 12), the CPU node none
    assert worker_capacity(nodes, cpus=1, gpus=0) == 107


def test_node_types_read_the_autoscalers_config(tmp_path):
    path = tmp_path / "bootstrap.yaml"
    path.write_text(BOOTSTRAP)
    assert node_types(str(path)) == [({"CPU": 0}, 0), ({"CPU": 96, "GPU": 8}, 2)]
    assert node_types(str(tmp_path / "absent.yaml")) == []  # a fixed cluster


def test_more_workers_than_the_cluster_holds_are_refused_naming_the_field(ray_session, tmp_path):
    absent = str(tmp_path / "none.yaml")
    check_workers(config(workers_per_trial=2), bootstrap=absent)  # the session's 2 CPUs hold two one-CPU workers
    with pytest.raises(ClusterError, match="config field ray.workers_per_trial: asks for 3 workers"):
        check_workers(config(workers_per_trial=3), bootstrap=absent)
    with pytest.raises(ClusterError, match="config field ray.workers_per_task"):
        check_workers(config(workers_per_task=4), bootstrap=absent)


def test_nodes_the_autoscaler_may_add_count(ray_session, tmp_path):
    path = tmp_path / "bootstrap.yaml"
    path.write_text(BOOTSTRAP)
    check_workers(config(workers_per_trial=16, gpus_per_trial=1, cpus_per_trial=8), bootstrap=str(path))  # two gpu_8x nodes
    with pytest.raises(ClusterError, match="and what its autoscaler may add can hold 16"):
        check_workers(config(workers_per_trial=17, gpus_per_trial=1, cpus_per_trial=8), bootstrap=str(path))
