"""Shared-weight replicas on Ray: the same answers from every replica, and none lost when one dies."""

import os
import signal
import threading
import time

import numpy as np
import torch

from raynas.data.datasets import DataConfig
from raynas.execution.replicas import ReplicaPool, start_replicas
from raynas.search.ofa import OFAConfig
from raynas.space.macro import get_space
from raynas.supernet.elastic import ElasticSupernet
from raynas.supernet.progressive import ShrinkConfig
from raynas.weights import state_to_numpy

DATA = DataConfig(batch_size=32, limit=256)


def _subnets(n):
    net, gen = ElasticSupernet(get_space("mnist-ofa"), 10, min_depth=2, resolutions=(24, 28)), torch.Generator().manual_seed(1)
    archs = [net.sample(gen, kernels=(3, 5, 7), expansions=(3, 4, 6), depths=(2, 3, 4), resolutions=(24, 28)) for _ in range(n)]
    return state_to_numpy(net), archs


def test_replicas_agree_and_a_killed_replica_loses_no_evaluation(ray_session):
    ray = ray_session
    state, archs = _subnets(12)
    ofa = OFAConfig(shrink=ShrinkConfig(min_depth=2, resolutions=(24, 28)), replicas=2, calibration_batches=2, eval_batches=2)
    replicas, _ref = start_replicas(state, "mnist-ofa", ofa, data=DATA, seed=0)
    pool = ReplicaPool(replicas, chunk=2)
    clean = pool.evaluate(archs)
    assert len(clean) == 12 and all(0 <= a <= 1 for a in clean)
    per_replica = [ray.get(r.evaluate.remote([a.to_dict() for a in archs[:3]])) for r in replicas]
    assert per_replica[0] == per_replica[1] == clean[:3]

    victim = ray.get(replicas[0].stats.remote())["pid"]
    killer = threading.Timer(0.5, os.kill, (victim, signal.SIGKILL))
    killer.start()
    started = time.perf_counter()
    faulty = pool.evaluate(archs * 3)
    killer.join()
    stats = ray.get([r.stats.remote() for r in replicas])
    assert stats[0]["pid"] != victim, "the killed replica was not restarted"
    assert np.allclose(faulty, clean * 3), "an evaluation was lost or changed by the restart"
    assert time.perf_counter() - started < 120
