"""What a search space is to a black-box search: sample, mutate one decision, list the neighbours,
encode, validate, and build the network of an architecture. Architectures are the space's own
plain data (an NB201 ``Cell``; an MBConv chain ``Architecture``)."""

from __future__ import annotations

from typing import Any, Protocol

import numpy as np
from torch import nn


class SearchSpace(Protocol):
    name: str

    @property
    def options(self) -> tuple[int, ...]:
        """How many choices each decision has."""

    def sample(self, rng: np.random.Generator) -> Any:
        """An architecture drawn uniformly."""

    def mutate(self, arch: Any, rng: np.random.Generator) -> Any:
        """``arch`` with one decision changed to another choice."""

    def neighbours(self, arch: Any) -> list[Any]:
        """Every architecture one decision away."""

    def encode(self, arch: Any) -> np.ndarray:
        """A fixed-length numeric vector (one-hot per decision)."""

    def choices(self, arch: Any) -> tuple[int, ...]:
        """The choice index of each decision."""

    def from_choices(self, choices: tuple[int, ...]) -> Any: ...

    def validate(self, arch: Any) -> None:
        """Raise a ValueError naming what is wrong when ``arch`` is not of this space."""

    def build(self, arch: Any, num_classes: int) -> nn.Module:
        """The standalone network of ``arch``, to train for real."""
