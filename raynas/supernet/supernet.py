"""The ProxylessNAS over-parameterized network: fixed stem and head around mixed layers."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Iterator

import torch
from torch import nn

from raynas.space.architecture import Architecture
from raynas.space.macro import MacroConfig
from raynas.space.network import ChildNetwork, Head, build_stem
from raynas.space.ops import SKIP
from raynas.supernet.entangled import EntangledLayer
from raynas.supernet.mixed_op import MixedLayer
from raynas.supernet.scoring import PathScoring

SHARINGS = ("separate", "entangled")


@dataclass(frozen=True)
class SupernetConfig:
    """How the weight-sharing supernet of a chain space holds its candidates (every supernet strategy)."""

    sharing: str = "separate"  # separate: each candidate op owns its weights ; entangled: candidates slice the layer's largest op


class PathDecisions:
    """What every binary-gated supernet does with its decisions (``self.layers``, one ``PathChoice``
    each, and ``self.macro``, whose ``name`` names the space): sample, gate, activate and derive paths."""

    def arch_parameters(self) -> list[nn.Parameter]:
        return [layer.alpha for layer in self.layers]

    def weight_parameters(self) -> Iterator[nn.Parameter]:
        return (p for name, p in self.named_parameters() if not name.endswith(".alpha"))

    def sample_single(self, generator: torch.Generator, uniform: bool = False) -> None:
        alphas = [None] * len(self.layers) if uniform else self.cpu_alphas()
        for layer, alpha in zip(self.layers, alphas):
            layer.sample_single(generator, uniform, alpha)

    def sample_pairs(self, generator: torch.Generator) -> None:
        for layer, alpha in zip(self.layers, self.cpu_alphas()):
            layer.sample_pair(generator, alpha)

    def cpu_alphas(self) -> list[torch.Tensor]:
        """Every layer's alpha copied to the CPU in one transfer (one device sync per sampling, not per layer)."""
        flat = torch.cat([layer.alpha.detach() for layer in self.layers]).cpu()
        return list(flat.split([len(layer.choices) for layer in self.layers]))

    def activate_all(self) -> None:
        for layer in self.layers:
            layer.activate_all()

    def set_architecture(self, arch: Architecture) -> None:
        """Activate exactly the given path (for evaluating a derived architecture)."""
        for layer, op in zip(self.layers, arch.ops):
            layer.set_single(layer.choices.index(op))

    def probabilities(self) -> list[torch.Tensor]:
        return [layer.probs() for layer in self.layers]

    def derive(self) -> Architecture:
        """The most probable path: argmax of alpha in every layer."""
        ops = [layer.choices[int(layer.alpha.argmax())] for layer in self.layers]
        return Architecture(self.macro.name, tuple(ops))


class Supernet(PathDecisions, PathScoring, nn.Module):
    """Shared weights for every architecture of a chain space, plus per-layer logits alpha."""

    def __init__(self, macro: MacroConfig, num_classes: int, ops: tuple[str, ...] | None = None, *, sharing: str = "separate") -> None:
        """``ops`` restricts every layer to those candidates (e.g. to study cost versus their number);
        ``sharing`` (``SHARINGS``): whether each candidate owns its weights or slices the layer's largest."""
        super().__init__()
        if sharing not in SHARINGS:
            raise ValueError(f"unknown supernet sharing {sharing!r}; valid: {', '.join(SHARINGS)}")
        self.macro, self.num_classes, self.sharing = macro, num_classes, sharing
        self.stem = build_stem(macro)
        layer = EntangledLayer if sharing == "entangled" else MixedLayer
        self.layers = nn.ModuleList(layer(spec, tuple(o for o in spec.choices if o in ops) if ops else None) for spec in macro.layers())
        self.head = Head(macro, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.stem(x)
        for layer in self.layers:
            x = layer(x)
        return self.head(x)

    def prune(self, arch: Architecture | None = None) -> ChildNetwork:
        """A standalone network of ``arch`` (default: ``derive()``) with the supernet's weights copied in."""
        arch = arch or self.derive()
        child = ChildNetwork(arch, self.num_classes)
        child.stem.load_state_dict(self.stem.state_dict())
        child.head.load_state_dict(self.head.state_dict())
        kept = ((layer, op) for layer, op in zip(self.layers, arch.ops) if op != SKIP)
        for child_layer, (layer, op) in zip(child.layers, kept):
            layer.export(op, child_layer.op)
        return child
