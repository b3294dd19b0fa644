"""Data-parallel trials: a Tune function trial whose training runs as a Ray Train job of
``ray.workers_per_trial`` workers (Ray Train V2's pattern: the trial calls ``TorchTrainer.fit()``).

The trial itself only drives the job and reserves no CPU (``DRIVER``); each worker reserves
``ray.cpus_per_trial`` CPUs and ``ray.gpus_per_trial`` GPUs. Ray Train makes the process group
(gloo on CPUs, NCCL on GPUs); inside it ``Compute.from_config`` joins it (raynas/parallel.py), so the
training code is the one-worker code. Rank 0's reports reach Tune through Ray Train's
``TuneReportCallback``; checkpoints are written by rank 0 through Ray Train and restored on every
rank, both when Ray Train restarts a lost worker group (``ray.max_failures``) and when Tune retries
the trial (the Train run keeps its name, so it resumes from its storage).
"""

from __future__ import annotations

import re
import tempfile
from pathlib import Path
from typing import Callable

import ray
import ray.train
import yaml
from ray import tune
from ray.experimental import internal_kv
from ray.train import Checkpoint, CheckpointConfig, FailureConfig, RunConfig, ScalingConfig
from ray.train.torch import TorchTrainer
from ray.tune.integration.ray_train import TuneReportCallback

from raynas.config import ExperimentConfig
from raynas.execution.runtime import ClusterError
from raynas.parallel import group_sync

DRIVER = {"cpu": 0, "memory": 2**20}  # a data-parallel trial only waits on its Train job (Tune refuses an empty bundle)
BOOTSTRAP_CONFIG = "~/ray_bootstrap_config.yaml"  # where `ray up` leaves the cluster's node types on the head node


def driver_resources() -> dict[str, float]:
    return dict(DRIVER)


class _RelayBefore(TuneReportCallback):
    """Rank 0's reports to the Tune trial, except the one carrying ``key``: the trial reports that one
    itself, with the run's checkpoint as Tune's own (Tune would otherwise count that epoch twice)."""

    def __init__(self, key: str | None) -> None:
        super().__init__()
        self.key = key

    def after_report(self, run_context, metrics: list[dict], checkpoint) -> None:
        if self.key is None or self.key not in metrics[0]:
            super().after_report(run_context, metrics, checkpoint)


def fit(
    loop: Callable[[dict], None],
    config: dict,
    *,
    cfg: ExperimentConfig,
    name: str,
    task: bool = False,
    in_trial: bool = True,
    final: str | None = None,
) -> ray.train.Result:
    """Run ``loop(config)`` on ``ray.workers_per_trial`` Train workers (``task``: ``ray.workers_per_task``,
    with ``ray.gpus_per_task`` each). ``in_trial``: called from a Tune trial, which then reports what
    rank 0 reports, but for a report carrying the key ``final`` (the trial reports it). The run is
    stored as ``<config["storage"]>/<name>``."""
    workers, gpus = (cfg.ray.workers_per_task, cfg.ray.gpus_per_task) if task else (cfg.ray.workers_per_trial, cfg.ray.gpus_per_trial)
    trainer = TorchTrainer(
        loop,
        train_loop_config=config,
        scaling_config=ScalingConfig(
            num_workers=workers, use_gpu=gpus > 0, resources_per_worker={"CPU": cfg.ray.cpus_per_trial, "GPU": gpus}
        ),
        run_config=RunConfig(
            name=name,
            storage_path=config["storage"],
            failure_config=FailureConfig(max_failures=cfg.ray.max_failures),
            checkpoint_config=CheckpointConfig(num_to_keep=2),  # as Tune keeps: the last two
            callbacks=[_RelayBefore(final)] if in_trial else [],
        ),
    )
    return trainer.fit()


STOPS = "raynas-stops"  # Ray's internal key-value namespace of the stop requests, keyed by Tune trial id
STOP_CHECK_BATCHES = 8  # a stoppable job's ranks read the request every this many batches


class Stopped(Exception):
    """Raised on every rank at once (rank 0's reading): the trial's scheduler asked it to stop."""


def request_stop(trial_id: str) -> None:
    """Ask the data-parallel trial ``trial_id`` to end. Killing it would kill its Train controller, and
    the job's placement group would then wait for Ray Train's cleaner, which needs Ray's dashboard
    (raynas starts Ray without one): the next job would never start."""
    internal_kv._internal_kv_put(trial_id, b"1", namespace=STOPS)


def ask_to_stop(trial) -> None:
    """A Tune scheduler's stop for a data-parallel trial (``PerScenario(ask=...)``)."""
    request_stop(trial.trial_id)


def stop_requested(trial_id: str) -> bool:
    """Whether ``trial_id`` was asked to stop (rank 0's answer on every rank, so all leave together)."""
    return group_sync().agree(internal_kv._internal_kv_exists(trial_id, namespace=STOPS))


