"""Iterating loaders without holding a dataset in memory."""

from __future__ import annotations

from typing import Iterable, Iterator, TypeVar

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
