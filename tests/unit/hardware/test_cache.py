import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from raynas.hardware.build import build_latency_table, identity
from raynas.hardware.cache import CachedOps, OpCache
from raynas.hardware.lut import LatencyTableError
from raynas.hardware.targets import get_target
from raynas.space.macro import get_space

TARGET = get_target("cpu-1t")
MACRO = get_space("mnist-small")


def test_round_trip_and_reuse_on_the_same_setting(tmp_path):
    cache = OpCache(tmp_path, TARGET.name)
    assert cache.load(identity(TARGET)) == ({}, f"no op cache at {cache.path}: profiling every op")
    cache.save(CachedOps(identity(TARGET), {("in16x14-out24-s1", "k3e3"): 0.5}))
    entries, reason = OpCache(tmp_path, TARGET.name).load(identity(TARGET))
    assert entries == {("in16x14-out24-s1", "k3e3"): 0.5} and reason.startswith("reusing 1 cached")


def test_another_setting_is_not_reused_and_says_what_differs(tmp_path):
    OpCache(tmp_path, TARGET.name).save(CachedOps(identity(TARGET), {("a", "k3e3"): 0.5}))
    other = identity(TARGET) | {"torch_version": "0.0.1"}
    entries, reason = OpCache(tmp_path, TARGET.name).load(other)
    assert entries == {} and "torch_version differ" in reason


def test_unreadable_cache_is_refused_with_the_fix(tmp_path):
    pq.write_table(pa.table({"x": [1]}), tmp_path / "cpu-1t.parquet")
    with pytest.raises(LatencyTableError, match="delete it to re-profile"):
        OpCache(tmp_path, TARGET.name).read()


def test_known_ops_are_not_measured_again():
    known = {(s.key, op): 123.0 for s in MACRO.layers() for op in s.choices if op != "skip"}
    table = build_latency_table(TARGET, MACRO, 10, warmup=1, repeats=4, calibration_archs=0, known=known)
    assert table.entries == known
    assert 0 < table.fixed["stem"] < 123.0
