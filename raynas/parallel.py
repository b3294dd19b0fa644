"""Data parallelism as plain torch.distributed: one global batch split over the processes of a group.

The rule, stated once: the configured batch size is the *global* batch. Every process draws the same
global batch from identically seeded loaders (so augmentation does not depend on the split) and
trains on its own contiguous slice; each scales its loss by its share of the batch, gradients are
summed over the group, and BatchNorm normalizes with the statistics of the whole global batch. So N
processes take the step one process takes on the whole batch, and the learning rate does not change
with N. Supernet paths are drawn from generators seeded alike and advanced alike on every process,
so every process trains the same path. Evaluation is split the same way and its counts summed, so
every process gets the whole batches' accuracy. ``Sync()`` is the single process: every method a no-op.
Nothing here imports Ray; Ray Train only creates the process group (raynas/execution/data_parallel.py).
"""

from __future__ import annotations

from typing import Iterable

import torch
import torch.distributed as dist
from torch import nn


class Sync:
    """One process alone: batches are not split and nothing is reduced."""

    rank: int = 0
    world: int = 1

    @property
    def active(self) -> bool:
        return self.world > 1

    def shard(self, x: torch.Tensor, y: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, float]:
        """This process's slice of a global batch and its share of the batch's samples."""
        return x, y, 1.0

    def reduce_grads(self, params: Iterable[nn.Parameter]) -> None:
        """Sum the (share-scaled) gradients of ``params`` over the group, in place."""

    def sum(self, value: torch.Tensor) -> torch.Tensor:
        """``value`` summed over the group (not differentiable)."""
        return value

    def agree(self, flag: bool) -> bool:
        """Rank 0's ``flag`` on every rank: a decision taken on a clock (go on training? save now?)
        must be one decision, or the ranks' collectives fall out of step."""
        return bool(self.rank0(float(flag)))

    def rank0(self, value: float) -> float:
        """Rank 0's ``value`` on every rank (a learning rate read off a clock, say)."""
        return value


class DistributedSync(Sync):
    """The processes of torch.distributed's default group (gloo on CPUs, NCCL on GPUs)."""

    def __init__(self) -> None:
        if not (dist.is_available() and dist.is_initialized()):
            raise RuntimeError("DistributedSync needs an initialized torch.distributed process group (Ray Train makes one)")
        self.rank, self.world = dist.get_rank(), dist.get_world_size()
        # NCCL moves CUDA tensors only: the group's own small tensors live where its backend works
        nccl = dist.get_backend() == "nccl"
        self.device = torch.device("cuda", torch.cuda.current_device()) if nccl else torch.device("cpu")

    def shard(self, x: torch.Tensor, y: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, float]:
        share = torch.tensor_split(torch.arange(len(y)), self.world)[self.rank]
        lo, hi = (int(share[0]), int(share[-1]) + 1) if len(share) else (0, 0)
        return x[lo:hi], y[lo:hi], (hi - lo) / max(len(y), 1)

    def reduce_grads(self, params: Iterable[nn.Parameter]) -> None:
        grads = [p.grad for p in params if p.grad is not None]  # the same parameters on every process: the same path
        if not grads:
            return
        flat = torch.cat([g.reshape(-1) for g in grads])
        dist.all_reduce(flat)
        offset = 0
        for g in grads:
            g.copy_(flat[offset : offset + g.numel()].view_as(g))
            offset += g.numel()

    def sum(self, value: torch.Tensor) -> torch.Tensor:
        value = value.clone()
        dist.all_reduce(value)
        return value

    def rank0(self, value: float) -> float:
        shared = torch.tensor([value], dtype=torch.float64, device=self.device)
        dist.broadcast(shared, src=0)
        return float(shared.item())


class _SumOverGroup(torch.autograd.Function):
    """A tensor summed over the group; its gradient is summed over the group too (each process's
    input feeds every process's loss)."""

    @staticmethod
    def forward(ctx, value: torch.Tensor) -> torch.Tensor:
        value = value.clone()
        dist.all_reduce(value)
        return value

    @staticmethod
    def backward(ctx, grad: torch.Tensor) -> torch.Tensor:
        grad = grad.clone()
        dist.all_reduce(grad)
        return grad


def group_sync() -> Sync:
    """The group this process trains in: torch.distributed's default group when one of several
    processes is initialized (Ray Train makes it for each data-parallel trial), else alone."""
    if grouped():
        return DistributedSync()
    return Sync()


