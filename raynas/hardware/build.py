"""Building a latency table by profiling every candidate op at its real input shape on a target."""

from __future__ import annotations

import datetime as _dt
import platform
import statistics
from typing import Hashable

import torch
from torch import nn

from raynas.hardware.accuracy import sample_architectures
from raynas.hardware.backend import get_backend, yardstick
from raynas.hardware.lut import LatencyTable
from raynas.hardware.targets import HardwareTarget
from raynas.hardware.timing import Latencies
from raynas.space.architecture import Architecture
from raynas.space.catalog import build_network, image_shape
from raynas.space.macro import MacroConfig
from raynas.space.network import ChildNetwork, Head, ResidualLayer, build_stem
from raynas.space.ops import SKIP
from raynas.weights import load_numpy_state

YARDSTICK_KEY = ("__yardstick__", "ms")  # the unit of cached op timings, kept beside them


def build_latency_table(
    target: HardwareTarget,
    macro: MacroConfig,
    num_classes: int,
    *,
    warmup: int,
    repeats: int,
    calibration_archs: int,
    seed: int = 0,
    fit_scale: bool = False,
    known: dict[tuple[str, str], float] | None = None,
) -> LatencyTable:
    """Profile ops (all but those ``known`` already), stem and head; then calibrate the overhead on whole random networks.

    Each isolated module is one runtime call, so the cost of an empty call (an identity: about
    20 us in ONNX Runtime, 1 us in torch eager) is taken off every entry and counted once per
    network. Known ops come with their unit (``YARDSTICK_KEY``), which the new timings then share.
    """
    torch.manual_seed(seed)
    b = target.batch_size
    known = known or {}
    modules = {}
    for spec in macro.layers():
        for op in spec.choices:
            if op != SKIP and (spec.key, op) not in modules and (spec.key, op) not in known:
                modules[(spec.key, op)] = (ResidualLayer(spec, op), (b, spec.in_channels, spec.input_size, spec.input_size))
    modules["stem"] = (build_stem(macro), (b, macro.in_channels, macro.input_size, macro.input_size))
    modules["head"] = (Head(macro, num_classes), (b, macro.last_channels, macro.final_size, macro.final_size))
    modules["call"] = (nn.Identity(), (b, 1, 1, 1))  # the runtime's cost of any call, paid once per network
    modules["yardstick"] = (yardstick(), get_backend(target.backend).yardstick_shape)  # the table's unit: this session's, or the op cache's
    unit = known.get(YARDSTICK_KEY)
    ms = target.measure(modules, warmup=warmup, repeats=repeats, yardstick_ms=unit)
    call = ms["call"]
    table = LatencyTable(
        target=target.name,
        space=macro.name,
        space_hash=macro.space_hash(),
        batch_size=b,
        entries=_needed(macro, known) | {k: max(v - call, 0.0) for k, v in ms.items() if isinstance(k, tuple)},
        fixed={"stem": max(ms["stem"] - call, 0.0), "head": max(ms["head"] - call, 0.0), "call": call},
        metadata=_metadata(target, warmup, repeats) | {"yardstick_ms": str(unit or ms["yardstick"])},
    )
    calibrate_plausibly(
        table,
        target,
        macro,
        num_classes=num_classes,
        warmup=warmup,
        repeats=repeats,
        n=calibration_archs,
        seed=seed,
        fit_scale=fit_scale,
    )
    return table


CALIBRATION_RETRIES = 2  # each retry doubles the calibration networks (at least 4) and the repeats


def calibrate_plausibly(table: LatencyTable, target, macro, *, num_classes, warmup, repeats, n, seed, fit_scale: bool) -> None:
    """Calibrate; while the result predicts a non-positive latency for the fastest network (a busy
    machine, few networks), measure again with more networks and repeats; after ``CALIBRATION_RETRIES``
    use the offset-free table (summed ops, scale 1), saying so in its metadata. Never aborts a run."""
    tries = []
    for attempt in range(CALIBRATION_RETRIES + 1):
        _calibrate(
            table, target, macro, num_classes=num_classes, warmup=warmup, repeats=repeats, n=n, seed=seed + attempt, fit_scale=fit_scale
        )
        fastest = table.latency_range(macro)[0]
        if fastest > 0:
            break
        tries.append(f"{table.metadata['correction']} predicted {fastest:.3f} ms for the fastest network")
        n, repeats = max(4, 2 * n), 2 * repeats
    else:
        table.fixed["overhead"], table.scale = 0.0, 1.0
        table.metadata["correction"] = "offset-free (overhead 0, scale 1): every calibration was implausible"
    if tries:
        table.metadata["calibration_retries"] = "; ".join(tries)
        table.metadata["correction"] += f" (after {len(tries)} implausible calibration(s); see calibration_retries)"


def _needed(macro: MacroConfig, known: dict[tuple[str, str], float]) -> dict[tuple[str, str], float]:
    """The known entries this space uses."""
    return {(s.key, op): known[(s.key, op)] for s in macro.layers() for op in s.choices if (s.key, op) in known}


def identity(target: HardwareTarget) -> dict[str, str]:
    """What must match for op timings to be reused: device, library, threads, batch."""
    meta = _metadata(target, 0, 0)
    return {k: meta[k] for k in ("backend", "threads", "device", "allocator", "torch_version")} | {
        "batch_size": str(target.batch_size),
        "timing": "ops eager (torch) or as the shipped file (ONNX, ExecuTorch), warm yardstick, call cost apart",
    }


