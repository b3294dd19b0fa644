"""Every latency model of a run, by (target, space): what strategies, budgets and reports look up.

A model answers ``predict(arch)`` for architectures of its space: a per-op ``LatencyTable``
(profiled, imported or estimated) for MBConv chains, a per-architecture ``LookupLatency`` from a
tabular benchmark (``raynas/hardware/tabular.py``) for cells.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Protocol

from raynas.space.architecture import Architecture
from raynas.space.macro import MacroConfig


class LatencyModel(Protocol):
    """Predicted latency in ms of an architecture of the model's space on its target, and what
    records and reports say of the model."""

    target: str
    batch_size: int
    metadata: dict[str, str]
    yardstick_ms: float | None  # the unit of measurements compared with it (None: plain ms)

    def predict(self, arch: Architecture, macro: MacroConfig | None = None) -> float: ...

    def latency_range(self, macro: MacroConfig | None = None) -> tuple[float, float]:
        """Its fastest and slowest architecture (where fractional budgets are placed)."""


@dataclass
class LatencyModels:
    """The run's latency models by (target, space); ``space`` is the run's own space, the default key."""

    space: str
    tables: dict[tuple[str, str], LatencyModel] = field(default_factory=dict)

    def add(self, target: str, table: LatencyModel, *, space: str | None = None) -> LatencyModel:
        self.tables[(target, space or self.space)] = table
        return table

    def table(self, target: str, space: str | None = None) -> LatencyModel:
        """The target's table for ``space`` (default the run's); a missing one names what is there."""
        key = (target, space or self.space)
        if key not in self.tables:
            raise KeyError(f"no latency model for target {key[0]!r} on space {key[1]!r}; have {sorted(self.tables)}")
        return self.tables[key]

    def get(self, target: str, space: str | None = None) -> LatencyModel | None:
        return self.tables.get((target, space or self.space))

    def predict(self, target: str, arch: Architecture) -> float | None:
        """Predicted latency of ``arch`` on ``target`` by its space's table; None where no table covers it."""
        table = self.get(target, arch.space)
        return None if table is None else table.predict(arch)

    @property
    def targets(self) -> list[str]:
        """Targets with a table for the run's space, in the order they were added."""
        return [t for t, s in self.tables if s == self.space]

    def of_space(self, space: str | None = None) -> dict[str, LatencyModel]:
        """Each target's table for ``space`` (default the run's)."""
        space = space or self.space
        return {t: table for (t, s), table in self.tables.items() if s == space}
