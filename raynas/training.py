"""Plain supervised training and evaluation shared by warm-up, search and retraining."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, Iterable

import torch
from torch import nn
from torch.utils.data import DataLoader


@dataclass(frozen=True)
class RetrainConfig:
    """Training a derived architecture from scratch."""

    epochs: int = 4
    lr: float = 0.05  # SGD with Nesterov momentum, cosine decay to 0
    momentum: float = 0.9
    weight_decay: float = 4e-5
    label_smoothing: float = 0.0


def sgd(params: Iterable[nn.Parameter], lr: float, momentum: float, weight_decay: float) -> torch.optim.SGD:
    return torch.optim.SGD(params, lr=lr, momentum=momentum, weight_decay=weight_decay, nesterov=momentum > 0)


@torch.no_grad()
def evaluate(model: nn.Module, loader: DataLoader, max_batches: int | None = None) -> float:
    """Top-1 accuracy in [0, 1]."""
    model.eval()
    correct = total = 0
    for i, (x, y) in enumerate(loader):
        if max_batches is not None and i >= max_batches:
            break
        correct += int((model(x).argmax(1) == y).sum())
        total += len(y)
    return correct / max(total, 1)


@torch.no_grad()
def recalibrate_bn(model: nn.Module, loader: DataLoader, batches: int) -> None:
    """Re-estimate BatchNorm running statistics for the currently active path.

    Shared BN statistics in a supernet mix every sampled path, so a single path evaluated with
    them looks far worse than it is; a few forward passes with cumulative averaging fix that.
    """
    norms = [m for m in model.modules() if isinstance(m, nn.modules.batchnorm._BatchNorm)]
    saved = [m.momentum for m in norms]
    for m in norms:
        m.reset_running_stats()
        m.momentum = None
    model.train()
    for i, (x, _) in enumerate(loader):
        if i >= batches:
            break
        model(x)
    for m, momentum in zip(norms, saved):
        m.momentum = momentum


def train_step(model: nn.Module, optimizer, loss_fn: nn.Module, x: torch.Tensor, y: torch.Tensor) -> tuple[float, int]:
    """One optimizer step on one batch; returns the loss and the number of correct predictions."""
    optimizer.zero_grad(set_to_none=True)
    logits = model(x)
    loss = loss_fn(logits, y)
    loss.backward()
    optimizer.step()
    return loss.item(), int((logits.argmax(1) == y).sum())


def train_epoch(model: nn.Module, loader: DataLoader, optimizer, loss_fn: nn.Module, before_batch: Callable[[], None] | None = None) -> dict[str, float]:
    """One pass over ``loader``; ``before_batch`` lets a supernet resample its path per step."""
    model.train()
    loss_sum = correct = total = 0.0
    for x, y in loader:
        if before_batch is not None:
            before_batch()
        loss, hits = train_step(model, optimizer, loss_fn, x, y)
        loss_sum += loss * len(y)
        correct += hits
        total += len(y)
    return {"loss": loss_sum / max(total, 1), "acc": correct / max(total, 1)}


def retrain(model: nn.Module, train: DataLoader, val: DataLoader, cfg: RetrainConfig, on_epoch: Callable[[int, dict], None] | None = None) -> dict[str, float]:
    """Train ``model`` from its current (fresh) weights; report per-epoch metrics to ``on_epoch``."""
    optimizer = sgd(model.parameters(), cfg.lr, cfg.momentum, cfg.weight_decay)
    schedule = torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, T_max=max(cfg.epochs, 1))
    loss_fn = nn.CrossEntropyLoss(label_smoothing=cfg.label_smoothing)
    metrics: dict[str, float] = {}
    for epoch in range(cfg.epochs):
        stats = train_epoch(model, train, optimizer, loss_fn)
        schedule.step()
        metrics = {"train_loss": stats["loss"], "train_acc": stats["acc"], "val_acc": evaluate(model, val)}
        if on_epoch is not None:
            on_epoch(epoch, metrics)
    return metrics
