"""Pooled paired comparisons that can see a small difference, and what it takes to see one.

Per (target, budget) cell a sweep has a few seeds, each a pair (NAS, random) sharing its seed; one
cell's paired t-test has almost no power. ``pooled_paired`` puts every pair of every cell in one
estimate: the mean paired difference, with a 95 % interval from a bootstrap that resamples whole
cells (pairs in a cell share a target and a budget, so they are not independent of each other),
the spread of the differences, and a paired t-test's power at that spread: how likely a true
``effect`` is to be detected with these pairs, and how many pairs 80 % power needs.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Hashable, Mapping, Sequence

import numpy as np

POWER_GOAL = 0.8
ALPHA = 0.05


@dataclass(frozen=True)
class PooledEstimate:
    """The mean of every paired difference (first minus second method), pooled over cells."""

    mean: float
    ci95: tuple[float, float]  # cell bootstrap, percentile interval
    pairs: int
    cells: int
    sd: float  # standard deviation of the paired differences
    effect: float  # the difference the power figures are for
    power: float  # of a two-sided paired t-test at ALPHA with these pairs, for ``effect`` at ``sd``
    pairs_for_power: int | None  # pairs a paired t-test needs for POWER_GOAL (None: sd is 0 or effect is 0)

    def to_dict(self) -> dict:
        return {
            "mean": round(self.mean, 4), "ci95": [round(v, 4) for v in self.ci95], "pairs": self.pairs, "cells": self.cells,
            "sd": round(self.sd, 4), "effect": self.effect, "power": round(self.power, 3), "pairs_for_80_power": self.pairs_for_power,
        }  # fmt: skip


def pooled_paired(cells: Mapping[Hashable, Sequence[float]], *, effect: float, resamples: int = 10_000, seed: int = 0) -> PooledEstimate:
    """Pool the paired differences of every cell (cells without pairs are left out)."""
    groups = [np.asarray(v, dtype=float) for v in cells.values() if len(v)]
    if not groups:
        raise ValueError("no paired difference to pool: every cell is empty")
    every = np.concatenate(groups)
    sd = float(every.std(ddof=1)) if len(every) > 1 else 0.0
    return PooledEstimate(
        mean=float(every.mean()),
        ci95=cell_bootstrap(groups, resamples=resamples, seed=seed),
        pairs=len(every),
        cells=len(groups),
        sd=sd,
        effect=effect,
        power=paired_power(len(every), effect=effect, sd=sd),
        pairs_for_power=pairs_needed(effect=effect, sd=sd),
    )


def cell_bootstrap(groups: list[np.ndarray], *, resamples: int, seed: int) -> tuple[float, float]:
    """95 % percentile interval of the pooled mean when whole cells are drawn with replacement."""
    sums, counts = np.array([g.sum() for g in groups]), np.array([len(g) for g in groups])
    draws = np.random.default_rng(seed).integers(0, len(groups), size=(resamples, len(groups)))
    means = sums[draws].sum(axis=1) / counts[draws].sum(axis=1)
    low, high = np.quantile(means, [0.025, 0.975])
    return float(low), float(high)


def paired_power(pairs: int, *, effect: float, sd: float) -> float:
    """Power of a two-sided paired t-test at ALPHA to detect a true mean difference ``effect``
    (noncentral t; 1.0 when the differences have no spread and the effect is not zero)."""
    from scipy import stats  # ~1 s to import: only where statistics are computed

    if pairs < 2:
        return 0.0
    if sd == 0:
        return 1.0 if effect else ALPHA
    df, shift = pairs - 1, abs(effect) / sd * math.sqrt(pairs)
    critical = stats.t.ppf(1 - ALPHA / 2, df)
    return float(stats.nct.sf(critical, df, shift) + stats.nct.cdf(-critical, df, shift))


def pairs_needed(*, effect: float, sd: float, goal: float = POWER_GOAL, most: int = 100_000) -> int | None:
    """The fewest pairs whose paired t-test reaches ``goal`` power for ``effect`` at ``sd``."""
    if sd == 0 or effect == 0:
        return None
    low, high = 2, 2
    while paired_power(high, effect=effect, sd=sd) < goal:
        if high >= most:
            return None
        low, high = high, min(high * 2, most)
    while low < high:
        middle = (low + high) // 2
        low, high = (middle + 1, high) if paired_power(middle, effect=effect, sd=sd) < goal else (low, middle)
    return high


@dataclass(frozen=True)
class VarianceComponents:
    """How a score's spread splits over a groups x replicates table whose replicates are crossed with
    the groups (architectures x seeds, where a seed fixes the data order for every architecture)."""

    between_sd: float  # of the groups' true means
    replicate_sd: float  # of a replicate's effect shared by every group (a seed's lucky data order)
    residual_sd: float  # of what varies with the pair: the noise that reorders groups within one replicate

    @property
    def between_share(self) -> float:
        """The groups' share of what decides a ranking within one replicate (groups plus residual)."""
        total = self.between_sd**2 + self.residual_sd**2
        return self.between_sd**2 / total if total > 0 else 0.0


def variance_components(runs: np.ndarray) -> VarianceComponents:
    """Two-way random effects without replication on a groups x replicates array: each component is
    what its mean square holds beyond the residual's, over the cells per level (0 when it holds no
    more). A groups' variance below the residual's says picking the best group is mostly luck."""
    runs = np.asarray(runs, dtype=float)
    if runs.ndim != 2 or runs.shape[0] < 2 or runs.shape[1] < 2:
        raise ValueError(f"variance components need at least 2 groups x 2 replicates, got shape {runs.shape}")
    groups, replicates = runs.shape
    rows, cols = runs.mean(axis=1, keepdims=True), runs.mean(axis=0, keepdims=True)
    residual = float(((runs - rows - cols + runs.mean()) ** 2).sum()) / ((groups - 1) * (replicates - 1))
    between = max(0.0, (replicates * float(rows.var(ddof=1)) - residual) / replicates)
    replicate = max(0.0, (groups * float(cols.var(ddof=1)) - residual) / groups)
    return VarianceComponents(math.sqrt(between), math.sqrt(replicate), math.sqrt(residual))
