"""Black-box searches on real training: a Tune ``Searcher`` that runs one ask/tell search per scenario
(``raynas.search.blackbox``; told validation accuracy in percent, as NB201's tables) inside one Tune
experiment, each proposal a Tune trial that trains the candidate standalone from scratch (so Tune's
schedulers may stop it), each search under its own latency budget and number of evaluations."""

from __future__ import annotations

import dataclasses
import pickle
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

import torch
from ray import tune
from ray.tune.search import Searcher

from raynas.config import ExperimentConfig
from raynas.data.datasets import load_splits
from raynas.execution import data_parallel as dp
from raynas.execution.runtime import worker_compute
from raynas.search.blackbox import AskTell
from raynas.search.driver import Exhausted, Told, next_feasible
from raynas.space.architecture import Architecture
from raynas.space.catalog import as_architecture, build_network
from raynas.training import retrain


@dataclass
class ScenarioSearch:
    """One scenario's search: its ask/tell search, what is feasible, its evaluations left and what it was told."""

    search: AskTell
    feasible: Callable[[Any], bool]
    evaluations: int
    seed: int
    told: Told = field(default_factory=dict)
    busy: set[tuple[int, ...]] = field(default_factory=set)  # proposed and still training
    asked: int = 0  # candidates handed to Tune so far


class ScenarioSearcher(Searcher):
    """Tune's searcher over several scenarios' searches: each ``suggest`` proposes the next feasible,
    new architecture of the scenario with the most evaluations left (infeasible proposals are told to
    its search and never become trials); a finished trial's last ``val_acc`` is told back. Trials carry
    ``scenario``, ``arch`` (the pipeline's string) and ``seed`` (seeding its training by its position)."""

    def __init__(self, searches: dict[str, ScenarioSearch], space: str) -> None:
        super().__init__(metric="val_acc", mode="max")
        self.searches, self.space, self.pending = searches, space, {}

    def suggest(self, trial_id: str) -> dict | None:
        open_ = [(s.evaluations - s.asked, key) for key, s in self.searches.items() if s.asked < s.evaluations]
        if not open_:
            return Searcher.FINISHED
        key = max(open_)[1]
        run = self.searches[key]
        try:
            arch = next_feasible(run.search, run.feasible, run.told, busy=run.busy)
        except Exhausted:  # every feasible architecture it reaches is evaluated: its search ends early
            run.evaluations = run.asked
            return self.suggest(trial_id)
        run.busy.add(run.search.space.choices(arch))
        run.asked += 1
        self.pending[trial_id] = (key, arch)
        return {"scenario": key, "arch": as_architecture(self.space, arch).to_string(), "seed": run.seed * 10_000 + run.asked}

    def on_trial_complete(self, trial_id: str, result: dict | None = None, error: bool = False) -> None:
        """Tell the search the candidate's score; a failed trial (after ``ray.max_failures`` retries) is
        told as infeasible, and the phase then fails as any phase with a failed trial does."""
        key, arch = self.pending.pop(trial_id)
        run = self.searches[key]
        score = None if error or not result or "val_acc" not in result else 100.0 * float(result["val_acc"])
        run.busy.discard(run.search.space.choices(arch))
        run.told[run.search.space.choices(arch)] = score
        run.search.tell(arch, score)

    def save(self, checkpoint_path: str) -> None:
        """Every search's state, what it was told, its candidates in flight and its allowance (Tune's experiment checkpoint)."""
        runs = {
            key: {"search": s.search.state_dict(), "busy": s.busy, "asked": s.asked, "evaluations": s.evaluations}
            for key, s in self.searches.items()
        }
        pending = {tid: (key, self.searches[key].search.space.choices(arch)) for tid, (key, arch) in self.pending.items()}
        Path(checkpoint_path).write_bytes(pickle.dumps({"runs": runs, "pending": pending}))

    def restore(self, checkpoint_path: str) -> None:
        saved = pickle.loads(Path(checkpoint_path).read_bytes())
        for key, state in saved["runs"].items():
            run = self.searches[key]
            run.search.load_state_dict(state["search"])  # its history is everything it was told
            run.told, run.busy, run.asked, run.evaluations = dict(run.search.history), state["busy"], state["asked"], state["evaluations"]
        self.pending = {tid: (key, self.searches[key].search.space.from_choices(c)) for tid, (key, c) in saved["pending"].items()}


RUN_KEYS = ("scenario", "seed")  # what names a data-parallel candidate's Train run (the seed counts the scenario's candidates)


def candidate_trial(config: dict, *, cfg: ExperimentConfig, epochs: int, storage: str = "") -> None:
    """Train one proposed architecture from scratch with the retraining recipe for ``epochs`` epochs,
    reporting its validation accuracy after each (its score is the last); with ``ray.workers_per_trial``
    above 1 as a Ray Train job of that many workers under ``storage``, which a scheduler stops by request."""
    if cfg.ray.workers_per_trial <= 1:
        train_candidate(config, cfg=cfg, epochs=epochs, report=tune.report)
        return
    run = {"config": config, "cfg": cfg, "epochs": epochs, "storage": storage}
    dp.fit_stoppable(_candidate_worker, run, cfg=cfg, name=dp.trial_run_name(config, RUN_KEYS))


def _candidate_worker(run: dict, before_batch: Callable[[], None]) -> None:
    train_candidate(run["config"], cfg=run["cfg"], epochs=run["epochs"], report=dp.report, before_batch=before_batch)


def train_candidate(
    config: dict, *, cfg: ExperimentConfig, epochs: int, report: Callable[[dict], None], before_batch: Callable[[], None] | None = None
) -> None:
    """The candidate's training on this process's device (in a data-parallel group, its share of every batch)."""
    torch.set_num_threads(cfg.ray.cpus_per_trial)
    torch.manual_seed(config["seed"])
    compute = worker_compute(cfg.compute)
    splits = load_splits(cfg.data)
    train, val, _ = splits.loaders(cfg.data.batch_size, config["seed"], compute.device)
    arch = Architecture.from_string(cfg.space, config["arch"])
    model = compute.module(build_network(arch, splits.num_classes))
    recipe, about = dataclasses.replace(cfg.retrain, epochs=epochs), {"arch": config["arch"], "workers": compute.sync.world}
    on_epoch = lambda i, m: report(m | {"epoch": i} | about)  # noqa: E731
    retrain(model, train, val, cfg=recipe, compute=compute, on_epoch=on_epoch, before_batch=before_batch)
