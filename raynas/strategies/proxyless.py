"""ProxylessNAS (Cai et al., 2019) as a strategy: one supernet warmed up per seed and held by a host
actor, one gradient search per (target, budget, seed) from those shared weights, and random search
with the same weights, window and wall-clock as its baseline."""

from __future__ import annotations

from typing import Any

import ray
import torch
from ray.util.scheduling_strategies import NodeAffinitySchedulingStrategy

from raynas.compute import CPU
from raynas.config import ExperimentConfig, check
from raynas.data.datasets import load_splits
from raynas.data.loading import generator_state, set_generator_state
from raynas.evaluation.compare import RANDOM
from raynas.orchestration.host import SupernetHost
from raynas.orchestration.runtime import cluster_cpus, worker_compute
from raynas.orchestration.tasks import warm_up_supernet
from raynas.search.proxyless import (
    ARCH_SCHEDULES,
    BINARIZATIONS,
    LATENCY_ESTIMATES,
    WEIGHT_OPTIMIZERS,
    ProxylessSearch,
    SearchConfig,
    warm_up,
)
from raynas.search.random_search import RandomSearch
from raynas.space.macro import get_space
from raynas.strategies.base import Finalist, Job, LocalProblem, Scenario, Strategy, finalists_in
from raynas.supernet.loss import LATENCY_LOSSES
from raynas.supernet.supernet import Supernet
from raynas.weights import load_numpy_state


class ProxylessNAS(Strategy):
    name = "proxyless"
    label = "ProxylessNAS"
    section = "search"
    config_type = SearchConfig
    style = ("tab:red", "o")
    phases = ("search", "random")
    smoke = {"warmup_epochs": 1, "search_epochs": 2, "eval_batches": 1, "arch_lr": 0.05}

    def validate(self, s: SearchConfig, cfg: ExperimentConfig) -> None:
        check(s.latency_loss in LATENCY_LOSSES, "search.latency_loss", f"must be one of {', '.join(LATENCY_LOSSES)}")
        check(s.binarization in BINARIZATIONS, "search.binarization", f"must be one of {', '.join(BINARIZATIONS)}")
        check(s.weight_optimizer in WEIGHT_OPTIMIZERS, "search.weight_optimizer", f"must be one of {', '.join(WEIGHT_OPTIMIZERS)}")
        check(0 < s.budget_floor <= 1, "search.budget_floor", "must lie in (0, 1]")
        check(0 < s.aim <= 1, "search.aim", "must lie in (0, 1]: the share of the budget the latency loss steers to")
        check(
            0 <= s.aim_floor <= s.aim,
            "search.aim_floor",
            "must lie in [0, search.aim]: the lower edge of the band the ratio loss steers into (0: none)",
        )
        check(s.latency_estimate in LATENCY_ESTIMATES, "search.latency_estimate", f"must be one of {', '.join(LATENCY_ESTIMATES)}")
        check(s.arch_schedule in ARCH_SCHEDULES, "search.arch_schedule", f"must be one of {', '.join(ARCH_SCHEDULES)}")
        check(0 <= s.reinforce_decay < 1, "search.reinforce_decay", "must lie in [0, 1)")

    def prepare(self, run: Any, seeds: list[int]) -> None:
        run.log(f"[raynas] warming up {len(seeds)} supernet(s) ({run.cfg.search.warmup_epochs} epochs each, uniform path sampling)")
        with run.clock("warmup"):
            self.shared = {"hosts": {seed: warm_up_on_cluster(run, seed) for seed in seeds}, "luts": run.luts}

    def search(self, run: Any, scenarios: list[Scenario]) -> list[Finalist]:
        jobs = [Job.of(s, self.name) for s in scenarios]
        return finalists_in(run.cfg.space, jobs, run.search_jobs("search", jobs, build_search, self.shared))

    def random_baseline(self, run: Any, scenarios: list[Scenario], found: list[Finalist]) -> list[Finalist]:
        seconds = {f.key: f.search_seconds for f in found}
        jobs = [Job.of(s, RANDOM, budget_seconds=seconds[s.key(self.name)]) for s in scenarios]
        return finalists_in(run.cfg.space, jobs, run.search_jobs("random", jobs, build_random, self.shared))

    def release(self, run: Any) -> None:
        for host in self.shared.get("hosts", {}).values():
            ray.kill(host)

    def local_search(self, problem: LocalProblem, seed: int) -> "EpochSearch":
        """Warm-up here, then the search for ``problem``'s budget, one epoch per step."""
        cfg, compute = problem.config, problem.compute or CPU
        supernet = compute.module(Supernet(get_space(problem.space), problem.num_classes))
        warm_up(supernet, problem.train, cfg, seed, compute=compute)
        return EpochSearch(
            ProxylessSearch(supernet, problem.lut, problem.budget_ms, cfg, seed, compute=compute),
            problem.train,
            problem.val,
            cfg.search_epochs,
        )