def stop_check(trial_id: str, every: int = STOP_CHECK_BATCHES) -> Callable[[], None]:
    """A ``before_batch`` hook raising ``Stopped`` once the trial was asked to stop, read every ``every``
    batches: the request lands while the next epoch trains (Train relays reports asynchronously), and
    that epoch is then cut short, never reported."""
    count = 0

    def check() -> None:
        nonlocal count
        count += 1
        if (count - 1) % every == 0 and stop_requested(trial_id):
            raise Stopped

    return check


def fit_stoppable(loop: Callable[[dict, Callable[[], None]], None], config: dict, *, cfg: ExperimentConfig, name: str) -> None:
    """``fit`` from a Tune trial that its scheduler stops by request: on every rank ``loop(config, before_batch)``
    runs with ``before_batch`` the trial's ``stop_check``, and ends quietly when asked to stop; the request is
    removed when the job ends."""
    trial_id = tune.get_context().get_trial_id()
    try:
        run = {"loop": loop, "config": config, "trial_id": trial_id, "storage": config["storage"]}
        fit(_until_stopped, run, cfg=cfg, name=name)
    finally:
        internal_kv._internal_kv_del(trial_id, namespace=STOPS)


def _until_stopped(run: dict) -> None:
    try:
        run["loop"](run["config"], stop_check(run["trial_id"]))
    except Stopped:
        pass


def trial_run_name(config: dict, keys: tuple[str, ...]) -> str:
    """The Train run of a data-parallel trial, named by its config's ``keys`` (a retried trial finds it again)."""
    return re.sub(r"[^A-Za-z0-9_.-]+", "_", "-".join(str(config[k]) for k in keys))


def is_chief() -> bool:
    return ray.train.get_context().get_world_rank() == 0


def report(metrics: dict, *, save: Callable[[Path], None] | None = None) -> None:
    """Report from every rank (Ray Train waits for all); with ``save``, rank 0 also writes a
    checkpoint, which Ray Train copies to the run's storage before the report returns."""
    if save is None or not is_chief():
        ray.train.report(metrics)
        return
    with tempfile.TemporaryDirectory() as tmp:
        save(Path(tmp))
        ray.train.report(metrics, checkpoint=Checkpoint.from_directory(tmp))


def node_types(path: str = BOOTSTRAP_CONFIG) -> list[tuple[dict[str, float], int]]:
    """The autoscaler's node types, as (resources of one node, how many it may add), from the cluster
    config ``ray up`` leaves on the head node; none where there is no such file (a fixed cluster)."""
    file = Path(path).expanduser()
    if not file.is_file():
        return []
    types = (yaml.safe_load(file.read_text()) or {}).get("available_node_types") or {}
    return [(dict(t.get("resources") or {}), int(t.get("max_workers", 0))) for t in types.values()]


def concurrent_trials(cfg: ExperimentConfig) -> int:
    """How many data-parallel trials the alive nodes can run at once (at least one): more would only
    queue their Train jobs, each waiting for a placement group."""
    alive = [dict(n["Resources"]) for n in ray.nodes() if n["Alive"]]
    workers = worker_capacity(alive, cpus=cfg.ray.cpus_per_trial, gpus=cfg.ray.gpus_per_trial)
    return max(1, workers // cfg.ray.workers_per_trial)


def worker_capacity(nodes: list[dict[str, float]], *, cpus: float, gpus: float) -> int:
    """How many workers of ``cpus`` CPUs and ``gpus`` GPUs the nodes (their resources) can hold at once."""

    def fits(node: dict[str, float]) -> int:
        counts = [int(node.get("CPU", 0) // cpus)] if cpus else []
        counts += [int(node.get("GPU", 0) // gpus)] if gpus else []
        return min(counts) if counts else 0

    return sum(fits(n) for n in nodes)


def check_workers(cfg: ExperimentConfig, *, bootstrap: str = BOOTSTRAP_CONFIG) -> None:
    """Refuse ``ray.workers_per_trial`` (or ``ray.workers_per_task``) workers of ``cpus_per_trial`` CPUs and
    their GPUs each that the cluster's alive nodes plus the nodes its autoscaler may still add cannot hold at once."""
    wanted = {"ray.workers_per_trial": (cfg.ray.workers_per_trial, cfg.ray.gpus_per_trial)}
    wanted["ray.workers_per_task"] = (cfg.ray.workers_per_task, cfg.ray.gpus_per_task)
    cpus = cfg.ray.cpus_per_trial
    alive = [dict(n["Resources"]) for n in ray.nodes() if n["Alive"]]
    addable = [resources for resources, count in node_types(bootstrap) for _ in range(count)]
    for field, (workers, gpus) in wanted.items():
        capacity = worker_capacity(alive + addable, cpus=cpus, gpus=gpus)
        if workers > 1 and capacity < workers:
            raise ClusterError(
                f"config field {field}: asks for {workers} workers of {cpus:g} CPU(s) and {gpus:g} GPU(s) each, "
                f"but this cluster{' and what its autoscaler may add' if addable else ''} can hold {capacity} at once; "
                f"lower {field} (or ray.cpus_per_trial and the GPUs per worker), or add nodes (cluster/cluster.yaml)"
            )
