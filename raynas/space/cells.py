"""Spaces whose architectures are cells (NB201's), not MBConv chains: one registry line each.

An ``Architecture`` of a cell space holds the cell's op per edge, so runs, results and MLflow carry
it like a chain; ``cell_of`` gives the space's own cell back.
"""

from __future__ import annotations

from typing import Any

from raynas._registry import Registry
from raynas.space.nb201 import NB201, Cell, CellError

CELL_SPACES: Registry[Any] = Registry("cell space")
CELL_SPACES.add("nb201", NB201)

# NB201's hand-designed reference (Dong and Yang's ResNet row): a basic block, node 3 = conv(conv(x)) + x.
RESNET_CELL = Cell.from_string("|nor_conv_3x3~0|+|none~0|nor_conv_3x3~1|+|skip_connect~0|none~1|skip_connect~2|")
HAND_DESIGNED = {"nb201": {"resnet": RESNET_CELL}}  # per cell space: the references by name


def is_cell_space(name: str) -> bool:
    return name in CELL_SPACES


def check_cell_ops(space: str, ops: tuple[str, ...]) -> None:
    """Raise a ValueError naming the problem when ``ops`` is not a cell of ``space``."""
    try:
        Cell(tuple(ops))
    except CellError as exc:
        raise ValueError(f"not an architecture of space {space!r}: {exc}") from None
