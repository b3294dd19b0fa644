import itertools

import numpy as np
import pytest
from scipy import stats

from raynas.search.proxyless import SearchConfig
from raynas.search.random_search import MIN_CANDIDATES, EmptyWindowError, RandomSearch, sample_in_window
from raynas.space.architecture import Architecture
from raynas.space.macro import get_space
from raynas.supernet.supernet import Supernet
from tests.unit.hardware.test_lut import synthetic_table
from tests.unit.search.test_proxyless import loaders

MACRO = get_space("mnist-small")
COSTS = [[1.0, 2.0, 3.0], [1.0, 2.5, 4.0], [0.5, 2.0]]  # 18 architectures; latency = 0.2 + sum


def test_samples_lie_in_the_window():
    picks = sample_in_window(COSTS, 0.2, low=4.0, high=6.0, n=500, rng=np.random.default_rng(0))
    latency = 0.2 + np.array([[COSTS[i][c] for i, c in enumerate(row)] for row in picks]).sum(1)
    assert picks.shape == (500, 3) and latency.min() >= 4.0 and latency.max() <= 6.0


def test_sampler_is_uniform_over_the_constrained_space():
    """Chi-square against the uniform law over every architecture in the window (enumerated)."""
    inside = [
        c for c in itertools.product(*(range(len(r)) for r in COSTS)) if 4.0 <= 0.2 + sum(COSTS[i][j] for i, j in enumerate(c)) <= 6.0
    ]
    picks = sample_in_window(COSTS, 0.2, low=4.0, high=6.0, n=300 * len(inside), rng=np.random.default_rng(1))
    counts = [int((picks == np.array(c)).all(1).sum()) for c in inside]
    assert sum(counts) == len(picks)  # nothing outside the enumerated set
    assert stats.chisquare(counts).pvalue > 0.001
    skewed = counts[:1] + [c // 2 for c in counts[1:]]  # the same test does reject a biased sampler
    assert stats.chisquare(skewed).pvalue < 0.001


def test_an_empty_window_is_an_error_naming_it():
    with pytest.raises(EmptyWindowError, match=r"\[20.000, 30.000\] ms"):
        sample_in_window(COSTS, 0.2, low=20.0, high=30.0, n=1, rng=np.random.default_rng(0), max_draws=10_000)


def test_run_trains_then_scores_candidates_in_the_nas_window():
    table = synthetic_table()
    low, high = table.latency_range(MACRO)
    budget = low + 0.4 * (high - low)
    search = RandomSearch(Supernet(MACRO, 10), table, budget, cfg=SearchConfig(eval_batches=1), seed=0, train_fraction=0.5)
    train, val = loaders()
    out = search.run(train, val, seconds=1.0)
    arch = Architecture.from_string(MACRO.name, out["arch"])
    assert 0.9 * budget <= table.predict(arch, MACRO) == out["derived_latency_ms"] <= budget
    assert out["weight_steps"] > 0 and out["candidates"] >= MIN_CANDIDATES and out["search_seconds"] >= 1.0
    assert 0 <= out["val_acc"] <= 1


def test_zero_time_still_scores_the_minimum_number_of_candidates():
    search = RandomSearch(Supernet(MACRO, 10), synthetic_table(), 1e9, cfg=SearchConfig(eval_batches=1), seed=0, train_fraction=0.0)
    out = search.run(*loaders(), seconds=0.0)
    assert out["candidates"] == MIN_CANDIDATES and out["weight_steps"] == 0
