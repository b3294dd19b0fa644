import numpy as np
import pytest

from raynas.evaluation.plots import anytime_band, over_time_plot
from raynas.search.proxyless import SearchConfig
from raynas.search.random_search import RandomSearch
from raynas.space.macro import get_space
from raynas.supernet.supernet import Supernet
from tests.unit.hardware.test_lut import synthetic_table
from tests.unit.search.test_proxyless import loaders

MACRO = get_space("mnist-small")


def test_random_search_over_time_is_monotone_and_ends_at_the_returned_architectures_score():
    table = synthetic_table()
    low, high = table.latency_range(MACRO)
    search = RandomSearch(
        Supernet(MACRO, 10), table, low + 0.5 * (high - low), cfg=SearchConfig(eval_batches=1), seed=0, train_fraction=0.2
    ).start(*loaders(), 2.0)
    scores = []
    while not search.done:
        metrics = search.step()
        if metrics["score"] is not None:
            scores.append(metrics["score"])
    assert len(scores) >= 2 and scores == sorted(scores)
    assert scores[-1] == search.best[0] and metrics["arch"] == search.best[1]  # the curve ends at the returned architecture's score


def test_anytime_band_holds_each_runs_latest_score_and_averages_over_seeds():
    grid, mean, std = anytime_band([[(1.0, 0.5), (3.0, 0.7)], [(1.0, 0.6), (2.0, 0.8)]], points=5)  # grid 1, 1.5, 2, 2.5, 3
    assert grid.tolist() == [1.0, 1.5, 2.0, 2.5, 3.0]
    assert mean.tolist() == pytest.approx([0.55, 0.55, 0.65, 0.65, 0.75])
    assert std[0] == pytest.approx(np.std([0.5, 0.6], ddof=1))


def test_over_time_plot_draws_a_panel_per_budget(tmp_path):
    curves = [
        {"key": f"{m}:{b}", "method": m, "target": "cpu-1t", "budget_ms": b, "seed": s, "seconds": t, "score": 0.5 + 0.1 * t}
        for m in ("proxyless", "random-ws")
        for b in (1.0, 2.0)
        for s in (0, 1)
        for t in (1.0, 2.0, 3.0)
    ]
    path = over_time_plot(curves, "cpu-1t", tmp_path / "over-time.png")
    assert path.read_bytes()[:4] == b"\x89PNG"
