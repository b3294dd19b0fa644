"""A tabular hardware benchmark of the NB201 space (``nb201-hw``): every cell with its accuracies and
its latency on several devices, read from one CSV, whatever devices and datasets it holds.

Columns it reads: ``index`` and ``arch`` (NB201's index and string, one row per cell, in index order),
``latency_ms.<device>`` (one target per device), ``<dataset>_valid_12ep`` (the search signal) and
``<dataset>_test_200ep`` (the reported accuracy, which no search may read); any other column is kept
as data. Each device's latency model is a per-architecture lookup: estimated from the table (its
source named), never measured here.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.csv as pacsv

from raynas.space.nb201 import EDGES, NUM_CELLS, OPS, Cell, CellError

LATENCY_PREFIX = "latency_ms."
SIGNAL_SUFFIX = "_valid_12ep"  # what a search may read
REPORTED_SUFFIX = "_test_200ep"  # what is reported of its pick
BUDGET_QUANTILES = (0.25, 0.5, 0.75)


class TabularError(ValueError):
    """A table raynas cannot use; the message names the problem and the fix."""


@dataclass(frozen=True)
class LookupLatency:
    """A device's latency of every cell, looked up by cell: the latency model of a tabular target."""

    device: str
    source: str  # the table it came from
    by_code: dict[int, float] = field(repr=False)
    connected_codes: frozenset[int] = field(default=frozenset(), repr=False)  # cells that define the latency range

    estimated = True  # published figures, not measured on this cluster
    space = "nb201"
    yardstick_ms = None  # in plain milliseconds, not in a yardstick's unit

    def predict(self, arch: Any, macro: Any = None) -> float:
        """Latency of a ``Cell`` or of an ``Architecture`` of the cell space (its ops per edge); ``macro``
        is ignored (the per-op tables' signature)."""
        return self.by_code[arch.code if isinstance(arch, Cell) else Cell(tuple(arch.ops)).code]

    @property
    def target(self) -> str:
        return self.device

    @property
    def batch_size(self) -> int:
        """The batch the device was timed at: ``_b<n>`` in its name, else one image."""
        found = re.search(r"_b(\d+)$", self.device)
        return int(found[1]) if found else 1

    @property
    def metadata(self) -> dict[str, str]:
        return {"provenance": "tabular lookup", "source": self.source, "estimated": "true"}

    def latency_range(self, macro: Any = None) -> tuple[float, float]:
        """Fastest and slowest connected cell (a disconnected cell never sets a budget)."""
        values = [self.by_code[c] for c in self.connected_codes] or list(self.by_code.values())
        return min(values), max(values)

    @cached_property
    def edge_fit(self) -> EdgeCosts:
        """Per-edge op costs fitted to this device's column (what a gradient search's latency loss reads)."""
        return EdgeCosts.fit(self.by_code, self.connected_codes or frozenset(self.by_code))

    @property
    def fixed_ms(self) -> float:
        return self.edge_fit.fixed_ms

    def layer_costs(self, macro: Any = None, choices: Any = None) -> list[list[float]]:
        """The fitted cost of each op on each edge, in ``OPS`` order (``choices`` must be that order);
        ``predict`` still answers the table's own figure for a whole cell."""
        if choices is not None and any(tuple(c) != OPS for c in choices):
            raise ValueError(f"a lookup target's edge costs are in NB201's op order {OPS}, not {choices}")
        return [list(row) for row in self.edge_fit.costs]


@dataclass(frozen=True)
class EdgeCosts:
    """Latency as fixed + the sum of one cost per (edge, op), fitted by least squares over cells; each
    edge's cheapest op costs 0 (its share moves into ``fixed_ms``), so costs are never negative."""

    fixed_ms: float
    costs: tuple[tuple[float, ...], ...]
    rms_ms: float  # root mean square residual of the fit over the cells it was fitted on

    @classmethod
    def fit(cls, by_code: dict[int, float], codes: frozenset[int]) -> EdgeCosts:
        cells = [Cell.from_code(c) for c in sorted(codes)]
        x = np.zeros((len(cells), len(EDGES) * len(OPS) + 1))
        x[:, -1] = 1.0
        for row, cell in enumerate(cells):
            x[row, [e * len(OPS) + OPS.index(op) for e, op in enumerate(cell.ops)]] = 1.0
        y = np.array([by_code[c.code] for c in cells])
        coef = np.linalg.lstsq(x, y, rcond=None)[0]
        per_edge = coef[:-1].reshape(len(EDGES), len(OPS))
        floor = per_edge.min(axis=1, keepdims=True)
        rms = float(np.sqrt(np.mean((x @ coef - y) ** 2)))
        return cls(float(coef[-1] + floor.sum()), tuple(map(tuple, (per_edge - floor).tolist())), rms)

    def predict(self, cell: Cell) -> float:
        return self.fixed_ms + sum(self.costs[e][OPS.index(op)] for e, op in enumerate(cell.ops))


