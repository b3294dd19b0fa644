"""Shared-weight accuracy of one path of any supernet, after BatchNorm recalibration.

``FixedBatches`` holds the batches it is judged on, drawn once: every architecture is scored on the
same images (scores on freshly shuffled batches differ by the draw, and the best of many then wins
by luck).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Iterable

import torch
from torch import nn
from torch.utils.data import DataLoader

from raynas.compute import CPU, Compute
from raynas.space.architecture import Architecture
from raynas.training import evaluate, recalibrate_bn


class PathScoring:
    """Shared-weight evaluation of one architecture, for any supernet with ``set_architecture``."""

    def score(self, arch: Architecture, train: DataLoader, val: DataLoader, *, batches: int, compute: Compute = CPU) -> float:
        """Validation accuracy of one path with shared weights, after BatchNorm recalibration on
        ``batches`` training batches (shared BN statistics mix every path)."""
        self.set_architecture(arch)
        recalibrate_bn(self, train, batches, compute=compute)
        return evaluate(self, val, max_batches=batches, compute=compute)


@dataclass(frozen=True)
class FixedBatches:
    """Batches drawn once: ``recalibration`` from the training split, ``validation`` to score on."""

    recalibration: tuple[tuple[torch.Tensor, torch.Tensor], ...]
    validation: tuple[tuple[torch.Tensor, torch.Tensor], ...]

    @classmethod
    def draw(cls, train: Iterable, val: Iterable, *, recalibration: int, validation: int) -> FixedBatches:
        """The next ``recalibration`` batches of ``train`` and ``validation`` batches of ``val``."""
        return cls(_take(train, recalibration), _take(val, validation))

    @property
    def images(self) -> int:
        return sum(len(y) for _, y in self.validation)

    def score(self, supernet: nn.Module, arch, *, compute: Compute = CPU) -> float:
        """Validation accuracy of ``arch``'s path with the shared weights, BatchNorm recalibrated first."""
        supernet.set_architecture(arch)
        recalibrate_bn(supernet, self.recalibration, len(self.recalibration), compute=compute)
        return evaluate(supernet, self.validation, compute=compute)


def _take(loader: Iterable, count: int) -> tuple:
    batches = []
    for batch in loader:
        if len(batches) == count:
            break
        batches.append(tuple(t.detach().clone() for t in batch))
    if len(batches) < count:
        raise ValueError(f"the split holds {len(batches)} batches, fewer than the {count} to fix; lower the count or the batch size")
    return tuple(batches)
