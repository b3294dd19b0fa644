"""Every latency model of a run, by (target, space): what strategies, budgets and reports look up.

A model answers ``predict(arch)`` for architectures of its space; today each is a per-op
``LatencyTable`` (profiled, imported or estimated); a per-architecture lookup fits the same slot.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Protocol

from raynas.hardware.lut import LatencyTable
from raynas.space.architecture import Architecture
from raynas.space.macro import get_space


class LatencyModel(Protocol):
    """Predicted latency in ms of an architecture of the model's space on its target."""

    def predict(self, arch: Architecture) -> float: ...


@dataclass
class LatencyModels:
    """The run's latency tables by (target, space); ``space`` is the run's own space, the default key."""

    space: str
    tables: dict[tuple[str, str], LatencyTable] = field(default_factory=dict)

    def add(self, target: str, table: LatencyTable, *, space: str | None = None) -> LatencyTable:
        self.tables[(target, space or self.space)] = table
        return table

    def table(self, target: str, space: str | None = None) -> LatencyTable:
        """The target's table for ``space`` (default the run's); a missing one names what is there."""
        key = (target, space or self.space)
        if key not in self.tables:
            raise KeyError(f"no latency model for target {key[0]!r} on space {key[1]!r}; have {sorted(self.tables)}")
        return self.tables[key]

    def get(self, target: str, space: str | None = None) -> LatencyTable | None:
        return self.tables.get((target, space or self.space))

    def predict(self, target: str, arch: Architecture) -> float | None:
        """Predicted latency of ``arch`` on ``target`` by its space's table; None where no table covers it."""
        table = self.get(target, arch.space)
        return None if table is None else table.predict(arch, get_space(arch.space))

    @property
    def targets(self) -> list[str]:
        """Targets with a table for the run's space, in the order they were added."""
        return [t for t, s in self.tables if s == self.space]

    def of_space(self, space: str | None = None) -> dict[str, LatencyTable]:
        """Each target's table for ``space`` (default the run's)."""
        space = space or self.space
        return {t: table for (t, s), table in self.tables.items() if s == space}
