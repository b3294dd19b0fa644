"""Simulated training seconds: the fitted line, and a calibration on real training steps."""

from __future__ import annotations

import numpy as np
import pytest

from raynas.search.cost import TrainingCost, calibrate
from raynas.space.nb201 import Cell, NB201Network, flops_m


def test_fit_recovers_a_line_and_counts_every_step_of_a_run():
    flops = [10.0, 50.0, 100.0, 200.0]
    cost = TrainingCost.fit(flops, [0.1 + 0.002 * f for f in flops], steps=1000, source="synthetic")
    assert cost.overhead_s == pytest.approx(0.1) and cost.seconds_per_mflop == pytest.approx(0.002)
    assert cost.seconds(100.0) == pytest.approx(1000 * 0.3)
    assert np.allclose(cost.seconds(np.array([10.0, 200.0])), [1000 * 0.12, 1000 * 0.5])


def test_a_line_through_noise_never_goes_negative():
    cost = TrainingCost.fit([10.0, 20.0], [0.5, 0.1], steps=10, source="noise")  # falling: slope clipped
    assert cost.seconds_per_mflop == 0.0 and cost.overhead_s >= 0.0


def test_calibration_times_real_training_steps_of_nb201_networks():
    cells = [Cell(("none",) * 6), Cell(("nor_conv_3x3",) * 6)]
    flops = [flops_m(NB201Network(c, 10)) for c in cells]
    cost = calibrate(cells, flops, batch=4, epochs=1, images=8)
    assert cost.steps == 2 and cost.seconds(flops[1]) > 0 and "2 cells timed" in cost.source
