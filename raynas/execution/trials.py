"""Tune trainables: one checkpointed search (or baseline) per job, one retraining per finalist."""

from __future__ import annotations

import tempfile
import time
from pathlib import Path
from typing import Any

import ray
import torch
from ray import tune

from raynas.api import BuildSearcher, Finalist, Job, strategy_class
from raynas.config import ExperimentConfig
from raynas.data.datasets import load_splits
from raynas.execution.runtime import worker_compute
from raynas.space.catalog import build_network
from raynas.training import evaluate, retrain

WEIGHTS_FILE = "weights.pt"
SEARCH_STATE = "search.pt"


def node_id() -> str:
    """The Ray node a trial ran on (provenance, and how fault tests find a trial's node)."""
    return ray.get_runtime_context().get_node_id()


def searcher_trial(config: dict, *, jobs: dict[str, Job], build: BuildSearcher, shared: Any, cfg: ExperimentConfig) -> None:
    """Step the job's searcher to the end, reporting after every step and saving its state after a step
    once ``ray.checkpoint_seconds`` have passed since the last save (and after the last step); a
    retried trial (its node died) loads the last checkpoint and goes on from the step after it, so it
    loses at most that long of work.

    ``search_seconds`` counts the steps' own time, summed over attempts (the checkpoint carries it).
    """
    job = jobs[config["scenario"]]
    torch.set_num_threads(cfg.ray.cpus_per_trial)
    torch.manual_seed(job.seed)
    searcher = build(job, shared, cfg)
    step, seconds, restored = 0, 0.0, -1
    checkpoint = tune.get_checkpoint()
    if checkpoint is not None:
        with checkpoint.as_directory() as local:
            saved = torch.load(Path(local) / SEARCH_STATE, weights_only=True)
        searcher.load_state_dict(saved["searcher"])
        restored, seconds = saved["step"], saved["seconds"]
        step = restored + 1
    saved_at = time.perf_counter()
    while not searcher.done:
        begin = time.perf_counter()
        metrics = searcher.step()
        seconds += time.perf_counter() - begin
        report = metrics | {"epoch": step, "search_seconds": seconds, "node_id": node_id(), "restored_step": restored}
        if searcher.done or time.perf_counter() - saved_at >= cfg.ray.checkpoint_seconds:
            with tempfile.TemporaryDirectory() as tmp:
                torch.save({"searcher": searcher.state_dict(), "step": step, "seconds": seconds}, Path(tmp) / SEARCH_STATE)
                tune.report(report, checkpoint=tune.Checkpoint.from_directory(tmp))
            saved_at = time.perf_counter()
        else:
            tune.report(report)
        step += 1


def retrain_trial(config: dict, *, jobs: dict[str, Finalist], cfg: ExperimentConfig, payload: Any = None) -> None:
    """Train a finalist with the shared recipe, from scratch or from what its strategy's
    ``initial_model`` gives (OFA fine-tuning); the last report carries test accuracy and weights."""
    finalist = jobs[config["scenario"]]
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
        metrics = metrics | {"epoch": epoch, "retrain_seconds": time.perf_counter() - start}
        if epoch < cfg.retrain.epochs - 1:
            tune.report(metrics)
            return
        with tempfile.TemporaryDirectory() as tmp:
            torch.save({k: v.detach().cpu().contiguous() for k, v in model.state_dict().items()}, Path(tmp) / WEIGHTS_FILE)
            tune.report(
                metrics | {"test_acc": evaluate(model, test, compute=compute), "device": str(compute.device)},
                checkpoint=tune.Checkpoint.from_directory(tmp),
            )

    retrain(model, train, val, cfg=cfg.retrain, on_epoch=_report, compute=compute)
