"""Standalone networks: stem, one chosen op per layer, head. The pruned supernet is one of these."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from raynas.space.architecture import Architecture
from raynas.space.macro import LayerSpec, MacroConfig, get_space
from raynas.space.ops import SKIP, MBConv, build_op, conv_bn_act


def build_stem(macro: MacroConfig) -> nn.Module:
    """3x3 conv, then the fixed first MBConv (kernel 3, expansion 1) where the space has one."""
    stem = conv_bn_act(macro.in_channels, macro.stem_channels, 3, stride=macro.stem_stride)
    if not macro.first_block_channels:
        return stem
    return nn.Sequential(stem, MBConv(macro.stem_channels, macro.first_block_channels, kernel=3, expansion=1, stride=1))


class Head(nn.Module):
    """1x1 conv to ``head_channels``, global average pool, linear classifier."""

    def __init__(self, macro: MacroConfig, num_classes: int) -> None:
        super().__init__()
        self.conv = conv_bn_act(macro.last_channels, macro.head_channels, 1, stride=1)
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.classifier = nn.Linear(macro.head_channels, num_classes)

    def forward(self, x):
        return self.classifier(self.pool(self.conv(x)).flatten(1))


class ResidualLayer(nn.Module):
    """One chosen op with the MobileNetV2 shortcut when the shape allows it."""

    def __init__(self, spec: LayerSpec, op: str) -> None:
        super().__init__()
        self.op = build_op(op, spec.in_channels, spec.out_channels, stride=spec.stride)
        self.residual = spec.residual

    def forward(self, x):
        out = self.op(x)
        return out + x if self.residual else out


def resize_input(x: torch.Tensor, size: int) -> torch.Tensor:
    """Bilinear resize to the network's input resolution (OFA's elastic resolution); a no-op at that size."""
    return x if x.shape[-1] == size else F.interpolate(x, size=(size, size), mode="bilinear", align_corners=False)


class ChildNetwork(nn.Module):
    """The network of one architecture; skipped layers are removed, not zero-multiplied.

    Inputs of another size are resized to the space's resolution first, so one data pipeline
    feeds networks of every resolution variant (``<space>@r<size>``).
    """

    def __init__(self, arch: Architecture, num_classes: int) -> None:
        super().__init__()
        macro = get_space(arch.space)
        self.arch = arch
        self.stem = build_stem(macro)
        self.layers = nn.Sequential(*(ResidualLayer(spec, op) for spec, op in zip(macro.layers(), arch.ops) if op != SKIP))
        self.head = Head(macro, num_classes)
        self.input_size = macro.input_size

    def forward(self, x):
        return self.head(self.layers(self.stem(resize_input(x, self.input_size))))
