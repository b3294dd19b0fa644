"""Weight-entangled layers: every candidate of a layer is a slice of the layer's largest MBConv.

A smaller kernel is the centre of the larger one (through OFA's learned kernel transforms) and a
smaller expansion is the first hidden channels of the widest (Single Path NAS's superkernel, OFA's
elastic kernel and width): a step on any path trains weights every other path of the layer uses,
where separate candidates each see only the steps that sample them. Binary gates work unchanged:
``PathChoice.mix`` runs the shared module once per gated path.
"""

from __future__ import annotations

import functools
from typing import Callable, Iterator

import torch
from torch import nn

from raynas.space.macro import LayerSpec
from raynas.space.ops import SKIP, parse_mbconv
from raynas.supernet.elastic import ElasticMBConv
from raynas.supernet.mixed_op import PathChoice


class EntangledLayer(PathChoice):
    """One searchable layer whose MBConv candidates share one ``ElasticMBConv``; ``skip`` adds nothing."""

    def __init__(self, spec: LayerSpec, choices: tuple[str, ...] | None = None) -> None:
        super().__init__(choices or spec.choices)
        self.spec = spec
        shapes = [parse_mbconv(op) for op in self.choices if op != SKIP]
        self.elastic = ElasticMBConv(spec, tuple(sorted({k for k, _ in shapes})), tuple(sorted({e for _, e in shapes})))

    def run(self, index: int, x: torch.Tensor) -> torch.Tensor:
        """The output of choice ``index`` (the zero op's is a scalar zero, as ``raynas.space.ops.Zero``'s)."""
        op = self.choices[index]
        if op == SKIP:
            return x.new_zeros(())
        self.elastic.kernel, self.elastic.expansion = parse_mbconv(op)
        return self.elastic(x)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.mix(_Paths(self), x)
        return out + x if self.spec.residual else out

    @torch.no_grad()
    def export(self, op: str, target: nn.Module) -> None:
        """Copy the weights ``op`` uses (its kernel crop and channels, BatchNorm included) into a standalone ``MBConv``."""
        self.elastic.kernel, self.elastic.expansion = parse_mbconv(op)
        self.elastic.export(target)


class _Paths:
    """An entangled layer's candidates as ``PathChoice.mix`` reads them: path i runs the shared module at choice i."""

    def __init__(self, layer: EntangledLayer) -> None:
        self.layer = layer

    def __len__(self) -> int:
        return len(self.layer.choices)

    def __getitem__(self, index: int) -> Callable[[torch.Tensor], torch.Tensor]:
        return functools.partial(self.layer.run, index)

    def __iter__(self) -> Iterator[Callable[[torch.Tensor], torch.Tensor]]:
        return (self[i] for i in range(len(self)))
