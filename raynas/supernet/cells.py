"""The weight-sharing supernet of the NB201 cell space: NB201's skeleton with every op on every edge.

One decision per edge (a ``PathChoice`` over NB201's 5 ops), shared by the 15 copies of the cell, as
in NB201's one-shot baselines (one cell searched, repeated through the network); each copy keeps its
own candidate weights. Path binarization works as in the chain supernet: the gate of an edge is one
tensor, so its gradient sums over every copy of the cell.
"""

from __future__ import annotations

import torch
from torch import nn

from raynas.space.architecture import Architecture
from raynas.space.nb201 import EDGES, NB201, OPS, Cell, NB201Network, build_edge_op, skeleton
from raynas.supernet.mixed_op import PathChoice
from raynas.supernet.scoring import PathScoring
from raynas.supernet.supernet import PathDecisions


class SharedCell(nn.Module):
    """One copy of the cell: the candidate ops of every edge; the network's decisions choose among them."""

    def __init__(self, channels: int) -> None:
        super().__init__()
        self.edges = nn.ModuleList(nn.ModuleList(build_edge_op(op, channels) for op in OPS) for _ in EDGES)

    def forward(self, x: torch.Tensor, decisions: nn.ModuleList) -> torch.Tensor:
        nodes = [x]
        for node in (1, 2, 3):
            incoming = [decisions[e].mix(self.edges[e], nodes[frm]) for e, (to, frm) in enumerate(EDGES) if to == node]
            nodes.append(sum(incoming))
        return nodes[3]


class CellSupernet(PathDecisions, PathScoring, nn.Module):
    """Shared weights for every NB201 cell, plus per-edge logits alpha (``layers``, one per edge)."""

    macro = NB201  # the space (``name`` "nb201"); what the chain supernet calls its macro

    def __init__(self, num_classes: int, *, channels: int = 16, cells_per_stage: int = 5, in_channels: int = 3) -> None:
        super().__init__()
        self.num_classes, self.channels, self.cells_per_stage = num_classes, channels, cells_per_stage
        self.layers = nn.ModuleList(PathChoice(OPS) for _ in EDGES)
        self.stem, blocks, self.head = skeleton(SharedCell, channels=channels, cells_per_stage=cells_per_stage, in_channels=in_channels)
        self.cells = nn.ModuleList(blocks)
        self.classifier = nn.Linear(channels * 4, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.stem(x)
        for block in self.cells:
            x = block(x, self.layers) if isinstance(block, SharedCell) else block(x)
        return self.classifier(self.head(x))

    def prune(self, arch: Architecture | Cell | None = None) -> NB201Network:
        """The standalone network of ``arch`` (default: ``derive()``) with the supernet's weights copied in."""
        cell = Cell(tuple((arch or self.derive()).ops))
        child = NB201Network(cell, self.num_classes, channels=self.channels, cells_per_stage=self.cells_per_stage)
        for name in ("stem", "head", "classifier"):
            getattr(child, name).load_state_dict(getattr(self, name).state_dict())
        for target, source in zip(child.cells, self.cells):
            if isinstance(source, SharedCell):
                for edge, op, candidates in zip(target.edges, cell.ops, source.edges):
                    edge.load_state_dict(candidates[OPS.index(op)].state_dict())
            else:
                target.load_state_dict(source.state_dict())
        return child
