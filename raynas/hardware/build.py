"""Building a latency table by profiling every candidate op at its real input shape on a target."""

from __future__ import annotations

import datetime as _dt
import platform
import random
import statistics

import torch

from raynas.hardware.lut import LatencyTable, LatencyTableError
from raynas.hardware.profiler import measure_ms
from raynas.hardware.targets import HardwareTarget
from raynas.space.architecture import Architecture
from raynas.space.macro import MacroConfig, get_space
from raynas.space.network import ChildNetwork, Head, ResidualLayer, build_stem
from raynas.space.ops import SKIP
from raynas.weights import load_numpy_state


def build_latency_table(
    target: HardwareTarget, macro: MacroConfig, num_classes: int, warmup: int, repeats: int, calibration_archs: int, seed: int = 0
) -> LatencyTable:
    """Profile ops, stem and head; then calibrate the per-network overhead on whole random networks."""
    torch.manual_seed(seed)
    b = target.batch_size
    modules = {}
    for spec in macro.layers():
        for op in spec.choices:
            if op != SKIP and (spec.key, op) not in modules:
                modules[(spec.key, op)] = (ResidualLayer(spec, op), (b, spec.in_channels, spec.input_size, spec.input_size))
    modules["stem"] = (build_stem(macro), (b, macro.in_channels, macro.input_size, macro.input_size))
    modules["head"] = (Head(macro, num_classes), (b, macro.last_channels, macro.final_size, macro.final_size))
    ms = measure_ms(modules, target.num_threads(), warmup, repeats)
    table = LatencyTable(
        target=target.name,
        space=macro.name,
        space_hash=macro.space_hash(),
        batch_size=b,
        entries={k: v for k, v in ms.items() if isinstance(k, tuple)},
        fixed={"stem": ms["stem"], "head": ms["head"]},
        metadata=_metadata(target, warmup, repeats),
    )
    table.fixed["overhead"] = _calibrate_overhead(table, target, macro, num_classes, warmup, repeats, calibration_archs, seed)
    fastest = table.latency_range(macro)[0]
    if fastest <= 0:
        raise LatencyTableError(
            f"target {target.name!r}: whole networks measured {-table.fixed['overhead']:.3f} ms faster than their summed ops, "
            f"so the fastest network would take {fastest:.3f} ms; the machine is too noisy for this table: raise profile.repeats"
        )
    return table


def _calibrate_overhead(table, target, macro, num_classes, warmup, repeats, n, seed) -> float:
    """Median of (measured - summed) latency over ``n`` random networks: framework per-call cost."""
    if n <= 0:
        return 0.0
    rng = random.Random(seed)
    archs = [Architecture(macro.name, tuple(rng.choice(s.choices) for s in macro.layers())) for _ in range(n)]
    nets = {a.arch_id: (ChildNetwork(a, num_classes), _input_shape(macro, target)) for a in archs}
    measured = measure_ms(nets, target.num_threads(), warmup, repeats)
    return statistics.median(measured[a.arch_id] - table.predict(a, macro) for a in archs)


def measure_network(arch: Architecture, target: HardwareTarget, num_classes: int, warmup: int, repeats: int, state=None) -> float:
    """End-to-end latency in ms of the standalone network of ``arch`` on ``target``."""
    net = ChildNetwork(arch, num_classes)
    if state is not None:
        load_numpy_state(net, state)
    return measure_ms({"net": (net, _input_shape(get_space(arch.space), target))}, target.num_threads(), warmup, repeats)["net"]


def _input_shape(macro: MacroConfig, target: HardwareTarget) -> tuple[int, ...]:
    return (target.batch_size, macro.in_channels, macro.input_size, macro.input_size)


def _metadata(target: HardwareTarget, warmup: int, repeats: int) -> dict[str, str]:
    return {
        "backend": target.backend,
        "threads": str(target.num_threads()),
        "device": _cpu_name(),
        "torch_version": torch.__version__,
        "warmup": str(warmup),
        "repeats": str(repeats),
        "created": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
    }


def _cpu_name() -> str:
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()
