"""The Once-for-All elastic supernet (Cai et al., 2020): one set of weights for every subnet.

Each layer keeps only its largest MBConv (largest kernel, largest expansion):
* elastic kernel: a smaller kernel is the centre of the next larger one, passed through a small
  learned (k*k x k*k) transform shared by the layer's channels (7 -> 5 -> 3);
* elastic width: expansion e uses the first ``in_channels * e`` hidden channels; ``sort_channels``
  orders them by importance (L1 norm of the projection weights) before width is shrunk;
* elastic depth: a stage runs its first ``d`` layers (the first is always kept); the rest are
  ``skip`` in the architecture, so an OFA subnet is an ordinary ``Architecture`` of the space;
* elastic resolution: the space's ``@r<size>`` variants; inputs are resized to the subnet's size.
"""

from __future__ import annotations

import itertools
from typing import Sequence

import torch
import torch.nn.functional as F
from torch import nn

from raynas.compute import CPU, Compute
from raynas.parallel import GlobalBatchNorm2d, group_batch_norm, grouped, momentum_of
from raynas.space.architecture import Architecture
from raynas.space.macro import LayerSpec, MacroConfig, base_name, get_space
from raynas.space.network import ChildNetwork, Head, build_stem, resize_input
from raynas.space.ops import SKIP, parse_mbconv
from raynas.supernet.scoring import FixedBatches, PathScoring


def sliced_batch_norm(x: torch.Tensor, bn: nn.BatchNorm2d, channels: int) -> torch.Tensor:
    """BatchNorm over the first ``channels`` of ``bn``; running statistics update in place, with
    ``nn.BatchNorm2d``'s own momentum rule. In a data-parallel group whose BatchNorms were made global
    (``compute.batch_norm: global``, raynas/parallel.py) a training batch is normalized with the
    global batch's statistics, as every other BatchNorm of the network; with ``local``, with its own."""
    training = bn.training or not bn.track_running_stats
    momentum = momentum_of(bn) if bn.training else 0.0
    mean, var = bn.running_mean[:channels], bn.running_var[:channels]
    if training and isinstance(bn, (GlobalBatchNorm2d, nn.SyncBatchNorm)) and grouped():
        return group_batch_norm(x, (mean, var), (bn.weight[:channels], bn.bias[:channels]), momentum=momentum, eps=bn.eps)
    return F.batch_norm(x, mean, var, bn.weight[:channels], bn.bias[:channels], training, momentum, bn.eps)


