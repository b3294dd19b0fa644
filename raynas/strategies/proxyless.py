"""ProxylessNAS (Cai et al., 2019) as a strategy: one supernet warmed up per seed and held by a host
actor, one gradient search per (target, budget, seed) from those shared weights, and random search
with the same weights, window and wall-clock as its baseline. The algorithm: ``raynas/search/proxyless.py``."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import ray

from raynas.api import RANDOM_WS, Finalist, Job, LocalProblem, RunContext, RunInputs, Scenario, Strategy, finalists_in, scenario_of
from raynas.compute import CPU
from raynas.config import ExperimentConfig, check
from raynas.data.datasets import load_splits
from raynas.execution.runtime import worker_compute
from raynas.execution.tasks import warm_up_on_cluster
from raynas.hardware.models import LatencyModels
from raynas.search.proxyless import (
    ARCH_SCHEDULES,
    BINARIZATIONS,
    LATENCY_ESTIMATES,
    WEIGHT_OPTIMIZERS,
    EpochSearch,
    ProxylessSearch,
    SearchConfig,
    warm_up,
)
from raynas.search.random_search import RandomSearch
from raynas.space.macro import get_space
from raynas.supernet.loss import LATENCY_LOSSES
from raynas.supernet.scoring import FixedBatches
from raynas.supernet.supernet import Supernet
from raynas.weights import load_numpy_state

FIXED_BATCH_SEED = 1_000_003  # offset of the loaders the fixed batches are drawn from: the same for both searches of a seed


@dataclass(frozen=True)
class ProxylessShared:
    """What every search and random-search trial reads: each seed's host actor and the latency models."""

    hosts: dict[int, Any]  # seed -> SupernetHost actor handle
    latency: LatencyModels


class ProxylessNAS(Strategy):
    name = "proxyless"
    label = "ProxylessNAS"
    section = "search"
    config_type = SearchConfig
    style = ("tab:red", "o")
    phases = ("search", "random-ws")
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
        check(s.weight_schedule in ARCH_SCHEDULES, "search.weight_schedule", f"must be one of {', '.join(ARCH_SCHEDULES)}")
        check(0 <= s.label_smoothing < 1, "search.label_smoothing", "must lie in [0, 1)")

    def prepare(self, ctx: RunContext, run: RunInputs, seeds: list[int]) -> None:
        ctx.log(f"[raynas] warming up {len(seeds)} supernet(s) ({run.cfg.search.warmup_epochs} epochs each, uniform path sampling)")
        hosts = {}
        with ctx.phase("warmup"):
            for seed in seeds:
                checkpoint = run.run_dir / "supernet" / f"warmup-s{seed}.pt"
                hosts[seed], stats = warm_up_on_cluster(run.cfg, seed, checkpoint=checkpoint, reuse=run.resume)
                ctx.log_metrics({f"{k}/s{seed}": v for k, v in stats.items()})
        self.shared = ProxylessShared(hosts, run.latency)

    def search(self, ctx: RunContext, run: RunInputs, scenarios: list[Scenario]) -> list[Finalist]:
        jobs = [Job.of(s, self.name) for s in scenarios]
        workers = run.cfg.ray.workers_per_trial
        return finalists_in(run.cfg.space, jobs, ctx.run_trials("search", jobs, build_search, shared=self.shared, workers=workers))

    def random_baseline(self, ctx: RunContext, run: RunInputs, found: list[Finalist]) -> list[Finalist]:
        jobs = [Job.of(scenario_of(f), RANDOM_WS, budget_seconds=f.search_seconds) for f in found]
        workers = run.cfg.ray.workers_per_trial
        return finalists_in(run.cfg.space, jobs, ctx.run_trials("random-ws", jobs, build_random, shared=self.shared, workers=workers))

    def release(self) -> None:
        for host in self.shared.hosts.values() if self.shared else ():
            ray.kill(host)

    def local_search(self, problem: LocalProblem, seed: int) -> EpochSearch:
        """Warm-up here, then the search for ``problem``'s budget, one epoch per step."""
        cfg, compute = problem.config, problem.compute or CPU
        supernet = compute.module(Supernet(get_space(problem.space), problem.num_classes, sharing=problem.sharing))
        count = lambda loader: min(cfg.eval_batches, len(loader))  # noqa: E731
        fixed = FixedBatches.draw(problem.train, problem.val, recalibration=count(problem.train), validation=count(problem.val))
        warm_up(supernet, problem.train, cfg, seed=seed, compute=compute)
        return EpochSearch(
            ProxylessSearch(supernet, problem.lut, problem.budget_ms, cfg=cfg, seed=seed, compute=compute),
            problem.train,
            problem.val,
            epochs=cfg.search_epochs,
            fixed=fixed,
        )


def shared_supernet(job: Job, shared: ProxylessShared, cfg: ExperimentConfig):
    """The seed's warmed-up supernet, fetched through its host actor, on the trial's device, with that
    seed's loaders and the fixed batches both searches of the seed end on."""
    compute = worker_compute(cfg.compute)
    splits = load_splits(cfg.data)
    train, val, _ = splits.loaders(cfg.data.batch_size, job.seed, compute.device)
    supernet = Supernet(get_space(cfg.space), splits.num_classes, sharing=cfg.supernet.sharing)
    [weights_ref] = ray.get(shared.hosts[job.seed].weights.remote())
    load_numpy_state(supernet, ray.get(weights_ref))
    return compute.module(supernet), train, val, compute, seed_fixed_batches(cfg, splits, seed=job.seed)


def seed_fixed_batches(cfg: ExperimentConfig, splits, *, seed: int) -> FixedBatches:
    """The batches both searches of ``seed`` end on: drawn from loaders of their own, so the same
    whichever search draws them and however far its own loaders have run (``eval_batches`` of each,
    or as many as a small split holds, as the per-epoch scoring reads)."""
    train, val, _ = splits.loaders(cfg.data.batch_size, FIXED_BATCH_SEED + seed, "cpu")  # scoring moves each batch to the device
    count = lambda loader: min(cfg.search.eval_batches, len(loader))  # noqa: E731
    return FixedBatches.draw(train, val, recalibration=count(train), validation=count(val))


def build_search(job: Job, shared: ProxylessShared, cfg: ExperimentConfig) -> EpochSearch:
    supernet, train, val, compute, fixed = shared_supernet(job, shared, cfg)
    search = ProxylessSearch(supernet, shared.latency.table(job.target), job.budget_ms, cfg=cfg.search, seed=job.seed, compute=compute)
    return EpochSearch(search, train, val, epochs=cfg.search.search_epochs, fixed=fixed)


def build_random(job: Job, shared: ProxylessShared, cfg: ExperimentConfig) -> RandomSearch:
    supernet, train, val, compute, fixed = shared_supernet(job, shared, cfg)
    search = RandomSearch(
        supernet,
        shared.latency.table(job.target),
        job.budget_ms,
        cfg=cfg.search,
        seed=job.seed,
        train_fraction=cfg.evaluation.random_train_fraction,
        compute=compute,
        fixed=fixed,
    )
    return search.start(train, val, job.budget_seconds)
