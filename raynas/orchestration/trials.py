"""Tune trainables: a ProxylessNAS or random search per (target, budget, seed), a retraining per finalist."""

from __future__ import annotations

import tempfile
import time
from pathlib import Path

import ray
import torch
from ray import tune

from raynas.config import ExperimentConfig
from raynas.data.datasets import load_splits
from raynas.hardware.lut import LatencyTable
from raynas.orchestration.ofa import resolutions
from raynas.orchestration.runtime import worker_compute
from raynas.search.proxyless import ProxylessSearch
from raynas.search.random_search import RandomSearch
from raynas.space.architecture import Architecture
from raynas.space.macro import get_space
from raynas.space.network import ChildNetwork
from raynas.supernet.elastic import ElasticSupernet
from raynas.supernet.supernet import Supernet
from raynas.training import evaluate, retrain
from raynas.weights import load_numpy_state

WEIGHTS_FILE = "weights.pt"


def _shared_supernet(scenario: dict, hosts: dict, cfg: ExperimentConfig):
    """The seed's warmed-up supernet, fetched through its host actor, on the trial's device, with that seed's data loaders."""
    torch.set_num_threads(cfg.ray.cpus_per_trial)
    torch.manual_seed(scenario["seed"])
    compute = worker_compute(cfg.compute)
    splits = load_splits(cfg.data)
    train, val, _ = splits.loaders(cfg.data.batch_size, scenario["seed"], compute.device)
    supernet = Supernet(get_space(cfg.space), splits.num_classes)
    [weights_ref] = ray.get(hosts[scenario["seed"]].weights.remote())
    load_numpy_state(supernet, ray.get(weights_ref))
    return compute.module(supernet), train, val, compute


def _node_id() -> str:
    """The Ray node a trial ran on (provenance, and how fault tests find a trial's node)."""
    return ray.get_runtime_context().get_node_id()


def search_trial(config: dict, scenarios: dict[str, dict], hosts: dict, luts: dict[str, LatencyTable], cfg: ExperimentConfig) -> None:
    """ProxylessNAS from the shared weights under the scenario's budget; reports each epoch and its cost so far."""
    scenario = scenarios[config["scenario"]]
    supernet, train, val, compute = _shared_supernet(scenario, hosts, cfg)
    search = ProxylessSearch(supernet, luts[scenario["target"]], scenario["budget_ms"], cfg.search, scenario["seed"], compute=compute)
    start = time.perf_counter()
    for epoch in range(cfg.search.search_epochs):
        metrics = search.epoch(train, val)
        tune.report(metrics | {"epoch": epoch, "search_seconds": time.perf_counter() - start, "node_id": _node_id()})


def random_trial(config: dict, scenarios: dict[str, dict], hosts: dict, luts: dict[str, LatencyTable], cfg: ExperimentConfig) -> None:
    """Random search from the same shared weights, window and wall-clock as the paired NAS search."""
    scenario = scenarios[config["scenario"]]
    supernet, train, val, compute = _shared_supernet(scenario, hosts, cfg)
    search = RandomSearch(supernet, luts[scenario["target"]], scenario["budget_ms"], cfg.search, scenario["seed"], cfg.evaluation.random_train_fraction, compute=compute)
    tune.report(search.run(train, val, scenario["budget_seconds"]) | {"epoch": 0, "node_id": _node_id()})


def elastic_subnet(weights: list, cfg: ExperimentConfig, num_classes: int, arch: Architecture) -> ChildNetwork:
    """``arch`` extracted with its weights from an elastic supernet held in the object store."""
    macro = get_space(cfg.space)
    net = ElasticSupernet(macro, num_classes, cfg.ofa.shrink.min_depth, resolutions(macro, cfg.ofa.shrink))
    load_numpy_state(net, ray.get(weights[0]))
    return net.extract(arch)


def retrain_trial(config: dict, scenarios: dict[str, dict], cfg: ExperimentConfig, supernets: dict | None = None) -> None:
    """Train a finalist with the shared recipe, from scratch or (``finetune_seed`` set: OFA fine-tuning) from
    its subnet of that seed's elastic supernet; the last report carries test accuracy and weights."""
    from ray.experimental.tqdm_ray import tqdm

    scenario = scenarios[config["scenario"]]
    torch.set_num_threads(cfg.ray.cpus_per_trial)
    torch.manual_seed(scenario["seed"])
    compute = worker_compute(cfg.compute)
    splits = load_splits(cfg.data)
    train, val, test = splits.loaders(cfg.data.batch_size, scenario["seed"], compute.device)
    arch = Architecture.from_dict(scenario["arch"])
    if scenario.get("finetune_seed") is None:
        model = ChildNetwork(arch, splits.num_classes)
    else:
        model = elastic_subnet(supernets[scenario["finetune_seed"]], cfg, splits.num_classes, arch)
    model = compute.module(model)
    bar = tqdm(total=cfg.retrain.epochs, desc=f"retrain {scenario['key']}")
    start = time.perf_counter()

    def _report(epoch: int, metrics: dict) -> None:
        bar.update(1)
        metrics = metrics | {"epoch": epoch, "retrain_seconds": time.perf_counter() - start}
        if epoch < cfg.retrain.epochs - 1:
            tune.report(metrics)
            return
        with tempfile.TemporaryDirectory() as tmp:
            torch.save({k: v.detach().cpu().contiguous() for k, v in model.state_dict().items()}, Path(tmp) / WEIGHTS_FILE)
            tune.report(metrics | {"test_acc": evaluate(model, test, compute=compute), "device": str(compute.device)}, checkpoint=tune.Checkpoint.from_directory(tmp))

    retrain(model, train, val, cfg.retrain, _report, compute)
    bar.close()
