"""Random-search baseline with weight sharing (Li & Talwalkar, 2019) under the NAS run's cost.

Architectures are drawn uniformly from the space restricted to the same latency window as the
NAS result (rejection sampling with the target's latency table: exactly uniform over the accepted
set). The run spends ``train_fraction`` of its time budget training the shared weights on such
samples, then scores fresh samples with the same shared-weight protocol the NAS search uses (BN
recalibration, then validation accuracy) until the budget is spent, and returns the best.
"""

from __future__ import annotations

import time
from typing import Sequence

import numpy as np
from torch import nn
from torch.utils.data import DataLoader

from raynas.compute import CPU, Compute
from raynas.data.loading import endless
from raynas.hardware.lut import LatencyTable
from raynas.search.derive import budget_window
from raynas.search.proxyless import SearchConfig, weight_optimizer
from raynas.space.architecture import Architecture
from raynas.supernet.supernet import Supernet
from raynas.training import train_step

MIN_CANDIDATES = 2  # scored even when the time budget is already spent, so there is a choice


class EmptyWindowError(ValueError):
    """No sampled architecture fell in the latency window."""


def sample_in_window(
    costs: Sequence[Sequence[float]], fixed_ms: float, low: float, high: float, n: int, rng: np.random.Generator, max_draws: int = 1 << 24
) -> np.ndarray:
    """``n`` choice vectors (n x layers) uniform over architectures with ``low <= latency <= high``.

    Uniform per-layer draws accepted when the predicted latency lies in the window: each accepted
    architecture is equally likely, whatever the shape of the latency distribution.
    """
    table = np.full((len(costs), max(map(len, costs))), np.inf)
    for i, row in enumerate(costs):
        table[i, : len(row)] = row
    sizes = np.array([len(row) for row in costs])
    kept, drawn, batch = [], 0, 4096
    while sum(map(len, kept)) < n:
        if drawn >= max_draws:
            raise EmptyWindowError(f"{drawn:,} uniform draws gave {sum(map(len, kept))} of {n} architectures in [{low:.3f}, {high:.3f}] ms; widen the budget window")
        picks = (rng.random((batch, len(costs))) * sizes).astype(np.int64)
        latency = fixed_ms + table[np.arange(len(costs)), picks].sum(1)
        kept.append(picks[(latency >= low) & (latency <= high)])
        drawn += batch
        batch = min(batch * 2, 1 << 18)
    return np.concatenate(kept)[:n]


class RandomSearch:
    """One random search for one latency table and budget, on shared supernet weights."""

    def __init__(self, supernet: Supernet, lut: LatencyTable, budget_ms: float, cfg: SearchConfig, seed: int, train_fraction: float, *, compute: Compute = CPU) -> None:
        """``supernet`` must already live on ``compute``'s device."""
        self.supernet, self.lut, self.cfg, self.train_fraction, self.compute = supernet, lut, cfg, train_fraction, compute
        self.choices = [layer.choices for layer in supernet.layers]
        self.costs = lut.layer_costs(supernet.macro, self.choices)
        self.window = budget_window(self.costs, lut.fixed_ms, budget_ms, cfg.budget_floor)
        self.rng = np.random.default_rng(seed)
        self.optimizer = weight_optimizer(supernet.weight_parameters(), cfg)
        self._pool: list[Architecture] = []

    def sample(self) -> Architecture:
        """One architecture uniform over the latency window (drawn in blocks for speed)."""
        if not self._pool:
            picks = sample_in_window(self.costs, self.lut.fixed_ms, *self.window, 256, self.rng)
            self._pool = [Architecture(self.supernet.macro.name, tuple(c[i] for c, i in zip(self.choices, row))) for row in picks]
        return self._pool.pop()

    def run(self, train: DataLoader, val: DataLoader, seconds: float) -> dict[str, float | str]:
        """Train, then score candidates, within ``seconds`` of wall-clock; returns the best one."""
        start = time.perf_counter()
        steps, loss_fn, batches = 0, nn.CrossEntropyLoss(), endless(train)  # one batch held at a time
        while time.perf_counter() - start < self.train_fraction * seconds:
            self.supernet.train()
            self.supernet.set_architecture(self.sample())
            train_step(self.supernet, self.optimizer, loss_fn, *self.compute.batch(*next(batches)), self.compute)
            steps += 1
        self.compute.synchronize()  # the clock below must not count queued training work as scoring time
        best, best_acc, scored = None, -1.0, 0
        while scored < MIN_CANDIDATES or time.perf_counter() - start < seconds:
            arch = self.sample()
            acc = self.supernet.score(arch, train, val, self.cfg.eval_batches, self.compute)
            scored += 1
            if acc > best_acc:
                best, best_acc = arch, acc
        return {
            "arch": best.to_string(),
            "val_acc": best_acc,
            "derived_latency_ms": self.lut.predict(best, self.supernet.macro),
            "candidates": scored,
            "weight_steps": steps,
            "search_seconds": time.perf_counter() - start,
            "budget_seconds": seconds,
        }
