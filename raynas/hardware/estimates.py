"""Latency tables for hardware we cannot reach: imported per-op tables and roofline estimates.

Both produce an ordinary ``LatencyTable`` whose metadata says ``provenance`` (``external`` or
``roofline``) and ``estimated: true``, so every output built on it can say it was not measured here.

External format (YAML or JSON), keyed like ProxylessNAS's mobile tables::

    target: pixel1
    device: Google Pixel 1, TFLite, 1 thread
    batch_size: 1
    fixed: {stem: 1.5, head: 2.1}          # ms; optional
    ops:
      - {input: [14, 14, 40], out_channels: 40, expansion: 6, kernel: 5, stride: 1, latency_ms: 3.2}

or a table as ProxylessNAS and Once-for-All publish it (raynas/hardware/published.py), detected by its keys.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import yaml

from raynas.hardware.lut import LatencyTable, LatencyTableError
from raynas.hardware.published import import_published, is_published
from raynas.space.macro import LayerSpec, MacroConfig
from raynas.space.ops import SKIP, parse_mbconv

_OP_FIELDS = ("input", "out_channels", "expansion", "kernel", "stride", "latency_ms")


def import_table(path: str | Path, macro: MacroConfig) -> LatencyTable:
    """Read an external per-op table and map it onto ``macro``; missing ops are listed by key."""
    path = Path(path)
    raw = _read(path)
    if is_published(raw):
        return import_published(path, raw, macro)
    ops = raw.get("ops")
    if not isinstance(ops, list) or not ops:
        raise LatencyTableError(f"{path}: needs a non-empty 'ops' list of {{{', '.join(_OP_FIELDS)}}}")
    known = {_key(entry, path, i): float(entry["latency_ms"]) for i, entry in enumerate(ops)}
    entries, missing = {}, []
    for spec in macro.layers():
        for op in spec.choices:
            if op == SKIP:
                continue
            key = _spec_key(spec, op)
            if key in known:
                entries[(spec.key, op)] = known[key]
            else:
                missing.append(_format(key))
    if missing:
        raise LatencyTableError(f"{path} lacks {len(missing)} ops of space {macro.name!r}: {', '.join(sorted(set(missing)))}")
    meta = {"provenance": "external", "estimated": "true", "source": str(path), "device": str(raw.get("device", "unknown"))}
    fixed = {k: float(v) for k, v in (raw.get("fixed") or {}).items()}
    return LatencyTable(
        str(raw.get("target", path.stem)), macro.name, macro.space_hash(), int(raw.get("batch_size", 1)), entries, fixed, meta
    )


def _read(path: Path) -> dict:
    if not path.is_file():
        raise LatencyTableError(f"external latency table {path} does not exist")
    try:
        raw = json.loads(path.read_text()) if path.suffix == ".json" else yaml.safe_load(path.read_text())
    except (json.JSONDecodeError, yaml.YAMLError) as exc:
        raise LatencyTableError(f"{path} is not valid {'JSON' if path.suffix == '.json' else 'YAML'}: {exc}") from None
    if not isinstance(raw, dict):
        raise LatencyTableError(f"{path} must hold a mapping: 'ops' (raynas's format) or layer keys (ProxylessNAS / Once-for-All)")
    return raw


def _key(entry, path: Path, index: int) -> tuple:
    if not isinstance(entry, dict) or any(f not in entry for f in _OP_FIELDS):
        raise LatencyTableError(f"{path}: ops[{index}] needs the fields {', '.join(_OP_FIELDS)}")
    h, w, c = entry["input"]
    return (int(h), int(w), int(c), int(entry["out_channels"]), int(entry["expansion"]), int(entry["kernel"]), int(entry["stride"]))


def _spec_key(spec: LayerSpec, op: str) -> tuple:
    kernel, expansion = parse_mbconv(op)
    return (spec.input_size, spec.input_size, spec.in_channels, spec.out_channels, expansion, kernel, spec.stride)


def _format(key: tuple) -> str:
    h, w, c, out, e, k, s = key
    return f"input:{h}x{w}x{c}-out:{out}-expand:{e}-kernel:{k}-stride:{s}"


@dataclass(frozen=True)
class DeviceSpec:
    """What a roofline needs: peak arithmetic, memory bandwidth, and a fixed cost per op call."""

    name: str
    peak_gflops: float  # attainable multiply-add throughput, in GFLOP/s (2 FLOPs per MAC)
    bandwidth_gbs: float  # memory bandwidth, GB/s
    op_overhead_us: float = 0.0  # launch / dispatch cost per op


def mbconv_cost(spec: LayerSpec, op: str, batch: int, *, bytes_per_value: int = 4) -> tuple[float, float]:
    """(FLOPs, bytes moved) of one MBConv call: expand 1x1, depthwise kxk, project 1x1."""
    kernel, expansion = parse_mbconv(op)
    h, cin, cout = spec.input_size, spec.in_channels, spec.out_channels
    mid, ho = cin * expansion, (spec.input_size + spec.stride - 1) // spec.stride
    macs = h * h * cin * mid * (expansion != 1) + ho * ho * mid * kernel * kernel + ho * ho * mid * cout
    activations = h * h * cin + h * h * mid * (expansion != 1) * 2 + ho * ho * mid * 2 + ho * ho * cout
    weights = cin * mid * (expansion != 1) + mid * kernel * kernel + mid * cout
    return 2.0 * macs * batch, float(bytes_per_value * (activations * batch + weights))


def roofline_ms(flops: float, nbytes: float, device: DeviceSpec) -> float:
    """max(compute time, memory time) + per-op overhead, in ms."""
    return max(flops / (device.peak_gflops * 1e9), nbytes / (device.bandwidth_gbs * 1e9)) * 1e3 + device.op_overhead_us / 1e3


def roofline_table(device: DeviceSpec, macro: MacroConfig, batch: int = 1) -> LatencyTable:
    """An analytic table from a device spec; labelled estimated."""
    entries = {
        (spec.key, op): roofline_ms(*mbconv_cost(spec, op, batch), device) for spec in macro.layers() for op in spec.choices if op != SKIP
    }
    meta = {
        "provenance": "roofline",
        "estimated": "true",
        "device": device.name,
        "peak_gflops": str(device.peak_gflops),
        "bandwidth_gbs": str(device.bandwidth_gbs),
    }
    return LatencyTable(f"roofline:{device.name}", macro.name, macro.space_hash(), batch, entries, {}, meta)


def estimated_table(
    target: str, macro: MacroConfig, *, table: str | Path | None = None, device: DeviceSpec | None = None, batch_size: int = 1
) -> LatencyTable:
    """The latency table of an unreachable target: imported from ``table`` or a roofline of ``device``."""
    lut = import_table(table, macro) if table is not None else roofline_table(device, macro, batch_size)
    lut.target = target
    return lut
