"""Once-for-All's settings and its accuracy-predictor step, free of Ray: which elastic resolutions a
space has, and fitting the predictor on evaluations from any pool (replicas or a local scorer)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable, Sequence, TypeVar

import numpy as np

from raynas.search.evolution import EvolutionConfig, SubnetGenes
from raynas.search.predictor import AccuracyPredictor, ArchEncoder
from raynas.space.architecture import Architecture
from raynas.space.macro import MacroConfig, get_space
from raynas.supernet.progressive import ShrinkConfig
from raynas.weights import state_to_numpy

T = TypeVar("T")


@dataclass(frozen=True)
class OFAConfig:
    """The Once-for-All strategy: supernet training, replicas, accuracy predictor, evolutionary search."""

    shrink: ShrinkConfig = field(default_factory=ShrinkConfig)  # progressive shrinking of the elastic supernet
    evolution: EvolutionConfig = field(default_factory=EvolutionConfig)  # the per-scenario evolutionary search
    replicas: int = 2  # SupernetReplica actors serving shared-weight evaluations (per seed)
    replica_cpus: float = 0.5  # CPUs each replica reserves (> 0: counted by Ray, and never placed on a 0-CPU head node)
    replica_gpus: float = 0  # GPUs (fractions allowed) each replica reserves and evaluates on
    calibration_batches: int = 4  # training batches for BatchNorm recalibration per evaluation
    eval_batches: int = 4  # validation batches per evaluation
    predictor_samples: int = 150  # random subnets evaluated on the replicas to train the predictor
    predictor_sampling: str = "stratified"  # stratified: spread evenly over latency ; uniform: uniform over the space
    finetune: bool = False  # train OFA and random-subnet finalists from their supernet weights instead of from scratch


def resolutions(macro: MacroConfig, cfg: ShrinkConfig) -> tuple[int, ...]:
    return tuple(sorted(cfg.resolutions or (macro.input_size,)))


def resolution_spaces(space: str, cfg: ShrinkConfig) -> list[str]:
    """Space names of every elastic resolution; each needs its own latency table."""
    macro = get_space(space)
    return [macro.at_resolution(r).name for r in resolutions(macro, cfg)]


PREDICTOR_SAMPLINGS = ("stratified", "uniform")
STRATIFY_POOL = 20  # uniform draws per predictor sample that stratification chooses from


def collect_and_fit_predictor(
    pool, space: str, cfg: OFAConfig, *, seed: int, latencies: Sequence[Callable[[Architecture], float]] = ()
) -> tuple[AccuracyPredictor, dict, list, list[float]]:
    """Evaluate ``predictor_samples`` random subnets with ``pool.evaluate`` (the replicas, or a local
    ``SubnetScorer``) and fit the predictor. ``stratified`` (given the targets' ``latencies``) spreads
    them evenly over latency (each target's relative to its median, averaged over targets), so the
    fast and slow ends that budgets search are as well covered as the crowded middle that uniform
    draws favour."""
    macro = get_space(space)
    res = resolutions(macro, cfg.shrink)
    genes, rng = SubnetGenes(macro, cfg.shrink.min_depth, res), np.random.default_rng(seed)
    stratify = cfg.predictor_sampling == "stratified" and len(latencies) > 0
    draws = cfg.predictor_samples * (STRATIFY_POOL if stratify else 1)
    archs = list({genes.architecture(genes.random(rng)): None for _ in range(draws)})
    if stratify:
        relative = [np.asarray([lat(a) for a in archs]) for lat in latencies]
        cost = np.mean([r / np.median(r) for r in relative], axis=0)
        archs = stratified(archs, cost, cfg.predictor_samples, rng=rng)
    accuracies = pool.evaluate(archs)
    predictor = AccuracyPredictor(ArchEncoder.for_space(macro, res))
    report = predictor.fit(archs, accuracies, seed=seed)
    return predictor, report, archs, accuracies


def stratified(items: Sequence[T], cost: Sequence[float], n: int, *, rng: np.random.Generator) -> list[T]:
    """``n`` of ``items`` spread over ``cost``: ``n`` equal-width bins between the cheapest and the
    dearest, one item drawn from each bin in turn (empty bins skipped) until ``n`` are taken."""
    cost = np.asarray(cost, dtype=float)
    which = np.digitize(cost, np.linspace(cost.min(), cost.max(), n + 1)[1:-1])
    bins = [list(rng.permutation(np.flatnonzero(which == b))) for b in range(n)]
    picked: list[int] = []
    while len(picked) < min(n, len(items)):
        for members in bins:
            if members and len(picked) < n:
                picked.append(int(members.pop()))
    return [items[i] for i in picked]


def predictor_payload(predictor: AccuracyPredictor) -> dict:
    """The predictor as plain data for Tune trials (encoder fields and numpy weights)."""
    return {"encoder": dict(predictor.encoder.__dict__), "state": state_to_numpy(predictor)}
