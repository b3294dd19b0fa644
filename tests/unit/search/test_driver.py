"""Driving ask/tell searches under a budget, in process (``BudgetedSearch``) and as Tune's searcher
(``ScenarioSearcher``): only new feasible architectures are evaluated, infeasible ones are told and
never counted, a search that has told every feasible architecture ends, and state round-trips."""

from __future__ import annotations

import numpy as np
import pytest
from ray.tune.search import Searcher

from raynas.execution.blackbox import ScenarioSearch, ScenarioSearcher
from raynas.search.blackbox import RandomSearch, RegularizedEvolution
from raynas.search.driver import BudgetedSearch, Exhausted, next_feasible
from raynas.space.architecture import Architecture
from raynas.space.nb201 import NB201, OPS, Cell


def convs(cell: Cell) -> int:
    return sum(op.startswith("nor_conv") for op in cell.ops)


def few_convs(cell: Cell) -> bool:
    return convs(cell) <= 1


def score(cell: Cell, index: int = 0) -> float:
    return (OPS.index(cell.ops[0]) + convs(cell)) / 10


def test_next_feasible_tells_infeasible_proposals_and_skips_busy_ones():
    search, told = RandomSearch(NB201, seed=0), {}
    arch = next_feasible(search, few_convs, told)
    assert few_convs(arch) and NB201.choices(arch) not in told
    assert all(s is None for s in told.values()) and len(search.history) == len(told)  # each infeasible one told as None
    again = next_feasible(search, few_convs, told, busy={NB201.choices(arch)})
    assert again != arch


def test_next_feasible_ends_when_nothing_new_is_feasible():
    only = Cell(("none",) * 6)
    with pytest.raises(Exhausted, match="raise the latency budget"):
        next_feasible(RandomSearch(NB201, seed=0), lambda c: c == only, {NB201.choices(only): 0.1}, max_proposals=500)


def test_budgeted_search_counts_feasible_evaluations_only_and_resumes_exactly():
    def make():
        return BudgetedSearch(RegularizedEvolution(NB201, seed=3), few_convs, score, evaluations=12, space="nb201")

    whole = make()
    while not whole.done:
        last = whole.step()
    assert last["evaluations"] == 12 and last["infeasible"] > 0
    assert all(few_convs(NB201.from_choices(c)) for c, _ in whole.scores)
    assert last["score"] == max(s for _, s in whole.scores) / 100
    picked = Architecture.from_string("nb201", last["arch"])
    assert few_convs(Cell(picked.ops))
    half = make()
    for _ in range(5):
        half.step()
    resumed = make()
    resumed.load_state_dict(half.state_dict())
    while not resumed.done:
        again = resumed.step()
    assert again == last


def test_budgeted_search_stops_once_every_feasible_architecture_is_evaluated():
    tiny = BudgetedSearch(RandomSearch(NB201, seed=0), lambda c: convs(c) == 0 and c.ops[0] == "none" and c.ops[1] == "none",
                          score, evaluations=10_000, space="nb201", max_proposals=3000)  # fmt: skip
    while not tiny.done:
        tiny.step()
    assert tiny.exhausted and len(tiny.scores) == 3**4  # edges 3..6 free over the 3 non-conv ops


def test_scenario_searcher_runs_each_scenario_to_its_evaluations_and_tells_scores_in_percent():
    budgets = {"a": 3, "b": 2}
    searches = {
        k: ScenarioSearch(RandomSearch(NB201, seed=i), few_convs, evaluations=n, seed=i) for i, (k, n) in enumerate(budgets.items())
    }
    searcher = ScenarioSearcher(searches, "nb201")
    configs = []
    for i in range(5):
        configs.append(searcher.suggest(f"t{i}"))
        assert few_convs(Cell(Architecture.from_string("nb201", configs[-1]["arch"]).ops))
    assert sorted(c["scenario"] for c in configs) == ["a", "a", "a", "b", "b"] and searcher.suggest("t5") == Searcher.FINISHED
    searcher.on_trial_complete("t0", {"val_acc": 0.5})
    searcher.on_trial_complete("t1", None, error=True)
    told = {key: s.search.history for key, s in searches.items()}
    assert [score for _, score in told[configs[0]["scenario"]] if score is not None] == [50.0]
    assert any(score is None and NB201.from_choices(c) == Cell(Architecture.from_string("nb201", configs[1]["arch"]).ops)
               for c, score in told[configs[1]["scenario"]])  # fmt: skip
    assert len({(c["scenario"], c["seed"]) for c in configs}) == 5  # each candidate trains from its own seed


def test_scenario_searcher_state_round_trips(tmp_path):
    def make():
        return ScenarioSearcher({"a": ScenarioSearch(RegularizedEvolution(NB201, seed=1), few_convs, evaluations=20, seed=1)}, "nb201")

    first = make()
    for i in range(4):
        first.suggest(f"t{i}")
        first.on_trial_complete(f"t{i}", {"val_acc": float(np.random.default_rng(i).random())})
    in_flight = first.suggest("t4")  # saved while its candidate trains
    first.save(str(tmp_path / "s.pkl"))
    second = make()
    second.restore(str(tmp_path / "s.pkl"))
    assert second.suggest("t9") == first.suggest("t9") != in_flight
    second.on_trial_complete("t4", {"val_acc": 0.9})
    assert second.searches["a"].search.history[-1][1] == 90.0 and not second.pending.keys() - {"t9"}


def test_a_budget_that_admits_nothing_is_an_error_naming_the_budget():
    search = BudgetedSearch(RandomSearch(NB201, seed=0), lambda c: False, score, evaluations=3, space="nb201", max_proposals=200)
    with pytest.raises(Exhausted, match="latency budget admits no architecture"):
        search.step()
