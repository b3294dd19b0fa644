"""Once-for-All on Ray: progressive shrinking of the elastic supernet in one task, or as a data-parallel
Ray Train job of ``ray.workers_per_task`` workers, driven from the driver so every phase's checkpoint
lands in the run directory (the strategy: ``raynas/strategies/ofa.py``)."""

from __future__ import annotations

import tempfile
import time
from pathlib import Path

import ray
import ray.train
import torch

from raynas.checkpoints import load_state_dict
from raynas.compute import ComputeConfig
from raynas.config import ExperimentConfig
from raynas.data.datasets import DataConfig, load_splits
from raynas.execution import data_parallel as dp
from raynas.execution.runtime import worker_compute
from raynas.search.ofa import resolutions
from raynas.space.macro import get_space
from raynas.supernet.elastic import ElasticSupernet
from raynas.supernet.progressive import ShrinkConfig, progressive_phases
from raynas.weights import cpu_state, state_to_numpy


@ray.remote
def train_elastic_supernet(
    space: str,
    data: DataConfig,
    cfg: ShrinkConfig,
    *,
    seed: int,
    threads: int,
    saved: dict[str, bytes],
    compute_cfg: ComputeConfig = ComputeConfig(),
):
    """Progressive shrinking in one task on its device, as a generator: after every phase it yields
    ``("files", {name: bytes})``, the phase's checkpoint files for the driver to keep (this node's
    disk may not outlive it), and last ``("done", stats, numpy weights)``. ``saved`` holds the files
    of phases already done (a resumed run), which are loaded instead of trained."""
    net, train, num_classes, compute = _elastic_on_device(space, data, cfg, seed=seed, threads=threads, compute_cfg=compute_cfg)
    start, stats = time.perf_counter(), {}
    with tempfile.TemporaryDirectory(prefix="raynas-ofa-") as local:
        _write_files(Path(local), saved)
        for stats, written in progressive_phases(net, train, cfg, seed=seed, checkpoint_dir=local, compute=compute):
            if written:
                yield "files", {p.name: p.read_bytes() for p in written}
    yield "done", stats | {"train_seconds": time.perf_counter() - start, "num_classes": num_classes}, state_to_numpy(net)


def _elastic_on_device(space: str, data: DataConfig, cfg: ShrinkConfig, *, seed: int, threads: int, compute_cfg: ComputeConfig):
    """The elastic supernet on this process's device, its training loader, the class count and the device."""
    torch.set_num_threads(threads)
    torch.manual_seed(seed)
    compute = worker_compute(compute_cfg)
    splits = load_splits(data)
    train, _, _ = splits.loaders(data.batch_size, seed, compute.device)
    macro = get_space(space)
    net = compute.module(ElasticSupernet(macro, splits.num_classes, min_depth=cfg.min_depth, resolutions=resolutions(macro, cfg)))
    return net, train, splits.num_classes, compute


WEIGHTS_FILE = "elastic.weights"  # the trained supernet in a data-parallel job's last checkpoint (not a phase file: no .pt)


def _shrink_worker(config: dict) -> None:
    """One rank of the data-parallel progressive shrinking: every rank trains, rank 0 reports every phase
    with all phase files so far as the checkpoint, and last the weights. A restarted group starts from
    the files of the run directory and of its last checkpoint."""
    cfg: ExperimentConfig = config["cfg"]
    shrink, seed = cfg.ofa.shrink, config["seed"]
    net, train, num_classes, compute = _elastic_on_device(
        cfg.space, cfg.data, shrink, seed=seed, threads=cfg.ray.cpus_per_trial, compute_cfg=cfg.compute
    )
    start, stats = time.perf_counter(), {}
    with tempfile.TemporaryDirectory(prefix="raynas-ofa-") as local:
        _write_files(Path(local), config["saved"] | _checkpoint_files(ray.train.get_checkpoint()))

        def phase_files(folder: Path, weights: dict | None = None) -> None:
            _write_files(folder, _checkpoint_files(local))
            if weights is not None:
                torch.save(weights, folder / WEIGHTS_FILE)

        for stats, _ in progressive_phases(net, train, shrink, seed=seed, checkpoint_dir=local, compute=compute):
            dp.report(stats, save=phase_files)
        weights = cpu_state(net)
        final = stats | {"train_seconds": time.perf_counter() - start, "num_classes": num_classes, "workers": compute.sync.world}
        dp.report(final, save=lambda folder: phase_files(folder, weights))


def train_elastic_data_parallel(cfg: ExperimentConfig, directory: Path, *, seed: int) -> tuple[dict, dict]:
    """Progressive shrinking as a Ray Train job of ``ray.workers_per_task`` workers (each
    ``ray.cpus_per_trial`` CPUs and ``ray.gpus_per_task`` GPUs), its run kept in ``directory/train``;
    like ``run_elastic_training``, phases already in ``directory`` are loaded, not trained, and every
    phase file ends up there. Returns the stats and the numpy weights."""
    directory.mkdir(parents=True, exist_ok=True)
    config = {"cfg": cfg, "seed": seed, "saved": _checkpoint_files(directory), "storage": str(directory.resolve() / "train")}
    result = dp.fit(_shrink_worker, config, cfg=cfg, name=f"ofa-s{seed}", task=True, in_trial=False)
    with result.checkpoint.as_directory() as local:
        _write_files(directory, _checkpoint_files(local))
        weights = load_state_dict(Path(local) / WEIGHTS_FILE)
    stats = {k: v for k, v in result.metrics.items() if isinstance(v, (int, float))}
    return stats, {k: v.numpy() for k, v in weights.items()}


def _checkpoint_files(where) -> dict[str, bytes]:
    """The phase files (``*.pt``) of a folder or of a Ray Train checkpoint (None: none)."""
    if where is None:
        return {}
    if isinstance(where, ray.train.Checkpoint):
        with where.as_directory() as local:
            return _checkpoint_files(local)
    return {p.name: p.read_bytes() for p in sorted(Path(where).glob("*.pt"))}


def _write_files(directory: Path, files: dict[str, bytes]) -> None:
    """Write each file whole (through a temporary name), so a reader never sees half of one."""
    for name, content in files.items():
        tmp = directory / f".{name}.tmp"
        tmp.write_bytes(content)
        tmp.replace(directory / name)


def run_elastic_training(
    task,
    directory: Path,
    *,
    space: str,
    data: DataConfig,
    shrink: ShrinkConfig,
    seed: int,
    threads: int,
    compute_cfg: ComputeConfig = ComputeConfig(),
) -> tuple[dict, dict]:
    """Drive ``train_elastic_supernet`` (``task``: it with its resources) from the driver: phase files
    it yields are written into ``directory`` (the run directory, which the driver can always reach),
    and those already there are sent along, so ``--resume`` continues from the last finished phase
    whichever node trained it. Returns the stats and the numpy weights."""
    directory.mkdir(parents=True, exist_ok=True)
    saved = _checkpoint_files(directory)
    for ref in task.remote(space, data, shrink, seed=seed, threads=threads, saved=saved, compute_cfg=compute_cfg):
        kind, *payload = ray.get(ref)
        if kind == "files":
            _write_files(directory, payload[0])
        else:
            return payload[0], payload[1]
    raise RuntimeError("the supernet training task ended without its weights")
