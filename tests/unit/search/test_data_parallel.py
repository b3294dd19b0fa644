"""Data-parallel search and training (raynas/parallel.py): two gloo processes of one thread each, each
training on half of a global batch, take the step one process takes on the whole batch.

The comparisons run in float64: in float32 the order of the reductions (one process sums 16 images,
two sum 8 each) changes near-zero gradients in their last bits, and Adam's first steps, which move
alpha by lr x sign(g), turn such a difference into a whole step. That is float noise, not a different
algorithm; in float64 the two agree to 1e-5 and better."""

from __future__ import annotations

import os
import tempfile

import pytest
import torch
import torch.distributed as dist
import torch.multiprocessing as mp

from raynas.compute import Compute
from raynas.hardware.lut import LatencyTable
from raynas.parallel import DistributedSync, GlobalBatchNorm2d, Sync, batch_norm_is_global, global_batch_norm
from raynas.search.proxyless import ProxylessSearch, SearchConfig
from raynas.space.architecture import Architecture
from raynas.space.macro import get_space
from raynas.space.network import ChildNetwork
from raynas.space.ops import SKIP
from raynas.supernet.elastic import ElasticSupernet
from raynas.supernet.progressive import ShrinkConfig, train_progressive
from raynas.supernet.supernet import Supernet
from raynas.training import RetrainConfig, retrain

STEPS, GLOBAL_BATCH = 5, 16


def _table(macro) -> LatencyTable:
    """A latency table of the space whose op costs grow with kernel and expansion (the search needs one)."""
    entries = {(s.key, op): 0.01 * int(op[1]) * int(op[3]) for s in macro.layers() for op in s.choices if op != SKIP}
    fixed = {"stem": 0.05, "head": 0.05, "call": 0.0}
    return LatencyTable(target="t", space=macro.name, space_hash=macro.space_hash(), batch_size=1, entries=entries, fixed=fixed)


def _batches(n: int, *, seed: int) -> list[tuple[torch.Tensor, torch.Tensor]]:
    gen = torch.Generator().manual_seed(seed)
    images = [torch.randn(GLOBAL_BATCH, 1, 28, 28, generator=gen, dtype=torch.float64) for _ in range(n)]
    return [(x, torch.randint(10, (GLOBAL_BATCH,), generator=gen)) for x in images]


def _search(sync: Sync, binarization: str, sharing: str = "separate") -> dict:
    """``STEPS`` two-path (or other) search iterations on the mnist-small supernet from seed 0; returns
    the weights, alphas and every step's sampled weight path and architecture pair."""
    torch.set_num_threads(1)
    torch.manual_seed(0)
    macro = get_space("mnist-small")
    supernet = Supernet(macro, 10, sharing=sharing).double()
    if sync.active:
        global_batch_norm(supernet, torch.device("cpu"))
        assert batch_norm_is_global(supernet)
    cfg = SearchConfig(binarization=binarization, arch_lr=0.05, latency_loss="ratio", beta=3.0, gamma=3.0, aim_floor=0.9)
    search = ProxylessSearch(supernet, _table(macro), 0.9, cfg=cfg, seed=7, compute=Compute(sync=sync))
    paths = _record_paths(supernet)
    val = iter(_batches(STEPS, seed=2))
    for x, y in _batches(STEPS, seed=1):
        search.step(x, y, val)
    state = {k: v.detach().clone() for k, v in supernet.state_dict().items()}
    return {"state": state, "paths": paths}


def _record_paths(supernet: Supernet) -> list:
    """Every path the supernet draws from now on (weight steps: one op per layer; two-path steps: the pair)."""
    drawn = []
    for name in ("sample_single", "sample_pairs"):

        def logged(*args, _draw=getattr(supernet, name), **kwargs):
            _draw(*args, **kwargs)
            drawn.append(tuple(layer.pair or (layer.active,) for layer in supernet.layers))

        setattr(supernet, name, logged)
    return drawn


def _retrain(sync: Sync) -> dict:
    torch.set_num_threads(1)
    torch.manual_seed(0)
    net = ChildNetwork(Architecture("mnist-small", ("k3e6", "skip", "k5e3", "k7e6", "k3e3", "skip")), 10).double()
    if sync.active:
        global_batch_norm(net, torch.device("cpu"))
    batches = _batches(STEPS, seed=3)
    metrics = retrain(net, batches, batches[:1], cfg=RetrainConfig(epochs=1), compute=Compute(sync=sync))
    return {"state": {k: v.detach().clone() for k, v in net.state_dict().items()}, "metrics": metrics}


