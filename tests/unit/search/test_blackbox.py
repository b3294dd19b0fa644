"""Black-box searches on a synthetic NB201 problem (an additive landscape, latency by conv count):
budget kept, infeasible proposals told and never counted, exact resume, and better than random
where the landscape is smooth; the tabular evaluator's regrets and what it lets a search read."""

from __future__ import annotations

import io

import numpy as np
import pytest
import torch

from raynas.hardware.tabular import TabularBenchmark
from raynas.search.blackbox import SEARCHES, RandomSearch, search_class
from raynas.search.tabular import SignalOracle, Truth, by_code, run_search
from raynas.space.nb201 import NB201, NUM_CELLS, OPS, Cell

WEIGHTS = np.random.default_rng(7).normal(size=(6, len(OPS)))  # each edge's op adds its weight


def synthetic(budget_ms: float = 4.0) -> SignalOracle:
    cells = [Cell.from_code(c) for c in range(NUM_CELLS)]
    signal = np.array([50 + 5 * sum(WEIGHTS[e, OPS.index(op)] for e, op in enumerate(c.ops)) for c in cells])
    latency = np.array([1.0 + sum(op.startswith("nor_conv") for op in c.ops) for c in cells])
    return SignalOracle(signal, latency, budget_ms)


class Counting:
    """A search wrapped to count what it is told."""

    def __init__(self, inner) -> None:
        self.inner, self.told_infeasible = inner, 0
        self.space, self.history = inner.space, inner.history

    def ask(self):
        return self.inner.ask()

    def tell(self, arch, score):
        self.told_infeasible += score is None
        self.inner.tell(arch, score)


@pytest.mark.parametrize("name", SEARCHES.names())
def test_a_search_spends_its_evaluations_on_feasible_cells_and_is_told_of_the_rest(name):
    oracle = synthetic(budget_ms=3.0)  # at most 2 convolutions: 4,864 of 15,625 cells
    search = Counting(search_class(name)(NB201, seed=1))
    trace = run_search(search, oracle, evaluations=60)
    assert len(trace.codes) == 60 == len(set(trace.codes))
    assert all(oracle.latency_ms[c] <= 3.0 for c in trace.codes)
    assert search.told_infeasible >= trace.infeasible > 0  # re-asked infeasible cells are told again


@pytest.mark.parametrize("name", SEARCHES.names())
def test_a_search_resumed_from_its_saved_state_goes_on_exactly(name):
    oracle = synthetic()
    whole = run_search(search_class(name)(NB201, seed=3), oracle, evaluations=40)
    first = search_class(name)(NB201, seed=3)
    run_search(first, oracle, evaluations=20)
    buffer = io.BytesIO()
    torch.save(first.state_dict(), buffer)  # as a Tune checkpoint carries it
    resumed = search_class(name)(NB201, seed=99)
    resumed.load_state_dict(torch.load(io.BytesIO(buffer.getvalue()), weights_only=True))
    rest = run_search(resumed, oracle, evaluations=20)
    if search_class(name).resume == "exact":
        assert rest.codes == whole.codes[20:]
    else:  # "history": the same evidence, other random draws -- it still never repeats a told cell or loses one
        assert search_class(name).resume == "history" and len(resumed.history) >= 20 + len(rest.codes)
        assert not set(rest.codes) & set(whole.codes[:20])


@pytest.mark.parametrize("name", ["evolution", "local", "tpe"])
def test_model_based_searches_beat_random_on_a_smooth_landscape(name):
    oracle = synthetic()
    best = oracle.signal[oracle.latency_ms <= oracle.budget_ms].max()
    regret = {
        n: np.mean([best - oracle.signal[run_search(search_class(n)(NB201, seed=s), oracle, evaluations=60).pick] for s in range(20)])
        for n in ("random", name)
    }
    assert regret[name] < 0.8 * regret["random"], regret


def test_a_search_handed_the_optimum_has_zero_regret_and_the_floor_is_the_signals_pick():
    table = table_of(synthetic())
    truth = Truth.of(table, "toy", device="x", budget_ms=4.0)
    optimum = int(np.argmax(np.where(by_code(table, "latency_ms.x") <= 4.0, by_code(table, "toy_valid_12ep"), -np.inf)))
    assert truth.signal_regret(optimum) == 0.0
    assert truth.floor_regret == pytest.approx(truth.reported_regret(optimum))


def test_the_oracle_reads_no_reported_accuracy():
    table = table_of(synthetic())
    read = []

    class Recording(dict):
        def __getitem__(self, key):
            read.append(key)
            return super().__getitem__(key)

    spy = TabularBenchmark(table.path, table.cells, Recording(table.columns))
    oracle = SignalOracle.of(spy, "toy", device="x", budget_ms=4.0)
    run_search(RandomSearch(NB201, seed=0), oracle, evaluations=10)
    assert read and not any("_test_" in column for column in read), read


def table_of(oracle: SignalOracle) -> TabularBenchmark:
    """A tabular benchmark of the synthetic problem, rows in a shuffled 'index' order like NB201's."""
    order = np.random.default_rng(0).permutation(NUM_CELLS)  # row i holds the cell of code order[i]
    reported = oracle.signal + np.random.default_rng(1).normal(0, 1, NUM_CELLS)
    columns = {"toy_valid_12ep": oracle.signal[order], "toy_test_200ep": reported[order], "latency_ms.x": oracle.latency_ms[order]}
    return TabularBenchmark(None, tuple(Cell.from_code(int(c)) for c in order), columns)
