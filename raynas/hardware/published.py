"""Latency tables as ProxylessNAS and Once-for-All publish them, read without conversion.

Both are mappings from a layer key to ``{count, mean, var}`` (ms)::

    Conv-input:224x224x3-output:112x112x32                                  # first conv
    expanded_conv-input:56x56x24-output:56x56x24-expand:3-kernel:5-stride:1-idskip:1
    Conv_1-input:7x7x320-output:7x7x1280                                    # feature mix
    Logits-input:7x7x1280-output:1000                                       # pool + classifier

ProxylessNAS's ``expand`` is the expansion ratio; Once-for-All's (``...-idskip:1-se:0-hs:0``) is the
number of middle channels, and its ``se`` / ``hs`` flags name squeeze-excite and h-swish, which
raynas's MBConv lacks: only ``se:0-hs:0`` entries are used. ``Conv`` and the first block form the
stem, ``Conv_1``, ``AvgPool2D`` and ``Logits`` the head. Keys the space needs and the table lacks
are listed in the error, in the table's own grammar.
"""

from __future__ import annotations

from pathlib import Path

from raynas.hardware.lut import LatencyTable, LatencyTableError
from raynas.space.macro import MacroConfig
from raynas.space.ops import SKIP, parse_mbconv

BLOCK = "expanded_conv"


def is_published(raw: dict) -> bool:
    """True for a ProxylessNAS / Once-for-All table: its keys are layer keys (``expanded_conv-input:...``)."""
    return any(isinstance(k, str) and k.startswith(f"{BLOCK}-input:") for k in raw)


def import_published(path: Path, raw: dict, macro: MacroConfig) -> LatencyTable:
    """Map a published table onto ``macro``: every (layer, op) entry, the stem and the head."""
    layers = {_parse(key, path): _mean(value, key, path) for key, value in raw.items()}
    ofa = any(name == "se" for fields in layers for name, _ in fields)
    entries, missing = {}, []
    for spec in macro.layers():
        for op in spec.choices:
            if op != SKIP:
                kernel, expansion = parse_mbconv(op)
                block = _block_key(
                    spec.input_size,
                    spec.in_channels,
                    spec.out_channels,
                    stride=spec.stride,
                    kernel=kernel,
                    expansion=expansion,
                    idskip=spec.residual,
                    ofa=ofa,
                )
                _take(layers, block, into_key=(spec.key, op), into=entries, missing=missing)
    fixed = {"stem": _sum(layers, _stem_keys(macro, ofa), missing), "head": _sum(layers, _head_keys(macro, layers), missing)}
    if missing:
        raise LatencyTableError(
            f"{path} lacks {len(set(missing))} layers of space {macro.name!r} "
            f"(in its {'Once-for-All' if ofa else 'ProxylessNAS'} key grammar): {', '.join(sorted(set(missing)))}"
        )
    meta = {
        "provenance": "external",
        "estimated": "true",
        "source": str(path),
        "format": "once-for-all" if ofa else "proxylessnas",
        "device": "as published (see source)",
    }
    return LatencyTable(path.stem, macro.name, macro.space_hash(), 1, entries, fixed, meta)


Fields = tuple[tuple[str, str], ...]  # a parsed key: (("type", "expanded_conv"), ("input", "56x56x24"), ...)


def _parse(key, path: Path) -> Fields:
    if not isinstance(key, str):
        raise LatencyTableError(f"{path}: key {key!r} is not a layer key like {BLOCK}-input:HxWxC-output:HxWxC-...")
    kind, *parts = key.split("-")
    pairs = [p.split(":", 1) for p in parts]
    if any(len(p) != 2 for p in pairs):
        raise LatencyTableError(f"{path}: key {key!r} is not a layer key like {BLOCK}-input:HxWxC-output:HxWxC-...")
    return (("type", kind), *((name, value) for name, value in pairs))


def _mean(value, key: str, path: Path) -> float:
    if not isinstance(value, dict) or not isinstance(value.get("mean"), (int, float)):
        raise LatencyTableError(f"{path}: entry {key!r} needs a numeric 'mean' (ms), as in {{count, mean, var}}")
    return float(value["mean"])


def _block_key(size: int, cin: int, cout: int, *, stride: int, kernel: int, expansion: int, idskip: bool, ofa: bool) -> Fields:
    out = (size + stride - 1) // stride
    fields = [
        ("type", BLOCK),
        ("input", f"{size}x{size}x{cin}"),
        ("output", f"{out}x{out}x{cout}"),
        ("expand", str(cin * expansion if ofa else expansion)),
        ("kernel", str(kernel)),
        ("stride", str(stride)),
        ("idskip", str(int(idskip))),
    ]
    return tuple(fields + ([("se", "0"), ("hs", "0")] if ofa else []))


def _stem_keys(macro: MacroConfig, ofa: bool) -> list[Fields]:
    size, out = macro.input_size, (macro.input_size + macro.stem_stride - 1) // macro.stem_stride
    keys = [(("type", "Conv"), ("input", f"{size}x{size}x{macro.in_channels}"), ("output", f"{out}x{out}x{macro.stem_channels}"))]
    if macro.first_block_channels:  # raynas's first block has no shortcut (build_stem)
        keys.append(
            _block_key(out, macro.stem_channels, macro.first_block_channels, stride=1, kernel=3, expansion=1, idskip=False, ofa=ofa)
        )
    return keys


def _head_keys(macro: MacroConfig, layers: dict[Fields, float]) -> list[Fields]:
    """Conv_1 at the last feature map; AvgPool2D where the table has one; Logits from the head's width
    (its class count is whatever the table was measured with)."""
    size, c, h = macro.final_size, macro.last_channels, macro.head_channels
    keys = [(("type", "Conv_1"), ("input", f"{size}x{size}x{c}"), ("output", f"{size}x{size}x{h}"))]
    pool = (("type", "AvgPool2D"), ("input", f"{size}x{size}x{h}"), ("output", f"1x1x{h}"))
    keys += [pool] if pool in layers else []
    logits = [k for k in layers if dict(k)["type"] == "Logits" and dict(k).get("input") in (f"{size}x{size}x{h}", f"1x1x{h}")]
    return keys + (logits[:1] or [(("type", "Logits"), ("input", f"{size}x{size}x{h}"), ("output", "<classes>"))])


def _take(layers: dict[Fields, float], key: Fields, *, into_key, into: dict, missing: list[str]) -> None:
    if key in layers:
        into[into_key] = layers[key]
    else:
        missing.append(format_key(key))


def _sum(layers: dict[Fields, float], keys: list[Fields], missing: list[str]) -> float:
    missing.extend(format_key(k) for k in keys if k not in layers)
    return sum(layers.get(k, 0.0) for k in keys)


def format_key(fields: Fields) -> str:
    """A parsed key in the table's own grammar."""
    kind, *rest = fields
    return "-".join([kind[1], *(f"{name}:{value}" for name, value in rest)])
