import pytest

from raynas.hardware.build import YARDSTICK_KEY, build_latency_table, measure_networks
from raynas.hardware.targets import TARGETS, get_target
from raynas.hardware.torch_cpu import measure_ms
from raynas.space.architecture import Architecture
from raynas.space.macro import get_space


def test_profiled_table_covers_the_space_with_positive_latencies():
    macro = get_space("mnist-small")
    table = build_latency_table(get_target("cpu-1t"), macro, 10, warmup=1, repeats=10, calibration_archs=1)
    table.check_space(macro)
    assert all(ms > 0 for ms in table.entries.values())
    assert table.fixed["stem"] > 0 and table.fixed["head"] > 0 and table.fixed["call"] > 0
    assert table.yardstick_ms > 0
    low, high = table.latency_range(macro)
    assert 0 < low < high
    assert {"device", "torch_version", "repeats", "threads"} <= set(table.metadata)


def test_interleaved_measurement_of_several_compiled_networks_keeps_their_order():
    slow, fast = Architecture("mnist-small", ("k7e6",) * 6), Architecture("mnist-small", ("k3e3", "skip") * 3)
    half = Architecture("mnist-small@w0.5", ("k3e6",) * 6)  # width-scaled references are measured too
    nets = {"slow": (slow, None), "fast": (fast, None), "half": (half, None)}
    times = measure_networks(nets, get_target("cpu-1t-b16"), 10, warmup=2, repeats=20)
    assert set(times) == {"slow", "fast", "half"} and times["slow"] > times["fast"] > 0 and times["half"] > 0


def test_registry_lists_targets_with_resource_labels():
    assert {"cpu-1t", "cpu-1t-b16", "cpu-all"} <= set(TARGETS.names())
    assert all(TARGETS.get(n).resource == f"raynas_target:{n}" for n in TARGETS.names())


def test_measure_ms_returns_one_latency_per_module():
    import torch

    result = measure_ms({"a": (torch.nn.Identity(), (1, 3)), "b": (torch.nn.Linear(3, 3), (1, 3))}, threads=1, warmup=1, repeats=10)
    assert set(result) == {"a", "b"} and all(v > 0 for v in result.values())


def test_table_built_on_cached_ops_adopts_the_cache_unit():
    """Cached op timings keep their yardstick unit, and new timings are taken in it, not in a new one."""
    macro, target = get_space("mnist-small"), get_target("cpu-1t")
    first = build_latency_table(target, macro, 10, warmup=1, repeats=10, calibration_archs=0)
    cached = first.entries | {YARDSTICK_KEY: 3 * first.yardstick_ms}
    second = build_latency_table(target, macro, 10, warmup=1, repeats=10, calibration_archs=0, known=cached)
    assert second.yardstick_ms == pytest.approx(3 * first.yardstick_ms, rel=0.3)
    assert second.entries == first.entries


def test_scale_fit_that_predicts_a_negative_fastest_network_is_rejected():
    """Four calibration networks whose whole-network time grows 1.9x as fast as their summed ops, minus
    a large constant: the fitted line would make the fastest network negative, so the offset is used."""
    from raynas.hardware.backend import Backend, register_backend
    from raynas.hardware.targets import HardwareTarget
    from raynas.space.network import ChildNetwork

    def measure(modules, threads, warmup, repeats, yardstick_ms=None):
        ms = {}
        for key, (module, _) in modules.items():
            layers = sum(op != "skip" for op in module.arch.ops) if isinstance(module, ChildNetwork) else 0
            ms[key] = 3.0 + 1.9 * layers - 9.0 if isinstance(module, ChildNetwork) else (0.0 if key == "call" else 1.0)
        return ms

    register_backend(Backend("linear-test", measure, lambda threads: {"num_cpus": 1}))
    target = HardwareTarget("linear-test-target", "linear-test", 1, 1, "a deterministic backend for the fit's guard")
    table = build_latency_table(target, get_space("mnist-small"), 10, warmup=0, repeats=1, calibration_archs=4, fit_scale=True)
    assert table.scale == 1.0 and "scale fit rejected" in table.metadata["correction"]
    assert table.fixed["overhead"] == pytest.approx(float(table.metadata["offset_only_overhead"]))