@dataclass(frozen=True)
class TabularBenchmark:
    """The table: cells by NB201 index and every numeric column by name."""

    path: Path
    cells: tuple[Cell, ...]
    columns: dict[str, np.ndarray] = field(repr=False)

    @classmethod
    def load(cls, path: str | Path) -> TabularBenchmark:
        """Read and check the CSV; an unusable table is refused before any search starts."""
        path = Path(path)
        if not path.is_file():
            raise TabularError(f"tabular benchmark {path} does not exist; point it at nb201_hw.csv (../shared/data/nb201-hw/)")
        try:
            table = pacsv.read_csv(path)
        except (pa.ArrowInvalid, OSError) as exc:
            raise TabularError(f"tabular benchmark {path} is not a readable CSV ({exc}); restore the file") from None
        return cls(path, _cells(table, path), _numeric(table, path))

    @property
    def devices(self) -> list[str]:
        """Every device with a ``latency_ms.<device>`` column, in the table's order."""
        return [c.removeprefix(LATENCY_PREFIX) for c in self.columns if c.startswith(LATENCY_PREFIX)]

    @property
    def datasets(self) -> list[str]:
        """Every dataset with both a search-signal and a reported column."""
        signal = [c.removesuffix(SIGNAL_SUFFIX) for c in self.columns if c.endswith(SIGNAL_SUFFIX)]
        return [d for d in signal if d + REPORTED_SUFFIX in self.columns]

    def index_of(self, cell: Cell) -> int:
        """NB201's index of ``cell`` (the table's row)."""
        return int(self._index_by_code[cell.code])

    @cached_property
    def codes(self) -> np.ndarray:
        """Each row's ``Cell.code``."""
        return np.array([c.code for c in self.cells])

    @cached_property
    def _index_by_code(self) -> np.ndarray:
        return self.by_code(np.arange(len(self.cells)))

    def by_code(self, values: np.ndarray) -> np.ndarray:
        """Values given per row (NB201's index order) re-ordered by ``Cell.code``."""
        out = np.empty(NUM_CELLS, dtype=np.asarray(values).dtype)
        out[self.codes] = values
        return out

    def latency(self, device: str) -> LookupLatency:
        column = f"{LATENCY_PREFIX}{device}"
        if column not in self.columns:
            raise TabularError(f"{self.path.name} has no latency for device {device!r}; valid: {', '.join(self.devices)}")
        values = self.columns[column]
        by_code = {cell.code: float(v) for cell, v in zip(self.cells, values)}
        return LookupLatency(device, str(self.path), by_code, frozenset(c.code for c in self.cells if c.connected))

    @cached_property
    def connected(self) -> np.ndarray:
        """Whether each row's cell joins input to output (disconnected cells never define a budget)."""
        return np.array([c.connected for c in self.cells])

    def budgets(self, device: str, quantiles: tuple[float, ...] = BUDGET_QUANTILES) -> list[float]:
        """Latency bounds at ``quantiles`` of the device's latencies over the connected cells."""
        values = self.columns[f"{LATENCY_PREFIX}{device}"][self.connected]
        return [float(np.quantile(values, q)) for q in quantiles]


def _cells(table: pa.Table, path: Path) -> tuple[Cell, ...]:
    """The cells in NB201 index order; a table must hold the whole space, one row per cell."""
    missing = [c for c in ("index", "arch") if c not in table.column_names]
    if missing:
        raise TabularError(f"{path.name} has no {missing[0]!r} column; a tabular benchmark needs 'index' and 'arch' (NB201's string)")
    index = table.column("index").to_numpy()
    if len(index) != NUM_CELLS or not np.array_equal(index, np.arange(NUM_CELLS)):
        raise TabularError(f"{path.name} must hold all {NUM_CELLS} NB201 cells in index order, one row each (it has {len(index)} rows)")
    try:
        cells = tuple(Cell.from_string(text) for text in table.column("arch").to_pylist())
    except CellError as exc:
        raise TabularError(f"{path.name}: column 'arch': {exc}") from None
    if len({c.code for c in cells}) != NUM_CELLS:
        raise TabularError(f"{path.name}: column 'arch' lists a cell twice; every NB201 cell must appear once")
    return cells


def _numeric(table: pa.Table, path: Path) -> dict[str, np.ndarray]:
    """Every numeric column as float64; latency and accuracy columns must be numeric and complete."""
    out = {}
    for name in table.column_names:
        column = table.column(name)
        checked = name.startswith(LATENCY_PREFIX) or name.endswith((SIGNAL_SUFFIX, REPORTED_SUFFIX))
        if not (pa.types.is_integer(column.type) or pa.types.is_floating(column.type)):
            if checked:
                raise TabularError(f"{path.name}: column {name!r} must hold numbers, found {column.type}")
            continue
        values = column.to_numpy(zero_copy_only=False).astype(np.float64)
        if checked and not np.all(np.isfinite(values)):
            raise TabularError(f"{path.name}: column {name!r} has empty or non-finite cells; every cell must be filled")
        out[name] = values
    if not any(n.startswith(LATENCY_PREFIX) for n in out):
        raise TabularError(f"{path.name} has no latency_ms.<device> column: nothing to search for")
    return out
