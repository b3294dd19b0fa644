"""Macro skeletons: the fixed stem, stage layout and head around the searchable layers."""

from __future__ import annotations

import hashlib
import json
from dataclasses import asdict, dataclass, replace

from raynas._registry import Registry
from raynas.space.ops import MBCONV_OPS, SKIP


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

    @property
    def residual(self) -> bool:
        """Shortcut exists (and the zero op is allowed) when shape is preserved."""
        return self.stride == 1 and self.in_channels == self.out_channels

    @property
    def choices(self) -> tuple[str, ...]:
        return MBCONV_OPS + ((SKIP,) if self.residual else ())

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

    @property
    def stem_out_channels(self) -> int:
        return self.first_block_channels or self.stem_channels

    def layers(self) -> list[LayerSpec]:
        specs, in_ch, size = [], self.stem_out_channels, _out_size(self.input_size, self.stem_stride)
        for stage in self.stages:
            for d in range(stage.depth):
                stride = stage.stride if d == 0 else 1
                specs.append(LayerSpec(len(specs), in_ch, stage.channels, stride, size))
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
        """Stable fingerprint of the skeleton; LUTs and architectures carry it."""
        blob = json.dumps(asdict(self), sort_keys=True).encode()
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

SPACES: Registry[MacroConfig] = Registry("search space")
register_space = SPACES.add_named


def scaled_name(space: str, width_mult: float) -> str:
    """Name of ``space`` at a width multiplier (the space itself at 1.0)."""
    return space if width_mult == 1.0 else f"{space}{WIDTH_SEP}{width_mult:g}"


def get_space(name: str) -> MacroConfig:
    """A registered space, or a width-scaled variant of one named ``<space>@w<multiplier>``."""
    base, sep, mult = name.partition(WIDTH_SEP)
    if not sep:
        return SPACES.get(name)
    try:
        width = float(mult)
    except ValueError:
        raise KeyError(f"search space {name!r}: width multiplier {mult!r} is not a number") from None
    if not 0 < width <= 4:
        raise KeyError(f"search space {name!r}: width multiplier must lie in (0, 4]")
    return SPACES.get(base).scaled(width)


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
