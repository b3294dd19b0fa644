"""The pooled paired estimate, its cell bootstrap and the power of a paired t-test, on worked examples."""

import itertools
import math

import numpy as np
import pytest
from scipy import stats

from raynas.evaluation.statistics import paired_power, pairs_needed, pooled_paired, variance_components

CELLS = {"a": [1.0, 2.0, 3.0], "b": [-1.0, 0.0, 1.0], "c": [2.0, 2.0, 2.0]}


def test_the_pooled_estimate_weights_every_pair_alike_and_its_interval_spans_whole_cell_resamples():
    est = pooled_paired(CELLS, effect=1.0)
    assert est.mean == pytest.approx(12 / 9) and (est.pairs, est.cells) == (9, 3)
    assert est.sd == pytest.approx(np.std([1, 2, 3, -1, 0, 1, 2, 2, 2], ddof=1))
    # every resample of 3 whole cells (equal sizes): its mean is the mean of the chosen cells' means (2, 0, 2)
    means = sorted(np.mean(c) for c in itertools.product([2.0, 0.0, 2.0], repeat=3))
    low, high = est.ci95
    assert means[0] <= low <= high <= means[-1] and low < est.mean < high
    assert (low, high) == pytest.approx(pooled_paired(CELLS, effect=1.0, seed=0).ci95)  # seeded: reproducible


def test_power_matches_the_figures_of_a_paired_t_test():
    """A 1-point gap at a spread of 2 points: 3 pairs see it about 8 % of the time, 18 pairs about half, 34 pairs 80 %."""
    assert paired_power(3, effect=1.0, sd=2.0) == pytest.approx(0.084, abs=0.002)
    assert paired_power(18, effect=1.0, sd=2.0) == pytest.approx(0.516, abs=0.002)
    assert pairs_needed(effect=1.0, sd=2.0) == 34
    assert paired_power(33, effect=1.0, sd=2.0) < 0.8 <= paired_power(34, effect=1.0, sd=2.0)


def test_power_agrees_with_simulated_paired_t_tests():
    rng = np.random.default_rng(0)
    draws = rng.normal(1.0, 2.0, size=(4000, 10))
    rejected = np.mean(stats.ttest_1samp(draws, 0.0, axis=1).pvalue < 0.05)
    assert paired_power(10, effect=1.0, sd=2.0) == pytest.approx(rejected, abs=0.03)


def test_degenerate_inputs_answer_plainly():
    assert paired_power(1, effect=1.0, sd=1.0) == 0.0 and pairs_needed(effect=0.0, sd=1.0) is None
    assert pooled_paired({"a": [0.5], "b": []}, effect=1.0).cells == 1
    with pytest.raises(ValueError, match="no paired difference"):
        pooled_paired({"a": []}, effect=1.0)


def test_variance_components_split_architecture_seed_and_residual_on_a_worked_example():
    # 3 architectures x 2 seeds: architecture means 50, 55, 60; seed 1 is 2 points luckier for all (no residual) ...
    parts = variance_components([[49.0, 51.0], [54.0, 56.0], [59.0, 61.0]])
    assert parts.residual_sd == pytest.approx(0.0) and parts.between_share == pytest.approx(1.0)
    assert parts.between_sd == pytest.approx(5.0)  # (2 x 25 - 0) / 2
    assert parts.replicate_sd == pytest.approx(math.sqrt(3 * 2.0 / 3))  # seed means 54, 56: (3 x 2 - 0) / 3
    # ... and with seed 1 lucky for one architecture only: residuals +-1/3 and +-2/3 around the additive fit
    parts = variance_components([[50.0, 50.0], [54.0, 56.0], [60.0, 60.0]])
    residual = (4 * (1 / 3) ** 2 + 2 * (2 / 3) ** 2) / 2  # (x - row - col + grand)^2 summed, over (3 - 1)(2 - 1)
    assert parts.residual_sd == pytest.approx(math.sqrt(residual))
    assert parts.between_sd == pytest.approx(math.sqrt((2 * 25.0 - residual) / 2))
    assert parts.between_share == pytest.approx(parts.between_sd**2 / (parts.between_sd**2 + residual))


def test_variance_components_say_zero_when_architectures_differ_less_than_seeds():
    parts = variance_components([[50.0, 56.0], [56.0, 50.0], [53.0, 53.0]])  # equal means, seed noise only
    assert parts.between_sd == 0.0 and parts.between_share == 0.0 and parts.residual_sd > 0
    with pytest.raises(ValueError, match="2 groups x 2 replicates"):
        variance_components([[1.0, 2.0]])
