"""One-shot weight training and shared-weight scoring, for any binary-gated supernet.

* ``UniformTraining``: shared weights trained with one uniformly sampled path per step (SPOS, and
  NB201's RSPS), a cosine learning rate over the planned epochs, resumable epoch by epoch.
* ``FixedBatches`` (``raynas.supernet.scoring``): every architecture judged on the same images.
* ``final_step``: how every weight-sharing search ends: a few weight steps on its K best candidates,
  then each re-scored on the same fixed batches (``top_k``), the best returned.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable, Iterator, Sequence, TypeVar

import numpy as np
import torch
from torch import nn

from raynas.compute import CPU, Compute
from raynas.data.loading import generator_state, set_generator_state
from raynas.supernet.scoring import FixedBatches
from raynas.training import SCHEDULES, scheduled, set_lr, sgd, train_epoch, train_step

T = TypeVar("T")


@dataclass(frozen=True)
class OneShotConfig:
    """Training shared weights with uniformly sampled paths."""

    epochs: int = 16
    lr: float = 0.1  # SGD with Nesterov momentum
    schedule: str = "cosine"  # cosine: decay to 0 over ``epochs``; constant: ``lr`` throughout
    momentum: float = 0.9
    weight_decay: float = 5e-4  # NB201's training recipe
    label_smoothing: float = 0.0


class UniformTraining:
    """One epoch per ``step``; ``state_dict`` holds everything a restart needs (weights, optimizer,
    schedule position, path sampler and the loader's shuffle), as tensors and plain values."""

    def __init__(self, supernet: nn.Module, train, *, cfg: OneShotConfig, seed: int, compute: Compute = CPU) -> None:
        if cfg.schedule not in SCHEDULES:
            raise ValueError(f"unknown learning-rate schedule {cfg.schedule!r}; valid: {', '.join(SCHEDULES)}")
        self.supernet, self.train, self.cfg, self.compute = supernet, train, cfg, compute
        self.gen = torch.Generator().manual_seed(seed)
        self.optimizer = sgd(supernet.weight_parameters(), cfg.lr, momentum=cfg.momentum, weight_decay=cfg.weight_decay)
        self.loss_fn = nn.CrossEntropyLoss(label_smoothing=cfg.label_smoothing)
        self.epoch = 0

    @property
    def done(self) -> bool:
        return self.epoch >= self.cfg.epochs

    def lr(self, epoch: int) -> float:
        """Cosine from ``lr`` at epoch 0 towards 0 after the last epoch, or ``lr`` throughout."""
        return scheduled(self.cfg.lr, epoch, self.cfg.epochs, schedule=self.cfg.schedule)

    def step(self) -> dict[str, float]:
        set_lr(self.optimizer, self.lr(self.epoch))
        stats = train_epoch(
            self.supernet,
            self.train,
            self.optimizer,
            loss_fn=self.loss_fn,
            before_batch=lambda: self.supernet.sample_single(self.gen, uniform=True),
            compute=self.compute,
        )
        self.epoch += 1
        return stats | {"epoch": self.epoch, "lr": self.lr(self.epoch - 1)}

    def state_dict(self) -> dict:
        return {
            "supernet": self.supernet.state_dict(),
            "optimizer": self.optimizer.state_dict(),
            "gen": self.gen.get_state(),
            "loader": generator_state(self.train),
            "epoch": self.epoch,
        }

    def load_state_dict(self, state: dict) -> None:
        self.supernet.load_state_dict(state["supernet"])
        self.optimizer.load_state_dict(state["optimizer"])
        self.gen.set_state(state["gen"])
        set_generator_state(self.train, state["loader"])
        self.epoch = state["epoch"]


def top_k(candidates: Sequence[T], score: Callable[[T], float], k: int) -> tuple[T, list[float]]:
    """The best of the first ``k`` candidates (already ranked by the method) by ``score``, the first
    of equals, with the scores of all ``k``: one final step, the same for every method."""
    if not candidates:
        raise ValueError("no candidate to re-score: the window holds no architecture")
    scores = [score(c) for c in candidates[:k]]
    return candidates[scores.index(max(scores))], scores


def most_probable(log_probs: Sequence[Sequence[float]], candidates: Sequence[Sequence[int]], k: int) -> list[int]:
    """Positions of the ``k`` candidates (a choice index per decision) of highest joint log-probability
    under independent decisions, most probable first: a gradient search's own ranking of an
    enumerated window (the first of equals kept first)."""
    table = np.asarray(log_probs, dtype=float)
    choices = np.asarray(candidates, dtype=int).reshape(len(candidates), len(table))
    joint = table[np.arange(len(table)), choices].sum(axis=1)
    return [int(i) for i in np.argsort(-joint, kind="stable")[:k]]


def final_step(
    supernet: nn.Module,
    candidates: Sequence[Any],
    *,
    fixed: FixedBatches,
    train_steps: int,
    batches: Iterator,
    optimizer: torch.optim.Optimizer,
    loss_fn: nn.Module,
    rng: np.random.Generator,
    compute: Compute = CPU,
) -> tuple[Any, list[float]]:
    """How every weight-sharing search ends: ``train_steps`` weight steps on paths drawn uniformly from
    its ``candidates``, then each candidate re-scored on ``fixed``; returns the best and all scores."""
    for _ in range(train_steps):
        supernet.train()
        supernet.set_architecture(candidates[int(rng.integers(len(candidates)))])
        x, y = compute.batch(*next(batches))
        train_step(supernet, optimizer, loss_fn, x=x, y=y, compute=compute)
    return top_k(candidates, lambda arch: fixed.score(supernet, arch, compute=compute), len(candidates))
