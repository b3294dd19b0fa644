"""Ray tasks: profiling and measuring pinned to a target's nodes, and the supernet warm-up."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import ray
import torch
from ray.util.scheduling_strategies import NodeAffinitySchedulingStrategy

from raynas.compute import ComputeConfig
from raynas.config import ExperimentConfig, ProfileConfig
from raynas.data.datasets import DataConfig, load_splits
from raynas.execution import data_parallel as dp
from raynas.execution.host import SupernetHost
from raynas.execution.runtime import cluster_cpus, worker_compute
from raynas.hardware.build import YARDSTICK_KEY, build_latency_table, identity, measure_networks
from raynas.hardware.cache import CachedOps
from raynas.hardware.lut import LatencyTable
from raynas.hardware.process import ALLOCATORS, check_started_with
from raynas.hardware.targets import get_target
from raynas.search.proxyless import SearchConfig, warm_up
from raynas.space.architecture import Architecture
from raynas.space.macro import get_space
from raynas.supernet.supernet import Supernet
from raynas.weights import cpu_state, state_to_numpy


def on_target(remote_fn, target_name: str):
    """Pin a remote function to nodes with the target's label, holding the threads or GPU it measures with."""
    return remote_fn.options(**get_target(target_name).task_resources())


@ray.remote
def profile_target(
    target_name: str,
    space: str,
    num_classes: int,
    *,
    profile: ProfileConfig,
    seed: int,
    yardstick_ms: float | None = None,
    cached: CachedOps | None = None,
    cache_path: str = "",
) -> LatencyTable:
    """Profile on the target's node after ``settle_seconds``: right after ``ray.init`` the node is
    still prestarting workers, which inflated op latencies by 16% on a 2-core machine.
    ``yardstick_ms`` times it in the unit of another table (say, the run's other spaces). ``cached``:
    the driver's op cache for this target, reused when it was measured on this node's setting; the
    table's metadata carries this node's setting (``op_cache_identity``) for the driver to save."""
    p, target = profile, get_target(target_name)
    check_started_with(ALLOCATORS.get(target.allocator))
    mine = identity(target)
    if cached is not None:
        known, reason = cached.usable_for(mine, cache_path)
    else:
        known, reason = (
            {},
            (f"no op cache at {cache_path}: profiling every op" if cache_path else "no op cache configured: profiling every op"),
        )
    if yardstick_ms:
        known[YARDSTICK_KEY] = yardstick_ms
    time.sleep(p.settle_seconds)
    table = build_latency_table(
        target,
        get_space(space),
        num_classes,
        warmup=p.warmup,
        repeats=p.repeats,
        calibration_archs=p.calibration_archs,
        seed=seed,
        fit_scale=p.fit_scale,
        known=known,
    )
    table.metadata |= {"ray_node_id": ray.get_runtime_context().get_node_id(), "cache": reason, "op_cache_identity": json.dumps(mine)}
    return table


def cache_update(table: LatencyTable, cached: CachedOps | None) -> CachedOps:
    """What the driver writes back to the op cache after profiling: earlier entries of the same setting,
    this table's ops, and their unit."""
    mine = json.loads(table.metadata["op_cache_identity"])
    earlier = cached.entries if cached is not None and cached.identity == mine else {}
    return CachedOps(mine, earlier | table.entries | {YARDSTICK_KEY: table.yardstick_ms})


@ray.remote
def measure_latencies(
    nets: dict[str, tuple[dict, dict | None]],
    target_name: str,
    num_classes: int,
    *,
    profile: ProfileConfig,
    yardstick_ms: float | None = None,
) -> dict[str, float]:
    """Latency of each network (architecture dict, numpy weights) on the target, interleaved in one
    task, in the unit of the target's latency table (``yardstick_ms``, raynas/hardware/timing.py),
    with ``profile``'s warm-up and repeats.

    Waits ``profile.settle_seconds`` first: right after a Tune run, Ray is still stopping trial actors
    and starting fresh workers; measuring at once read +10 to +50% on a 2-core machine.
    """
    check_started_with(ALLOCATORS.get(get_target(target_name).allocator))
    time.sleep(profile.settle_seconds)
    warmup, repeats = profile.warmup, profile.repeats
    archs = {key: (Architecture.from_dict(arch), state) for key, (arch, state) in nets.items()}
    return measure_networks(archs, get_target(target_name), num_classes, warmup=warmup, repeats=repeats, yardstick_ms=yardstick_ms)


