"""Candidate operations of a searchable layer: MBConv variants and the zero op."""

from __future__ import annotations

import itertools
import re

from torch import nn

KERNELS = (3, 5, 7)
EXPANSIONS = (3, 6)
SKIP = "skip"
_MBCONV = re.compile(r"k([1-9])e([1-9])")


def mbconv_ops(kernels: tuple[int, ...] = KERNELS, expansions: tuple[int, ...] = EXPANSIONS) -> tuple[str, ...]:
    """Op names of every (kernel, expansion) pair, e.g. ``k5e6``."""
    return tuple(f"k{k}e{e}" for k, e in itertools.product(kernels, expansions))


MBCONV_OPS = mbconv_ops()


def parse_mbconv(op: str) -> tuple[int, int]:
    """``"k5e6"`` -> (kernel 5, expansion 6)."""
    match = _MBCONV.fullmatch(op)
    if match is None or int(match[1]) % 2 == 0:
        raise ValueError(f"unknown op {op!r}; an MBConv op is k<odd kernel>e<expansion> (e.g. k5e6) or {SKIP!r}")
    return int(match[1]), int(match[2])


class MBConv(nn.Module):
    """Mobile inverted bottleneck: 1x1 expand, kxk depthwise, 1x1 linear project."""

    def __init__(self, in_ch: int, out_ch: int, *, kernel: int, expansion: int, stride: int) -> None:
        super().__init__()
        mid = in_ch * expansion
        self.expand = _conv_bn(in_ch, mid, 1, stride=1, groups=1, act=True) if expansion != 1 else nn.Identity()
        self.depthwise = _conv_bn(mid, mid, kernel, stride=stride, groups=mid, act=True)
        self.project = _conv_bn(mid, out_ch, 1, stride=1, groups=1, act=False)

    def forward(self, x):
        return self.project(self.depthwise(self.expand(x)))


def _conv_bn(in_ch: int, out_ch: int, kernel: int, *, stride: int, groups: int, act: bool) -> nn.Sequential:
    layers: list[nn.Module] = [
        nn.Conv2d(in_ch, out_ch, kernel, stride, kernel // 2, groups=groups, bias=False),
        nn.BatchNorm2d(out_ch),
    ]
    if act:
        layers.append(nn.ReLU6(inplace=True))
    return nn.Sequential(*layers)


def conv_bn_act(in_ch: int, out_ch: int, kernel: int, *, stride: int) -> nn.Sequential:
    """Plain conv + BN + ReLU6, used by stems and heads."""
    return _conv_bn(in_ch, out_ch, kernel, stride=stride, groups=1, act=True)


def build_op(op: str, in_ch: int, out_ch: int, *, stride: int) -> nn.Module:
    """One candidate op as a module; ``skip`` is the ProxylessNAS zero op (contributes nothing)."""
    if op == SKIP:
        return Zero()
    kernel, expansion = parse_mbconv(op)
    return MBConv(in_ch, out_ch, kernel=kernel, expansion=expansion, stride=stride)


class Zero(nn.Module):
    """The zero op: its layer reduces to the residual shortcut, i.e. the layer is skipped."""

    def forward(self, x):
        return x.new_zeros(())
