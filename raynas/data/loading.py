"""Iterating loaders without holding a dataset in memory."""

from __future__ import annotations

from typing import Iterable, Iterator, TypeVar

import torch

T = TypeVar("T")


def endless(loader: Iterable[T]) -> Iterator[T]:
    """Batches of ``loader`` forever, re-iterating it after each pass.

    Unlike ``itertools.cycle``, which saves every element of the first pass to replay it (a whole
    validation split per search trial), this holds one batch at a time, and every pass reshuffles.
    """
    while True:
        empty = True
        for batch in loader:
            empty = False
            yield batch
        if empty:
            raise ValueError("endless() over a loader with no batches: the split is smaller than one batch")


def generator_state(loader) -> torch.Tensor | None:
    """The loader's shuffle (and augmentation) generator state; None for loaders without one."""
    generator = getattr(loader, "generator", None)
    return None if generator is None else generator.get_state()


def set_generator_state(loader, state: torch.Tensor | None) -> None:
    if state is not None:
        loader.generator.set_state(state)


class Batches:
    """``endless`` whose position survives a restart: the state holds the generator at the start of
    the current pass, the batches drawn in it, and the generator now (other readers may draw too)."""

    def __init__(self, loader) -> None:
        self.loader, self.position, self._start, self._it = loader, 0, None, None

    def __iter__(self) -> "Batches":
        return self

    def __next__(self):
        if self._it is None:
            self._begin()
        try:
            batch = next(self._it)
        except StopIteration:
            self._begin()
            batch = next(self._it, None)
            if batch is None:
                raise ValueError("Batches over a loader with no batches: the split is smaller than one batch") from None
        self.position += 1
        return batch

    def _begin(self) -> None:
        self._start, self.position = generator_state(self.loader), 0
        self._it = iter(self.loader)

    def state_dict(self) -> dict:
        return {"started": self._it is not None, "start": self._start, "position": self.position, "now": generator_state(self.loader)}

    def load_state_dict(self, state: dict) -> None:
        """Replay the current pass up to the saved position (at most one pass of loading), then restore the generator."""
        if state["started"]:
            set_generator_state(self.loader, state["start"])
            self._begin()
            for _ in range(state["position"]):
                next(self)
        set_generator_state(self.loader, state["now"])
