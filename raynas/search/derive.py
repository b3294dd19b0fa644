"""Derivation under a latency budget: the most probable architecture whose predicted latency fits."""

from __future__ import annotations

import math
from typing import Sequence

import numpy as np


def budget_window(costs: Sequence[Sequence[float]], fixed_ms: float, budget_ms: float, *, floor: float) -> tuple[float, float]:
    """Latency window a search under ``budget_ms`` must land in: [floor * B, B] when B is below the
    slowest network (so a search cannot undershoot wildly), else [fastest, B]; never below the fastest."""
    fastest, slowest = fixed_ms + sum(map(min, costs)), fixed_ms + sum(map(max, costs))
    low = floor * budget_ms if budget_ms < slowest else 0.0
    return max(low, fastest), budget_ms


def most_probable_within(log_probs: Sequence[Sequence[float]], costs: Sequence[Sequence[float]], limit: float) -> list[int] | None:
    """Choice per layer maximizing sum(log p) subject to sum(cost) <= limit; None if nothing fits.

    Exact: a Pareto frontier over (cost, score) of partial paths. A partial path that costs more
    and scores no better than another can never complete to a better answer, because every
    completion adds the same cost and score to both, so pruning it is safe.
    """
    frontier: list[tuple[float, float, tuple[int, ...]]] = [(0.0, 0.0, ())]
    for lp, cost in zip(log_probs, costs):
        grown = [(c + cost[i], s + lp[i], ch + (i,)) for c, s, ch in frontier for i in range(len(cost)) if c + cost[i] <= limit]
        grown.sort(key=lambda t: (t[0], -t[1]))
        frontier, best = [], -math.inf
        for entry in grown:
            if entry[1] > best:
                frontier.append(entry)
                best = entry[1]
        if not frontier:
            return None
    return list(max(frontier, key=lambda t: t[1])[2])


def most_probable_in_window(
    log_probs: Sequence[Sequence[float]], costs: Sequence[Sequence[float]], *, lower: float, upper: float, resolution: float | None = None
) -> list[int] | None:
    """Choice per layer maximizing sum(log p) subject to lower <= sum(cost) <= upper; None if none fits.

    A lower bound breaks the Pareto pruning above, so this is a DP over a latency grid of step
    ``resolution`` (default: 1/20 of the window per layer). Rounding errors are summed per layer
    and the grid window shrunk by them, so any answer truly lies in [lower, upper]; it is exact
    whenever costs lie on the grid (as in the brute-force tests), near-exact otherwise.
    """
    res = resolution or max(upper - lower, 1e-9) / (20 * max(len(costs), 1))
    ticks = [np.rint(np.asarray(c, dtype=float) / res).astype(np.int64) for c in costs]
    slack = sum(float(np.abs(np.asarray(c) / res - t).max()) for c, t in zip(costs, ticks))
    lo, hi = int(math.ceil(lower / res + slack - 1e-9)), int(math.floor(upper / res - slack + 1e-9))
    if hi < max(lo, 0):
        return None
    score = np.full(hi + 1, -np.inf)
    score[0] = 0.0
    back = []
    for lp, t in zip(log_probs, ticks):
        best, arg = np.full(hi + 1, -np.inf), np.full(hi + 1, -1, dtype=np.int64)
        for i, (step, value) in enumerate(zip(t, lp)):
            if step > hi:
                continue
            shifted = np.full(hi + 1, -np.inf)
            shifted[step:] = score[: hi + 1 - step] + value
            better = shifted > best
            best[better], arg[better] = shifted[better], i
        score = best
        back.append((arg, t))
    window = score[max(lo, 0) :]
    if not np.isfinite(window).any():
        return None
    tick = max(lo, 0) + int(np.argmax(window))
    choice = []
    for arg, t in reversed(back):
        i = int(arg[tick])
        choice.append(i)
        tick -= int(t[i])
    return choice[::-1]
