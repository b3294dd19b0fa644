"""Once-for-All on Ray: train the elastic supernet once, serve it from replicas, fit the accuracy
predictor on replica evaluations, then run one evolutionary search per (target, budget) as a Tune trial."""

from __future__ import annotations

import tempfile
import time
from pathlib import Path

import numpy as np
import ray
import torch
from ray import tune

from raynas.compute import ComputeConfig
from raynas.config import OFAConfig
from raynas.data.datasets import DataConfig, load_splits
from raynas.hardware.lut import LatencyTable
from raynas.orchestration.replicas import ReplicaPool
from raynas.orchestration.runtime import worker_compute
from raynas.search.evolution import EvolutionarySearch, SubnetGenes, SubnetLatency, draw_feasible
from raynas.search.predictor import AccuracyPredictor, ArchEncoder
from raynas.space.macro import MacroConfig, get_space
from raynas.supernet.elastic import ElasticSupernet
from raynas.supernet.progressive import ShrinkConfig, progressive_phases
from raynas.weights import load_numpy_state, state_to_numpy


def resolutions(macro: MacroConfig, cfg: ShrinkConfig) -> tuple[int, ...]:
    return tuple(sorted(cfg.resolutions or (macro.input_size,)))


def resolution_spaces(space: str, cfg: ShrinkConfig) -> list[str]:
    """Space names of every elastic resolution; each needs its own latency table."""
    macro = get_space(space)
    return [macro.at_resolution(r).name for r in resolutions(macro, cfg)]


@ray.remote
def train_elastic_supernet(
    space: str, data: DataConfig, cfg: ShrinkConfig, seed: int, threads: int, saved: dict[str, bytes], compute_cfg: ComputeConfig = ComputeConfig()
):
    """Progressive shrinking in one task on its device, as a generator: after every phase it yields
    ``("files", {name: bytes})``, the phase's checkpoint files for the driver to keep (this node's
    disk may not outlive it), and last ``("done", stats, numpy weights)``. ``saved`` holds the files
    of phases already done (a resumed run), which are loaded instead of trained."""
    torch.set_num_threads(threads)
    torch.manual_seed(seed)
    compute = worker_compute(compute_cfg)
    splits = load_splits(data)
    train, _, _ = splits.loaders(data.batch_size, seed, compute.device)
    macro = get_space(space)
    net = compute.module(ElasticSupernet(macro, splits.num_classes, cfg.min_depth, resolutions(macro, cfg)))
    start, stats = time.perf_counter(), {}
    with tempfile.TemporaryDirectory(prefix="raynas-ofa-") as local:
        for name, content in saved.items():
            (Path(local) / name).write_bytes(content)
        for stats, written in progressive_phases(net, train, cfg, seed, local, compute=compute):
            if written:
                yield "files", {p.name: p.read_bytes() for p in written}
    yield "done", stats | {"train_seconds": time.perf_counter() - start, "num_classes": splits.num_classes}, state_to_numpy(net)


def run_elastic_training(
    task, directory: Path, space: str, data: DataConfig, cfg: ShrinkConfig, seed: int, threads: int, compute_cfg: ComputeConfig = ComputeConfig()
) -> tuple[dict, dict]:
    """Drive ``train_elastic_supernet`` (``task``: it with its resources) from the driver: phase files
    it yields are written into ``directory`` (the run directory, which the driver can always reach),
    and those already there are sent along, so ``--resume`` continues from the last finished phase
    whichever node trained it. Returns the stats and the numpy weights."""
    directory.mkdir(parents=True, exist_ok=True)
    saved = {p.name: p.read_bytes() for p in sorted(directory.glob("*.pt"))}
    for ref in task.remote(space, data, cfg, seed, threads, saved, compute_cfg):
        kind, *payload = ray.get(ref)
        if kind == "files":
            for name, content in payload[0].items():
                tmp = directory / f".{name}.tmp"
                tmp.write_bytes(content)
                tmp.replace(directory / name)
        else:
            return payload[0], payload[1]
    raise RuntimeError("the supernet training task ended without its weights")


def collect_and_fit_predictor(pool: ReplicaPool, space: str, cfg: OFAConfig, seed: int) -> tuple[AccuracyPredictor, dict, list, list[float]]:
    """Evaluate ``predictor_samples`` uniformly random subnets on the replicas and fit the predictor."""
    macro = get_space(space)
    res = resolutions(macro, cfg.shrink)
    genes, rng = SubnetGenes(macro, cfg.shrink.min_depth, res), np.random.default_rng(seed)
    archs = list({genes.architecture(genes.random(rng)): None for _ in range(cfg.predictor_samples)})
    accuracies = pool.evaluate(archs)
    predictor = AccuracyPredictor(ArchEncoder.for_space(macro, res))
    report = predictor.fit(archs, accuracies, seed)
    return predictor, report, archs, accuracies


def _scenario_search(scenario: dict, replicas: dict, tables: dict, space: str, cfg: OFAConfig) -> tuple[SubnetGenes, SubnetLatency, ReplicaPool]:
    torch.set_num_threads(1)
    macro = get_space(space)
    genes = SubnetGenes(macro, cfg.shrink.min_depth, resolutions(macro, cfg.shrink))
    return genes, SubnetLatency(tables[scenario["target"]]), ReplicaPool(replicas[scenario["seed"]])


def evolution_trial(config: dict, scenarios: dict[str, dict], replicas: dict, predictors: dict, tables: dict[str, dict[str, LatencyTable]], space: str, cfg: OFAConfig) -> None:
    """One evolutionary search for the scenario's target and budget; the seed's replicas re-check the top candidates."""
    scenario = scenarios[config["scenario"]]
    genes, latency, pool = _scenario_search(scenario, replicas, tables, space, cfg)
    payload = predictors[scenario["seed"]]
    model = AccuracyPredictor(ArchEncoder(**payload["encoder"]))
    load_numpy_state(model, payload["state"])
    search = EvolutionarySearch(genes, latency, model, scenario["budget_ms"], cfg.evolution, scenario["seed"])
    tune.report(search.run(pool.evaluate) | {"epoch": 0})


def random_subnet_trial(config: dict, scenarios: dict[str, dict], replicas: dict, tables: dict[str, dict[str, LatencyTable]], space: str, cfg: OFAConfig) -> None:
    """The OFA random baseline: uniform subnets under the same budget, scored on the same replicas for the
    wall-clock the paired evolutionary search took (its predictor's one-off cost is not counted)."""
    scenario = scenarios[config["scenario"]]
    genes, latency, pool = _scenario_search(scenario, replicas, tables, space, cfg)
    rng = np.random.default_rng(scenario["seed"])
    start, best, scored = time.perf_counter(), (-1.0, None), 0
    while scored < 2 or time.perf_counter() - start < scenario["budget_seconds"]:
        archs = [draw_feasible(lambda: genes.random(rng), genes, latency, scenario["budget_ms"], rng)[1] for _ in range(len(pool.replicas))]
        for arch, acc in zip(archs, pool.evaluate(archs)):
            best = max(best, (acc, arch), key=lambda t: t[0])
        scored += len(archs)
    acc, arch = best
    tune.report({"arch": arch.to_string(), "space": arch.space, "predicted_ms": latency(arch), "shared_acc": acc, "evaluations": scored, "search_seconds": time.perf_counter() - start, "epoch": 0})


def predictor_payload(predictor: AccuracyPredictor) -> dict:
    """The predictor as plain data for Tune trials (encoder fields and numpy weights)."""
    return {"encoder": dict(predictor.encoder.__dict__), "state": state_to_numpy(predictor)}

