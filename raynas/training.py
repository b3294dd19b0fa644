"""Plain supervised training and evaluation shared by warm-up, search and retraining."""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Callable, Iterable

import torch
from torch import nn
from torch.utils.data import DataLoader

from raynas.compute import CPU, Compute, iterate_on


@dataclass(frozen=True)
class RetrainConfig:
    """Training a derived architecture from scratch."""

    epochs: int = 4  # the same recipe for every finalist and baseline
    lr: float = 0.05  # SGD with Nesterov momentum, cosine decay to 0
    momentum: float = 0.9  # SGD momentum
    weight_decay: float = 4e-5  # L2 penalty on every weight
    label_smoothing: float = 0.0  # of the cross-entropy targets (0: none)


def cosine(base: float, epoch: float, total: float) -> float:
    """A cosine schedule: ``base`` at epoch 0, falling to 0 at ``total`` and staying there."""
    return base * 0.5 * (1 + math.cos(math.pi * min(epoch, total) / max(total, 1)))


SCHEDULES = ("constant", "cosine")  # how a learning rate moves over a run's epochs


def scheduled(base: float, epoch: float, total: float, *, schedule: str) -> float:
    """The rate in ``epoch`` of ``total`` under ``schedule`` (one of ``SCHEDULES``)."""
    return cosine(base, epoch, total) if schedule == "cosine" else base


def set_lr(optimizer: torch.optim.Optimizer, lr: float) -> None:
    for group in optimizer.param_groups:
        group["lr"] = lr


def sgd(params: Iterable[nn.Parameter], lr: float, *, momentum: float, weight_decay: float) -> torch.optim.SGD:
    return torch.optim.SGD(params, lr=lr, momentum=momentum, weight_decay=weight_decay, nesterov=momentum > 0)


@torch.no_grad()
def evaluate(model: nn.Module, loader: DataLoader, *, max_batches: int | None = None, compute: Compute = CPU) -> float:
    """Top-1 accuracy in [0, 1]; counts stay on the device until the end (one sync). In a data-parallel
    group each process scores its slice of every batch and the counts are summed: the accuracy of the
    whole batches, the same on every process, for a share of the work."""
    model.eval()
    correct, total = torch.zeros((), dtype=torch.long, device=compute.device), torch.zeros((), dtype=torch.long, device=compute.device)
    for i, (x, y) in enumerate(iterate_on(compute, loader)):
        if max_batches is not None and i >= max_batches:
            break
        x, y, _ = compute.sync.shard(x, y)
        with compute.autocast():
            correct += (model(x).argmax(1) == y).sum()
        total += len(y)
    if compute.sync.active:
        correct, total = compute.sync.sum(correct), compute.sync.sum(total)
    return int(correct) / max(int(total), 1)


@torch.no_grad()
def recalibrate_bn(model: nn.Module, loader: DataLoader, batches: int, *, compute: Compute = CPU) -> None:
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
    for i, (x, _) in enumerate(iterate_on(compute, loader)):
        if i >= batches:
            break
        with compute.autocast():
            model(x)
    for m, momentum in zip(norms, saved):
        m.momentum = momentum


def train_step(
    model: nn.Module, optimizer, loss_fn: nn.Module, *, x: torch.Tensor, y: torch.Tensor, compute: Compute = CPU
) -> tuple[torch.Tensor, torch.Tensor]:
    """One optimizer step on one batch (already on the device); returns the loss and the number of
    correct predictions as device tensors, so the caller decides when to synchronize. In a
    data-parallel group ``x, y`` is the global batch and this process trains on its slice
    (raynas/parallel.py); the returned loss and count are its slice's."""
    x, y, share = compute.sync.shard(x, y)
    optimizer.zero_grad(set_to_none=True)
    with compute.autocast():
        logits = model(x)
        loss = loss_fn(logits, y)
    compute.step(loss * share if compute.sync.active else loss, optimizer)
    return loss.detach(), (logits.argmax(1) == y).sum()


def train_epoch(
    model: nn.Module,
    loader: DataLoader,
    optimizer,
    *,
    loss_fn: nn.Module,
    before_batch: Callable[[], None] | None = None,
    compute: Compute = CPU,
) -> dict[str, float]:
    """One pass over ``loader``; ``before_batch`` lets a supernet resample its path per step.
    Sums stay on the device: one synchronization per epoch, not per step."""
    model.train()
    loss_sum = torch.zeros((), device=compute.device)
    correct = torch.zeros((), dtype=torch.long, device=compute.device)
    total = 0
    for x, y in iterate_on(compute, loader):
        if before_batch is not None:
            before_batch()
        loss, hits = train_step(model, optimizer, loss_fn, x=x, y=y, compute=compute)
        mine = len(compute.sync.shard(x, y)[1])
        loss_sum += loss.float() * mine
        correct += hits
        total += mine
    if compute.sync.active:  # the epoch's figures over the global batches, as one process would report them
        loss_sum, correct = compute.sync.sum(loss_sum), compute.sync.sum(correct)
        total = int(compute.sync.sum(torch.tensor(total, device=compute.device)))
    return {"loss": float(loss_sum) / max(total, 1), "acc": int(correct) / max(total, 1)}


def retrain(
    model: nn.Module,
    train: DataLoader,
    val: DataLoader,
    *,
    cfg: RetrainConfig,
    on_epoch: Callable[[int, dict], None] | None = None,
    compute: Compute = CPU,
    before_batch: Callable[[], None] | None = None,
) -> dict[str, float]:
    """Train ``model`` (already on ``compute``'s device) from its current weights; report per-epoch metrics
    to ``on_epoch``; ``before_batch`` runs before every step (a stop check, say)."""
    optimizer = sgd(model.parameters(), cfg.lr, momentum=cfg.momentum, weight_decay=cfg.weight_decay)
    schedule = torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, T_max=max(cfg.epochs, 1))
    loss_fn = nn.CrossEntropyLoss(label_smoothing=cfg.label_smoothing)
    metrics: dict[str, float] = {}
    for epoch in range(cfg.epochs):
        stats = train_epoch(model, train, optimizer, loss_fn=loss_fn, before_batch=before_batch, compute=compute)
        schedule.step()
        metrics = {"train_loss": stats["loss"], "train_acc": stats["acc"], "val_acc": evaluate(model, val, compute=compute)}
        if on_epoch is not None:
            on_epoch(epoch, metrics)
    return metrics