class ElasticMBConv(nn.Module):
    """The largest MBConv of a layer, runnable at any smaller (kernel, expansion) of the space."""

    def __init__(self, spec: LayerSpec, kernels: tuple[int, ...], expansions: tuple[int, ...]) -> None:
        super().__init__()
        self.spec, self.kernels = spec, tuple(sorted(kernels, reverse=True))
        mid = spec.in_channels * max(expansions)
        self.expand_conv, self.expand_bn = nn.Conv2d(spec.in_channels, mid, 1, bias=False), nn.BatchNorm2d(mid)
        self.depthwise_conv = nn.Conv2d(mid, mid, self.kernels[0], spec.stride, self.kernels[0] // 2, groups=mid, bias=False)
        self.depthwise_bn = nn.BatchNorm2d(mid)
        self.project_conv, self.project_bn = nn.Conv2d(mid, spec.out_channels, 1, bias=False), nn.BatchNorm2d(spec.out_channels)
        self.kernel_transforms = nn.ParameterDict({str(k): nn.Parameter(torch.eye(k * k)) for k in self.kernels[1:]})
        self.kernel, self.expansion = self.kernels[0], max(expansions)

    def kernel_weight(self, kernel: int) -> torch.Tensor:
        """Depthwise weights at ``kernel``: centre crops, each through its transform, largest first."""
        weight = self.depthwise_conv.weight
        for k in self.kernels[1:]:
            if k < kernel:
                break
            start = (weight.shape[-1] - k) // 2
            crop = weight[:, :, start : start + k, start : start + k]
            weight = (crop.reshape(-1, k * k) @ self.kernel_transforms[str(k)]).reshape(crop.shape)
        return weight

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        mid = self.spec.in_channels * self.expansion
        x = F.relu6(sliced_batch_norm(F.conv2d(x, self.expand_conv.weight[:mid]), self.expand_bn, mid))
        x = F.conv2d(x, self.kernel_weight(self.kernel)[:mid], None, self.spec.stride, self.kernel // 2, 1, mid)
        x = F.relu6(sliced_batch_norm(x, self.depthwise_bn, mid))
        x = F.conv2d(x, self.project_conv.weight[:, :mid])
        return sliced_batch_norm(x, self.project_bn, self.spec.out_channels)

    @torch.no_grad()
    def sort_channels(self) -> None:
        """Order hidden channels by importance so every width keeps the most important ones."""
        order = self.project_conv.weight.abs().sum(dim=(0, 2, 3)).argsort(descending=True)
        self.project_conv.weight.copy_(self.project_conv.weight[:, order])
        for conv, bn in ((self.expand_conv, self.expand_bn), (self.depthwise_conv, self.depthwise_bn)):
            conv.weight.copy_(conv.weight[order])
            for tensor in (bn.weight, bn.bias, bn.running_mean, bn.running_var):
                tensor.copy_(tensor[order])

    @torch.no_grad()
    def export(self, target: nn.Module) -> None:
        """Copy the active (kernel, expansion) weights into a standalone ``MBConv``."""
        mid = self.spec.in_channels * self.expansion
        parts = (
            (target.expand, self.expand_conv.weight[:mid], self.expand_bn, mid),
            (target.depthwise, self.kernel_weight(self.kernel)[:mid], self.depthwise_bn, mid),
            (target.project, self.project_conv.weight[:, :mid], self.project_bn, self.spec.out_channels),
        )
        for (conv, bn, *_), weight, source_bn, channels in parts:
            conv.weight.copy_(weight)
            for name in ("weight", "bias", "running_mean", "running_var"):
                getattr(bn, name).copy_(getattr(source_bn, name)[:channels])


class ElasticSupernet(PathScoring, nn.Module):
    """Shared weights of every OFA subnet of a space: kernel, expansion, depth and resolution."""

    def __init__(self, macro: MacroConfig, num_classes: int, *, min_depth: int = 2, resolutions: tuple[int, ...] = ()) -> None:
        super().__init__()
        self.macro, self.num_classes, self.min_depth = macro, num_classes, min_depth
        self.resolutions = tuple(sorted(resolutions or (macro.input_size,)))
        self.stem = build_stem(macro)
        self.layers = nn.ModuleList(ElasticMBConv(spec, macro.kernels, macro.expansions) for spec in macro.layers())
        self.head = Head(macro, num_classes)
        self.max_depths = tuple(len(stage) for stage in macro.stage_layers())
        self.depths = list(self.max_depths)
        self.resolution = macro.input_size

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.stem(resize_input(x, self.resolution))
        for stage, depth in zip(self.macro.stage_layers(), self.depths):
            for i in stage[:depth]:
                out = self.layers[i](x)
                x = out + x if self.layers[i].spec.residual else out
        return self.head(x)

    def set_architecture(self, arch: Architecture) -> None:
        """Activate the subnet ``arch`` describes (checked: same space, skips only at stage ends)."""
        self.check(arch)
        for stage_index, stage in enumerate(self.macro.stage_layers()):
            ops = [arch.ops[i] for i in stage]
            self.depths[stage_index] = sum(op != SKIP for op in ops)
            for i, op in zip(stage, ops):
                if op != SKIP:
                    self.layers[i].kernel, self.layers[i].expansion = parse_mbconv(op)
        self.resolution = get_space(arch.space).input_size

    def check(self, arch: Architecture) -> None:
        if base_name(arch.space) != self.macro.name or get_space(arch.space).layers()[0].in_channels != self.macro.layers()[0].in_channels:
            raise ValueError(f"architecture of space {arch.space!r} is not a subnet of the elastic {self.macro.name!r} supernet")
        resolution = get_space(arch.space).input_size
        if resolution not in self.resolutions:
            raise ValueError(f"resolution {resolution} is not elastic here; trained resolutions: {self.resolutions}")
        for n, stage in enumerate(self.macro.stage_layers()):
            ops = [arch.ops[i] for i in stage]
            depth = sum(op != SKIP for op in ops)
            if SKIP in ops[:depth] or depth < min(self.min_depth, len(stage)):
                raise ValueError(
                    f"stage {n}: {'|'.join(ops)} is not a depth-{self.min_depth}+ prefix (OFA keeps the first layers of a stage)"
                )

    def architecture(self) -> Architecture:
        """The active subnet as an ``Architecture``."""
        ops = []
        for stage, depth in zip(self.macro.stage_layers(), self.depths):
            ops += [f"k{self.layers[i].kernel}e{self.layers[i].expansion}" if n < depth else SKIP for n, i in enumerate(stage)]
        return Architecture(self.macro.at_resolution(self.resolution).name, tuple(ops))

    def sample(self, generator: torch.Generator, *, kernels=None, expansions=None, depths=None, resolutions=None) -> Architecture:
        """Activate a uniformly random subnet among the given choices (default: the space's largest)."""
        macro = self.macro

        def pick(options):
            return options[int(torch.randint(len(options), (), generator=generator))]

        ops = []
        for stage in macro.stage_layers():
            depth = pick([d for d in (depths or (len(stage),)) if d <= len(stage)] or [len(stage)])
            ops += [
                f"k{pick(kernels or (max(macro.kernels),))}e{pick(expansions or (max(macro.expansions),))}" if n < depth else SKIP
                for n in range(len(stage))
            ]
        arch = Architecture(macro.at_resolution(pick(resolutions or (max(self.resolutions),))).name, tuple(ops))
        self.set_architecture(arch)
        return arch

    def largest(self) -> Architecture:
        """Every layer at its largest kernel and expansion, full depth, largest resolution."""
        return self.sample(torch.Generator())

    def sort_channels(self) -> None:
        for layer in self.layers:
            layer.sort_channels()

    def extract(self, arch: Architecture) -> ChildNetwork:
        """A standalone network of ``arch`` with the supernet's weights (BN statistics included) copied in."""
        self.set_architecture(arch)
        child = ChildNetwork(arch, self.num_classes)
        child.stem.load_state_dict(self.stem.state_dict())
        child.head.load_state_dict(self.head.state_dict())
        kept = (layer for layer, op in zip(self.layers, arch.ops) if op != SKIP)
        for child_layer, source in zip(child.layers, kept):
            source.export(child_layer.op)
        return child


class SubnetScorer:
    """Shared-weight accuracy of subnets on ``FixedBatches`` (what replicas serve, and what a local
    OFA search uses), counting the subnets scored."""

    def __init__(self, net: ElasticSupernet, train, val, *, calibration_batches: int, eval_batches: int, compute: Compute = CPU) -> None:
        self.net, self.compute = net, compute
        self.fixed = FixedBatches(tuple(itertools.islice(train, calibration_batches)), tuple(itertools.islice(val, eval_batches)))
        self.evaluated = 0

    def evaluate(self, archs: Sequence[Architecture]) -> list[float]:
        out = []
        for arch in archs:
            out.append(self.fixed.score(self.net, arch, compute=self.compute))
            self.evaluated += 1
        return out
