"""An MBConv chain space (``MacroConfig``) as a ``SearchSpace``: one decision per searchable layer,
its choices the layer's ops, so the black-box searches run on the chains as on NB201's cells."""

from __future__ import annotations

import numpy as np
from torch import nn

from raynas.space.architecture import Architecture
from raynas.space.macro import MacroConfig
from raynas.space.network import ChildNetwork


class ChainSpace:
    """The architectures of one chain space; each is an ``Architecture``."""

    def __init__(self, macro: MacroConfig) -> None:
        self.macro, self.name = macro, macro.name
        self.layer_choices = [spec.choices for spec in macro.layers()]

    @property
    def options(self) -> tuple[int, ...]:
        return tuple(len(c) for c in self.layer_choices)

    def choices(self, arch: Architecture) -> tuple[int, ...]:
        return tuple(c.index(op) for c, op in zip(self.layer_choices, arch.ops))

    def from_choices(self, choices: tuple[int, ...]) -> Architecture:
        return Architecture(self.name, tuple(c[i] for c, i in zip(self.layer_choices, choices)))

    def sample(self, rng: np.random.Generator) -> Architecture:
        return self.from_choices(tuple(int(rng.integers(n)) for n in self.options))

    def mutate(self, arch: Architecture, rng: np.random.Generator) -> Architecture:
        """``arch`` with one layer's op changed to another of that layer's choices."""
        choices = list(self.choices(arch))
        layer = int(rng.choice([i for i, n in enumerate(self.options) if n > 1]))
        others = [c for c in range(self.options[layer]) if c != choices[layer]]
        choices[layer] = others[int(rng.integers(len(others)))]
        return self.from_choices(tuple(choices))

    def neighbours(self, arch: Architecture) -> list[Architecture]:
        base = self.choices(arch)
        return [self.from_choices(base[:i] + (c,) + base[i + 1 :]) for i, n in enumerate(self.options) for c in range(n) if c != base[i]]

    def encode(self, arch: Architecture) -> np.ndarray:
        """One-hot of each layer's op, layers in order."""
        parts = [np.eye(n, dtype=np.float32)[c] for n, c in zip(self.options, self.choices(arch))]
        return np.concatenate(parts)

    def validate(self, arch: Architecture) -> None:
        if not isinstance(arch, Architecture) or arch.space != self.name:
            raise ValueError(f"not an architecture of space {self.name!r}: {arch!r}")
        arch.validate(self.macro)

    def build(self, arch: Architecture, num_classes: int) -> nn.Module:
        return ChildNetwork(arch, num_classes)
