"""Every search space by name, chain or cell, behind one set of questions: its ``SearchSpace`` (what
black-box searches walk), its input images, the network of an architecture and its hand-designed
references."""

from __future__ import annotations

from torch import nn

from raynas.space.architecture import Architecture
from raynas.space.cells import CELL_SPACES, HAND_DESIGNED, is_cell_space
from raynas.space.chain import ChainSpace
from raynas.space.interface import SearchSpace
from raynas.space.macro import SPACES, get_space
from raynas.space.nb201 import Cell, NB201Network
from raynas.space.network import ChildNetwork
from raynas.space.reference import mobilenet_v2_like

NB201_IMAGE = (3, 32)  # NB201's networks take CIFAR-sized RGB images


def space_names() -> list[str]:
    return [*SPACES.names(), *CELL_SPACES.names()]


def known_space(name: str) -> bool:
    """A registered chain (variants included) or cell space."""
    if is_cell_space(name):
        return True
    try:
        get_space(name)
    except (KeyError, ValueError):
        return False
    return True


def search_space(name: str) -> SearchSpace:
    return CELL_SPACES.get(name) if is_cell_space(name) else ChainSpace(get_space(name))


def as_architecture(space: str, arch: object) -> Architecture:
    """A search space's own architecture (a ``Cell`` or an ``Architecture``) as the pipeline's ``Architecture``."""
    return arch if isinstance(arch, Architecture) else Architecture(space, tuple(arch.ops))


def image_shape(name: str) -> tuple[int, int]:
    """(channels, side) of the square images the space's networks take."""
    if is_cell_space(name):
        return NB201_IMAGE
    macro = get_space(name)
    return macro.in_channels, macro.input_size


def build_network(arch: Architecture, num_classes: int) -> nn.Module:
    """The standalone network of an architecture of any space."""
    if is_cell_space(arch.space):
        return NB201Network(Cell(tuple(arch.ops)), num_classes)
    return ChildNetwork(arch, num_classes)


def hand_designed(space: str, widths: tuple[float, ...]) -> dict[str, Architecture]:
    """The space's references by name: MobileNetV2-style chains at each width (``w0.5``), or a cell space's own (``resnet``)."""
    if is_cell_space(space):  # no widths (``evaluation.hand_designed_widths: []``): no references here either
        return {name: as_architecture(space, cell) for name, cell in HAND_DESIGNED.get(space, {}).items()} if widths else {}
    return {f"w{w:g}": mobilenet_v2_like(space, w) for w in widths}