@ray.remote
def warm_up_supernet(
    space: str,
    data: DataConfig,
    cfg: SearchConfig,
    *,
    seed: int,
    threads: int,
    compute_cfg: ComputeConfig = ComputeConfig(),
    sharing: str = "separate",
) -> tuple[dict, dict]:
    """Train the shared weights with uniform path sampling on the task's device; returns the stats and the weights as numpy."""
    from ray.experimental.tqdm_ray import tqdm

    bar = None

    def _progress(_epoch: int, _stats: dict, batches: int) -> None:
        nonlocal bar
        bar = bar or tqdm(total=cfg.warmup_epochs * batches, desc=f"supernet warm-up (seed {seed})")
        bar.update(batches)

    stats, supernet = _warm_up(space, data, cfg, seed=seed, threads=threads, compute_cfg=compute_cfg, sharing=sharing, progress=_progress)
    if bar is not None:
        bar.close()
    return stats, state_to_numpy(supernet)


def _warm_up(space: str, data: DataConfig, cfg: SearchConfig, *, seed: int, threads: int, compute_cfg, sharing: str, progress=None):
    """The warm-up on this process's device (in a data-parallel group, its share of every global batch)."""
    torch.set_num_threads(threads)
    torch.manual_seed(seed)
    compute = worker_compute(compute_cfg)
    splits = load_splits(data)
    train, _, _ = splits.loaders(data.batch_size, seed, compute.device)
    supernet = compute.module(Supernet(get_space(space), splits.num_classes, sharing=sharing))
    on_epoch = None if progress is None else (lambda epoch, stats: progress(epoch, stats, len(train)))
    stats = warm_up(supernet, train, cfg, seed=seed, on_epoch=on_epoch, compute=compute)
    return {f"warmup_{k}": v for k, v in stats.items()} | {"num_classes": splits.num_classes}, supernet


def _warm_up_worker(config: dict) -> None:
    """The warm-up as one rank of a data-parallel Ray Train job (``ray.workers_per_task``); rank 0 saves the weights."""
    cfg: ExperimentConfig = config["cfg"]
    stats, supernet = _warm_up(
        cfg.space, cfg.data, cfg.search, seed=config["seed"], threads=cfg.ray.cpus_per_trial, compute_cfg=cfg.compute,
        sharing=cfg.supernet.sharing,
    )  # fmt: skip
    state = cpu_state(supernet)
    dp.report(stats, save=lambda folder: torch.save(state, folder / WARMUP_FILE))


WARMUP_FILE = "supernet.pt"


def warm_up_on_cluster(cfg: ExperimentConfig, seed: int, *, checkpoint: Path, reuse: bool) -> tuple[Any, dict[str, float]]:
    """Warm up one seed's supernet on the largest node, or as a data-parallel Ray Train job of
    ``ray.workers_per_task`` workers (or, with ``reuse``, keep the checkpoint a run saved before); the
    driver keeps the checkpoint and starts a host actor on its own node, so a restarted host always
    finds the file, whichever node trained. Returns the host and the warm-up's stats (empty when reused)."""
    stats: dict[str, float] = {}
    if not (reuse and checkpoint.is_file()):
        stats, state = _warm_up_data_parallel(cfg, seed, checkpoint) if cfg.ray.workers_per_task > 1 else _warm_up_task(cfg, seed)
        checkpoint.parent.mkdir(parents=True, exist_ok=True)
        tmp = checkpoint.with_suffix(".tmp")
        torch.save(state, tmp)
        tmp.replace(checkpoint)
    here = NodeAffinitySchedulingStrategy(ray.get_runtime_context().get_node_id(), soft=False)
    return SupernetHost.options(scheduling_strategy=here).remote(str(checkpoint)), stats


def _warm_up_task(cfg: ExperimentConfig, seed: int) -> tuple[dict, dict[str, torch.Tensor]]:
    cpus = cluster_cpus()
    task = warm_up_supernet.options(num_cpus=cpus, num_gpus=cfg.ray.gpus_per_task)
    stats, state = ray.get(
        task.remote(cfg.space, cfg.data, cfg.search, seed=seed, threads=cpus, compute_cfg=cfg.compute, sharing=cfg.supernet.sharing)
    )
    return stats, {k: torch.from_numpy(v.copy()) for k, v in state.items()}


def _warm_up_data_parallel(cfg: ExperimentConfig, seed: int, checkpoint: Path) -> tuple[dict, dict[str, torch.Tensor]]:
    """The Train run is kept beside the checkpoint (``<run>/supernet/train/warmup-s<seed>``)."""
    config = {"cfg": cfg, "seed": seed, "storage": str(checkpoint.parent.resolve() / "train")}
    result = dp.fit(_warm_up_worker, config, cfg=cfg, name=f"warmup-s{seed}", task=True, in_trial=False)
    with result.checkpoint.as_directory() as local:
        state = torch.load(Path(local) / WARMUP_FILE, weights_only=True)
    return {k: v for k, v in result.metrics.items() if isinstance(v, (int, float))}, state
