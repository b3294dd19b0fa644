import json

import pytest
import yaml

from raynas.hardware.estimates import DeviceSpec, import_table, mbconv_cost, roofline_ms, roofline_table
from raynas.hardware.lut import LatencyTableError
from raynas.space.architecture import Architecture
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


MOBILE = get_space("proxyless-mobile")
# (input size, in, out, stride, depth) of proxyless-mobile's stages, written out here so the expected
# sums below do not come from the code under test
MOBILE_STAGES = [(112, 16, 24, 2, 4), (56, 24, 40, 2, 4), (28, 40, 80, 2, 4), (14, 80, 96, 1, 4), (14, 96, 192, 2, 4), (7, 192, 320, 1, 1)]


def _block(size, cin, cout, stride, expand, kernel, tail=""):
    out = size // stride
    return (
        f"expanded_conv-input:{size}x{size}x{cin}-output:{out}x{out}x{cout}-expand:{expand}-kernel:{kernel}-stride:{stride}"
        f"-idskip:{int(stride == 1 and cin == cout)}{tail}"
    )


def _all_k3e6_keys(expand=lambda cin, e: e, tail=""):
    keys = ["Conv-input:224x224x3-output:112x112x32", _block(112, 32, 16, 1, expand(32, 1), 3, tail).replace("idskip:1", "idskip:0")]
    for size, cin, cout, stride, depth in MOBILE_STAGES:
        keys.append(_block(size, cin, cout, stride, expand(cin, 6), 3, tail))
        keys += [_block(size // stride, cout, cout, 1, expand(cout, 6), 3, tail)] * (depth - 1)
    return keys + ["Conv_1-input:7x7x320-output:7x7x1280", "Logits-input:7x7x1280-output:1000"]


def test_the_published_pixel1_table_imports_as_published():
    from tests.conftest import shared_data

    path = shared_data("latency-tables/pixel1_mobile_trim.yaml")
    raw = yaml.safe_load(path.read_text())
    table = import_table(path, MOBILE)
    table.check_space(MOBILE)
    first = MOBILE.layers()[0]
    assert (
        table.entries[(first.key, "k3e3")]
        == raw["expanded_conv-input:112x112x16-output:56x56x24-expand:3-kernel:3-stride:2-idskip:0"]["mean"]
    )
    all_k3e6 = Architecture(MOBILE.name, tuple("k3e6" for _ in MOBILE.layers()))
    assert table.predict(all_k3e6, MOBILE) == pytest.approx(sum(raw[k]["mean"] for k in _all_k3e6_keys()))
    assert table.metadata["format"] == "proxylessnas" and table.metadata["estimated"] == "true"


def _ofa_table(with_plain: bool) -> dict:
    """A table in Once-for-All's MobileNetV3 grammar for proxyless-mobile: mid channels as expand,
    se/hs flags, an AvgPool2D entry; squeeze-excite entries always, plain ones only ``with_plain``."""
    table = {}
    for op in ("k3e3", "k3e6", "k5e3", "k5e6", "k7e3", "k7e6"):
        k, e = parse_mbconv(op)
        for spec in MOBILE.layers():
            out = spec.input_size // spec.stride
            base = (
                f"expanded_conv-input:{spec.input_size}x{spec.input_size}x{spec.in_channels}-output:{out}x{out}x{spec.out_channels}"
                f"-expand:{spec.in_channels * e}-kernel:{k}-stride:{spec.stride}-idskip:{int(spec.residual)}"
            )
            table[base + "-se:1-hs:1"] = {"count": 1, "mean": 9.0, "var": 0.0}
            if with_plain:
                table[base + "-se:0-hs:0"] = {"count": 1, "mean": 0.1 * k + e, "var": 0.0}
    table[_block(112, 32, 16, 1, 32, 3, "-se:0-hs:0")] = {"count": 1, "mean": 1.0, "var": 0.0}
    for key in (
        "Conv-input:224x224x3-output:112x112x32",
        "Conv_1-input:7x7x320-output:7x7x1280",
        "AvgPool2D-input:7x7x1280-output:1x1x1280",
        "Logits-input:1x1x1280-output:1000",
    ):
        table[key] = {"count": 1, "mean": 0.5, "var": 0.0}
    return table


def test_once_for_all_keys_map_mid_channels_and_skip_squeeze_excite(tmp_path):
    (tmp_path / "ofa.yaml").write_text(yaml.safe_dump(_ofa_table(with_plain=True)))
    table = import_table(tmp_path / "ofa.yaml", MOBILE)
    assert table.metadata["format"] == "once-for-all"
    assert table.entries[(MOBILE.layers()[5].key, "k7e3")] == pytest.approx(3.7)
    assert table.fixed == {"stem": 1.5, "head": 1.5}  # Conv + first block; Conv_1 + AvgPool2D + Logits


def test_a_published_table_without_the_spaces_ops_names_the_missing_keys(tmp_path):
    (tmp_path / "se-only.yaml").write_text(yaml.safe_dump(_ofa_table(with_plain=False)))
    with pytest.raises(
        LatencyTableError,
        match=r"lacks 66 layers .*Once-for-All.*"
        r"expanded_conv-input:112x112x16-output:56x56x24-expand:48-kernel:3-stride:2-idskip:0-se:0-hs:0",
    ):
        import_table(tmp_path / "se-only.yaml", MOBILE)
    (tmp_path / "bad.yaml").write_text(
        yaml.safe_dump({"expanded_conv-input:1x1x1-output:1x1x1-expand:1-kernel:3-stride:1-idskip:0": {"count": 3}})
    )
    with pytest.raises(LatencyTableError, match="needs a numeric 'mean'"):
        import_table(tmp_path / "bad.yaml", MOBILE)
