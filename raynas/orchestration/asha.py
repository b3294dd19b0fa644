"""Random search with early stopping, run by a Tune scheduler: the NAS checklist's "random search with
early termination" baseline, for every strategy.

Architectures are drawn uniformly from the scenario's latency window (the same rejection sampler as
the weight-sharing random search), each trained *standalone* from scratch as a Tune trial, one
epoch per iteration, scored on the validation split; ``ASHAScheduler`` (or ``HyperBandScheduler``)
stops the weak ones. Every scenario's trials run in one Tune experiment (actors start once, the
cluster is shared), but each scenario has its own scheduler and its own budget: its trials stop
once their device-seconds reach the paired NAS search's (its warm-up share included). The survivor,
the best of the trials that went furthest, is retrained with the shared recipe like every finalist.
The window is the baseline's own (``evaluation.asha.budget_floor``), whichever strategy runs.
"""

from __future__ import annotations

import functools
import tempfile
import time
from pathlib import Path
from typing import Callable

import ray.train
import torch
from ray import tune

from raynas.api import Finalist, Job
from raynas.config import ASHAConfig, ExperimentConfig
from raynas.data.datasets import load_splits
from raynas.execution import data_parallel as dp
from raynas.execution.runtime import worker_compute
from raynas.execution.schedulers import InBudget, PerScenario
from raynas.hardware.models import LatencyModels
from raynas.orchestration.context import PipelineContext
from raynas.orchestration.tuner import fit_quietly, placed, trial_devices
from raynas.search.random_search import window_candidates
from raynas.space.architecture import Architecture
from raynas.space.catalog import build_network
from raynas.space.macro import get_space
from raynas.training import evaluate, sgd, train_epoch


def standalone_trial(
    config: dict, *, archs: dict[str, list[str]], seeds: dict[str, int], space: str, cfg: ExperimentConfig, storage: str = ""
) -> None:
    """Train one candidate of one scenario from scratch with the retraining recipe's optimizer, one epoch
    per report; with ``ray.workers_per_trial`` above 1 as a Ray Train job of that many workers, whose
    run (under ``storage``) ends with the trial when the scheduler stops it."""
    loop = dict(arch=archs[config["scenario"]][config["candidate"]], seed=seeds[config["scenario"]], space=space, cfg=cfg)
    if cfg.ray.workers_per_trial <= 1:
        standalone_loop(**loop, restore=tune.get_checkpoint(), report=report_epoch)
        return
    dp.fit_stoppable(_standalone_worker, loop | {"storage": storage}, cfg=cfg, name=dp.trial_run_name(config, RUN_KEYS))


def _standalone_worker(config: dict, before_batch: Callable[[], None]) -> None:
    loop = {k: config[k] for k in ("arch", "seed", "space", "cfg")}
    report = lambda metrics, state: dp.report(metrics)  # noqa: E731
    standalone_loop(**loop, restore=ray.train.get_checkpoint(), report=report, before_batch=before_batch)


def standalone_loop(arch: str, seed: int, *, space: str, cfg: ExperimentConfig, restore, report, before_batch=None) -> None:
    """The standalone trial's epochs, whichever reports them (Tune alone, or every rank of a Ray Train
    job); ``before_batch`` runs before every step (a data-parallel trial's stop check)."""
    torch.set_num_threads(cfg.ray.cpus_per_trial)
    torch.manual_seed(seed)
    compute = worker_compute(cfg.compute)
    splits = load_splits(cfg.data)
    train, val, _ = splits.loaders(cfg.data.batch_size, seed, compute.device)
    model = compute.module(build_network(Architecture.from_string(space, arch), splits.num_classes))
    r = cfg.retrain
    optimizer = sgd(model.parameters(), r.lr, momentum=r.momentum, weight_decay=r.weight_decay)
    loss_fn = torch.nn.CrossEntropyLoss(label_smoothing=r.label_smoothing)
    first = 0
    if (state := restored_state(restore)) is not None:
        model.load_state_dict(state["model"])
        optimizer.load_state_dict(state["optimizer"])
        first = state["epoch"] + 1
    pausable = pauses(cfg.evaluation.asha)
    for epoch in range(first, cfg.evaluation.asha.max_epochs):
        start = time.perf_counter()
        stats = train_epoch(model, train, optimizer, loss_fn=loss_fn, before_batch=before_batch, compute=compute)
        acc = evaluate(model, val, max_batches=cfg.evaluation.asha.eval_batches, compute=compute)
        metrics = {"val_acc": acc, "train_loss": stats["loss"], "epoch": epoch, "arch": arch, "epoch_seconds": time.perf_counter() - start}
        metrics["workers"] = compute.sync.world
        report(metrics, {"model": model.state_dict(), "optimizer": optimizer.state_dict(), "epoch": epoch} if pausable else None)


