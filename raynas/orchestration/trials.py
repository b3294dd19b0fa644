"""Tune trainables: one search trial per (target, budget), one retraining trial per derived net."""

from __future__ import annotations

import tempfile
from pathlib import Path

import ray
import torch
from ray import tune

from raynas.config import ExperimentConfig
from raynas.data.datasets import load_splits
from raynas.hardware.lut import LatencyTable
from raynas.search.proxyless import ProxylessSearch
from raynas.space.architecture import Architecture
from raynas.space.macro import get_space
from raynas.space.network import ChildNetwork
from raynas.supernet.supernet import Supernet
from raynas.training import evaluate, retrain
from raynas.weights import load_numpy_state

WEIGHTS_FILE = "weights.pt"


def search_trial(config: dict, scenarios: dict[str, dict], host, luts: dict[str, LatencyTable], cfg: ExperimentConfig) -> None:
    """Start from the host's shared weights, search under the scenario's budget, report per epoch."""
    scenario = scenarios[config["scenario"]]
    torch.set_num_threads(cfg.ray.cpus_per_trial)
    torch.manual_seed(scenario["seed"])
    splits = load_splits(cfg.data)
    train, val, _ = splits.loaders(cfg.data.batch_size, scenario["seed"])
    supernet = Supernet(get_space(cfg.space), splits.num_classes)
    [weights_ref] = ray.get(host.weights.remote())
    load_numpy_state(supernet, ray.get(weights_ref))
    search = ProxylessSearch(supernet, luts[scenario["target"]], scenario["budget_ms"], cfg.search, scenario["seed"])
    for epoch in range(cfg.search.search_epochs):
        tune.report(search.epoch(train, val) | {"epoch": epoch})


def retrain_trial(config: dict, scenarios: dict[str, dict], cfg: ExperimentConfig) -> None:
    """Train the derived architecture from scratch; the last report carries test accuracy and weights."""
    from ray.experimental.tqdm_ray import tqdm

    scenario = scenarios[config["scenario"]]
    torch.set_num_threads(cfg.ray.cpus_per_trial)
    torch.manual_seed(scenario["seed"])
    splits = load_splits(cfg.data)
    train, val, test = splits.loaders(cfg.data.batch_size, scenario["seed"])
    model = ChildNetwork(Architecture.from_dict(scenario["arch"]), splits.num_classes)
    bar = tqdm(total=cfg.retrain.epochs, desc=f"retrain {scenario['key']}")

    def _report(epoch: int, metrics: dict) -> None:
        bar.update(1)
        metrics = metrics | {"epoch": epoch}
        if epoch < cfg.retrain.epochs - 1:
            tune.report(metrics)
            return
        with tempfile.TemporaryDirectory() as tmp:
            torch.save(model.state_dict(), Path(tmp) / WEIGHTS_FILE)
            tune.report(metrics | {"test_acc": evaluate(model, test)}, checkpoint=tune.Checkpoint.from_directory(tmp))

    retrain(model, train, val, cfg.retrain, _report)
    bar.close()
