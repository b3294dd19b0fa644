"""Random-search baseline with weight sharing (Li & Talwalkar, 2019) under the NAS run's cost.

Architectures are drawn uniformly from the space restricted to the same latency window as the
NAS result (rejection sampling with the target's latency table: exactly uniform over the accepted
set). With the final step (``SearchConfig.final_top_k`` > 0 and fixed batches given) it trains the
shared weights on such samples for its whole time budget, then ends as the NAS search ends:
``final_top_k`` fresh samples trained alike and re-scored on the same fixed batches, the best
returned. Without it the run spends ``train_fraction`` of its budget training, then scores fresh
samples on shuffled batches (BN recalibration, then validation accuracy) until the budget is spent,
and returns the best.
"""

from __future__ import annotations

import time
from typing import Sequence

import numpy as np
from torch import nn
from torch.utils.data import DataLoader

from raynas.compute import CPU, Compute
from raynas.data.loading import endless, generator_state, set_generator_state
from raynas.hardware.lut import LatencyTable
from raynas.search.derive import budget_window
from raynas.search.oneshot import final_step
from raynas.search.proxyless import SearchConfig, final_lr, weight_lr, weight_optimizer
from raynas.space.architecture import Architecture
from raynas.space.macro import MacroConfig
from raynas.supernet.scoring import FixedBatches
from raynas.supernet.supernet import Supernet
from raynas.training import set_lr, train_step

MIN_CANDIDATES = 2  # scored even when the time budget is already spent, so there is a choice


class EmptyWindowError(ValueError):
    """No sampled architecture fell in the latency window."""


