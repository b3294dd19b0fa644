"""NSGA-II (Deb et al., 2002) through Optuna's sampler: one search over a device's whole latency range
for the accuracy-latency front, instead of one search per budget.

An ask/tell search like the others, except that it is told two objectives: ``tell(arch, (score,
latency_ms))``. Every budget then takes the best evaluated point within it (``pick_within``), so one
run of ``evaluations`` answers all of a device's budgets; its cost is that one run.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, ClassVar, Sequence

import numpy as np
import optuna

from raynas.search.optuna_study import OptunaAskTell


@dataclass
class NSGA2Search(OptunaAskTell):
    """Optuna's NSGA-II sampler over the decisions; objectives: maximise the score, minimise latency."""

    population: int = 20

    name: ClassVar[str] = "nsga2"

    def _study(self) -> optuna.Study:
        sampler = optuna.samplers.NSGAIISampler(population_size=self.population, seed=self.seed)
        return optuna.create_study(directions=["maximize", "minimize"], sampler=sampler)

    def tell(self, arch: Any, score: tuple[float, float]) -> None:  # type: ignore[override]
        """``score``: (the architecture's score, its latency in ms)."""
        values = [float(score[0]), float(score[1])]
        self.history.append((self.space.choices(arch), values))
        trial = self.waiting(arch)
        if trial is not None:
            self.study.tell(trial, values)

    @property
    def points(self) -> list[tuple[tuple[int, ...], float, float]]:
        """(choices, score, latency) of every told point."""
        return [(choices, values[0], values[1]) for choices, values in self.history]

    def _replayed(self, choices: tuple[int, ...], score: list[float]) -> optuna.trial.FrozenTrial:
        return optuna.trial.create_trial(params=self.params(choices), distributions=self.distributions(), values=list(score))


def pick_within(points: Sequence[tuple[Any, float, float]], budget_ms: float) -> Any | None:
    """The highest-scoring point within the budget (its first element); None when none fits."""
    fitting = [p for p in points if p[2] <= budget_ms]
    return max(fitting, key=lambda p: p[1])[0] if fitting else None


def pareto_mask(scores: np.ndarray, latencies: np.ndarray) -> np.ndarray:
    """Which points no other point beats in both score (higher) and latency (lower) at once."""
    order = np.lexsort((-scores, latencies))  # by latency, then by score, best first
    mask = np.zeros(len(scores), dtype=bool)
    best = -np.inf
    for i in order:
        if scores[i] > best:
            mask[i] = True
            best = scores[i]
    return mask


def hypervolume(scores: np.ndarray, latencies: np.ndarray, *, reference: tuple[float, float]) -> float:
    """Area dominated by the points and bounded by ``reference`` (the worst score, the largest latency)."""
    worst_score, max_latency = reference
    front = pareto_mask(scores, latencies)
    points = sorted(zip(latencies[front], scores[front]))
    area = 0.0
    for i, (latency, score) in enumerate(points):
        right = points[i + 1][0] if i + 1 < len(points) else max_latency
        area += max(0.0, right - latency) * max(0.0, score - worst_score)
    return area
