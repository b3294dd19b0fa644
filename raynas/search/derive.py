"""Derivation under a latency budget: the most probable architecture whose predicted latency fits."""

from __future__ import annotations

import math
from typing import Sequence


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
