"""Once-for-All's settings and its accuracy-predictor step, free of Ray: which elastic resolutions a
space has, and fitting the predictor on evaluations from any pool (replicas or a local scorer)."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from raynas.search.evolution import EvolutionConfig, SubnetGenes
from raynas.search.predictor import AccuracyPredictor, ArchEncoder
from raynas.space.macro import MacroConfig, get_space
from raynas.supernet.progressive import ShrinkConfig
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


def collect_and_fit_predictor(pool, space: str, cfg: OFAConfig, *, seed: int) -> tuple[AccuracyPredictor, dict, list, list[float]]:
    """Evaluate ``predictor_samples`` uniformly random subnets with ``pool.evaluate`` (the replicas, or a
    local ``SubnetScorer``) and fit the predictor."""
    macro = get_space(space)
    res = resolutions(macro, cfg.shrink)
    genes, rng = SubnetGenes(macro, cfg.shrink.min_depth, res), np.random.default_rng(seed)
    archs = list({genes.architecture(genes.random(rng)): None for _ in range(cfg.predictor_samples)})
    accuracies = pool.evaluate(archs)
    predictor = AccuracyPredictor(ArchEncoder.for_space(macro, res))
    report = predictor.fit(archs, accuracies, seed=seed)
    return predictor, report, archs, accuracies


def predictor_payload(predictor: AccuracyPredictor) -> dict:
    """The predictor as plain data for Tune trials (encoder fields and numpy weights)."""
    return {"encoder": dict(predictor.encoder.__dict__), "state": state_to_numpy(predictor)}
