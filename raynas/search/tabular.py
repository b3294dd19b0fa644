"""Black-box searches scored against the truth on a tabular benchmark (NB201 on many devices).

A search sees only the search signal (``<dataset>_valid_12ep``) of the cells it proposes, and only
when they are feasible (latency <= budget on the device); an infeasible proposal is told as such,
never evaluated and never counted. What is reported of its pick (the cell with the best signal it
evaluated) is the held-out accuracy after 200 epochs (``<dataset>_test_200ep``), which the search
never reads: ``SignalOracle`` holds no other accuracy column. Regret is measured against the best
feasible cell of the whole table, in both columns.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

from raynas.hardware.tabular import LATENCY_PREFIX, REPORTED_SUFFIX, SIGNAL_SUFFIX, TabularBenchmark
from raynas.search.blackbox import AskTell
from raynas.search.driver import Told, next_feasible
from raynas.space.nb201 import Cell

MAX_EVALUATIONS = 100


@dataclass(frozen=True)
class SignalOracle:
    """What a search may read of one (dataset, device, budget): each cell's latency and, for feasible
    cells, its search signal. Arrays are indexed by ``Cell.code``."""

    signal: np.ndarray = field(repr=False)
    latency_ms: np.ndarray = field(repr=False)
    budget_ms: float

    @classmethod
    def of(cls, table: TabularBenchmark, dataset: str, *, device: str, budget_ms: float) -> SignalOracle:
        return cls(by_code(table, f"{dataset}{SIGNAL_SUFFIX}"), by_code(table, f"{LATENCY_PREFIX}{device}"), budget_ms)

    def feasible(self, cell: Cell) -> bool:
        return bool(self.latency_ms[cell.code] <= self.budget_ms)

    def score(self, cell: Cell) -> float:
        if not self.feasible(cell):
            raise ValueError(f"{cell.to_string()} is over the budget ({self.latency_ms[cell.code]:.4g} > {self.budget_ms:.4g} ms)")
        return float(self.signal[cell.code])


@dataclass(frozen=True)
class Trace:
    """One search's evaluations in order (cell codes and signals) and the infeasible proposals it was told of."""

    codes: tuple[int, ...]
    signals: tuple[float, ...]
    infeasible: int

    @property
    def pick(self) -> int:
        """The code of the best evaluated cell (the first of equals)."""
        return self.codes[int(np.argmax(self.signals))]


def run_search(search: AskTell, oracle: SignalOracle, *, evaluations: int = MAX_EVALUATIONS, max_proposals: int = 100_000) -> Trace:
    """Drive ``search`` until it has spent ``evaluations`` more feasible evaluations (each cell is
    scored once; asking a cell again costs nothing and is answered from the history, the search's
    own included, so a search resumed from its state goes on as it would have)."""
    codes: list[int] = []
    signals: list[float] = []
    told: Told = {c: score for c, score in search.history}
    before = sum(s is None for s in told.values())
    while len(codes) < evaluations:
        cell = next_feasible(search, oracle.feasible, told, max_proposals=max_proposals)
        score = oracle.score(cell)
        told[search.space.choices(cell)] = score
        codes.append(cell.code)
        signals.append(score)
        search.tell(cell, score)
    return Trace(tuple(codes), tuple(signals), sum(s is None for s in told.values()) - before)


@dataclass(frozen=True)
class Truth:
    """The optimum of one (dataset, device, budget), for regrets: the best feasible signal, the best
    feasible reported accuracy, and the reported accuracy of the best-signal cell (the floor a
    perfect search on the signal reaches)."""

    signal: np.ndarray = field(repr=False)
    reported: np.ndarray = field(repr=False)
    best_signal: float
    best_reported: float
    floor_regret: float

    @classmethod
    def of(cls, table: TabularBenchmark, dataset: str, *, device: str, budget_ms: float) -> Truth:
        signal, reported = by_code(table, f"{dataset}{SIGNAL_SUFFIX}"), by_code(table, f"{dataset}{REPORTED_SUFFIX}")
        feasible = by_code(table, f"{LATENCY_PREFIX}{device}") <= budget_ms
        best_by_signal = int(np.flatnonzero(feasible)[np.argmax(signal[feasible])])
        best_reported = float(reported[feasible].max())
        return cls(signal, reported, float(signal[feasible].max()), best_reported, best_reported - float(reported[best_by_signal]))

    def signal_regret(self, code: int) -> float:
        return self.best_signal - float(self.signal[code])

    def reported_regret(self, code: int) -> float:
        return self.best_reported - float(self.reported[code])


def by_code(table: TabularBenchmark, column: str) -> np.ndarray:
    """A column re-ordered by ``Cell.code`` (the table is in NB201's index order)."""
    return table.by_code(table.columns[column])


def run_front(search: Any, oracle: SignalOracle, *, evaluations: int = MAX_EVALUATIONS, max_proposals: int = 100_000) -> Trace:
    """Drive a two-objective search (NSGA-II) over the device's whole latency range: each new cell is
    told (signal, latency) and counted, a cell of its history answered at no cost; ``oracle.budget_ms``
    is ignored (every budget picks later)."""
    whole = SignalOracle(oracle.signal, oracle.latency_ms, float("inf"))
    codes: list[int] = []
    told: dict[int, tuple[float, float]] = {search.space.from_choices(c).code: tuple(values) for c, values in search.history}
    for _ in range(max_proposals):
        if len(codes) >= evaluations:
            break
        cell = search.ask()
        if cell.code not in told:
            told[cell.code] = (whole.score(cell), float(whole.latency_ms[cell.code]))
            codes.append(cell.code)
        search.tell(cell, told[cell.code])
    return Trace(tuple(codes), tuple(told[c][0] for c in codes), 0)
