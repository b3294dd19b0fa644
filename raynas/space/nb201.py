"""The NAS-Bench-201 cell space (Dong and Yang, ICLR 2020) as plain data, and its network.

A cell is a DAG of 4 nodes: node 0 is the cell's input, node 3 its output, and each node sums the
outputs of the operations on the edges from every earlier node, so 6 edges, each one of 5
operations: 5^6 = 15,625 cells. The network is NB201's skeleton: a 3x3 stem of 16 channels, three
stages of 5 copies of the cell at 16, 32 and 64 channels with a residual reduction block (stride 2)
between stages, then BatchNorm, ReLU, global pooling and a linear classifier.

NB201's string names a cell as ``|e(1<-0)|+|e(2<-0)|e(2<-1)|+|e(3<-0)|e(3<-1)|e(3<-2)|`` with each
edge written ``op~j``. NB201's own *index* of a cell is an arbitrary order that only its tables know
(``raynas.hardware.tabular``); ``Cell.code`` is raynas's enumeration, the edges read as base-5 digits.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Callable

import numpy as np
import torch
from torch import nn

OPS = ("none", "skip_connect", "nor_conv_1x1", "nor_conv_3x3", "avg_pool_3x3")
EDGES = ((1, 0), (2, 0), (2, 1), (3, 0), (3, 1), (3, 2))  # (to node, from node), in the string's order
NUM_CELLS = len(OPS) ** len(EDGES)
_EDGE = re.compile(r"(\w+)~(\d)")


class CellError(ValueError):
    """A cell that is not in the NB201 space (a wrong op, edge or string)."""


@dataclass(frozen=True)
class Cell:
    """One NB201 cell: the operation on each edge, in ``EDGES`` order."""

    ops: tuple[str, ...]

    def __post_init__(self) -> None:
        if len(self.ops) != len(EDGES):
            raise CellError(f"an NB201 cell has {len(EDGES)} edges, got {len(self.ops)} ops: {self.ops}")
        unknown = [op for op in self.ops if op not in OPS]
        if unknown:
            raise CellError(f"unknown NB201 op {unknown[0]!r}; valid: {', '.join(OPS)}")

    @classmethod
    def from_string(cls, text: str) -> Cell:
        """Parse NB201's string (``|nor_conv_3x3~0|+|...|``); every edge must name its source node."""
        edges = _EDGE.findall(text)
        sources = tuple((to, int(frm)) for (to, _), (_, frm) in zip(EDGES, edges))
        if len(edges) != len(EDGES) or sources != EDGES or text != _render(tuple(op for op, _ in edges)):
            raise CellError(f"not an NB201 cell string: {text!r} (expected like {_render(('none',) * len(EDGES))!r})")
        return cls(tuple(op for op, _ in edges))

    def to_string(self) -> str:
        return _render(self.ops)

    @property
    def code(self) -> int:
        """The cell's position in raynas's enumeration: the edges' ops as base-5 digits, first edge most significant."""
        value = 0
        for op in self.ops:
            value = value * len(OPS) + OPS.index(op)
        return value

    @classmethod
    def from_code(cls, code: int) -> Cell:
        if not 0 <= code < NUM_CELLS:
            raise CellError(f"an NB201 cell code lies in [0, {NUM_CELLS}), got {code}")
        digits = []
        for _ in EDGES:
            code, digit = divmod(code, len(OPS))
            digits.append(OPS[digit])
        return cls(tuple(reversed(digits)))

    @property
    def connected(self) -> bool:
        """Whether a path of non-``none`` edges joins the input to the output; a disconnected cell makes
        the network output a constant (a valid architecture, at chance accuracy)."""
        reach = {0}
        for (to, frm), op in zip(EDGES, self.ops):
            if op != "none" and frm in reach:
                reach.add(to)
        return 3 in reach


def all_cells() -> list[Cell]:
    """Every cell of the space, in ``code`` order."""
    return [Cell.from_code(code) for code in range(NUM_CELLS)]


