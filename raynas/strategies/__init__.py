"""Search strategies by name. Each lives in its own module, imported on first use (as Ray Tune maps
searcher names to modules), so listing or validating one never imports the others' dependencies.
Adding a strategy: one module with a ``Strategy`` subclass, one line here."""

from __future__ import annotations

import importlib

from raynas.strategies.base import Finalist, Job, LocalProblem, Scenario, Searcher, Strategy

_MODULES = {
    "proxyless": "raynas.strategies.proxyless",
    "ofa": "raynas.strategies.ofa",
    "petridish": "raynas.strategies.petridish",
}

__all__ = ["Finalist", "Job", "LocalProblem", "Scenario", "Searcher", "Strategy", "get_strategy", "strategy_names", "strategy_class"]


def strategy_names() -> list[str]:
    return sorted(_MODULES)


def strategy_class(name: str) -> type[Strategy]:
    """The registered strategy class; an unknown name lists the valid ones."""
    if name not in _MODULES:
        raise KeyError(f"unknown search strategy {name!r}; valid: {', '.join(strategy_names())}")
    module = importlib.import_module(_MODULES[name])
    found = [
        obj for obj in vars(module).values() if isinstance(obj, type) and issubclass(obj, Strategy) and getattr(obj, "name", None) == name
    ]
    if len(found) != 1:
        raise TypeError(f"{_MODULES[name]} must define exactly one Strategy subclass named {name!r}")
    return found[0]


def get_strategy(name: str) -> Strategy:
    """A fresh instance (strategies hold per-run state from ``prepare``)."""
    return strategy_class(name)()
