import pytest

from raynas.config import ConfigError, parse_config
from raynas.orchestration.scenarios import resolve_scenarios
from raynas.space.macro import get_space
from tests.unit.hardware.test_lut import synthetic_table

MACRO = get_space("mnist-small")


def test_fractions_resolve_inside_each_targets_latency_range():
    cfg = parse_config({"name": "t", "targets": [{"name": "cpu-1t", "budget_fractions": [0.25, 1.0]}]})
    table = synthetic_table()
    low, high = table.latency_range(MACRO)
    scenarios = resolve_scenarios(cfg, {"cpu-1t": table})
    assert [s.budget_ms for s in scenarios] == [pytest.approx(low + 0.25 * (high - low), abs=1e-4), pytest.approx(high, abs=1e-4)]
    assert len({s.pair for s in scenarios}) == 2 and {s.seed for s in scenarios} == {0}


def test_every_budget_is_replicated_over_the_configured_seeds():
    cfg = parse_config(
        {"name": "t", "seed": 5, "targets": [{"name": "cpu-1t", "budget_fractions": [0.25, 0.75]}], "evaluation": {"seeds": 3}}
    )
    scenarios = resolve_scenarios(cfg, {"cpu-1t": synthetic_table()})
    assert sorted((s.budget_ms, s.seed) for s in scenarios) == sorted((s.budget_ms, seed) for s in scenarios[::3] for seed in (5, 6, 7))
    assert len({s.pair for s in scenarios}) == 6


def test_budget_below_the_fastest_network_is_refused_naming_the_minimum():
    table = synthetic_table()
    low = table.latency_range(MACRO)[0]
    cfg = parse_config({"name": "t", "targets": [{"name": "cpu-1t", "budgets_ms": [low / 2]}]})
    with pytest.raises(ConfigError, match=f"fastest network the search can return \\({low:.3f} ms"):
        resolve_scenarios(cfg, {"cpu-1t": table})


def test_fractions_resolve_inside_the_strategys_own_range():
    """OFA resolves budget fractions over its subnets (e.g. 1.0-3.0 ms), not over the space's ProxylessNAS range."""
    cfg = parse_config({"name": "t", "targets": [{"name": "cpu-1t", "budget_fractions": [0.0001, 0.5]}]})
    scenarios = resolve_scenarios(cfg, {"cpu-1t": synthetic_table()}, {"cpu-1t": (1.0, 3.0)})
    assert [s.budget_ms for s in scenarios] == [pytest.approx(1.0002, abs=1e-4), pytest.approx(2.0)]
