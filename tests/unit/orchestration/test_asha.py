import numpy as np
import pandas as pd

from raynas.orchestration.asha import DeviceSecondsBudget, anytime, survivor, window_candidates
from raynas.space.architecture import Architecture
from raynas.space.macro import get_space
from tests.unit.hardware.test_lut import synthetic_table

MACRO = get_space("mnist-small")


def test_candidates_are_drawn_from_the_budget_window():
    table = synthetic_table()
    low, high = table.latency_range(MACRO)
    budget = low + 0.4 * (high - low)
    archs = window_candidates(table, MACRO, budget, 0.9, 32, seed=0)
    latencies = [table.predict(Architecture.from_string(MACRO.name, a), MACRO) for a in archs]
    assert len(set(archs)) > 20 and all(0.9 * budget <= ms <= budget for ms in latencies)
    assert archs == window_candidates(table, MACRO, budget, 0.9, 32, seed=0)


def test_the_budget_stops_every_trial_once_device_seconds_are_spent():
    stop = DeviceSecondsBudget(10.0, devices=2)
    assert not stop("a", {"time_this_iter_s": 2.0}) and not stop("b", {"time_this_iter_s": 2.0})
    assert stop("a", {"time_this_iter_s": 1.0}) and stop.stop_all() and stop.spent == 10.0


def test_the_survivor_is_the_best_of_the_trials_that_trained_longest():
    results = [{"training_iteration": 1, "val_acc": 0.9, "arch": "a"}, {"training_iteration": 3, "val_acc": 0.6, "arch": "b"}, {"training_iteration": 3, "val_acc": 0.7, "arch": "c"}]
    assert survivor(results)["arch"] == "c"


def test_anytime_is_monotone_over_device_seconds_in_finishing_order():
    frames = [pd.DataFrame({"timestamp": [1, 3], "time_this_iter_s": [1.0, 1.0], "val_acc": [0.2, 0.5]}),
              pd.DataFrame({"timestamp": [2], "time_this_iter_s": [2.0], "val_acc": [0.4]})]
    points = anytime(frames, devices=1)
    assert points == [(1.0, 0.2), (3.0, 0.4), (4.0, 0.5)]
    assert np.all(np.diff([p[1] for p in points]) >= 0)
