import itertools
import math
import random

import pytest

from raynas.search.derive import most_probable_within


def brute_force(log_probs, costs, limit):
    best, best_choice = -math.inf, None
    for choice in itertools.product(*(range(len(c)) for c in costs)):
        cost = sum(c[i] for c, i in zip(costs, choice))
        score = sum(lp[i] for lp, i in zip(log_probs, choice))
        if cost <= limit and score > best:
            best, best_choice = score, list(choice)
    return best_choice, best


@pytest.mark.parametrize("seed", range(25))
def test_matches_brute_force_on_small_spaces(seed):
    rng = random.Random(seed)
    layers = rng.randint(1, 5)
    costs = [[rng.uniform(0, 1) for _ in range(rng.randint(2, 4))] for _ in range(layers)]
    log_probs = [[math.log(rng.uniform(0.01, 1)) for _ in c] for c in costs]
    limit = rng.uniform(0.2, 0.7) * sum(max(c) for c in costs)
    expected, score = brute_force(log_probs, costs, limit)
    got = most_probable_within(log_probs, costs, limit)
    if expected is None:
        assert got is None
    else:
        assert sum(c[i] for c, i in zip(costs, got)) <= limit
        assert sum(lp[i] for lp, i in zip(log_probs, got)) == pytest.approx(score)


def test_returns_none_when_nothing_fits():
    assert most_probable_within([[0.0, 0.0]], [[1.0, 2.0]], 0.5) is None


def test_unconstrained_limit_gives_the_argmax():
    log_probs = [[-1.0, -0.1, -3.0], [-0.2, -2.0]]
    assert most_probable_within(log_probs, [[1, 1, 1], [1, 1]], 100) == [1, 0]