def _calibrate(table: LatencyTable, target, macro, *, num_classes, warmup, repeats, n, seed, fit_scale: bool) -> None:
    """Calibrate whole networks = stem + head + overhead + scale * (sum of isolated ops) on ``n`` nets
    spanning the space (``calibration_architectures``).

    Without ``fit_scale`` only the overhead is fitted (median gap, scale 1). With it and 4 or more
    networks, a least-squares line fits both (the pipeline's default). Once each entry excludes the
    empty-call cost, neither is consistently better on the CPU targets here (MAPE within 0.5 points,
    experiments/bench/latency_accuracy.py); the offset-only overhead is kept in the metadata. A line
    that predicts a non-positive latency for the fastest network of the space is not used.
    """
    table.fixed["overhead"], table.scale = 0.0, 1.0
    if n <= 0:
        return
    archs = calibration_architectures(table, macro, n, seed=seed)
    nets = {a.arch_id: (ChildNetwork(a, num_classes), input_shape(macro, target)) for a in archs}
    measured = target.measure_networks(nets, warmup=warmup, repeats=repeats, yardstick_ms=table.yardstick_ms)
    ops = [table.predict(a, macro) - table.fixed_ms for a in archs]
    gaps = [measured[a.arch_id] - table.fixed_ms for a in archs]
    offset_only = statistics.median(g - o for g, o in zip(gaps, ops))
    table.metadata["offset_only_overhead"] = str(offset_only)
    table.fixed["overhead"] = offset_only
    note = ""
    if fit_scale and n >= 4 and statistics.pvariance(ops) > 0:
        slope, intercept = statistics.linear_regression(ops, gaps)
        if 0.5 <= slope <= 2.0:
            table.fixed["overhead"], table.scale = intercept, slope
        if table.latency_range(macro)[0] <= 0:  # a noisy line through few networks, extrapolated to the fastest
            table.fixed["overhead"], table.scale, note = (
                offset_only,
                1.0,
                f" (scale fit rejected: it predicted {intercept + slope * min(ops):.3f} ms of ops for the fastest calibration network)",
            )
    table.metadata["correction"] = f"overhead {table.fixed['overhead']:.4f} ms, scale {table.scale:.4f} from {n} networks{note}"


def calibration_architectures(table: LatencyTable, macro: MacroConfig, n: int, *, seed: int) -> list[Architecture]:
    """The fastest and the slowest network by summed ops, then random ones (``n`` < 3: random only).

    Random networks cluster in the middle of the range, and a line fitted through them alone misses
    the ends that budgets reach (on mnist-ofa/cpu-1t: 0.10 ms predicted, 0.36 ms measured for the fastest).
    """
    if n < 3:
        return sample_architectures(macro, n, seed)
    ends = table.range_ends(macro)
    ids = {a.arch_id for a in ends}
    rest = [a for a in sample_architectures(macro, n, seed) if a.arch_id not in ids]
    return ends + rest[: n - len(ends)]


def measure_network(arch: Architecture, target: HardwareTarget, num_classes: int, *, warmup: int, repeats: int, state=None) -> float:
    """End-to-end latency in ms of the standalone network of ``arch`` on ``target``."""
    return measure_networks({"net": (arch, state)}, target, num_classes, warmup=warmup, repeats=repeats)["net"]


def measure_networks(
    nets: dict[Hashable, tuple[Architecture, dict | None]],
    target: HardwareTarget,
    num_classes: int,
    *,
    warmup: int,
    repeats: int,
    yardstick_ms: float | None = None,
) -> Latencies:
    """End-to-end latency in ms of several networks, timed in interleaved rounds: slow drifts of the
    machine hit them all alike, so their latencies compare fairly (NAS versus baselines, say).
    Pass a table's ``yardstick_ms`` to measure in that table's unit (raynas/hardware/timing.py)."""
    modules = {}
    for key, (arch, state) in nets.items():
        net = build_network(arch, num_classes)
        if state is not None:
            load_numpy_state(net, state)
        channels, side = image_shape(arch.space)
        modules[key] = (net, (target.batch_size, channels, side, side))
    return target.measure_networks(modules, warmup=warmup, repeats=repeats, yardstick_ms=yardstick_ms)


def input_shape(macro: MacroConfig, target: HardwareTarget) -> tuple[int, ...]:
    return (target.batch_size, macro.in_channels, macro.input_size, macro.input_size)


def _metadata(target: HardwareTarget, warmup: int, repeats: int) -> dict[str, str]:
    return {
        "backend": target.backend,
        "threads": str(target.num_threads()),
        "device": _device_name(target),
        "allocator": target.allocator,
        "torch_version": torch.__version__,
        "warmup": str(warmup),
        "repeats": str(repeats),
        "created": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
    }


def _device_name(target: HardwareTarget) -> str:
    """What the target's latencies depend on: the GPU model for a CUDA target, else the CPU model."""
    if target.backend == "torch-cuda" and torch.cuda.is_available():
        return torch.cuda.get_device_name()
    return _cpu_name()


def _cpu_name() -> str:
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()