def _noisy_target(name: str, calm_after: int | None):
    """Whole networks measure far below their summed ops (a load spike during the op timings) for the
    first calls; from call ``calm_after`` on (None: never) they measure as stem + head + ops."""
    from raynas.hardware.backend import Backend, register_backend
    from raynas.hardware.targets import HardwareTarget
    from raynas.space.network import ChildNetwork

    calls = []

    def measure(modules, threads, warmup, repeats, yardstick_ms=None):
        nets = [k for k, (m, _) in modules.items() if isinstance(m, ChildNetwork)]
        if nets:
            calls.append(repeats)
        calm = calm_after is not None and len(calls) > calm_after
        return {
            k: ((2.0 + sum(op != "skip" for op in m.arch.ops)) if calm else 0.1)
            if isinstance(m, ChildNetwork)
            else (0.0 if k == "call" else 1.0)
            for k, (m, _) in modules.items()
        }

    register_backend(Backend(name, measure, lambda threads: {"num_cpus": 1}))
    return HardwareTarget(f"{name}-target", name, 1, 1, "a deterministic noisy backend"), calls


@pytest.mark.faults
def test_an_implausible_calibration_is_measured_again_with_more_networks_and_repeats():
    target, calls = _noisy_target("noisy-then-calm", calm_after=1)
    table = build_latency_table(target, get_space("mnist-small"), 10, warmup=0, repeats=10, calibration_archs=1)
    assert calls == [10, 20] and table.latency_range(get_space("mnist-small"))[0] > 0
    assert "after 1 implausible calibration" in table.metadata["correction"] and "-" in table.metadata["calibration_retries"]


@pytest.mark.faults
def test_a_machine_too_noisy_to_calibrate_gets_the_offset_free_table_instead_of_an_abort():
    target, calls = _noisy_target("always-noisy", calm_after=None)
    table = build_latency_table(target, get_space("mnist-small"), 10, warmup=0, repeats=10, calibration_archs=1)
    assert calls == [10, 20, 40] and (table.fixed["overhead"], table.scale) == (0.0, 1.0)
    assert table.metadata["correction"].startswith("offset-free") and table.latency_range(get_space("mnist-small"))[0] > 0


def test_calibration_spans_the_space_so_both_ends_of_the_range_are_predicted():
    """Whole networks cost more than their ops, and not in proportion (2 + 0.5 L + 0.1 L^2 for L
    layers that are not skips, each op timed alone at 1 ms): random networks alone sit at L = 5 or 6,
    and a line through them misses the fastest network; the calibration measures both ends."""
    from raynas.hardware.backend import Backend, register_backend
    from raynas.hardware.targets import HardwareTarget
    from raynas.space.network import ChildNetwork

    measured = {}

    def measure(modules, threads, warmup, repeats, yardstick_ms=None):
        ms = {}
        for key, (module, _) in modules.items():
            if isinstance(module, ChildNetwork):
                layers = sum(op != "skip" for op in module.arch.ops)
                ms[key] = measured[module.arch] = 2.0 + 0.5 * layers + 0.1 * layers**2
            else:
                ms[key] = 0.0 if key == "call" else 1.0
        return ms

    register_backend(Backend("curved-test", measure, lambda threads: {"num_cpus": 1}))
    target = HardwareTarget("curved-test-target", "curved-test", 1, 1, "a deterministic backend whose networks are not affine in ops")
    macro = get_space("mnist-small")
    table = build_latency_table(target, macro, 10, warmup=0, repeats=1, calibration_archs=4, fit_scale=True)
    fewest = min(measured, key=lambda a: sum(op != "skip" for op in a.ops))
    assert sum(op != "skip" for op in fewest.ops) == 3 and len(measured) == 4
    low, high = table.latency_range(macro)
    assert low == pytest.approx(measured[fewest], rel=0.1) and high == pytest.approx(2.0 + 0.5 * 6 + 0.1 * 36, rel=0.1)