def sample_in_window(
    costs: Sequence[Sequence[float]],
    fixed_ms: float,
    *,
    low: float,
    high: float,
    n: int,
    rng: np.random.Generator,
    max_draws: int = 1 << 24,
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
            raise EmptyWindowError(
                f"{drawn:,} uniform draws gave {sum(map(len, kept))} of {n} architectures in [{low:.3f}, {high:.3f}] ms; "
                "widen the budget window"
            )
        picks = (rng.random((batch, len(costs))) * sizes).astype(np.int64)
        latency = fixed_ms + table[np.arange(len(costs)), picks].sum(1)
        kept.append(picks[(latency >= low) & (latency <= high)])
        drawn += batch
        batch = min(batch * 2, 1 << 18)
    return np.concatenate(kept)[:n]


def window_candidates(lut: LatencyTable, macro: MacroConfig, budget_ms: float, *, floor: float, n: int, seed: int) -> list[str]:
    """``n`` architectures uniform over the budget window [floor * B, B] on the target's table."""
    costs = lut.layer_costs(macro)
    low, high = budget_window(costs, lut.fixed_ms, budget_ms, floor=floor)
    picks = sample_in_window(costs, lut.fixed_ms, low=low, high=high, n=n, rng=np.random.default_rng(seed))
    choices = [spec.choices for spec in macro.layers()]
    return [Architecture(macro.name, tuple(c[i] for c, i in zip(choices, row))).to_string() for row in picks]


class RandomSearch:
    """One random search for one latency table and budget, on shared supernet weights.

    Runs as steps (one training stretch, then scoring stretches of at most a quarter of the budget)
    whose state survives a restart; ``run`` does them all.
    """

    def __init__(
        self,
        supernet: Supernet,
        lut: LatencyTable,
        budget_ms: float,
        *,
        cfg: SearchConfig,
        seed: int,
        train_fraction: float,
        compute: Compute = CPU,
        fixed: FixedBatches | None = None,
    ) -> None:
        """``supernet`` must already live on ``compute``'s device."""
        self.fixed = fixed if cfg.final_top_k else None
        self.finished = False
        self.supernet, self.lut, self.cfg, self.train_fraction, self.compute = supernet, lut, cfg, train_fraction, compute
        self.choices = [layer.choices for layer in supernet.layers]
        self.costs = lut.layer_costs(supernet.macro, self.choices)
        self.window = budget_window(self.costs, lut.fixed_ms, budget_ms, floor=cfg.budget_floor)
        self.rng = np.random.default_rng(seed)
        self.optimizer = weight_optimizer(supernet.weight_parameters(), cfg)
        self._pool: list[Architecture] = []
        self.spent, self.steps, self.scored, self.trained = 0.0, 0, 0, False
        self.best: tuple[float, str | None] = (-1.0, None)
        self.loaders: tuple[DataLoader, DataLoader] | None = None
        self.seconds = 0.0

    def sample(self) -> Architecture:
        """One architecture uniform over the latency window (drawn in blocks for speed)."""
        if not self._pool:
            low, high = self.window
            picks = sample_in_window(self.costs, self.lut.fixed_ms, low=low, high=high, n=256, rng=self.rng)
            self._pool = [Architecture(self.supernet.macro.name, tuple(c[i] for c, i in zip(self.choices, row))) for row in picks]
        return self._pool.pop()

    def start(self, train: DataLoader, val: DataLoader, seconds: float) -> "RandomSearch":
        """Set the data and the wall-clock budget before stepping."""
        self.loaders, self.seconds = (train, val), seconds
        return self

    @property
    def done(self) -> bool:
        if self.fixed is not None:
            return self.finished
        return self.trained and self.scored >= MIN_CANDIDATES and self.spent >= self.seconds

    def step(self) -> dict[str, float | str]:
        """Train the shared weights for ``train_fraction`` of the budget, or score candidates for up to a quarter of it."""
        begin = time.perf_counter()
        if not self.trained:
            self._train(begin)
        elif self.fixed is not None:
            self._final()
        else:
            self._score(begin)
        self.spent += time.perf_counter() - begin
        return self.metrics()

    def _train(self, begin: float) -> None:
        """In-window weight training; a cosine schedule decays as the NAS search's does over its epochs."""
        loss_fn, batches = nn.CrossEntropyLoss(label_smoothing=self.cfg.label_smoothing), endless(self.loaders[0])
        stretch = self.seconds if self.fixed is not None else self.train_fraction * self.seconds  # the final step scores only K
        def clock() -> float:  # the share of the stretch spent, on rank 0's clock when data-parallel
            return self.compute.sync.rank0((self.spent + time.perf_counter() - begin) / stretch if stretch > 0 else 1.0)

        while (progress := clock()) < 1:
            set_lr(self.optimizer, weight_lr(self.cfg, self.cfg.warmup_epochs + progress * self.cfg.search_epochs))
            self.supernet.train()
            self.supernet.set_architecture(self.sample())
            x, y = self.compute.batch(*next(batches))
            train_step(self.supernet, self.optimizer, loss_fn, x=x, y=y, compute=self.compute)
            self.steps += 1
        self.compute.synchronize()  # scoring time must not include queued training work
        self.trained = True

    def _score(self, begin: float) -> None:
        stretch = min(self.seconds - self.spent, self.seconds / 4)
        while self.compute.sync.agree(self.scored < MIN_CANDIDATES or time.perf_counter() - begin < stretch):
            arch = self.sample()
            acc = self.supernet.score(arch, *self.loaders, batches=self.cfg.eval_batches, compute=self.compute)
            self.scored += 1
            self.best = max(self.best, (acc, arch.to_string()), key=lambda t: t[0])

    def _final(self) -> None:
        """K distinct window draws (fewer only if the window holds fewer), at NAS's final rate."""
        distinct: dict[tuple, Architecture] = {}
        for _ in range(64 * self.cfg.final_top_k):
            arch = self.sample()
            distinct.setdefault(arch.ops, arch)
            if len(distinct) == self.cfg.final_top_k:
                break
        candidates = list(distinct.values())
        set_lr(self.optimizer, final_lr(self.cfg))
        pick, scores = final_step(
            self.supernet, candidates, fixed=self.fixed, train_steps=self.cfg.final_train_steps, batches=endless(self.loaders[0]),
            optimizer=self.optimizer, loss_fn=nn.CrossEntropyLoss(label_smoothing=self.cfg.label_smoothing), rng=self.rng,
            compute=self.compute,
        )  # fmt: skip
        self.best, self.scored, self.finished = (max(scores), pick.to_string()), len(candidates), True

    def metrics(self) -> dict[str, float | str]:
        acc, arch = self.best
        return {
            "arch": arch or "",
            "val_acc": acc,
            "score": acc if arch else None,
            "derived_latency_ms": self.lut.predict(Architecture.from_string(self.supernet.macro.name, arch), self.supernet.macro)
            if arch
            else float("nan"),
            "candidates": self.scored,
            "evaluations": self.scored,
            "weight_steps": self.steps,
            "search_seconds": self.spent,
            "budget_seconds": self.seconds,
        }

    def run(self, train: DataLoader, val: DataLoader, seconds: float) -> dict[str, float | str]:
        """Train, then score candidates, within ``seconds`` of wall-clock; returns the best one."""
        self.start(train, val, seconds)
        while not self.done:
            metrics = self.step()
        return metrics

    def state_dict(self) -> dict:
        return {
            "supernet": self.supernet.state_dict(),
            "optimizer": self.optimizer.state_dict(),
            "rng": self.rng.bit_generator.state,
            "pool": [a.to_string() for a in self._pool],
            "spent": self.spent,
            "steps": self.steps,
            "scored": self.scored,
            "trained": self.trained,
            "finished": self.finished,
            "best": list(self.best),
            "loaders": [generator_state(loader) for loader in self.loaders or ()],
        }

    def load_state_dict(self, state: dict) -> None:
        self.supernet.load_state_dict(state["supernet"])
        self.optimizer.load_state_dict(state["optimizer"])
        self.rng.bit_generator.state = state["rng"]
        self._pool = [Architecture.from_string(self.supernet.macro.name, a) for a in state["pool"]]
        self.spent, self.steps, self.scored, self.trained = state["spent"], state["steps"], state["scored"], state["trained"]
        self.best = (state["best"][0], state["best"][1])
        self.finished = state.get("finished", False)
        for loader, saved in zip(self.loaders or (), state["loaders"]):
            set_generator_state(loader, saved)
