"""Macro skeletons: the fixed stem, stage layout and head around the searchable layers."""

from __future__ import annotations

import hashlib
import json
from dataclasses import asdict, dataclass

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

    def num_architectures(self) -> int:
        total = 1
        for spec in self.layers():
            total *= len(spec.choices)
        return total


def _out_size(size: int, stride: int) -> int:
    return (size + stride - 1) // stride


SPACES: Registry[MacroConfig] = Registry("search space")
register_space = SPACES.add_named
get_space = SPACES.get


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
