import itertools
import math
import random

import pytest

from raynas.search.derive import most_probable_in_window, most_probable_within


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


def brute_force_window(log_probs, costs, lower, upper):
    best, best_choice = -math.inf, None
    for choice in itertools.product(*(range(len(c)) for c in costs)):
        cost = sum(c[i] for c, i in zip(costs, choice))
        score = sum(lp[i] for lp, i in zip(log_probs, choice))
        if lower <= cost <= upper and score > best:
            best, best_choice = score, list(choice)
    return best_choice, best


@pytest.mark.parametrize("seed", range(25))
def test_window_matches_brute_force_on_grid_costs(seed):
    rng = random.Random(100 + seed)
    layers = rng.randint(1, 5)
    costs = [[rng.randint(0, 9) for _ in range(rng.randint(2, 4))] for _ in range(layers)]
    log_probs = [[math.log(rng.uniform(0.01, 1)) for _ in c] for c in costs]
    upper = rng.randint(3, max(4, sum(max(c) for c in costs)))
    lower = rng.randint(0, upper)
    expected, score = brute_force_window(log_probs, costs, lower, upper)
    got = most_probable_in_window(log_probs, costs, lower=lower, upper=upper, resolution=1.0)
    if expected is None:
        assert got is None
    else:
        assert lower <= sum(c[i] for c, i in zip(costs, got)) <= upper
        assert sum(lp[i] for lp, i in zip(log_probs, got)) == pytest.approx(score)


@pytest.mark.parametrize("seed", range(10))
def test_window_answer_always_fits_with_off_grid_costs(seed):
    rng = random.Random(200 + seed)
    costs = [[rng.uniform(0.2, 1.0) for _ in range(7)] for _ in range(12)]
    log_probs = [[math.log(rng.uniform(0.01, 1)) for _ in c] for c in costs]
    upper = 0.6 * sum(max(c) for c in costs)
    got = most_probable_in_window(log_probs, costs, lower=0.9 * upper, upper=upper)
    assert got is not None
    assert 0.9 * upper <= sum(c[i] for c, i in zip(costs, got)) <= upper
