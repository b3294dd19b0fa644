"""The NB201 cell space: strings and codes round-trip, connectivity, the network's shapes; against the
shipped table (skipped without it): every string, and parameters and FLOPs equal to the table's."""

from __future__ import annotations

import random

import pytest
import torch
from hypothesis import given
from hypothesis import strategies as st

from raynas.space.nb201 import EDGES, NUM_CELLS, OPS, Cell, CellError, NB201Network, all_cells, flops_m, parameters_m
from tests.conftest import shared_data

INDEX0 = "|avg_pool_3x3~0|+|nor_conv_1x1~0|skip_connect~1|+|nor_conv_1x1~0|skip_connect~1|skip_connect~2|"


@given(st.integers(0, NUM_CELLS - 1))
def test_codes_and_strings_round_trip(code):
    cell = Cell.from_code(code)
    assert cell.code == code and Cell.from_string(cell.to_string()) == cell


def test_the_space_has_every_cell_once_and_nb201s_string_form():
    cells = all_cells()
    assert len({c.to_string() for c in cells}) == NUM_CELLS == 5**6
    assert Cell.from_string(INDEX0).ops == ("avg_pool_3x3", "nor_conv_1x1", "skip_connect", "nor_conv_1x1", "skip_connect", "skip_connect")
    assert Cell.from_string(INDEX0).to_string() == INDEX0


@pytest.mark.parametrize(
    "text",
    [
        INDEX0.replace("avg_pool_3x3", "max_pool_3x3"),  # not an NB201 op
        INDEX0.replace("skip_connect~2", "skip_connect~1"),  # an edge from the wrong node
        INDEX0.rsplit("+", 1)[0],  # a node missing
        "k3e6|skip",
    ],
)
def test_a_string_outside_the_space_is_refused(text):
    with pytest.raises(CellError):
        Cell.from_string(text)


def test_a_cell_is_connected_only_through_non_none_edges():
    assert Cell(("none",) * 3 + ("skip_connect", "none", "none")).connected  # 0 -> 3 directly
    assert not Cell(("nor_conv_3x3", "none", "none", "none", "none", "skip_connect")).connected  # node 2 never reached
    assert sum(not c.connected for c in all_cells()) == 341  # as the table's README counts


def test_the_network_classifies_and_a_disconnected_cell_outputs_a_constant():
    torch.manual_seed(0)
    x = torch.randn(4, 3, 32, 32)
    assert NB201Network(Cell.from_string(INDEX0), 10)(x).shape == (4, 10)
    dead = NB201Network(Cell(("none",) * len(EDGES)), 10).eval()
    out = dead(x)
    assert torch.allclose(out, out[:1].expand_as(out))


def test_parameters_and_flops_equal_the_tables_for_a_sample_of_cells():
    import pyarrow.csv as pacsv

    rows = pacsv.read_csv(shared_data("nb201-hw") / "nb201_hw.csv").select(["index", "arch", "params_m", "flops_m"]).to_pylist()
    sample = [rows[0], rows[1462]] + random.Random(0).sample(rows, 10)  # index 1462: the largest network
    for row in sample:
        net = NB201Network(Cell.from_string(row["arch"]), 10)
        assert parameters_m(net) == pytest.approx(row["params_m"], abs=1e-6), row["arch"]
        assert flops_m(net) == pytest.approx(row["flops_m"], abs=1e-5), row["arch"]
    assert {op for row in rows for op in Cell.from_string(row["arch"]).ops} == set(OPS)
