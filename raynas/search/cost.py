"""Simulated training seconds of NB201 cells, for a tabular search's cost over time.

The table has no training times, so they are simulated from the one cost it does have: a cell's
FLOPs (``flops_m``). Training steps of a few cells, chosen across the FLOPs range, are timed on this
machine (forward, backward and SGD step of NB201's network at one batch size, one thread); a line
``seconds = overhead + slope * MFLOPs`` fitted to them, times the steps of ``epochs`` epochs of
``images`` images, is a cell's simulated training time. It is this machine's CPU time, a unit in which
searches compare, not what a GPU would take.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

import numpy as np
import torch

from raynas.space.nb201 import Cell, NB201Network


@dataclass(frozen=True)
class TrainingCost:
    """Seconds to train a cell for the search signal, linear in its FLOPs."""

    overhead_s: float  # per training step
    seconds_per_mflop: float  # per training step, per MFLOP of one image's forward pass
    steps: int  # steps of one training run (epochs x images / batch)
    source: str  # how it was fitted

    def seconds(self, flops_m: np.ndarray | float) -> np.ndarray | float:
        return self.steps * (self.overhead_s + self.seconds_per_mflop * np.asarray(flops_m))

    @classmethod
    def fit(cls, flops_m: list[float], step_seconds: list[float], *, steps: int, source: str) -> TrainingCost:
        """Least squares over timed steps; a negative intercept or slope is clipped to zero."""
        slope, intercept = np.polyfit(np.asarray(flops_m, dtype=float), np.asarray(step_seconds, dtype=float), 1)
        return cls(max(float(intercept), 0.0), max(float(slope), 0.0), steps, source)


def time_training_step(cell: Cell, *, batch: int = 32, repeats: int = 2, num_classes: int = 10) -> float:
    """Median seconds of one SGD step of the cell's network on random CIFAR-sized images (one untimed first)."""
    torch.manual_seed(0)
    net = NB201Network(cell, num_classes)
    optimizer = torch.optim.SGD(net.parameters(), lr=0.01, momentum=0.9)
    x, y = torch.randn(batch, 3, 32, 32), torch.randint(0, num_classes, (batch,))
    times = []
    for _ in range(repeats + 1):
        began = time.perf_counter()
        optimizer.zero_grad(set_to_none=True)
        torch.nn.functional.cross_entropy(net(x), y).backward()
        optimizer.step()
        times.append(time.perf_counter() - began)
    return float(np.median(times[1:]))


def calibrate(cells: list[Cell], flops_m: list[float], *, batch: int = 32, epochs: int = 12, images: int = 25_000) -> TrainingCost:
    """Time a training step of each cell on one thread and fit the line (NB201's 12-epoch signal by default)."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        seconds = [time_training_step(c, batch=batch) for c in cells]
    finally:
        torch.set_num_threads(threads)
    source = f"{len(cells)} cells timed on this machine, 1 thread, batch {batch}; {epochs} epochs of {images} images"
    return TrainingCost.fit(flops_m, seconds, steps=epochs * -(-images // batch), source=source)