STATE_FILE = "trial.pt"
TRAIN_RUNS = "asha-train"  # beside the Tune experiment: the Train runs of data-parallel trials
RUN_KEYS = ("scenario", "candidate")  # what names a data-parallel trial's Train run


def pauses(cfg: ASHAConfig) -> bool:
    """HyperBand pauses trials at its rungs and resumes the promoted ones; ASHA only ever stops them."""
    return cfg.scheduler == "hyperband"


def report_epoch(metrics: dict, state: dict | None) -> None:
    """Report an epoch; with ``state`` (a trial the scheduler may pause) it is saved beside the report,
    so a resumed trial goes on from the next epoch instead of training again from scratch."""
    if state is None:
        tune.report(metrics)
        return
    with tempfile.TemporaryDirectory() as tmp:
        torch.save(state, Path(tmp) / STATE_FILE)
        tune.report(metrics, checkpoint=tune.Checkpoint.from_directory(tmp))


def restored_state(checkpoint) -> dict | None:
    """The state ``report_epoch`` saved last, when Tune resumes a paused trial; else None."""
    if checkpoint is None:
        return None
    with checkpoint.as_directory() as local:
        return torch.load(Path(local) / STATE_FILE, weights_only=True)


def survivor(results: list[dict]) -> dict:
    """The best last result among the trials that trained longest (scores after equal training)."""
    furthest = max(r["training_iteration"] for r in results)
    return max((r for r in results if r["training_iteration"] == furthest), key=lambda r: r["val_acc"])


def anytime(frames: list, devices: float) -> list[tuple[float, float]]:
    """Performance over time: the best validation accuracy seen so far against the device-seconds spent,
    every trial's epochs in the order they finished."""
    rows = sorted((row["timestamp"], row["time_this_iter_s"], row["val_acc"]) for frame in frames for row in frame.to_dict("records"))
    points, spent, best = [], 0.0, -1.0
    for _, seconds, acc in rows:
        spent += seconds * devices
        best = max(best, acc)
        points.append((spent, best))
    return points


def early_stopped_random(ctx: PipelineContext, latency: LatencyModels, jobs: list[Job]) -> list[Finalist]:
    """For each job, random architectures from its scenario's window trained standalone under a Tune
    scheduler until its trials' device-seconds reach ``job.budget_seconds``; each scenario's survivor
    is its finalist. One Tune run holds every scenario, each judged and budgeted on its own."""
    cfg, asha = ctx.cfg, ctx.cfg.evaluation.asha
    archs, seeds = {}, {job.key: job.seed for job in jobs}
    for job in jobs:
        ctx.open_child(job)
        table, macro = latency.table(job.target), get_space(cfg.space)
        archs[job.key] = window_candidates(table, macro, job.budget_ms, floor=asha.budget_floor, n=asha.candidates, seed=job.seed)
    storage = f"{ctx.tuner.storage}/{TRAIN_RUNS}"
    trainable = tune.with_parameters(standalone_trial, archs=archs, seeds=seeds, space=cfg.space, cfg=cfg, storage=storage)
    resourced, concurrent = placed(trainable, cfg, data_parallel=cfg.ray.workers_per_trial > 1)
    complete = functools.partial(proposed_all, jobs=jobs, archs=archs, devices=trial_devices(cfg))
    grid = ctx.tuner.finished_before("asha", resourced, complete=complete)
    if grid is None:
        grid = early_stopping_run(ctx, resourced, jobs=jobs, archs=archs, concurrent=concurrent)
    ran = [r for r in grid if r.config is not None]  # a trial stopped before it started has no config
    return [asha_survivor(ctx, job, [r for r in ran if r.config["scenario"] == job.key]) for job in jobs]


