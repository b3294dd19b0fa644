import json

import pytest
import yaml

from raynas.hardware.estimates import DeviceSpec, import_table, mbconv_cost, roofline_ms, roofline_table
from raynas.hardware.lut import LatencyTableError
from raynas.space.macro import get_space
from raynas.space.ops import SKIP, parse_mbconv

MACRO = get_space("mnist-small")
PHONE = DeviceSpec("phone", peak_gflops=20.0, bandwidth_gbs=10.0, op_overhead_us=30.0)


def external_ops():
    ops = []
    for spec in MACRO.layers():
        for op in spec.choices:
            if op != SKIP:
                k, e = parse_mbconv(op)
                key = {"input": [spec.input_size, spec.input_size, spec.in_channels], "out_channels": spec.out_channels}
                ops.append(key | {"expansion": e, "kernel": k, "stride": spec.stride, "latency_ms": 0.1 * k + e + spec.index})
    return ops


@pytest.mark.parametrize("suffix", [".yaml", ".json"])
def test_external_table_maps_onto_the_space_and_is_labelled_estimated(tmp_path, suffix):
    doc = {"target": "pixel1", "device": "Pixel 1", "fixed": {"stem": 1.0, "head": 2.0}, "ops": external_ops()}
    path = tmp_path / f"pixel1{suffix}"
    path.write_text(json.dumps(doc) if suffix == ".json" else yaml.safe_dump(doc))
    table = import_table(path, MACRO)
    table.check_space(MACRO)
    spec = MACRO.layers()[3]
    assert table.entries[(spec.key, "k5e6")] == pytest.approx(0.5 + 6 + 3)
    assert table.fixed_ms == 3.0 and table.target == "pixel1"
    assert table.metadata["estimated"] == "true" and table.metadata["provenance"] == "external"


def test_external_table_missing_ops_are_listed_by_key(tmp_path):
    ops = external_ops()
    dropped = ops.pop(0)
    (tmp_path / "t.yaml").write_text(yaml.safe_dump({"ops": ops}))
    h, w, c = dropped["input"]
    with pytest.raises(LatencyTableError, match=f"lacks 1 ops .*input:{h}x{w}x{c}-out:{dropped['out_channels']}-expand:3-kernel:3"):
        import_table(tmp_path / "t.yaml", MACRO)


def test_malformed_external_tables_name_the_problem(tmp_path):
    (tmp_path / "a.yaml").write_text(yaml.safe_dump({"ops": [{"input": [1, 1, 1]}]}))
    with pytest.raises(LatencyTableError, match=r"ops\[0\] needs the fields"):
        import_table(tmp_path / "a.yaml", MACRO)
    (tmp_path / "b.json").write_text("{not json")
    with pytest.raises(LatencyTableError, match="not valid JSON"):
        import_table(tmp_path / "b.json", MACRO)
    with pytest.raises(LatencyTableError, match="does not exist"):
        import_table(tmp_path / "none.yaml", MACRO)


def test_roofline_is_monotone_in_flops_and_bytes():
    for flops in (1e6, 1e8, 1e10):
        assert roofline_ms(flops, 1e6, PHONE) <= roofline_ms(flops * 2, 1e6, PHONE)
        assert roofline_ms(1e6, flops, PHONE) <= roofline_ms(1e6, flops * 2, PHONE)
    assert roofline_ms(0, 0, PHONE) == pytest.approx(0.03)


def test_roofline_table_orders_ops_by_work_and_is_labelled_estimated():
    table = roofline_table(PHONE, MACRO, batch=1)
    for spec in MACRO.layers():
        assert table.entries[(spec.key, "k3e3")] < table.entries[(spec.key, "k7e6")]
        assert mbconv_cost(spec, "k3e6", 1)[0] > mbconv_cost(spec, "k3e3", 1)[0]
    assert table.metadata["estimated"] == "true" and table.metadata["provenance"] == "roofline"
    assert table.latency_range(MACRO)[0] > 0
