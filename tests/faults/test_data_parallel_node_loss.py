"""A data-parallel search (``ray.workers_per_trial: 2``) loses the node of one of its Ray Train workers
mid-search: Ray Train restarts the worker group on the nodes left and the search resumes from rank 0's
last checkpoint, restored on every rank, and runs to its last epoch.

Runs in a subprocess (a ``ray.cluster_utils.Cluster`` cannot share a process with the session Ray):
a CPU-less head and three one-CPU nodes, so the group of two fits again after one node is gone. The
node goes as soon as Ray Train's controller has registered the first checkpoint (its snapshot file is
in the run's storage: a checkpoint uploaded but not yet registered is not restored)."""

from __future__ import annotations

import textwrap

import pytest

from tests import background
from tests.scripts import run_json_script

SCRIPT = textwrap.dedent(
    """
    import json, os, sys, threading, time, types
    import ray
    from ray.cluster_utils import Cluster
    from raynas.api import LocalProblem
    from raynas.config import parse_config
    from raynas.execution import data_parallel as dp
    from raynas.execution.trials import _search_worker

    root = sys.argv[1]
    cluster = Cluster(initialize_head=True, head_node_args={"num_cpus": 0, "include_dashboard": False})
    nodes = [cluster.add_node(num_cpus=1) for _ in range(3)]
    cluster.wait_for_nodes()
    ray.init(address=cluster.address, log_to_driver=False)
    EPOCHS = 8


    def build(job, shared, cfg):
        from raynas.data.datasets import load_splits
        from raynas.execution.runtime import worker_compute
        from raynas.hardware.lut import LatencyTable
        from raynas.space.macro import get_space
        from raynas.space.ops import SKIP
        from raynas.strategies.proxyless import ProxylessNAS

        compute, splits, macro = worker_compute(cfg.compute), load_splits(cfg.data), get_space(cfg.space)
        train, val, _ = splits.loaders(cfg.data.batch_size, job.seed, compute.device)
        entries = {(s.key, op): 0.01 * int(op[1]) * int(op[3]) for s in macro.layers() for op in s.choices if op != SKIP}
        lut = LatencyTable(target="flat", space=macro.name, space_hash=macro.space_hash(), batch_size=1, entries=entries,
                           fixed={"stem": 0.05, "head": 0.05, "call": 0.0})
        problem = LocalProblem(cfg.space, lut, 0.8 * lut.latency_range(macro)[1], train=train, val=val,
                               num_classes=splits.num_classes, config=cfg.search, compute=compute)
        return ProxylessNAS().local_search(problem, job.seed)


    cfg = parse_config({
        "name": "dp-loss", "run_root": root,
        "targets": [{"name": "phone", "budget_fractions": [0.5],
                     "estimate": {"device": {"name": "phone-ish", "peak_gflops": 20.0, "bandwidth_gbs": 8.0}}}],
        "data": {"limit": 256, "eval_limit": 128, "batch_size": 32},
        "search": {"warmup_epochs": 1, "search_epochs": EPOCHS, "eval_batches": 1, "final_top_k": 0},
        "ray": {"workers_per_trial": 2, "checkpoint_seconds": 0, "max_failures": 2},
    })
    config = {"job": types.SimpleNamespace(seed=0), "build": build, "shared": None, "cfg": cfg, "storage": root}
    out = {}
    thread = threading.Thread(target=lambda: out.update(result=dp.fit(_search_worker, config, cfg=cfg, name="lost", in_trial=False)))
    thread.start()
    deadline, removed = time.time() + 300, None
    while removed is None and thread.is_alive() and time.time() < deadline:
        if os.path.exists(os.path.join(root, "lost", "checkpoint_manager_snapshot.json")):  # the controller holds a checkpoint
            # a node whose one CPU is taken holds a Train worker (the head has none, the spare node is idle)
            free = ray._private.state.available_resources_per_node()
            hosts = {n.node_id for n in nodes if free.get(n.node_id, {}).get("CPU", 0) < 1}
            removed = next((n for n in nodes if n.node_id in hosts), None)
            if removed is not None:
                cluster.remove_node(removed)
        time.sleep(0.2)
    thread.join(timeout=400)
    metrics = dict(out["result"].metrics) if "result" in out else {}
    print(json.dumps({"removed": removed is not None, "metrics": {k: v for k, v in metrics.items() if isinstance(v, (int, float))},
                      "error": str(out["result"].error) if "result" in out and out["result"].error else None}))
    ray.shutdown()
    cluster.shutdown()
    """
)


def lost_worker_job(folder) -> dict:
    return run_json_script(SCRIPT, str(folder), timeout=900)


pytestmark = [pytest.mark.faults, pytest.mark.integration, pytest.mark.background.with_args(lost_worker_job)]


def test_data_parallel_search_resumes_from_its_last_checkpoint_after_a_worker_node_is_lost():
    run = background.result(lost_worker_job)
    assert run["removed"] and run["error"] is None
    metrics = run["metrics"]
    assert metrics["workers"] == 2 and metrics["epoch"] == 7  # every epoch done, the last one reported
    assert 0 <= metrics["restored_step"] < 7  # the restarted group went on from a checkpoint, not from the start
