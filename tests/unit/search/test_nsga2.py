"""NSGA-II over a device's whole range on the synthetic NB201 problem, and the front arithmetic."""

from __future__ import annotations

import io

import numpy as np
import pytest
import torch

from raynas.search.blackbox import FRONT_SEARCHES, search_class
from raynas.search.nsga2 import hypervolume, pareto_mask, pick_within
from raynas.search.tabular import run_front
from raynas.space.nb201 import NB201
from tests.unit.search.test_blackbox import synthetic


def test_the_front_keeps_points_no_other_beats_in_both_objectives():
    scores, latencies = np.array([1.0, 2.0, 1.5, 3.0, 2.5]), np.array([1.0, 2.0, 2.5, 3.0, 3.0])
    assert pareto_mask(scores, latencies).tolist() == [True, True, False, True, False]


def test_hypervolume_is_the_area_the_front_dominates_up_to_the_reference():
    scores, latencies = np.array([1.0, 3.0]), np.array([1.0, 2.0])
    # [1, 2) at height 1 plus [2, 4) at height 3 above a worst score of 0
    assert hypervolume(scores, latencies, reference=(0.0, 4.0)) == pytest.approx(1.0 + 6.0)
    assert hypervolume(np.append(scores, 0.5), np.append(latencies, 3.0), reference=(0.0, 4.0)) == pytest.approx(7.0)  # dominated


def test_one_run_answers_every_budget_with_its_best_point_within_it():
    oracle = synthetic()
    trace = run_front(search_class("nsga2")(NB201, seed=0), oracle, evaluations=60)
    assert len(trace.codes) == 60 == len(set(trace.codes))
    points = [(c, s, float(oracle.latency_ms[c])) for c, s in zip(trace.codes, trace.signals)]
    for budget in (2.0, 4.0, 7.0):
        pick = pick_within(points, budget)
        fitting = [p for p in points if p[2] <= budget]
        assert pick is None if not fitting else oracle.latency_ms[pick] <= budget and oracle.signal[pick] == max(p[1] for p in fitting)


def test_a_front_search_resumes_from_its_history_without_repeating_a_cell():
    oracle, cls = synthetic(), search_class("nsga2")
    first = cls(NB201, seed=1)
    done = run_front(first, oracle, evaluations=25)
    buffer = io.BytesIO()
    torch.save(first.state_dict(), buffer)
    resumed = cls(NB201, seed=1)
    resumed.load_state_dict(torch.load(io.BytesIO(buffer.getvalue()), weights_only=True))
    assert cls.resume == "history" and len(resumed.study.trials) == len(first.history) and "nsga2" in FRONT_SEARCHES
    assert len(resumed.points) == len(first.points)
    more = run_front(resumed, oracle, evaluations=10)
    assert len(more.codes) == 10 and not set(more.codes) & set(done.codes)
