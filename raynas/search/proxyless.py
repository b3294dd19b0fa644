"""ProxylessNAS gradient search: warm-up, then alternating weight and architecture steps.

Weight steps run one path sampled from softmax(alpha) on the training split; architecture steps
run the two-path binarization on the validation split with the latency-aware loss. Plain PyTorch:
no Ray, no MLflow; the orchestration layer wraps it.
"""

from __future__ import annotations

import itertools
import math
from dataclasses import dataclass
from typing import Callable

import torch
from torch import nn
from torch.utils.data import DataLoader

from raynas.hardware.lut import LatencyTable
from raynas.search.derive import most_probable_within
from raynas.space.architecture import Architecture
from raynas.supernet.loss import latency_aware_loss
from raynas.supernet.supernet import Supernet
from raynas.training import evaluate, recalibrate_bn, sgd, train_epoch


@dataclass(frozen=True)
class SearchConfig:
    """Warm-up and architecture-search hyperparameters (defaults follow the paper, scaled down)."""

    warmup_epochs: int = 2  # shared-weight training with uniformly sampled paths
    search_epochs: int = 4  # alternating weight / architecture epochs
    weight_lr: float = 0.05  # SGD + Nesterov for shared weights
    momentum: float = 0.9
    weight_decay: float = 4e-5
    arch_lr: float = 6e-3  # Adam for alpha, betas (0, 0.999) as in the paper
    arch_every: int = 1  # one architecture step after every N weight steps
    latency_loss: str = "mul"  # mul: CE * (log E[lat] / log B)^beta ; add: CE + lam * E[lat] / B
    beta: float = 0.6
    lam: float = 0.1
    eval_batches: int = 8  # batches for BN recalibration and for scoring the derived path each epoch


def warm_up(supernet: Supernet, train: DataLoader, cfg: SearchConfig, seed: int, on_epoch: Callable[[int, dict], None] | None = None) -> dict:
    """Train shared weights with one uniformly sampled path per step, so every op is trained."""
    gen = torch.Generator().manual_seed(seed)
    optimizer = sgd(supernet.weight_parameters(), cfg.weight_lr, cfg.momentum, cfg.weight_decay)
    stats: dict = {}
    for epoch in range(cfg.warmup_epochs):
        stats = train_epoch(supernet, train, optimizer, nn.CrossEntropyLoss(), lambda: supernet.sample_single(gen, uniform=True))
        if on_epoch is not None:
            on_epoch(epoch, stats)
    return stats


class ProxylessSearch:
    """One architecture search of a supernet for one latency table and budget."""

    def __init__(self, supernet: Supernet, lut: LatencyTable, budget_ms: float, cfg: SearchConfig, seed: int) -> None:
        lut.check_space(supernet.macro)
        self.supernet, self.lut, self.budget_ms, self.cfg = supernet, lut, budget_ms, cfg
        self.gen = torch.Generator().manual_seed(seed)
        self.weight_opt = sgd(supernet.weight_parameters(), cfg.weight_lr, cfg.momentum, cfg.weight_decay)
        self.arch_opt = torch.optim.Adam(supernet.arch_parameters(), lr=cfg.arch_lr, betas=(0.0, 0.999), eps=1e-8)
        self.ce = nn.CrossEntropyLoss()

    def expected_latency(self) -> torch.Tensor:
        return self.lut.expected(self.supernet.probabilities(), self.supernet.macro)

    def epoch(self, train: DataLoader, val: DataLoader) -> dict[str, float]:
        """One pass over ``train`` with architecture steps interleaved; returns epoch metrics."""
        val_batches = itertools.cycle(val)
        weight_losses, arch_losses = [], []
        for step, (x, y) in enumerate(train):
            weight_losses.append(self._weight_step(x, y))
            if (step + 1) % self.cfg.arch_every == 0:
                arch_losses.append(self._arch_step(*next(val_batches)))
        arch, constrained = self.derive()
        self.supernet.set_architecture(arch)
        recalibrate_bn(self.supernet, train, self.cfg.eval_batches)
        return {
            "train_loss": sum(weight_losses) / max(len(weight_losses), 1),
            "arch_loss": sum(arch_losses) / max(len(arch_losses), 1),
            "val_acc": evaluate(self.supernet, val, self.cfg.eval_batches),
            "expected_latency_ms": float(self.expected_latency().detach()),
            "derived_latency_ms": self.lut.predict(arch, self.supernet.macro),
            "entropy": self.entropy(),
            "constrained": float(constrained),
        }

    def _weight_step(self, x: torch.Tensor, y: torch.Tensor) -> float:
        self.supernet.train()
        self.supernet.sample_single(self.gen)
        self.weight_opt.zero_grad(set_to_none=True)
        loss = self.ce(self.supernet(x), y)
        loss.backward()
        self.weight_opt.step()
        return loss.item()

    def _arch_step(self, x: torch.Tensor, y: torch.Tensor) -> float:
        """Two-path binarized step on alpha; shared weights are frozen for it."""
        self.supernet.train()
        self.supernet.sample_pairs(self.gen)
        weights = list(self.supernet.weight_parameters())
        for p in weights:
            p.requires_grad_(False)
        try:
            self.arch_opt.zero_grad(set_to_none=True)
            ce = self.ce(self.supernet(x), y)
            loss = latency_aware_loss(ce, self.expected_latency(), self.budget_ms, self.cfg.latency_loss, self.cfg.beta, self.cfg.lam)
            loss.backward()
            for layer in self.supernet.layers:
                layer.accumulate_alpha_grad()
            self.arch_opt.step()
            for layer in self.supernet.layers:
                layer.rescale_pair()
        finally:
            for p in weights:
                p.requires_grad_(True)
            self.supernet.sample_single(self.gen)
        return loss.item()

    def derive(self) -> tuple[Architecture, bool]:
        """Most probable path; if it overshoots the budget, the most probable one that fits."""
        arch = self.supernet.derive()
        macro = self.supernet.macro
        if self.lut.predict(arch, macro) <= self.budget_ms:
            return arch, False
        log_probs = [torch.log_softmax(layer.alpha.detach(), 0).tolist() for layer in self.supernet.layers]
        choice = most_probable_within(log_probs, self.lut.layer_costs(macro), self.budget_ms - self.lut.fixed_ms)
        if choice is None:
            raise ValueError(f"no architecture of space {macro.name!r} fits {self.budget_ms:.3f} ms on {self.lut.target!r}")
        ops = tuple(layer.choices[i] for layer, i in zip(self.supernet.layers, choice))
        return Architecture(macro.name, ops), True

    @torch.no_grad()
    def entropy(self) -> float:
        """Mean per-layer entropy of softmax(alpha), in nats (log 7 = 1.95 is uniform)."""
        ents = [float(-(p * p.clamp_min(1e-12).log()).sum()) for p in self.supernet.probabilities()]
        return sum(ents) / max(len(ents), 1) if ents else math.nan
