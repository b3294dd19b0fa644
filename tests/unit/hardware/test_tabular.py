"""The tabular benchmark reader: the shipped table (skipped without it) and tables that must be refused."""

from __future__ import annotations

import csv

import numpy as np
import pytest

from raynas.hardware.tabular import TabularBenchmark, TabularError
from raynas.space.nb201 import NUM_CELLS, Cell
from tests.conftest import shared_data


@pytest.fixture(scope="module")
def table() -> TabularBenchmark:
    return TabularBenchmark.load(shared_data("nb201-hw") / "nb201_hw.csv")


def test_the_shipped_table_holds_every_cell_its_devices_and_datasets(table):
    assert len(table.cells) == NUM_CELLS
    assert all(table.index_of(cell) == i for i, cell in enumerate(table.cells))
    assert len(table.devices) >= 10 and {"raspi4", "pixel3", "fpga"} <= set(table.devices)
    assert table.datasets == ["cifar10", "cifar100"]
    assert int((~table.connected).sum()) == 341


def test_a_devices_latency_is_a_lookup_by_cell_and_budgets_ignore_disconnected_cells(table):
    model = table.latency("raspi4")
    largest = table.cells[1462]
    assert model.predict(largest) == table.columns["latency_ms.raspi4"][1462] and model.estimated
    low, mid, high = table.budgets("raspi4")
    assert low < mid < high
    connected = table.columns["latency_ms.raspi4"][table.connected]
    assert low == pytest.approx(np.quantile(connected, 0.25)) and low > 2.5  # disconnected cells run in 0.01 ms
    with pytest.raises(TabularError, match="valid: raspi4"):
        table.latency("tpu")


def write(path, header, rows):
    with open(path, "w", newline="") as f:
        csv.writer(f).writerows([header, *rows])
    return path


def test_unusable_tables_are_refused_naming_the_problem(tmp_path):
    with pytest.raises(TabularError, match="does not exist"):
        TabularBenchmark.load(tmp_path / "missing.csv")
    with pytest.raises(TabularError, match="no 'arch' column"):
        TabularBenchmark.load(write(tmp_path / "a.csv", ["index", "latency_ms.x"], [[0, 1.0]]))
    with pytest.raises(TabularError, match="all 15625 NB201 cells"):
        TabularBenchmark.load(write(tmp_path / "b.csv", ["index", "arch", "latency_ms.x"], [[0, Cell.from_code(0).to_string(), 1.0]]))
    rows = [[i, Cell.from_code(i).to_string(), "" if i == 7 else 1.0] for i in range(NUM_CELLS)]
    with pytest.raises(TabularError, match="'latency_ms.x' has empty or non-finite cells"):
        TabularBenchmark.load(write(tmp_path / "c.csv", ["index", "arch", "latency_ms.x"], rows))
    rows = [[i, Cell.from_code(i).to_string(), 0.5] for i in range(NUM_CELLS)]
    table = TabularBenchmark.load(write(tmp_path / "d.csv", ["index", "arch", "latency_ms.x", "extra"], [r + ["note"] for r in rows]))
    assert table.devices == ["x"] and table.datasets == [] and "extra" not in table.columns
