"""Random search with early stopping, run by a Tune scheduler: the NAS checklist's "random search with
early termination" baseline, for every strategy.

Architectures are drawn uniformly from the scenario's latency window (the same rejection sampler as
the weight-sharing random search), each trained *standalone* from scratch as a Tune trial, one
epoch per iteration, scored on the validation split; ``ASHAScheduler`` (or ``HyperBandScheduler``)
stops the weak ones. A stopper ends the whole run once the trials' device-seconds reach the paired
NAS search's (its warm-up share included). The survivor, the best of the trials that went furthest,
is retrained with the shared recipe like every finalist.
"""

from __future__ import annotations

import time
from typing import Any

import numpy as np
import torch
from ray import tune
from ray.tune.schedulers import ASHAScheduler, HyperBandScheduler

from raynas.config import ASHAConfig
from raynas.data.datasets import load_splits
from raynas.hardware.lut import LatencyTable
from raynas.orchestration.runtime import worker_compute
from raynas.search.derive import budget_window
from raynas.search.random_search import sample_in_window
from raynas.space.architecture import Architecture
from raynas.space.macro import MacroConfig
from raynas.space.network import ChildNetwork
from raynas.training import evaluate, sgd, train_epoch

def window_candidates(lut: LatencyTable, macro: MacroConfig, budget_ms: float, floor: float, n: int, seed: int) -> list[str]:
    """``n`` architectures uniform over the budget window [floor * B, B] on the target's table."""
    costs = lut.layer_costs(macro)
    picks = sample_in_window(costs, lut.fixed_ms, *budget_window(costs, lut.fixed_ms, budget_ms, floor), n, np.random.default_rng(seed))
    choices = [spec.choices for spec in macro.layers()]
    return [Architecture(macro.name, tuple(c[i] for c, i in zip(choices, row))).to_string() for row in picks]


def standalone_trial(config: dict, archs: list[str], space: str, cfg: Any, seed: int) -> None:
    """Train one candidate from scratch with the retraining recipe's optimizer, one epoch per report."""
    torch.set_num_threads(cfg.ray.cpus_per_trial)
    torch.manual_seed(seed)
    compute = worker_compute(cfg.compute)
    splits = load_splits(cfg.data)
    train, val, _ = splits.loaders(cfg.data.batch_size, seed, compute.device)
    model = compute.module(ChildNetwork(Architecture.from_string(space, archs[config["candidate"]]), splits.num_classes))
    r = cfg.retrain
    optimizer = sgd(model.parameters(), r.lr, r.momentum, r.weight_decay)
    loss_fn = torch.nn.CrossEntropyLoss(label_smoothing=r.label_smoothing)
    for epoch in range(cfg.evaluation.asha.max_epochs):
        start = time.perf_counter()
        stats = train_epoch(model, train, optimizer, loss_fn, None, compute)
        acc = evaluate(model, val, cfg.evaluation.asha.eval_batches, compute)
        tune.report({"val_acc": acc, "train_loss": stats["loss"], "epoch": epoch, "arch": archs[config["candidate"]], "epoch_seconds": time.perf_counter() - start})


class DeviceSecondsBudget(tune.Stopper):
    """Stops every trial once the trials' summed seconds times their devices reach ``seconds``."""

    def __init__(self, seconds: float, devices: float) -> None:
        self.seconds, self.devices, self.spent = seconds, devices, 0.0

    def __call__(self, trial_id: str, result: dict) -> bool:
        self.spent += result.get("time_this_iter_s", 0.0) * self.devices
        return self.stop_all()

    def stop_all(self) -> bool:
        return self.spent >= self.seconds


def scheduler(cfg: ASHAConfig):
    if cfg.scheduler == "hyperband":
        return HyperBandScheduler(time_attr="training_iteration", max_t=cfg.max_epochs, reduction_factor=cfg.reduction_factor)
    return ASHAScheduler(time_attr="training_iteration", max_t=cfg.max_epochs, grace_period=cfg.grace_epochs, reduction_factor=cfg.reduction_factor)


def survivor(results: list[dict]) -> dict:
    """The best last result among the trials that trained longest (scores after equal training)."""
    furthest = max(r["training_iteration"] for r in results)
    return max((r for r in results if r["training_iteration"] == furthest), key=lambda r: r["val_acc"])


def anytime(frames: list, devices: float) -> list[tuple[float, float]]:
    """Performance over time: the best validation accuracy seen so far against the device-seconds spent,
    every trial's epochs in the order they finished."""
    rows = sorted((row["timestamp"], row["time_this_iter_s"], row["val_acc"]) for frame in frames for row in frame.to_dict("records"))
    points, spent, best = [], 0.0, -1.0
    for _, seconds, acc in rows:
        spent += seconds * devices
        best = max(best, acc)
        points.append((spent, best))
    return points