def grouped() -> bool:
    """Whether this process trains in a group of several (torch.distributed initialized, world above 1)."""
    return dist.is_available() and dist.is_initialized() and dist.get_world_size() > 1


def group_batch_norm(
    x: torch.Tensor,
    running: tuple[torch.Tensor, torch.Tensor] | None,
    affine: tuple[torch.Tensor, torch.Tensor] | None,
    *,
    momentum: float,
    eps: float,
) -> torch.Tensor:
    """Training-mode BatchNorm of ``x`` with the statistics of the group's global batch: per-channel sums
    and sums of squares around the running mean, all-reduced (differentiably) in one collective.
    ``running`` (mean, var) are updated in place with weight ``momentum`` (slices of a larger
    BatchNorm's buffers work: OFA's elastic width normalizes its first channels); ``affine`` is
    (weight, bias) or None."""
    c, dtype = x.shape[1], x.dtype
    x = x.float() if x.dtype in (torch.float16, torch.bfloat16) else x  # statistics at least in float32, as torch's BatchNorm
    shift = running[0].detach().to(x.dtype)[None, :, None, None] if running is not None else 0.0  # equal on every rank
    d = x - shift  # sums around the running mean: one all-reduce, and little cancellation once the mean settles
    count = torch.full((1,), x.numel() / c, dtype=x.dtype, device=x.device)
    totals = _SumOverGroup.apply(torch.cat([d.sum((0, 2, 3)), (d * d).sum((0, 2, 3)), count]))
    n = totals[-1]
    offset = totals[:c] / n
    var = (totals[c : 2 * c] / n - offset * offset).clamp_min(0)
    if running is not None:
        with torch.no_grad():
            running[0].lerp_((offset + running[0].to(x.dtype)).to(running[0].dtype), momentum)
            running[1].lerp_((var * n / (n - 1).clamp_min(1)).to(running[1].dtype), momentum)
    y = (d - offset[None, :, None, None]) * torch.rsqrt(var + eps)[None, :, None, None]
    y = y * affine[0][None, :, None, None] + affine[1][None, :, None, None] if affine is not None else y
    return y.to(dtype)


def momentum_of(bn: nn.BatchNorm2d) -> float:
    """Count a training batch in ``bn`` and return the weight of its statistics in the running ones
    (``nn.BatchNorm2d``'s rule: its momentum, or a cumulative average when momentum is None); 0 untracked."""
    if not bn.track_running_stats:
        return 0.0
    bn.num_batches_tracked.add_(1)
    return 1.0 / float(bn.num_batches_tracked) if bn.momentum is None else bn.momentum


class GlobalBatchNorm2d(nn.BatchNorm2d):
    """BatchNorm whose training statistics are those of the global batch (``group_batch_norm``). torch's
    ``SyncBatchNorm`` does this on CUDA only; this one runs on any device. Its state dict is
    ``nn.BatchNorm2d``'s."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if not (self.training and grouped()):
            return super().forward(x)
        running = (self.running_mean, self.running_var) if self.track_running_stats else None
        affine = (self.weight, self.bias) if self.affine else None
        return group_batch_norm(x, running, affine, momentum=momentum_of(self), eps=self.eps)


def global_batch_norm(model: nn.Module, device: torch.device) -> nn.Module:
    """``model`` with every ``nn.BatchNorm2d`` normalizing over the global batch: torch's
    ``SyncBatchNorm`` on CUDA, ``GlobalBatchNorm2d`` elsewhere; parameters and buffers are kept."""
    if device.type == "cuda":
        return nn.SyncBatchNorm.convert_sync_batchnorm(model)
    for name, child in model.named_children():
        if type(child) is nn.BatchNorm2d:
            like = next(iter(child.state_dict().values()))
            swapped = GlobalBatchNorm2d(
                child.num_features, child.eps, child.momentum, child.affine, child.track_running_stats,
                device=device, dtype=like.dtype if like.is_floating_point() else None,
            )  # fmt: skip
            swapped.load_state_dict(child.state_dict())
            swapped.train(child.training)
            setattr(model, name, swapped)
        else:
            global_batch_norm(child, device)
    return model


def batch_norm_is_global(model: nn.Module) -> bool:
    """Whether no plain ``nn.BatchNorm2d`` is left (a module normalizing by hand, as OFA's sliced
    BatchNorm, calls ``group_batch_norm`` itself)."""
    return not any(type(m) is nn.BatchNorm2d for m in model.modules())
