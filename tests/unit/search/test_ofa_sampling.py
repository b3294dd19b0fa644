"""OFA's predictor samples spread over latency."""

import numpy as np

from raynas.search.ofa import stratified


def test_stratified_predictor_samples_cover_latency_evenly_where_uniform_draws_crowd_the_middle():
    rng = np.random.default_rng(0)
    cost = rng.normal(0.0, 1.0, 5000)  # a crowded middle, thin tails
    picked = stratified(list(range(5000)), cost, 50, rng=rng)
    assert len(set(picked)) == 50
    counts = np.histogram(cost[picked], bins=np.linspace(cost.min(), cost.max(), 6))[0]
    assert counts.min() >= 9  # each fifth of the latency range gets about a fifth of the samples
    uniform = np.histogram(cost[rng.choice(5000, 50, replace=False)], bins=np.linspace(cost.min(), cost.max(), 6))[0]
    assert uniform.min() < 5


def test_stratified_takes_everything_from_a_pool_smaller_than_asked():
    assert sorted(stratified(["a", "b", "c"], [1.0, 1.0, 5.0], 10, rng=np.random.default_rng(0))) == ["a", "b", "c"]
