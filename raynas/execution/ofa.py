"""Once-for-All on Ray: progressive shrinking of the elastic supernet in one task, driven from the
driver so every phase's checkpoint lands in the run directory (the strategy: ``raynas/strategies/ofa.py``)."""

from __future__ import annotations

import tempfile
import time
from pathlib import Path

import ray
import torch

from raynas.compute import ComputeConfig
from raynas.data.datasets import DataConfig, load_splits
from raynas.execution.runtime import worker_compute
from raynas.search.ofa import resolutions
from raynas.space.macro import get_space
from raynas.supernet.elastic import ElasticSupernet
from raynas.supernet.progressive import ShrinkConfig, progressive_phases
from raynas.weights import state_to_numpy


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
    torch.set_num_threads(threads)
    torch.manual_seed(seed)
    compute = worker_compute(compute_cfg)
    splits = load_splits(data)
    train, _, _ = splits.loaders(data.batch_size, seed, compute.device)
    macro = get_space(space)
    net = compute.module(ElasticSupernet(macro, splits.num_classes, min_depth=cfg.min_depth, resolutions=resolutions(macro, cfg)))
    start, stats = time.perf_counter(), {}
    with tempfile.TemporaryDirectory(prefix="raynas-ofa-") as local:
        for name, content in saved.items():
            (Path(local) / name).write_bytes(content)
        for stats, written in progressive_phases(net, train, cfg, seed=seed, checkpoint_dir=local, compute=compute):
            if written:
                yield "files", {p.name: p.read_bytes() for p in written}
    yield "done", stats | {"train_seconds": time.perf_counter() - start, "num_classes": splits.num_classes}, state_to_numpy(net)


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
    saved = {p.name: p.read_bytes() for p in sorted(directory.glob("*.pt"))}
    for ref in task.remote(space, data, shrink, seed=seed, threads=threads, saved=saved, compute_cfg=compute_cfg):
        kind, *payload = ray.get(ref)
        if kind == "files":
            for name, content in payload[0].items():
                tmp = directory / f".{name}.tmp"
                tmp.write_bytes(content)
                tmp.replace(directory / name)
        else:
            return payload[0], payload[1]
    raise RuntimeError("the supernet training task ended without its weights")
