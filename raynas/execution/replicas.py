"""Shared-weight replicas of a trained elastic supernet, serving subnet evaluations to many searches.

The driver ``ray.put``s the weights once (numpy: zero-copy on a node) and owns them; every
replica reads them from the object store when it starts and again when Ray restarts it. Calls in
flight when a replica dies are retried by Ray on the restarted actor (``max_task_retries``).
"""

from __future__ import annotations

import os
import random
from typing import Sequence

import ray
import torch

from raynas.compute import ComputeConfig
from raynas.data.datasets import DataConfig, load_splits
from raynas.execution.runtime import worker_compute
from raynas.search.ofa import OFAConfig
from raynas.search.ofa import resolutions as elastic_resolutions
from raynas.space.architecture import Architecture
from raynas.space.macro import get_space
from raynas.supernet.elastic import ElasticSupernet, SubnetScorer
from raynas.weights import load_numpy_state


@ray.remote(max_restarts=3, max_task_retries=3)
class SupernetReplica:
    """One copy of the elastic supernet with a fixed calibration set and validation subset."""

    def __init__(
        self,
        weights: list[ray.ObjectRef],
        space: str,
        ofa: OFAConfig,
        *,
        data: DataConfig,
        seed: int,
        threads: int = 1,
        compute_cfg: ComputeConfig,
    ) -> None:
        """``ofa``: the section that sets the supernet's elastic depths and resolutions and the batches each evaluation uses."""
        torch.set_num_threads(threads)
        self.compute = worker_compute(compute_cfg)
        splits = load_splits(data)
        min_depth, resolutions = ofa.shrink.min_depth, elastic_resolutions(get_space(space), ofa.shrink)
        calibration_batches, eval_batches = ofa.calibration_batches, ofa.eval_batches
        net = ElasticSupernet(get_space(space), splits.num_classes, min_depth=min_depth, resolutions=resolutions)
        load_numpy_state(net, ray.get(weights[0]))
        train, val, _ = splits.loaders(data.batch_size, seed, self.compute.device)
        self.scorer = SubnetScorer(
            self.compute.module(net), train, val, calibration_batches=calibration_batches, eval_batches=eval_batches, compute=self.compute
        )

    def evaluate(self, archs: Sequence[dict]) -> list[float]:
        """Validation accuracy of each subnet after BatchNorm recalibration on the calibration set."""
        return self.scorer.evaluate([Architecture.from_dict(a) for a in archs])

    def stats(self) -> dict:
        """Process id (fault tests kill it) and evaluations served since this process started."""
        return {"pid": os.getpid(), "evaluated": self.scorer.evaluated}


class ReplicaPool:
    """Client side of the replicas: splits a request into chunks spread round-robin over replicas.

    Cheap to pickle (actor handles only), so every Tune trial gets its own client; each starts at
    a random replica, so concurrent trials spread their load.
    """

    def __init__(self, replicas: Sequence, chunk: int = 4) -> None:
        if not replicas:
            raise ValueError("a replica pool needs at least one replica")
        self.replicas, self.chunk = list(replicas), chunk
        self._next = random.randrange(len(self.replicas))

    def evaluate(self, archs: Sequence[Architecture]) -> list[float]:
        refs = []
        for i in range(0, len(archs), self.chunk):
            replica = self.replicas[self._next % len(self.replicas)]
            self._next += 1
            refs.append(replica.evaluate.remote([a.to_dict() for a in archs[i : i + self.chunk]]))
        return [acc for part in ray.get(refs) for acc in part]


def start_replicas(
    state: dict, space: str, ofa: OFAConfig, *, data: DataConfig, seed: int, compute_cfg: ComputeConfig = ComputeConfig()
) -> tuple[list, ray.ObjectRef]:
    """Put the weights once (the caller owns them) and start ``ofa.replicas`` replicas reading them, each
    holding ``ofa.replica_cpus`` CPUs and ``ofa.replica_gpus`` of a GPU."""
    ref = ray.put(state)
    start = SupernetReplica.options(num_cpus=ofa.replica_cpus, num_gpus=ofa.replica_gpus)
    replicas = [start.remote([ref], space, ofa, data=data, seed=seed, compute_cfg=compute_cfg) for _ in range(ofa.replicas)]
    return replicas, ref
