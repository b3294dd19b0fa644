import pytest

from raynas.config import ConfigError, parse_config
from raynas.orchestration.pipeline import resolve_scenarios
from raynas.space.macro import get_space
from tests.unit.hardware.test_lut import synthetic_table

MACRO = get_space("mnist-small")


def test_fractions_resolve_inside_each_targets_latency_range():
    cfg = parse_config({"name": "t", "targets": [{"name": "cpu-1t", "budget_fractions": [0.25, 1.0]}]})
    table = synthetic_table()
    low, high = table.latency_range(MACRO)
    scenarios = resolve_scenarios(cfg, {"cpu-1t": table})
    assert [s["budget_ms"] for s in scenarios] == [pytest.approx(low + 0.25 * (high - low), abs=1e-4), pytest.approx(high, abs=1e-4)]
    assert len({s["key"] for s in scenarios}) == 2 and len({s["seed"] for s in scenarios}) == 2


def test_budget_below_the_fastest_network_is_refused_naming_the_minimum():
    table = synthetic_table()
    low = table.latency_range(MACRO)[0]
    cfg = parse_config({"name": "t", "targets": [{"name": "cpu-1t", "budgets_ms": [low / 2]}]})
    with pytest.raises(ConfigError, match=f"fastest architecture of the space \\({low:.3f} ms"):
        resolve_scenarios(cfg, {"cpu-1t": table})
