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
from raynas.orchestration.runtime import worker_compute
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
        min_depth: int,
        resolutions: tuple[int, ...],
        data: DataConfig,
        calibration_batches: int,
        eval_batches: int,
        seed: int,
        threads: int = 1,
        compute_cfg: ComputeConfig = ComputeConfig(),
    ) -> None:
        torch.set_num_threads(threads)
        self.compute = worker_compute(compute_cfg)
        splits = load_splits(data)
        net = ElasticSupernet(get_space(space), splits.num_classes, min_depth, resolutions)
        load_numpy_state(net, ray.get(weights[0]))
        train, val, _ = splits.loaders(data.batch_size, seed, self.compute.device)
        self.scorer = SubnetScorer(self.compute.module(net), train, val, calibration_batches, eval_batches, self.compute)

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
    state: dict,
    count: int,
    space: str,
    min_depth: int,
    resolutions: tuple[int, ...],
    data: DataConfig,
    calibration_batches: int,
    eval_batches: int,
    seed: int,
    cpus: float = 0.5,
    gpus: float = 0,
    compute_cfg: ComputeConfig = ComputeConfig(),
) -> tuple[list, ray.ObjectRef]:
    """Put the weights once (the caller owns them) and start ``count`` replicas reading them (on a GPU share each when ``gpus``)."""
    ref = ray.put(state)
    replicas = [
        SupernetReplica.options(num_cpus=cpus, num_gpus=gpus).remote(
            [ref], space, min_depth, resolutions, data, calibration_batches, eval_batches, seed, compute_cfg=compute_cfg
        )
        for _ in range(count)
    ]
    return replicas, ref
