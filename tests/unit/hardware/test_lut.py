import pytest
import torch

from raynas.hardware.lut import LatencyTable, LatencyTableError
from raynas.space.architecture import Architecture
from raynas.space.macro import get_space
from raynas.space.ops import SKIP

MACRO = get_space("mnist-small")


def synthetic_table(scale: float = 1.0) -> LatencyTable:
    """Every op costs (kernel + expansion) * 0.01 * (layer index + 1) * scale ms."""
    entries = {}
    for spec in MACRO.layers():
        for op in spec.choices:
            if op != SKIP:
                entries[(spec.key, op)] = (int(op[1]) + int(op[3])) * 0.01 * (spec.index + 1) * scale
    return LatencyTable(
        "cpu-1t", MACRO.name, MACRO.space_hash(), 1, entries, {"stem": 0.1, "head": 0.2, "overhead": 0.05}, {"device": "test"}
    )


def test_predict_is_fixed_plus_the_chosen_ops():
    table = synthetic_table()
    arch = Architecture(MACRO.name, ("k3e3", SKIP, "k7e6", "k5e3", "k3e6", SKIP))
    manual = 0.35 + 0.06 * 1 + 0 + 0.13 * 3 + 0.08 * 4 + 0.09 * 5 + 0
    assert table.predict(arch, MACRO) == pytest.approx(manual)


def test_expected_latency_is_the_probability_weighted_sum_and_differentiable():
    table = synthetic_table()
    alphas = [torch.zeros(len(s.choices), requires_grad=True) for s in MACRO.layers()]
    probs = [torch.softmax(a, 0) for a in alphas]
    expected = table.expected(probs, MACRO)
    uniform = table.fixed_ms + sum(sum(row) / len(row) for row in table.layer_costs(MACRO))
    assert expected.item() == pytest.approx(uniform, rel=1e-6)
    expected.backward()
    costs = table.layer_costs(MACRO)[1]
    grad = alphas[1].grad
    assert int(grad.argmax()) == costs.index(max(costs)) and int(grad.argmin()) == costs.index(min(costs))


def test_latency_range_brackets_every_architecture():
    table = synthetic_table()
    low, high = table.latency_range(MACRO)
    fastest = Architecture(
        MACRO.name, tuple(min(s.choices, key=lambda o: 0 if o == SKIP else int(o[1]) + int(o[3])) for s in MACRO.layers())
    )
    assert table.predict(fastest, MACRO) == pytest.approx(low)
    assert low < table.predict(Architecture(MACRO.name, ("k7e6",) * 6), MACRO) == pytest.approx(high)


def test_scale_multiplies_op_costs_but_not_the_fixed_part():
    table = synthetic_table()
    arch = Architecture(MACRO.name, ("k3e3", SKIP, "k7e6", "k5e3", "k3e6", SKIP))
    ops = table.predict(arch, MACRO) - table.fixed_ms
    table.scale = 1.25
    assert table.predict(arch, MACRO) == pytest.approx(table.fixed_ms + 1.25 * ops)


def test_parquet_round_trip_keeps_entries_and_metadata(tmp_path):
    table = synthetic_table()
    table.scale = 0.93
    loaded = LatencyTable.load(table.save(tmp_path / "t.parquet"))
    assert loaded.entries == table.entries and loaded.fixed == table.fixed and loaded.scale == 0.93
    assert (loaded.target, loaded.space, loaded.space_hash, loaded.batch_size) == ("cpu-1t", MACRO.name, MACRO.space_hash(), 1)
    assert loaded.metadata["device"] == "test"


@pytest.mark.faults
def test_table_of_another_space_is_refused():
    with pytest.raises(LatencyTableError, match="built for space 'mnist-small'"):
        synthetic_table().check_space(get_space("cifar"))


@pytest.mark.faults
def test_missing_ops_are_refused_by_name():
    table = synthetic_table()
    spec = MACRO.layers()[2]
    del table.entries[(spec.key, "k7e6")]
    with pytest.raises(LatencyTableError, match=f"lacks 1 ops: {spec.key}/k7e6"):
        table.layer_costs(MACRO)


@pytest.mark.faults
def test_unreadable_or_foreign_files_are_refused(tmp_path):
    bad = tmp_path / "bad.parquet"
    bad.write_bytes(b"PAR1 not really")
    with pytest.raises(LatencyTableError, match="cannot read latency table"):
        LatencyTable.load(bad)
    import pyarrow as pa
    import pyarrow.parquet as pq

    pq.write_table(pa.table({"x": [1]}), tmp_path / "foreign.parquet")
    with pytest.raises(LatencyTableError, match="not a raynas latency table"):
        LatencyTable.load(tmp_path / "foreign.parquet")
