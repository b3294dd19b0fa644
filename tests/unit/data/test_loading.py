"""Memory held while iterating: endless() keeps one batch, where itertools.cycle kept the whole split."""

from __future__ import annotations

import itertools
import weakref

import pytest
import torch

from raynas.data.loading import endless
from raynas.search.proxyless import ProxylessSearch, SearchConfig
from raynas.space.macro import get_space
from raynas.supernet.supernet import Supernet
from tests.unit.hardware.test_lut import synthetic_table


class TrackedLoader:
    """Yields fresh batches and records the most batches alive at once (a proxy for held memory)."""

    def __init__(self, batches: int, shape=(4, 1, 28, 28)) -> None:
        self.batches, self.shape, self.live, self.peak = batches, shape, weakref.WeakSet(), 0

    def __len__(self) -> int:
        return self.batches

    def __iter__(self):
        for _ in range(self.batches):
            x = torch.randn(self.shape)
            self.live.add(x)
            self.peak = max(self.peak, len(self.live))
            yield x, torch.randint(0, 10, (self.shape[0],))


@pytest.mark.parametrize("batches", [5, 40])
def test_endless_holds_one_batch_whatever_the_split_size(batches):
    held_by_cycle = TrackedLoader(batches)
    cycled = itertools.cycle(held_by_cycle)
    for _ in range(3 * batches):
        next(cycled)
    assert held_by_cycle.peak == batches  # the failure this replaces: memory grows with the dataset
    loader = TrackedLoader(batches)
    stream = endless(loader)
    for _ in range(3 * batches):
        next(stream)
    assert loader.peak <= 2


def test_endless_refuses_an_empty_loader():
    with pytest.raises(ValueError, match="no batches"):
        next(endless([]))


def test_a_search_epoch_does_not_keep_the_validation_split():
    macro = get_space("mnist-small")
    lut = synthetic_table()
    search = ProxylessSearch(Supernet(macro, 10), lut, lut.latency_range(macro)[1] * 0.6, cfg=SearchConfig(eval_batches=1), seed=0)
    train, val = TrackedLoader(12), TrackedLoader(5)
    search.epoch(train, val)  # 12 architecture steps: more than two passes over the validation batches
    assert val.peak <= 3 and train.peak <= 3
