"""Petridish (Hu et al., 2019) as a strategy: one growth run per (target, seed) up to the target's
largest budget as a Tune trial, each budget's finalist the most accurate model grown within it, and
random architectures trained from scratch for the same seconds as its baseline. The algorithm:
``raynas/search/petridish.py``."""

from __future__ import annotations

import json
from dataclasses import dataclass

from raynas.api import (
    RANDOM_WS,
    Finalist,
    Job,
    LocalProblem,
    RunContext,
    RunInputs,
    Scenario,
    Strategy,
    finalists_in,
    frontier_path,
    scenario_of,
)
from raynas.compute import CPU
from raynas.config import ExperimentConfig, check
from raynas.data.datasets import load_splits
from raynas.execution.runtime import worker_compute
from raynas.files import write_json
from raynas.hardware.models import LatencyModels
from raynas.search.petridish import PetridishConfig, PetridishSearch, StandaloneRandomSearch, best_within_over_time, pick_within
from raynas.space.architecture import Architecture
from raynas.space.macro import get_space


class Petridish(Strategy):
    name = "petridish"
    label = "Petridish"
    section = "petridish"
    config_type = PetridishConfig
    style = ("tab:purple", "v")
    phases = ("petridish", "random-ws")
    smoke = {"rounds": 2, "children_per_round": 2, "parent_steps": 5, "weak_steps": 5, "child_steps": 3, "eval_batches": 1}

    def validate(self, s: PetridishConfig, cfg: ExperimentConfig) -> None:
        check(0 < s.budget_floor <= 1, "petridish.budget_floor", "must lie in (0, 1]")
        check(s.sparsity >= 0, "petridish.sparsity", "must be zero or positive")

    def local_search(self, problem: LocalProblem, seed: int) -> PetridishSearch:
        """A growth run up to ``problem``'s budget; its answer is the most accurate model grown."""
        return PetridishSearch(
            get_space(problem.space),
            problem.lut,
            problem.num_classes,
            cfg=problem.config,
            loaders=(problem.train, problem.val),
            max_ms=problem.budget_ms,
            compute=problem.compute or CPU,
        )

    def search(self, ctx: RunContext, run: RunInputs, scenarios: list[Scenario]) -> list[Finalist]:
        """One growth run per (target, seed), up to the target's largest budget; each scenario takes the
        most accurate model within its budget, and the run's time is shared among its budgets."""
        budgets: dict[tuple[str, int], list[float]] = {}
        for s in scenarios:
            budgets.setdefault((s.target, s.seed), []).append(s.budget_ms)
        jobs = [Job(growth_key(t, seed), self.name, t, seed=seed, budgets_ms=tuple(b)) for (t, seed), b in budgets.items()]
        results = ctx.run_trials("petridish", jobs, build_search, shared=PetridishShared(run.latency))
        frontiers = {j.key: json.loads(results[j.key]["frontier"]) for j in jobs}
        for j in jobs:
            path = write_json(
                frontier_path(run.run_dir, j.target, j.seed),
                {"target": j.target, "seed": j.seed, "method": self.label, "models": frontiers[j.key]},
            )
            ctx.add_artifact(path, folder="frontiers")
        found = []
        for s in scenarios:
            key = growth_key(s.target, s.seed)
            ctx.add_curve(Job.of(s, self.name), best_within_over_time(frontiers[key], s.budget_ms))
            pick = pick_within(frontiers[key], s.budget_ms)
            share = {
                "search_seconds": results[key]["search_seconds"] / len(budgets[(s.target, s.seed)]),
                "evaluations": results[key]["models"],
            }
            found.append(Finalist.found(Job.of(s, self.name), Architecture.from_string(run.cfg.space, pick["arch"]), share))
        return found

    def random_baseline(self, ctx: RunContext, run: RunInputs, found: list[Finalist]) -> list[Finalist]:
        jobs = [Job.of(scenario_of(f), RANDOM_WS, budget_seconds=f.search_seconds) for f in found]
        return finalists_in(run.cfg.space, jobs, ctx.run_trials("random-ws", jobs, build_random, shared=PetridishShared(run.latency)))


@dataclass(frozen=True)
class PetridishShared:
    """What every growth and random trial reads: the run's latency models."""

    latency: LatencyModels


def growth_key(target: str, seed: int) -> str:
    """The trial of one growth run (every budget of a target and seed)."""
    return f"{Petridish.name}:{target}#s{seed}"


def _setting(job: Job, shared: PetridishShared, cfg: ExperimentConfig) -> tuple:
    compute = worker_compute(cfg.compute)
    splits = load_splits(cfg.data)
    train, val, _ = splits.loaders(cfg.data.batch_size, job.seed, compute.device)
    return get_space(cfg.space), shared.latency.table(job.target), splits.num_classes, (train, val), compute


def build_search(job: Job, shared: PetridishShared, cfg: ExperimentConfig) -> PetridishSearch:
    macro, lut, classes, loaders, compute = _setting(job, shared, cfg)
    return PetridishSearch(macro, lut, classes, cfg=cfg.petridish, loaders=loaders, max_ms=max(job.budgets_ms), compute=compute)


def build_random(job: Job, shared: PetridishShared, cfg: ExperimentConfig) -> StandaloneRandomSearch:
    macro, lut, classes, loaders, compute = _setting(job, shared, cfg)
    return StandaloneRandomSearch(
        macro,
        lut,
        classes,
        cfg=cfg.petridish,
        seed=job.seed,
        loaders=loaders,
        budget_ms=job.budget_ms,
        seconds=job.budget_seconds,
        compute=compute,
    )