def _render(ops: tuple[str, ...]) -> str:
    nodes = [[f"{op}~{frm}" for (to, frm), op in zip(EDGES, ops) if to == node] for node in (1, 2, 3)]
    return "+".join("|" + "|".join(edges) + "|" for edges in nodes)


class ReLUConvBN(nn.Sequential):
    """NB201's convolution: ReLU, convolution without bias, BatchNorm."""

    def __init__(self, c_in: int, c_out: int, kernel: int, *, stride: int = 1) -> None:
        super().__init__(nn.ReLU(inplace=False), nn.Conv2d(c_in, c_out, kernel, stride, kernel // 2, bias=False), nn.BatchNorm2d(c_out))


class Zero(nn.Module):
    """The ``none`` op: zeros of the input's shape."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x.mul(0.0)


def build_edge_op(op: str, channels: int) -> nn.Module:
    """One edge's module at ``channels`` (NB201's cell keeps channels and resolution)."""
    if op == "none":
        return Zero()
    if op == "skip_connect":
        return nn.Identity()
    if op == "avg_pool_3x3":
        return nn.AvgPool2d(3, stride=1, padding=1, count_include_pad=False)
    return ReLUConvBN(channels, channels, 1 if op == "nor_conv_1x1" else 3)


class CellModule(nn.Module):
    """A cell at ``channels``: node i sums its incoming edges' outputs; the last node is the output."""

    def __init__(self, cell: Cell, channels: int) -> None:
        super().__init__()
        self.edges = nn.ModuleList(build_edge_op(op, channels) for op in cell.ops)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        nodes = [x]
        for node in (1, 2, 3):
            nodes.append(sum(self.edges[e](nodes[frm]) for e, (to, frm) in enumerate(EDGES) if to == node))
        return nodes[3]


class ResidualReduction(nn.Module):
    """NB201's block between stages: two ReLU-conv-BN (the first with stride 2) plus an average-pooled,
    1x1-projected shortcut."""

    def __init__(self, c_in: int, c_out: int) -> None:
        super().__init__()
        self.conv_a = ReLUConvBN(c_in, c_out, 3, stride=2)
        self.conv_b = ReLUConvBN(c_out, c_out, 3)
        self.shortcut = nn.Sequential(nn.AvgPool2d(2, stride=2), nn.Conv2d(c_in, c_out, 1, bias=False))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.shortcut(x) + self.conv_b(self.conv_a(x))


def skeleton(make_cell: Callable[[int], nn.Module], *, channels: int, cells_per_stage: int, in_channels: int) -> tuple:
    """NB201's stem, its blocks (3 stages of ``make_cell(width)``, residual reductions between) and its
    head (BatchNorm, ReLU, pooling; the classifier is the caller's): one skeleton for the network of a
    cell and for the supernet of every cell."""
    stem = nn.Sequential(nn.Conv2d(in_channels, channels, 3, padding=1, bias=False), nn.BatchNorm2d(channels))
    blocks: list[nn.Module] = []
    for stage in range(3):
        width = channels * 2**stage
        if stage:
            blocks.append(ResidualReduction(width // 2, width))
        blocks += [make_cell(width) for _ in range(cells_per_stage)]
    head = nn.Sequential(nn.BatchNorm2d(channels * 4), nn.ReLU(inplace=False), nn.AdaptiveAvgPool2d(1), nn.Flatten())
    return stem, blocks, head


class NB201Network(nn.Module):
    """The NB201 skeleton around one cell: stem, 3 stages of ``cells_per_stage`` cells, reductions between, head."""

    def __init__(self, cell: Cell, num_classes: int, *, channels: int = 16, cells_per_stage: int = 5, in_channels: int = 3) -> None:
        super().__init__()
        self.cell = cell
        self.stem, blocks, self.head = skeleton(
            lambda width: CellModule(cell, width), channels=channels, cells_per_stage=cells_per_stage, in_channels=in_channels
        )
        self.cells = nn.Sequential(*blocks)
        self.classifier = nn.Linear(channels * 4, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.classifier(self.head(self.cells(self.stem(x))))


def parameters_m(net: nn.Module) -> float:
    """Parameters in millions, as NB201 counts them (every parameter tensor, BatchNorm's included)."""
    return sum(p.numel() for p in net.parameters()) / 1e6


def flops_m(net: nn.Module, *, input_size: int = 32, in_channels: int = 3) -> float:
    """Multiply-accumulates in millions for one image, by NB201's counting rules: convolutions
    (kernel x input channels per group x output elements) and linear layers (inputs x outputs, plus
    the bias); pooling, BatchNorm, ReLU and sums count nothing (NB201's published 15.64737 MFLOPs of
    index 0 hold only so)."""
    total = 0.0

    def conv(module: nn.Conv2d, _inputs, output: torch.Tensor) -> None:
        nonlocal total
        kh, kw = module.kernel_size
        per_position = kh * kw * module.in_channels * module.out_channels / module.groups
        positions = output.shape[2] * output.shape[3]
        total += per_position * positions + (module.out_channels * positions if module.bias is not None else 0)

    def linear(module: nn.Linear, _inputs, _output) -> None:
        nonlocal total
        total += module.in_features * module.out_features + (module.out_features if module.bias is not None else 0)

    hooks = {nn.Conv2d: conv, nn.Linear: linear}
    handles = [m.register_forward_hook(hooks[type(m)]) for m in net.modules() if type(m) in hooks]
    try:
        with torch.no_grad():
            net.eval()(torch.zeros(1, in_channels, input_size, input_size))
    finally:
        for handle in handles:
            handle.remove()
    return total / 1e6


class NB201Space:
    """The cell space as a search space: uniform samples, one-decision mutations and neighbours, a
    one-hot encoding, and the network of a cell (``raynas.space.interface.SearchSpace``)."""

    name = "nb201"
    decisions = len(EDGES)  # one choice of op per edge

    def sample(self, rng: np.random.Generator) -> Cell:
        return Cell.from_code(int(rng.integers(NUM_CELLS)))

    def mutate(self, cell: Cell, rng: np.random.Generator) -> Cell:
        """The cell with one edge's op changed to another op, both drawn uniformly."""
        edge = int(rng.integers(len(EDGES)))
        others = [op for op in OPS if op != cell.ops[edge]]
        return self.with_op(cell, edge, others[int(rng.integers(len(others)))])

    def neighbours(self, cell: Cell) -> list[Cell]:
        """Every cell one edge's op away (24 of them)."""
        return [self.with_op(cell, e, op) for e in range(len(EDGES)) for op in OPS if op != cell.ops[e]]

    @staticmethod
    def with_op(cell: Cell, edge: int, op: str) -> Cell:
        ops = list(cell.ops)
        ops[edge] = op
        return Cell(tuple(ops))

    def encode(self, cell: Cell) -> np.ndarray:
        """One-hot of each edge's op, edges in order (30 values)."""
        out = np.zeros((len(EDGES), len(OPS)), dtype=np.float32)
        out[np.arange(len(EDGES)), [OPS.index(op) for op in cell.ops]] = 1.0
        return out.ravel()

    def choices(self, cell: Cell) -> tuple[int, ...]:
        """The index of each decision's choice (what a controller samples)."""
        return tuple(OPS.index(op) for op in cell.ops)

    def from_choices(self, choices: tuple[int, ...]) -> Cell:
        return Cell(tuple(OPS[c] for c in choices))

    @property
    def options(self) -> tuple[int, ...]:
        """How many choices each decision has."""
        return (len(OPS),) * len(EDGES)

    def validate(self, cell: Cell) -> None:
        if not isinstance(cell, Cell):
            raise CellError(f"not an NB201 cell: {cell!r}")

    def build(self, cell: Cell, num_classes: int) -> nn.Module:
        return NB201Network(cell, num_classes)


NB201 = NB201Space()
