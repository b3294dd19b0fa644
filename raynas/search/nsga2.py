"""NSGA-II (Deb et al., 2002) through Optuna's sampler: one search over a device's whole latency range
for the accuracy-latency front, instead of one search per budget.

An ask/tell search like the others, except that it is told two objectives: ``tell(arch, (score,
latency_ms))``. Every budget then takes the best evaluated point within it (``pick_within``), so one
run of ``evaluations`` answers all of a device's budgets; its cost is that one run. Resume replays
the history into a fresh study (``resume = "history"``), as TPE's does.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, ClassVar, Sequence

import numpy as np
import optuna

from raynas.search.blackbox import _Base

optuna.logging.set_verbosity(optuna.logging.WARNING)


@dataclass
class NSGA2Search(_Base):
    """Optuna's NSGA-II sampler over the decisions; objectives: maximise the score, minimise latency."""

    population: int = 20

    name: ClassVar[str] = "nsga2"
    resume: ClassVar[str] = "history"

    def __post_init__(self) -> None:
        super().__post_init__()
        self.study = self._study()
        self.pending: dict[tuple[int, ...], list[optuna.trial.Trial]] = {}
        self.points: list[tuple[tuple[int, ...], float, float]] = []  # (choices, score, latency) of every told point

    def _study(self) -> optuna.Study:
        sampler = optuna.samplers.NSGAIISampler(population_size=self.population, seed=self.seed)
        return optuna.create_study(directions=["maximize", "minimize"], sampler=sampler)

    def _distributions(self) -> dict[str, optuna.distributions.CategoricalDistribution]:
        return {f"d{i}": optuna.distributions.CategoricalDistribution(list(range(n))) for i, n in enumerate(self.space.options)}

    def ask(self) -> Any:
        trial = self.study.ask(self._distributions())
        choices = tuple(int(trial.params[f"d{i}"]) for i in range(len(self.space.options)))
        self.pending.setdefault(choices, []).append(trial)
        return self.space.from_choices(choices)

    def tell(self, arch: Any, score: tuple[float, float]) -> None:  # type: ignore[override]
        """``score``: (the architecture's score, its latency in ms)."""
        choices = self.space.choices(arch)
        self.history.append((choices, [float(score[0]), float(score[1])]))
        self.points.append((choices, float(score[0]), float(score[1])))
        queued = self.pending.get(choices)
        if queued:
            self.study.tell(queued.pop(0), [float(score[0]), float(score[1])])

    def _load(self, state: dict[str, Any]) -> None:
        self.study, self.pending = self._study(), {}
        self.points = [(choices, values[0], values[1]) for choices, values in self.history]
        distributions = self._distributions()
        for choices, values in self.history:
            params = {f"d{i}": c for i, c in enumerate(choices)}
            self.study.add_trial(optuna.trial.create_trial(params=params, distributions=distributions, values=list(values)))


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
