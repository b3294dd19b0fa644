"""Tune trainables: one checkpointed search (or baseline) per job, one retraining per finalist.

With ``workers`` above 1 a trial runs its loop as a data-parallel Ray Train job
(raynas/execution/data_parallel.py); the loop is the same one, given Ray Train's checkpoint and
report instead of Tune's."""

from __future__ import annotations

import tempfile
import time
from pathlib import Path
from typing import Any, Callable

import ray
import torch
from ray import tune

from raynas.api import BuildSearcher, Finalist, Job, strategy_class
from raynas.config import ExperimentConfig
from raynas.data.datasets import load_splits
from raynas.execution import data_parallel as dp
from raynas.execution.runtime import worker_compute
from raynas.parallel import group_sync
from raynas.space.catalog import build_network
from raynas.training import evaluate, retrain
from raynas.weights import cpu_state

WEIGHTS_FILE = "weights.pt"
SEARCH_STATE = "search.pt"

Save = Callable[[Path], None]  # writes a checkpoint's files into a folder
Report = Callable[[dict, "Save | None"], None]  # reports metrics, with a checkpoint when given a writer


def node_id() -> str:
    """The Ray node a trial ran on (provenance, and how fault tests find a trial's node)."""
    return ray.get_runtime_context().get_node_id()


def searcher_trial(
    config: dict, *, jobs: dict[str, Job], build: BuildSearcher, shared: Any, cfg: ExperimentConfig, workers: int = 1, storage: str = ""
) -> None:
    """Step the job's searcher to the end, reporting after every step and saving its state after a step
    once ``ray.checkpoint_seconds`` have passed since the last save (and after the last step); a
    retried trial (its node died) loads the last checkpoint and goes on from the step after it, so it
    loses at most that long of work.

    ``search_seconds`` counts the steps' own time, summed over attempts (the checkpoint carries it).
    ``workers`` above 1: the loop runs as a Ray Train job of that many workers, its run under ``storage``.
    """
    loop = dict(job=jobs[config["scenario"]], build=build, shared=shared, cfg=cfg)
    if workers > 1:
        dp.fit(_search_worker, loop | {"storage": storage}, cfg=cfg, name=_run_name(config))
        return
    search_loop(**loop, restore=tune.get_checkpoint(), report=_tune_report)


def _search_worker(config: dict) -> None:
    job, build, shared, cfg = config["job"], config["build"], config["shared"], config["cfg"]
    search_loop(job, build, shared, cfg=cfg, restore=ray.train.get_checkpoint(), report=_train_report)


def search_loop(job: Job, build: BuildSearcher, shared: Any, *, cfg: ExperimentConfig, restore, report: Report) -> None:
    """The search trial's loop, whichever reports it (Tune alone, or every rank of a Ray Train job)."""
    torch.set_num_threads(cfg.ray.cpus_per_trial)
    torch.manual_seed(job.seed)
    searcher = build(job, shared, cfg)
    step, seconds, restored, workers = 0, 0.0, -1, group_sync().world
    if restore is not None:
        with restore.as_directory() as local:
            saved = torch.load(Path(local) / SEARCH_STATE, weights_only=True, map_location="cpu")  # each rank moves it to its own device
        searcher.load_state_dict(saved["searcher"])
        restored, seconds = saved["step"], saved["seconds"]
        step = restored + 1
    saved_at = time.perf_counter()
    while not _agree(searcher.done):  # a searcher on a clock (random search) ends on rank 0's
        begin = time.perf_counter()
        metrics = searcher.step()
        seconds += time.perf_counter() - begin
        metrics |= {"epoch": step, "search_seconds": seconds, "node_id": node_id(), "restored_step": restored, "workers": workers}
        if _agree(searcher.done or time.perf_counter() - saved_at >= cfg.ray.checkpoint_seconds):
            state = {"searcher": searcher.state_dict(), "step": step, "seconds": seconds}
            report(metrics, lambda folder, state=state: torch.save(state, folder / SEARCH_STATE))
            saved_at = time.perf_counter()
        else:
            report(metrics, None)
        step += 1


def retrain_trial(
    config: dict, *, jobs: dict[str, Finalist], cfg: ExperimentConfig, payload: Any = None, workers: int = 1, storage: str = ""
) -> None:
    """Train a finalist with the shared recipe, from scratch or from what its strategy's
    ``initial_model`` gives (OFA fine-tuning); the last report carries test accuracy and weights."""
    loop = dict(finalist=jobs[config["scenario"]], cfg=cfg, payload=payload)
    if workers <= 1:
        retrain_loop(**loop, report=_tune_report)
        return
    result = dp.fit(_retrain_worker, loop | {"storage": storage}, cfg=cfg, name=_run_name(config), final="test_acc")
    with result.checkpoint.as_directory() as local:  # the last epoch with the weights, as Tune's own checkpoint (the measurement reads it)
        tune.report(dict(result.metrics), checkpoint=tune.Checkpoint.from_directory(local))


def _retrain_worker(config: dict) -> None:
    retrain_loop(config["finalist"], cfg=config["cfg"], payload=config["payload"], report=_train_report)


def retrain_loop(finalist: Finalist, *, cfg: ExperimentConfig, payload: Any, report: Report) -> None:
    """The retraining trial's loop, whichever reports it."""
    torch.set_num_threads(cfg.ray.cpus_per_trial)
    torch.manual_seed(finalist.seed)
    compute = worker_compute(cfg.compute)
    splits = load_splits(cfg.data)
    train, val, test = splits.loaders(cfg.data.batch_size, finalist.seed, compute.device)
    model = (
        strategy_class(cfg.strategy).initial_model(finalist, payload, cfg=cfg, num_classes=splits.num_classes)
        if finalist.init_seed is not None
        else None
    )
    model = compute.module(model if model is not None else build_network(finalist.arch, splits.num_classes))
    start = time.perf_counter()

    def _report(epoch: int, metrics: dict) -> None:
        metrics = metrics | {"epoch": epoch, "retrain_seconds": time.perf_counter() - start, "workers": compute.sync.world}
        if epoch < cfg.retrain.epochs - 1:
            report(metrics, None)
            return
        weights = cpu_state(model)
        final = metrics | {"test_acc": evaluate(model, test, compute=compute), "device": str(compute.device)}
        report(final, lambda folder: torch.save(weights, folder / WEIGHTS_FILE))

    retrain(model, train, val, cfg=cfg.retrain, on_epoch=_report, compute=compute)


def _tune_report(metrics: dict, save: Save | None) -> None:
    if save is None:
        tune.report(metrics)
        return
    with tempfile.TemporaryDirectory() as tmp:
        save(Path(tmp))
        tune.report(metrics, checkpoint=tune.Checkpoint.from_directory(tmp))


def _train_report(metrics: dict, save: Save | None) -> None:
    dp.report(metrics, save=save)


def _agree(flag: bool) -> bool:
    """One decision for every rank of a data-parallel job (rank 0's); the flag itself alone."""
    return group_sync().agree(flag)


def _run_name(config: dict) -> str:
    """The Train run of a trial: named by its scenario, so a retried trial resumes the same run."""
    return dp.trial_run_name(config, ("scenario",))
