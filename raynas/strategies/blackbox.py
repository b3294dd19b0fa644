"""Black-box strategies (``raynas.search.blackbox``): random search, local search, regularized
evolution, a REINFORCE controller and TPE, on any space, chain or cell (nb201).

Each scenario's search proposes architectures; every feasible one (predicted latency within the
budget) is trained standalone from scratch as a Tune trial for ``blackbox.epochs`` epochs and its
validation accuracy told back; infeasible proposals are told as such and never trained. All
scenarios' searches share one Tune experiment (``raynas.execution.blackbox.ScenarioSearcher``). The
pick is the best candidate evaluated; the random baseline is the black-box random search with the
same number of evaluations. One subclass per search, named as its search is registered.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable, ClassVar

import torch
from ray import tune

from raynas.api import RANDOM, Finalist, Job, LocalProblem, RunContext, RunInputs, SampledTrial, Scenario, Searcher, Strategy, scenario_of
from raynas.compute import CPU
from raynas.config import ASHAConfig, check
from raynas.execution import data_parallel as dp
from raynas.execution.blackbox import ScenarioSearch, ScenarioSearcher, candidate_trial
from raynas.execution.runtime import tune_storage
from raynas.execution.schedulers import PerScenario
from raynas.search.blackbox import search_class
from raynas.search.driver import BudgetedSearch
from raynas.space.architecture import Architecture
from raynas.space.catalog import as_architecture, build_network, search_space
from raynas.training import RetrainConfig, retrain

SCHEDULERS = ("none", "asha")


@dataclass(frozen=True)
class BlackBoxConfig:
    """The ``blackbox`` section: what one search may spend."""

    evaluations: int = 10  # candidates trained per search (infeasible proposals are not counted)
    epochs: int = 6  # epochs each candidate trains from scratch; its score is the validation accuracy after them
    scheduler: str = "none"  # none | asha: Tune's ASHA stops weak candidates early (random + asha: random search with early stopping)
    grace_epochs: int = 1  # asha: epochs before a candidate may be stopped
    reduction_factor: int = 3  # asha: one in this many candidates goes on at each rung


class BlackBox(Strategy):
    """One registered ask/tell search as a strategy; subclasses name it."""

    section = "blackbox"
    config_type = BlackBoxConfig
    cell_spaces = True
    smoke: ClassVar[dict] = {"evaluations": 3, "epochs": 1}

    def validate(self, section: BlackBoxConfig, cfg: Any) -> None:
        check(section.evaluations >= 2, "blackbox.evaluations", "a search needs at least 2 evaluations to compare candidates")
        check(section.scheduler in SCHEDULERS, "blackbox.scheduler", f"must be one of {', '.join(SCHEDULERS)}")
        check(
            section.scheduler == "none" or cfg.strategy == RANDOM,
            "blackbox.scheduler",
            f"early stopping suits strategy: random only; {cfg.strategy!r} would learn from a stopped candidate's "
            "partial score as if it were a full one",
        )
        check(
            section.grace_epochs <= section.epochs and section.reduction_factor >= 2,
            "blackbox",
            "grace_epochs at most epochs, reduction_factor at least 2",
        )

    def search(self, ctx: RunContext, run: RunInputs, scenarios: list[Scenario]) -> list[Finalist]:
        jobs = [Job.of(s, self.name, budget_evaluations=run.cfg.blackbox.evaluations) for s in scenarios]
        return self.run_searches(ctx, run, jobs)

    def random_baseline(self, ctx: RunContext, run: RunInputs, found: list[Finalist]) -> list[Finalist]:
        """Black-box random search with each search's number of evaluations (none when this is it)."""
        if self.name == RANDOM:
            return []
        return self.run_searches(ctx, run, [Job.of(scenario_of(f), RANDOM, budget_evaluations=f.evaluations) for f in found])

    def run_searches(self, ctx: RunContext, run: RunInputs, jobs: list[Job]) -> list[Finalist]:
        """Every job's search in one Tune experiment named after its method; each job's best candidate."""
        cfg, method = run.cfg, jobs[0].method
        searches = {j.key: self.scenario_search(run, j) for j in jobs}
        storage = f"{tune_storage(cfg, run.run_dir)}/{method}-train"  # data-parallel candidates' Train runs
        ask = dp.ask_to_stop if cfg.ray.workers_per_trial > 1 else None
        trials = ctx.run_search_alg(
            method,
            tune.with_parameters(candidate_trial, cfg=cfg, epochs=cfg.blackbox.epochs, storage=storage),
            search_alg=ScenarioSearcher(searches, cfg.space),
            scheduler=early_stopping(cfg.blackbox, [j.key for j in jobs], ask=ask),
            param_space={},
            num_samples=sum(j.budget_evaluations for j in jobs),
            metric="val_acc",
            mode="max",
            workers=cfg.ray.workers_per_trial,
        )
        by_job = {j.key: [t for t in trials if t.config.get("scenario") == j.key] for j in jobs}
        return [self.finalist(ctx, j, by_job[j.key], space=cfg.space) for j in jobs]

    @staticmethod
    def scenario_search(run: RunInputs, job: Job) -> ScenarioSearch:
        def feasible(arch: Any) -> bool:
            return run.latency.predict(job.target, as_architecture(run.cfg.space, arch)) <= job.budget_ms

        search = search_class(job.method)(search_space(run.cfg.space), seed=job.seed)  # each method is a registered search
        return ScenarioSearch(search, feasible, job.budget_evaluations, job.seed)

    @staticmethod
    def finalist(ctx: RunContext, job: Job, trials: list[SampledTrial], *, space: str) -> Finalist:
        """The best candidate the job's search trained; its curve (best so far against the candidates'
        summed trial seconds, the unit of every search's ``search_seconds``) is kept."""
        scored = sorted((t.metrics for t in trials if "val_acc" in t.metrics), key=lambda m: m["timestamp"])
        if not scored:
            raise RuntimeError(
                f"{job.key}: no candidate finished training: the budget admits no architecture the search reached, "
                f"or every trial failed (Tune experiment {job.method!r})"
            )
        points, spent, best = [], 0.0, -1.0
        for m in scored:
            spent, best = spent + m["time_total_s"], max(best, m["val_acc"])
            points.append((spent, best))
        ctx.add_curve(job, points)
        furthest = max(m["training_iteration"] for m in scored)  # under a scheduler, compare candidates trained alike
        top = max((m for m in scored if m["training_iteration"] == furthest), key=lambda m: m["val_acc"])
        return Finalist.found(job, Architecture.from_string(space, top["arch"]), {"search_seconds": spent, "evaluations": len(scored)})

    def local_search(self, problem: LocalProblem, seed: int) -> Searcher:
        """The same search in this process: candidates trained on the problem's loaders, one per step."""
        section, compute = problem.config, problem.compute or CPU
        recipe = RetrainConfig(epochs=section.epochs)

        def evaluate(arch: Any, index: int) -> float:
            torch.manual_seed(seed * 10_000 + index)
            model = compute.module(build_network(as_architecture(problem.space, arch), problem.num_classes))
            return retrain(model, problem.train, problem.val, cfg=recipe, compute=compute)["val_acc"]

        def feasible(arch: Any) -> bool:
            return problem.lut.predict(as_architecture(problem.space, arch)) <= problem.budget_ms

        search = search_class(self.name)(search_space(problem.space), seed=seed)
        return BudgetedSearch(search, feasible, evaluate, evaluations=section.evaluations, space=problem.space)


