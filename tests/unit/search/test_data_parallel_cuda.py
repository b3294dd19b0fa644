"""The data-parallel path on GPUs: two NCCL processes, one GPU each, with torch's ``SyncBatchNorm``,
take the step one GPU takes on the whole batch. Needs two or more CUDA GPUs (skipped elsewhere)."""

from __future__ import annotations

import os
import tempfile

import pytest
import torch
import torch.distributed as dist
import torch.multiprocessing as mp

from raynas.compute import Compute
from raynas.parallel import DistributedSync, Sync
from raynas.search.proxyless import ProxylessSearch, SearchConfig
from raynas.space.macro import get_space
from raynas.supernet.supernet import Supernet
from tests.unit.search.test_data_parallel import STEPS, _batches, _close, _record_paths, _table

pytestmark = [
    pytest.mark.needs_cuda,
    pytest.mark.skipif(torch.cuda.device_count() < 2, reason="needs two CUDA GPUs (NCCL runs one rank per GPU)"),
]


def _search_on(device: torch.device, sync: Sync) -> dict:
    """Two-path search steps on ``device`` in float64 (as the CPU test, for the same reason)."""
    torch.manual_seed(0)
    macro = get_space("mnist-small")
    compute = Compute(device, sync=sync)
    supernet = compute.module(Supernet(macro, 10).double())  # in a group: SyncBatchNorm
    cfg = SearchConfig(binarization="two", arch_lr=0.05, latency_loss="ratio", beta=3.0, gamma=3.0, aim_floor=0.9)
    search = ProxylessSearch(supernet, _table(macro), 0.9, cfg=cfg, seed=7, compute=compute)
    paths = _record_paths(supernet)
    val = iter(_batches(STEPS, seed=2))
    for x, y in _batches(STEPS, seed=1):
        search.step(x.to(device), y.to(device), val)
    return {"state": {k: v.detach().cpu() for k, v in supernet.state_dict().items()}, "paths": paths}


def _worker(rank: int, init: str, out: str) -> None:
    torch.cuda.set_device(rank)
    dist.init_process_group("nccl", init_method=init, rank=rank, world_size=2)
    try:
        torch.save(_search_on(torch.device("cuda", rank), DistributedSync()), f"{out}.{rank}")
    finally:
        dist.destroy_process_group()


def test_data_parallel_search_on_two_gpus_equals_one_gpu_on_the_global_batch():
    alone = _search_on(torch.device("cuda", 0), Sync())
    with tempfile.TemporaryDirectory() as tmp:
        init, out = f"file://{os.path.join(tmp, 'rendezvous')}", os.path.join(tmp, "result")
        mp.spawn(_worker, args=(init, out), nprocs=2, join=True)
        ranks = [torch.load(f"{out}.{rank}", weights_only=True) for rank in range(2)]
    assert ranks[0]["paths"] == ranks[1]["paths"] == alone["paths"]
    for rank in ranks:
        _close(rank["state"], alone["state"])