def _shrink(sync: Sync) -> dict:
    """Once-for-All's progressive shrinking, every phase (distillation from the largest net included)
    for one epoch of two global batches, on the elastic mnist-small supernet from seed 0."""
    torch.set_num_threads(1)
    torch.manual_seed(0)
    torch.set_default_dtype(torch.float64)  # the distillation teacher is a new network, built in the default type
    try:
        supernet = ElasticSupernet(get_space("mnist-small"), 10, min_depth=1)
        if sync.active:
            global_batch_norm(supernet, torch.device("cpu"))  # the stem and head; the elastic layers normalize by hand, over the group too
        cfg = ShrinkConfig(largest_epochs=1, kernel_epochs=1, depth_epochs=1, width_epochs=1, lr=0.1)
        with tempfile.TemporaryDirectory() as phases:
            stats = train_progressive(supernet, _batches(2, seed=4), cfg, seed=3, checkpoint_dir=phases, compute=Compute(sync=sync))
    finally:
        torch.set_default_dtype(torch.float32)
    losses = torch.tensor([v for k, v in sorted(stats.items()) if k.endswith("_loss")], dtype=torch.float64)
    return {"state": {k: v.detach().clone() for k, v in supernet.state_dict().items()}, "losses": losses}


JOBS = {"search": _search, "retrain": _retrain, "shrink": _shrink}


def _worker(rank: int, world: int, init: str, job: str, args: tuple, out: str) -> None:
    dist.init_process_group("gloo", init_method=init, rank=rank, world_size=world)
    try:
        torch.save(JOBS[job](DistributedSync(), *args), f"{out}.{rank}")
    finally:
        dist.destroy_process_group()


def _two_processes(job: str, *args) -> list[dict]:
    with tempfile.TemporaryDirectory() as tmp:
        init, out = f"file://{os.path.join(tmp, 'rendezvous')}", os.path.join(tmp, "result")
        mp.spawn(_worker, args=(2, init, job, args, out), nprocs=2, join=True)
        return [torch.load(f"{out}.{rank}", weights_only=True) for rank in range(2)]


def _close(a: dict, b: dict, rtol: float = 1e-5) -> None:
    """Every tensor of ``a`` (weights, alphas, BatchNorm statistics) within ``rtol`` of ``b``'s, relative to
    its norm; tensors that are zero in exact arithmetic (the running mean of a 1x1 convolution of a
    BatchNorm's output) within 1e-9, far above float64 noise and far below any real difference."""
    for key, ref in b.items():
        if ref.is_floating_point():
            err = float((a[key] - ref).norm())
            assert err <= rtol * float(ref.norm()) + 1e-9, f"{key}: difference {err:.2e}, norm {float(ref.norm()):.2e}"
        else:
            assert torch.equal(a[key], ref), key


@pytest.mark.parametrize(("binarization", "sharing"), [("two", "separate"), ("reinforce", "separate"), ("two", "entangled")])
def test_data_parallel_search_of_two_processes_equals_one_process_on_the_global_batch(binarization, sharing):
    """Entangled layers normalize their channel slices by hand; in a group, over the global batch too."""
    alone = _search(Sync(), binarization, sharing)
    ranks = _two_processes("search", binarization, sharing)
    assert ranks[0]["paths"] == ranks[1]["paths"] == alone["paths"]  # the same path on every rank at every step
    for rank in ranks:
        _close(rank["state"], alone["state"])  # weights, alphas and BatchNorm statistics


def test_data_parallel_retraining_of_two_processes_equals_one_process_on_the_global_batch():
    alone = _retrain(Sync())
    ranks = _two_processes("retrain")
    for rank in ranks:
        _close(rank["state"], alone["state"])
        assert rank["metrics"] == pytest.approx(alone["metrics"], rel=1e-5)


def test_data_parallel_progressive_shrinking_of_two_processes_equals_one_process_on_the_global_batch():
    """OFA's elastic supernet: both ranks sample the same subnets, and sliced BatchNorm uses the global batch."""
    alone = _shrink(Sync())
    ranks = _two_processes("shrink")
    for rank in ranks:
        _close(rank["state"], alone["state"])
        assert torch.allclose(rank["losses"], alone["losses"], rtol=1e-6)  # every phase's loss over the global batches


def test_global_batch_norm_keeps_the_state_and_is_plain_batch_norm_alone():
    bn = torch.nn.BatchNorm2d(4)
    bn.running_mean.fill_(0.5)
    net = global_batch_norm(torch.nn.Sequential(torch.nn.Conv2d(1, 4, 3), bn), torch.device("cpu"))
    assert isinstance(net[1], GlobalBatchNorm2d) and torch.equal(net[1].running_mean, torch.full((4,), 0.5))
    x, plain = torch.randn(8, 1, 6, 6), torch.nn.BatchNorm2d(4)
    plain.load_state_dict(net[1].state_dict())
    assert torch.allclose(net[1](net[0](x)), plain(net[0](x)))  # no process group: torch's own BatchNorm