def early_stopping(section: BlackBoxConfig, keys: list[str], *, ask: Callable[[Any], None] | None = None) -> PerScenario | None:
    """ASHA per scenario (``keys``), so a tight budget's candidates never race a loose one's; None:
    every candidate trains ``epochs``. ``ask``: how data-parallel trials are stopped (by request)."""
    if section.scheduler == "none":
        return None
    asha = ASHAConfig(max_epochs=section.epochs, grace_epochs=section.grace_epochs, reduction_factor=section.reduction_factor)
    return PerScenario(asha, dict.fromkeys(keys, float("inf")), devices=1, ask=ask)


class RandomSearchStrategy(BlackBox):
    name, label, phases = RANDOM, "random search (black-box)", (RANDOM,)
    style = ("tab:cyan", "D")


class LocalSearchStrategy(BlackBox):
    name, label, phases = "local", "local search", ("local", RANDOM)
    style = ("goldenrod", "X")


class EvolutionStrategy(BlackBox):
    name, label, phases = "evolution", "regularized evolution", ("evolution", RANDOM)
    style = ("tab:olive", "o")


class ReinforceStrategy(BlackBox):
    name, label, phases = "reinforce", "REINFORCE controller", ("reinforce", RANDOM)
    style = ("tab:brown", "*")


class TPEStrategy(BlackBox):
    name, label, phases = "tpe", "TPE", ("tpe", RANDOM)
    style = ("tab:pink", "h")
    resume = "history"  # Optuna's sampler state is rebuilt from the told history
