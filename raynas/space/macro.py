"""Macro skeletons: the fixed stem, stage layout and head around the searchable layers."""

from __future__ import annotations

import hashlib
import json
from dataclasses import asdict, dataclass, replace

from raynas._registry import Registry
from raynas.space.ops import EXPANSIONS, KERNELS, MBCONV_OPS, SKIP, mbconv_ops


@dataclass(frozen=True)
class Stage:
    """A run of ``depth`` searchable layers; the first one changes width and applies ``stride``."""

    channels: int  # output channels of every layer in the stage
    depth: int  # number of searchable layers
    stride: int  # stride of the first layer (1 or 2)


@dataclass(frozen=True)
class LayerSpec:
    """The fixed shape of one searchable layer."""

    index: int
    in_channels: int
    out_channels: int
    stride: int
    input_size: int  # spatial size of the layer's input (square)
    ops: tuple[str, ...] = MBCONV_OPS  # the space's MBConv candidates

    @property
    def residual(self) -> bool:
        """Shortcut exists (and the zero op is allowed) when shape is preserved."""
        return self.stride == 1 and self.in_channels == self.out_channels

    @property
    def choices(self) -> tuple[str, ...]:
        return self.ops + ((SKIP,) if self.residual else ())

    @property
    def key(self) -> str:
        """Shape key used by latency tables: identical shapes share measurements."""
        return f"in{self.in_channels}x{self.input_size}-out{self.out_channels}-s{self.stride}"


@dataclass(frozen=True)
class MacroConfig:
    """Everything about the network except the per-layer op choices."""

    name: str
    input_size: int  # square input resolution
    in_channels: int  # image channels (1 for MNIST, 3 for CIFAR)
    stem_channels: int  # output channels of the 3x3 stem conv
    stem_stride: int
    stages: tuple[Stage, ...]
    head_channels: int  # 1x1 conv width before global pooling
    first_block_channels: int = 0  # >0: a fixed MBConv k3 e1 after the stem (ProxylessNAS / MobileNetV2)
    kernels: tuple[int, ...] = KERNELS
    expansions: tuple[int, ...] = EXPANSIONS

    @property
    def stem_out_channels(self) -> int:
        return self.first_block_channels or self.stem_channels

    def layers(self) -> list[LayerSpec]:
        specs, in_ch, size = [], self.stem_out_channels, _out_size(self.input_size, self.stem_stride)
        ops = mbconv_ops(self.kernels, self.expansions)
        for stage in self.stages:
            for d in range(stage.depth):
                stride = stage.stride if d == 0 else 1
                specs.append(LayerSpec(len(specs), in_ch, stage.channels, stride, size, ops))
                in_ch, size = stage.channels, _out_size(size, stride)
        return specs

    @property
    def last_channels(self) -> int:
        return self.stages[-1].channels

    @property
    def final_size(self) -> int:
        last = self.layers()[-1]
        return _out_size(last.input_size, last.stride)

    def space_hash(self) -> str:
        """Stable fingerprint of the skeleton; LUTs and architectures carry it. Default op sets are
        left out, so spaces defined before they were configurable keep their hash."""
        fields = asdict(self)
        for name, default in (("kernels", KERNELS), ("expansions", EXPANSIONS)):
            if tuple(fields[name]) == default:
                del fields[name]
        blob = json.dumps(fields, sort_keys=True).encode()
        return hashlib.sha256(blob).hexdigest()[:16]

    def scaled(self, width_mult: float) -> MacroConfig:
        """The same skeleton with every width times ``width_mult`` (MobileNetV2's multiplier).

        Widths round to multiples of 8; the head keeps its width below 1.0, as in MobileNetV2.
        """
        w = _divisible
        return replace(
            self,
            name=scaled_name(self.name, width_mult),
            stem_channels=w(self.stem_channels * width_mult),
            first_block_channels=w(self.first_block_channels * width_mult) if self.first_block_channels else 0,
            stages=tuple(replace(s, channels=w(s.channels * width_mult)) for s in self.stages),
            head_channels=w(self.head_channels * max(width_mult, 1.0)),
        )

    def at_resolution(self, size: int) -> MacroConfig:
        """The same skeleton fed ``size`` x ``size`` inputs (OFA's elastic resolution)."""
        return replace(self, name=self.name if size == self.input_size else f"{self.name}{RESOLUTION_SEP}{size}", input_size=size)

    def stage_layers(self) -> list[range]:
        """Indices of each stage's searchable layers, in order."""
        bounds = [0]
        for stage in self.stages:
            bounds.append(bounds[-1] + stage.depth)
        return [range(a, b) for a, b in zip(bounds, bounds[1:])]

    def num_architectures(self) -> int:
        total = 1
        for spec in self.layers():
            total *= len(spec.choices)
        return total


