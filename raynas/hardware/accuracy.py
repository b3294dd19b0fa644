"""How well a latency table predicts whole networks: MAPE, share within +-10%, Kendall tau."""

from __future__ import annotations

import random
from dataclasses import dataclass

from raynas.space.architecture import Architecture
from raynas.space.macro import MacroConfig


@dataclass(frozen=True)
class PredictionAccuracy:
    n: int
    mape: float  # mean absolute percentage error, in percent
    within_10pct: float  # share of architectures predicted within +-10% of measured
    kendall_tau: float  # rank agreement of predicted and measured latency (tau-b)


def sample_architectures(macro: MacroConfig, n: int, seed: int) -> list[Architecture]:
    """``n`` distinct architectures drawn uniformly from the space."""
    rng, seen, archs = random.Random(seed), set(), []
    while len(archs) < min(n, macro.num_architectures()):
        arch = Architecture(macro.name, tuple(rng.choice(s.choices) for s in macro.layers()))
        if arch.arch_id not in seen:
            seen.add(arch.arch_id)
            archs.append(arch)
    return archs


def kendall_tau(a: list[float], b: list[float]) -> float:
    """Kendall's tau-b (ties in either list handled), O(n^2): fine for hundreds of points."""
    concordant = discordant = ties_a = ties_b = 0
    for i in range(len(a)):
        for j in range(i + 1, len(a)):
            da, db = a[i] - a[j], b[i] - b[j]
            if da == 0 and db == 0:
                continue
            if da == 0:
                ties_a += 1
            elif db == 0:
                ties_b += 1
            elif (da > 0) == (db > 0):
                concordant += 1
            else:
                discordant += 1
    denom = ((concordant + discordant + ties_a) * (concordant + discordant + ties_b)) ** 0.5
    return (concordant - discordant) / denom if denom else 0.0


def prediction_accuracy(predicted: list[float], measured: list[float]) -> PredictionAccuracy:
    errors = [abs(p - m) / m for p, m in zip(predicted, measured)]
    return PredictionAccuracy(
        n=len(errors),
        mape=100 * sum(errors) / len(errors),
        within_10pct=sum(e <= 0.10 for e in errors) / len(errors),
        kendall_tau=kendall_tau(predicted, measured),
    )
