"""Once-for-All on Ray: train the elastic supernet once, serve it from replicas, fit the accuracy
predictor on replica evaluations (the strategy itself: ``raynas/strategies/ofa.py``)."""

from __future__ import annotations

import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import ray
import torch

from raynas.compute import ComputeConfig
from raynas.data.datasets import DataConfig, load_splits
from raynas.orchestration.runtime import worker_compute
from raynas.search.evolution import EvolutionConfig, SubnetGenes
from raynas.search.predictor import AccuracyPredictor, ArchEncoder
from raynas.space.macro import MacroConfig, get_space
from raynas.supernet.elastic import ElasticSupernet
from raynas.supernet.progressive import ShrinkConfig, progressive_phases
from raynas.weights import state_to_numpy


@dataclass(frozen=True)
class OFAConfig:
    """The Once-for-All strategy: supernet training, replicas, accuracy predictor, evolutionary search."""

    shrink: ShrinkConfig = field(default_factory=ShrinkConfig)
    evolution: EvolutionConfig = field(default_factory=EvolutionConfig)
    replicas: int = 2  # SupernetReplica actors serving shared-weight evaluations (per seed)
    replica_cpus: float = 0.5  # CPUs each replica reserves (> 0: counted by Ray, and never placed on a 0-CPU head node)
    replica_gpus: float = 0  # GPUs (fractions allowed) each replica reserves and evaluates on
    calibration_batches: int = 4  # training batches for BatchNorm recalibration per evaluation
    eval_batches: int = 4  # validation batches per evaluation
    predictor_samples: int = 150  # random subnets evaluated on the replicas to train the predictor
    finetune: bool = False  # train OFA and random-subnet finalists from their supernet weights instead of from scratch


def resolutions(macro: MacroConfig, cfg: ShrinkConfig) -> tuple[int, ...]:
    return tuple(sorted(cfg.resolutions or (macro.input_size,)))


def resolution_spaces(space: str, cfg: ShrinkConfig) -> list[str]:
    """Space names of every elastic resolution; each needs its own latency table."""
    macro = get_space(space)
    return [macro.at_resolution(r).name for r in resolutions(macro, cfg)]


@ray.remote
def train_elastic_supernet(
    space: str,
    data: DataConfig,
    cfg: ShrinkConfig,
    seed: int,
    threads: int,
    saved: dict[str, bytes],
    compute_cfg: ComputeConfig = ComputeConfig(),
):
    """Progressive shrinking in one task on its device, as a generator: after every phase it yields
    ``("files", {name: bytes})``, the phase's checkpoint files for the driver to keep (this node's
    disk may not outlive it), and last ``("done", stats, numpy weights)``. ``saved`` holds the files
    of phases already done (a resumed run), which are loaded instead of trained."""
    torch.set_num_threads(threads)
    torch.manual_seed(seed)
    compute = worker_compute(compute_cfg)
    splits = load_splits(data)
    train, _, _ = splits.loaders(data.batch_size, seed, compute.device)
    macro = get_space(space)
    net = compute.module(ElasticSupernet(macro, splits.num_classes, cfg.min_depth, resolutions(macro, cfg)))
    start, stats = time.perf_counter(), {}
    with tempfile.TemporaryDirectory(prefix="raynas-ofa-") as local:
        for name, content in saved.items():
            (Path(local) / name).write_bytes(content)
        for stats, written in progressive_phases(net, train, cfg, seed, local, compute=compute):
            if written:
                yield "files", {p.name: p.read_bytes() for p in written}
    yield "done", stats | {"train_seconds": time.perf_counter() - start, "num_classes": splits.num_classes}, state_to_numpy(net)


def run_elastic_training(
    task,
    directory: Path,
    space: str,
    data: DataConfig,
    cfg: ShrinkConfig,
    seed: int,
    threads: int,
    compute_cfg: ComputeConfig = ComputeConfig(),
) -> tuple[dict, dict]:
    """Drive ``train_elastic_supernet`` (``task``: it with its resources) from the driver: phase files
    it yields are written into ``directory`` (the run directory, which the driver can always reach),
    and those already there are sent along, so ``--resume`` continues from the last finished phase
    whichever node trained it. Returns the stats and the numpy weights."""
    directory.mkdir(parents=True, exist_ok=True)
    saved = {p.name: p.read_bytes() for p in sorted(directory.glob("*.pt"))}
    for ref in task.remote(space, data, cfg, seed, threads, saved, compute_cfg):
        kind, *payload = ray.get(ref)
        if kind == "files":
            for name, content in payload[0].items():
                tmp = directory / f".{name}.tmp"
                tmp.write_bytes(content)
                tmp.replace(directory / name)
        else:
            return payload[0], payload[1]
    raise RuntimeError("the supernet training task ended without its weights")


def collect_and_fit_predictor(pool, space: str, cfg: OFAConfig, seed: int) -> tuple[AccuracyPredictor, dict, list, list[float]]:
    """Evaluate ``predictor_samples`` uniformly random subnets with ``pool.evaluate`` (the replicas, or a
    local ``SubnetScorer``) and fit the predictor."""
    macro = get_space(space)
    res = resolutions(macro, cfg.shrink)
    genes, rng = SubnetGenes(macro, cfg.shrink.min_depth, res), np.random.default_rng(seed)
    archs = list({genes.architecture(genes.random(rng)): None for _ in range(cfg.predictor_samples)})
    accuracies = pool.evaluate(archs)
    predictor = AccuracyPredictor(ArchEncoder.for_space(macro, res))
    report = predictor.fit(archs, accuracies, seed)
    return predictor, report, archs, accuracies


def predictor_payload(predictor: AccuracyPredictor) -> dict:
    """The predictor as plain data for Tune trials (encoder fields and numpy weights)."""
    return {"encoder": dict(predictor.encoder.__dict__), "state": state_to_numpy(predictor)}
