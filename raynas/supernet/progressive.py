"""Progressive shrinking (OFA): train the largest subnet, then open kernel, depth and width in turn.

Every phase after the first samples one subnet per step among the choices opened so far and
distils from the largest network trained in phase one. Each phase ends with a checkpoint, so an
interrupted training resumes at the first unfinished phase.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Iterator

import torch
import torch.nn.functional as F
from torch import nn
from torch.utils.data import DataLoader

from raynas.checkpoints import load_state_dict
from raynas.compute import CPU, Compute, iterate_on
from raynas.supernet.elastic import ElasticSupernet
from raynas.training import sgd

PHASES = ("largest", "kernel", "depth", "width")


@dataclass(frozen=True)
class ShrinkConfig:
    """Elastic supernet training; epochs per phase in ``PHASES`` order."""

    resolutions: tuple[int, ...] = ()  # elastic input sizes; () = the space's own size only
    min_depth: int = 2  # fewest layers a stage may keep
    largest_epochs: int = 2  # phase 0: the largest network alone
    kernel_epochs: int = 1  # phase 1: elastic kernel size
    depth_epochs: int = 1  # phase 2: elastic depth
    width_epochs: int = 1  # phase 3: elastic width (expansion)
    lr: float = 0.05  # SGD with Nesterov momentum, cosine decay within each phase
    shrink_lr_scale: float = 0.5  # later phases start at lr * this (they fine-tune shared weights)
    momentum: float = 0.9  # SGD momentum
    weight_decay: float = 4e-5  # L2 penalty on every weight
    kd_ratio: float = 1.0  # weight of distillation from the largest net (0 turns it off)
    kd_temperature: float = 1.0  # softmax temperature of the distillation targets

    def epochs(self, phase: str) -> int:
        return getattr(self, f"{phase}_epochs")


def phase_choices(supernet: ElasticSupernet, phase: str) -> dict[str, tuple[int, ...] | None]:
    """The sampling choices open in ``phase`` (resolution is elastic from the start, as in OFA)."""
    macro, opened = supernet.macro, PHASES[: PHASES.index(phase) + 1]
    return {
        "kernels": macro.kernels if "kernel" in opened else None,
        "depths": tuple(range(supernet.min_depth, max(supernet.max_depths) + 1)) if "depth" in opened else None,
        "expansions": macro.expansions if "width" in opened else None,
        "resolutions": supernet.resolutions,
    }


def distillation_loss(student: torch.Tensor, teacher: torch.Tensor, temperature: float) -> torch.Tensor:
    """KL(teacher || student) on temperature-softened outputs, scaled by T^2 (Hinton et al.)."""
    t = temperature
    return F.kl_div(F.log_softmax(student / t, 1), F.softmax(teacher / t, 1), reduction="batchmean") * t * t


def train_progressive(
    supernet: ElasticSupernet,
    train: DataLoader,
    cfg: ShrinkConfig,
    *,
    seed: int,
    checkpoint_dir: str | Path,
    on_epoch: Callable[[str, int, dict], None] | None = None,
    compute: Compute = CPU,
) -> dict[str, float]:
    """All phases in order on ``compute``'s device (``supernet`` already there); a phase whose
    checkpoint exists is loaded instead of trained.

    Returns seconds and last-epoch loss per phase (a loaded phase reports 0 seconds).
    """
    stats: dict[str, float] = {}
    for stats, _ in progressive_phases(supernet, train, cfg, seed=seed, checkpoint_dir=checkpoint_dir, on_epoch=on_epoch, compute=compute):
        pass
    return stats


def progressive_phases(
    supernet: ElasticSupernet,
    train: DataLoader,
    cfg: ShrinkConfig,
    *,
    seed: int,
    checkpoint_dir: str | Path,
    on_epoch: Callable[[str, int, dict], None] | None = None,
    compute: Compute = CPU,
) -> Iterator[tuple[dict[str, float], list[Path]]]:
    """``train_progressive`` one phase at a time: after each phase, the stats so far and the files it
    wrote (none for a phase loaded from its checkpoint), so a caller can ship them off the node."""
    checkpoint_dir = Path(checkpoint_dir)
    checkpoint_dir.mkdir(parents=True, exist_ok=True)
    stats, teacher = {}, None
    for n, phase in enumerate(PHASES):
        path = checkpoint_dir / f"{n}-{phase}.pt"
        start = time.perf_counter()
        written = []
        if path.is_file():
            supernet.load_state_dict({k: v.to(compute.device) for k, v in load_state_dict(path).items()})
            _restore_order(train, path)
            stats[f"{phase}_resumed"] = 1.0
        else:
            if phase == "width":
                supernet.sort_channels()
            gen = torch.Generator().manual_seed(seed * len(PHASES) + n)  # per phase: a resumed phase samples as it would have
            loss = _train_phase(supernet, train, cfg, phase=phase, gen=gen, teacher=teacher, on_epoch=on_epoch, compute=compute)
            written = [p for p in (_save_order(train, path), _save(supernet, path)) if p is not None]
            stats[f"{phase}_loss"] = loss
        stats[f"{phase}_seconds"] = time.perf_counter() - start
        if phase == "largest" and cfg.kd_ratio > 0:
            teacher = compute.module(supernet.extract(supernet.largest())).eval()
        if n == len(PHASES) - 1:
            supernet.largest()
        yield stats, written


def _train_phase(supernet, train, cfg: ShrinkConfig, *, phase: str, gen, teacher, on_epoch, compute: Compute) -> float:
    epochs, choices = cfg.epochs(phase), phase_choices(supernet, phase)
    lr = cfg.lr if phase == "largest" else cfg.lr * cfg.shrink_lr_scale
    optimizer = sgd(supernet.parameters(), lr, momentum=cfg.momentum, weight_decay=cfg.weight_decay)
    schedule = torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, T_max=max(epochs * len(train), 1))
    loss_sum, seen = 0.0, 0
    for epoch in range(epochs):
        supernet.train()
        total, seen = torch.zeros((), device=compute.device), 0
        for x, y in iterate_on(compute, train):
            loss = shrinking_step(supernet, x, y, gen=gen, choices=choices, teacher=teacher, cfg=cfg, optimizer=optimizer, compute=compute)
            schedule.step()
            total, seen = total + loss.float() * len(y), seen + len(y)
        loss_sum = float(compute.sync.sum(total))  # one device sync per epoch (over the group: the global batches' loss)
        if on_epoch is not None:
            on_epoch(phase, epoch, {"loss": loss_sum / max(seen, 1)})
    return loss_sum / max(seen, 1)


def shrinking_step(supernet, x, y, *, gen, choices: dict, teacher, cfg: ShrinkConfig, optimizer, compute: Compute = CPU) -> torch.Tensor:
    """One progressive-shrinking step: sample a subnet among ``choices``, CE plus distillation from
    ``teacher``; returns the loss on the device. In a data-parallel group every process samples the
    same subnet (``gen`` is seeded alike) and trains on its slice of the global batch ``x, y``; the
    loss returned is its share of the global batch's mean loss."""
    supernet.sample(gen, **choices)
    x, y, share = compute.sync.shard(x, y)
    with compute.autocast():
        logits = supernet(x)
        loss = F.cross_entropy(logits, y)
        if teacher is not None:
            with torch.no_grad():
                soft = teacher(x)
            loss = loss + cfg.kd_ratio * distillation_loss(logits.float(), soft.float(), cfg.kd_temperature)
    optimizer.zero_grad(set_to_none=True)
    compute.step(loss * share, optimizer)
    return loss.detach() * share


def _order_file(path: Path) -> Path:
    return path.with_name(f"{path.stem}.loader.pt")


def _save_order(train, path: Path) -> Path | None:
    """The loader's shuffle (and augmentation) generator after a phase, so a resumed run sees the
    batches an uninterrupted one would (loaders without a generator, e.g. fixed lists, need none)."""
    generator = getattr(train, "generator", None)
    if generator is None:
        return None
    torch.save({"generator_state": generator.get_state()}, _order_file(path))
    return _order_file(path)


def _restore_order(train, path: Path) -> None:
    generator, saved = getattr(train, "generator", None), _order_file(path)
    if generator is not None and saved.is_file():
        generator.set_state(load_state_dict(saved)["generator_state"])


def _save(supernet: nn.Module, path: Path) -> Path:
    tmp = path.with_suffix(".tmp")
    torch.save(supernet.state_dict(), tmp)
    tmp.replace(path)
    return path
