"""Mutated configs: the loader answers only with a clean ConfigError naming a field, or a valid config."""

from __future__ import annotations

import copy

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from raynas.config import ConfigError, ExperimentConfig, parse_config

BASE = {
    "name": "fuzz",
    "targets": [{"name": "cpu-1t", "budget_fractions": [0.3, 0.7]}],
    "data": {"dataset": "mnist-embedded", "batch_size": 64},
    "search": {"warmup_epochs": 2, "search_epochs": 3, "binarization": "two"},
    "retrain": {"epochs": 3},
    "profile": {"repeats": 100},
}
VALUES = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(-5, 5),
    st.floats(allow_nan=True),
    st.text(max_size=8),
    st.lists(st.integers(-2, 2), max_size=3),
    st.dictionaries(st.text(max_size=4), st.integers(), max_size=2),
)


def _paths(node, prefix=()):
    """Every (parent, key) position in the nested config."""
    items = node.items() if isinstance(node, dict) else enumerate(node) if isinstance(node, list) else []
    for key, value in items:
        yield prefix + (key,)
        yield from _paths(value, prefix + (key,))


PATHS = list(_paths(BASE))


@st.composite
def mutated(draw):
    raw = copy.deepcopy(BASE)
    for _ in range(draw(st.integers(1, 3))):
        path = draw(st.sampled_from(PATHS))
        node = raw
        try:
            for key in path[:-1]:
                node = node[key]
            action = draw(st.sampled_from(["replace", "delete", "add"]))
            if action == "replace":
                node[path[-1]] = draw(VALUES)
            elif action == "delete" and isinstance(node, dict):
                del node[path[-1]]
            elif isinstance(node, dict):
                node[draw(st.text(min_size=1, max_size=6))] = draw(VALUES)
        except (KeyError, IndexError, TypeError):
            continue
    return raw


@pytest.mark.faults
@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(mutated())
def test_mutated_configs_give_a_valid_config_or_one_clean_config_error(raw):
    try:
        cfg = parse_config(raw)
    except ConfigError as exc:
        assert str(exc).startswith("config field ") and "\n" not in str(exc)
    else:
        assert isinstance(cfg, ExperimentConfig)