def warm_up_on_cluster(run: Any, seed: int):
    """Warm up one seed's supernet on the largest node; the driver keeps the checkpoint and starts a
    host actor on its own node, so a restarted host always finds the file (whichever node trained)."""
    checkpoint = run.run_dir / "supernet" / f"warmup-s{seed}.pt"
    if not (run.resume and checkpoint.is_file()):
        cfg, cpus = run.cfg, cluster_cpus()
        task = warm_up_supernet.options(num_cpus=cpus, num_gpus=cfg.ray.gpus_per_task)
        stats, state = ray.get(task.remote(cfg.space, cfg.data, cfg.search, seed, cpus, cfg.compute))
        checkpoint.parent.mkdir(parents=True, exist_ok=True)
        tmp = checkpoint.with_suffix(".tmp")
        torch.save({k: torch.from_numpy(v.copy()) for k, v in state.items()}, tmp)
        tmp.replace(checkpoint)
        run.tracker.log_metrics(run.tracker.parent_id, {f"{k}/s{seed}": v for k, v in stats.items()})
    here = NodeAffinitySchedulingStrategy(ray.get_runtime_context().get_node_id(), soft=False)
    return SupernetHost.options(scheduling_strategy=here).remote(str(checkpoint))


def shared_supernet(job: Job, shared: dict, cfg: ExperimentConfig):
    """The seed's warmed-up supernet, fetched through its host actor, on the trial's device, with that seed's loaders."""
    compute = worker_compute(cfg.compute)
    splits = load_splits(cfg.data)
    train, val, _ = splits.loaders(cfg.data.batch_size, job.seed, compute.device)
    supernet = Supernet(get_space(cfg.space), splits.num_classes)
    [weights_ref] = ray.get(shared["hosts"][job.seed].weights.remote())
    load_numpy_state(supernet, ray.get(weights_ref))
    return compute.module(supernet), train, val, compute


class EpochSearch:
    """ProxylessNAS as steps: one search epoch per step."""

    def __init__(self, search: ProxylessSearch, train, val, epochs: int) -> None:
        self.search, self.train, self.val, self.epochs, self.epoch = search, train, val, epochs, 0

    @property
    def done(self) -> bool:
        return self.epoch >= self.epochs

    def step(self) -> dict:
        self.epoch += 1
        metrics = self.search.epoch(self.train, self.val)
        return metrics | {"score": metrics["val_acc"]}  # the derived architecture's shared-weight accuracy

    def state_dict(self) -> dict:
        """The search's state and the loaders' generators after the epoch: the next epoch sees the batches it would have."""
        return {
            "search": self.search.state_dict(),
            "epoch": self.epoch,
            "loaders": [generator_state(self.train), generator_state(self.val)],
        }

    def load_state_dict(self, state: dict) -> None:
        self.search.load_state_dict(state["search"])
        self.epoch = state["epoch"]
        for loader, saved in zip((self.train, self.val), state["loaders"]):
            set_generator_state(loader, saved)


def build_search(job: Job, shared: dict, cfg: ExperimentConfig) -> EpochSearch:
    supernet, train, val, compute = shared_supernet(job, shared, cfg)
    search = ProxylessSearch(supernet, shared["luts"][job.target], job.budget_ms, cfg.search, job.seed, compute=compute)
    return EpochSearch(search, train, val, cfg.search.search_epochs)


def build_random(job: Job, shared: dict, cfg: ExperimentConfig) -> RandomSearch:
    supernet, train, val, compute = shared_supernet(job, shared, cfg)
    search = RandomSearch(
        supernet, shared["luts"][job.target], job.budget_ms, cfg.search, job.seed, cfg.evaluation.random_train_fraction, compute=compute
    )
    return search.start(train, val, job.budget_seconds)
