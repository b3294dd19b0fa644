"""The API's plain data: keyword-only records, the result row against the results schema, the registry."""

from __future__ import annotations

import dataclasses

import pytest

from raynas.api import STRATEGIES, Finalist, Job, Scenario, scenario_of, strategy_class, strategy_names
from raynas.evaluation.compare import RESULTS_SCHEMA, ResultRow
from raynas.space.reference import mobilenet_v2_like


def test_result_rows_have_exactly_the_results_schema_columns_in_order():
    assert [f.name for f in dataclasses.fields(ResultRow)] == RESULTS_SCHEMA.names


def test_jobs_and_finalists_take_their_details_by_keyword_and_name_their_scenario():
    with pytest.raises(TypeError):
        Job("k", "random", "cpu-1t", 0)  # the seed is keyword-only
    job = Job.of(Scenario("cpu-1t", 1.5, 2), "random", budget_seconds=3.0)
    found = Finalist.found(job, mobilenet_v2_like("mnist-small", 1.0), {"search_seconds": 3.0, "arch": "-"})
    assert job.key == "random:cpu-1t@1.500ms#s2" and found.seed == 2 and found.search_seconds == 3.0
    assert scenario_of(found) == Scenario("cpu-1t", 1.5, 2)


def test_the_registry_refuses_duplicates_and_lists_valid_names_on_a_miss():
    assert {"ofa", "petridish", "proxyless"} <= set(strategy_names())
    with pytest.raises(KeyError, match="already registered"):
        STRATEGIES.add("proxyless", "raynas.strategies.proxyless")
    with pytest.raises(KeyError, match=f"unknown search strategy 'darts'; valid names: {', '.join(strategy_names())}"):
        strategy_class("darts")