def _out_size(size: int, stride: int) -> int:
    return (size + stride - 1) // stride


def _divisible(channels: float, divisor: int = 8) -> int:
    """Round to the nearest multiple of ``divisor``, never down by more than 10% (MobileNetV2's rule)."""
    out = max(divisor, int(channels + divisor / 2) // divisor * divisor)
    return out + divisor if out < 0.9 * channels else out


WIDTH_SEP = "@w"  # "mnist-small@w0.5": the registered space at half width
RESOLUTION_SEP = "@r"  # "mnist-ofa@r24": the registered space fed 24 x 24 inputs

SPACES: Registry[MacroConfig] = Registry("search space")
register_space = SPACES.add_named


def scaled_name(space: str, width_mult: float) -> str:
    """Name of ``space`` at a width multiplier (the space itself at 1.0)."""
    return space if width_mult == 1.0 else f"{space}{WIDTH_SEP}{width_mult:g}"


def get_space(name: str) -> MacroConfig:
    """A registered space, or a variant of one: ``<space>@w<width multiplier>``, ``<space>@r<input size>``."""
    base, *variants = name.split("@")
    macro = SPACES.get(base)
    for variant in variants:
        kind, value = variant[:1], variant[1:]
        if kind == "w":
            macro = macro.scaled(_number(name, value, float, what="width multiplier", low=0, high=4))
        elif kind == "r":
            macro = macro.at_resolution(_number(name, value, int, what="input size", low=8, high=1024))
        else:
            raise KeyError(f"search space {name!r}: unknown variant {'@' + variant!r}; use @w<width multiplier> or @r<input size>")
    return macro


def base_name(space: str) -> str:
    """The registered space a variant name derives from."""
    return space.split("@")[0]


def _number(name: str, text: str, kind: type, *, what: str, low: float, high: float):
    try:
        value = kind(text)
    except ValueError:
        raise KeyError(f"search space {name!r}: {what} {text!r} is not a number") from None
    if not low < value <= high:
        raise KeyError(f"search space {name!r}: {what} must lie in ({low:g}, {high:g}]")
    return value


register_space(
    MacroConfig(
        name="mnist-small",
        input_size=28,
        in_channels=1,
        stem_channels=16,
        stem_stride=2,
        stages=(Stage(24, 2, 1), Stage(40, 2, 2), Stage(64, 2, 2)),
        head_channels=128,
    )
)
register_space(
    MacroConfig(
        name="cifar",
        input_size=32,
        in_channels=3,
        stem_channels=24,
        stem_stride=1,
        stages=(Stage(32, 3, 2), Stage(64, 3, 2), Stage(96, 3, 1), Stage(160, 3, 2)),
        head_channels=640,
    )
)
register_space(
    MacroConfig(
        name="cifar-small",  # CIFAR-sized and CPU-trainable (about 250 images/s per core at k3e6): the 2-core sweeps
        input_size=32,
        in_channels=3,
        stem_channels=16,
        stem_stride=1,
        stages=(Stage(24, 2, 2), Stage(40, 3, 2), Stage(80, 3, 2)),
        head_channels=256,
    )
)
register_space(
    MacroConfig(
        name="cifar-ofa",  # the Once-for-All space at CIFAR scale: cifar-small's layout, depth 2-4 per stage, expansion 3/4/6
        input_size=32,
        in_channels=3,
        stem_channels=16,
        stem_stride=1,
        stages=(Stage(24, 4, 2), Stage(40, 4, 2), Stage(80, 4, 2)),
        head_channels=256,
        expansions=(3, 4, 6),
    )
)
register_space(
    MacroConfig(
        name="proxyless-mobile",
        input_size=224,
        in_channels=3,
        stem_channels=32,
        stem_stride=2,
        first_block_channels=16,
        stages=(Stage(24, 4, 2), Stage(40, 4, 2), Stage(80, 4, 2), Stage(96, 4, 1), Stage(192, 4, 2), Stage(320, 1, 1)),
        head_channels=1280,
    )
)
register_space(
    MacroConfig(
        name="mnist-ofa",  # the Once-for-All space at MNIST scale: depth 2-4 per stage, kernel 3/5/7, expansion 3/4/6
        input_size=28,
        in_channels=1,
        stem_channels=16,
        stem_stride=2,
        stages=(Stage(24, 4, 1), Stage(40, 4, 2), Stage(64, 4, 2)),
        head_channels=128,
        expansions=(3, 4, 6),
    )
)