def early_stopping_run(ctx: PipelineContext, trainable, *, jobs: list[Job], archs: dict[str, list[str]], concurrent: int | None):
    cfg, asha = ctx.cfg, ctx.cfg.evaluation.asha
    data_parallel = cfg.ray.workers_per_trial > 1
    ask = dp.ask_to_stop if data_parallel else None
    per_scenario = PerScenario(asha, {job.key: job.budget_seconds for job in jobs}, devices=trial_devices(cfg), ask=ask)
    space, proposals = candidates_of(archs, per_scenario, hyperband=pauses(asha))
    tuner = tune.Tuner(
        trainable,
        param_space=space,
        tune_config=tune.TuneConfig(
            metric="val_acc",
            mode="max",
            scheduler=per_scenario,
            max_concurrent_trials=concurrent,
            reuse_actors=not data_parallel,  # a data-parallel trial's actor only waits on its Train job
            **proposals,
        ),
        run_config=ctx.tuner.run_config("asha", ()),
    )
    return fit_quietly(tuner)


def candidates_of(archs: dict[str, list[str]], budget: PerScenario, *, hyperband: bool) -> tuple[dict, dict]:
    """ASHA promotes as trials arrive, so candidates are proposed one by one while their scenario's
    budget lasts (``InBudget``): no trial is created that never starts. HyperBand halves whole
    brackets, which need their trials at once: a grid of every candidate, the spent scenarios' rest
    stopped unstarted (Tune lists those, having no results, when the run ends). Returns Tune's
    param_space and the TuneConfig fields that propose the candidates."""
    counts = {key: len(c) for key, c in archs.items()}
    if hyperband:
        assert len(set(counts.values())) == 1, "a grid of candidate indices needs as many candidates in every scenario"
        return {"scenario": tune.grid_search(list(archs)), "candidate": tune.grid_search(list(range(max(counts.values()))))}, {}
    return {}, {"search_alg": InBudget(counts, budget), "num_samples": sum(counts.values())}


def proposed_all(grid, *, jobs: list[Job], archs: dict[str, list[str]], devices: float) -> bool:
    """Whether a Tune run's trials are all it would have had: per scenario, every candidate or a spent
    budget (trials are created one by one, so an interrupted run can hold only finished trials)."""
    spent, created = dict.fromkeys(archs, 0.0), dict.fromkeys(archs, 0)
    for result in grid:
        if result.config is None:
            continue
        key = result.config["scenario"]
        created[key] += 1
        frame = result.metrics_dataframe
        spent[key] += 0.0 if frame is None or "time_this_iter_s" not in frame else float(frame["time_this_iter_s"].sum()) * devices
    return all(created[j.key] >= len(archs[j.key]) or spent[j.key] >= j.budget_seconds for j in jobs)


def asha_survivor(ctx: PipelineContext, job: Job, results: list) -> Finalist:
    """The job's finalist from its scenario's trials; its curve and costs go to the run's records."""
    frames = [r.metrics_dataframe for r in results if r.metrics_dataframe is not None and "val_acc" in r.metrics_dataframe]
    if not frames:
        raise RuntimeError(
            f"{job.key}: no early-stopped random trial reported within {job.budget_seconds:.1f} device-seconds; "
            "raise the budget or lower evaluation.asha.max_epochs"
        )
    curve = anytime(frames, trial_devices(ctx.cfg))
    ctx.add_curve(job, curve)
    best = survivor([r.metrics for r in results if r.metrics and "val_acc" in r.metrics])
    costs = {
        "asha/device_seconds": curve[-1][0],
        "asha/budget_device_seconds": job.budget_seconds,
        "asha/longest_epoch_seconds": max(float(f["time_this_iter_s"].max()) for f in frames),
        "asha/trials": len(frames),
        "asha/val_acc": best["val_acc"],
    }
    ctx.tracker.log_metrics(ctx.tracker.child(job.key), costs)
    arch = Architecture.from_string(ctx.cfg.space, best["arch"])
    return Finalist.found(job, arch, {"search_seconds": curve[-1][0], "evaluations": len(frames)})
