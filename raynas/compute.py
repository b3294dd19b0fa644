"""Where and in which precision a training phase runs: one device rule for every phase.

A phase runs on CUDA when the process was given a GPU (by Ray: ``ray.get_gpu_ids()``; outside Ray:
when torch sees one), else on the CPU; ``compute.device`` overrides. Mixed precision (bf16, or fp16
with a gradient scaler) covers weight training and evaluation only: architecture steps and the
latency loss run outside ``autocast()`` and stay exact. Plain PyTorch: orchestration says whether a GPU was
granted, nothing here imports Ray.
"""

from __future__ import annotations

import contextlib
from dataclasses import dataclass, field
from typing import Iterator

import torch
from torch import nn

from raynas.parallel import Sync, global_batch_norm, group_sync

DEVICES = ("auto", "cpu", "cuda")
PRECISIONS = ("fp32", "bf16", "fp16")
BATCH_NORMS = ("global", "local")
_DTYPES = {"bf16": torch.bfloat16, "fp16": torch.float16}


@dataclass(frozen=True)
class ComputeConfig:
    """Device and numerics of every training phase (warm-up, search, retraining, OFA, replicas)."""

    device: str = "auto"  # auto: CUDA when the trial/task/actor was given a GPU, else CPU; cpu | cuda force it
    precision: str = "fp32"  # fp32 | bf16 | fp16 (autocast; fp16 adds a gradient scaler and needs CUDA)
    channels_last: bool | None = (
        None  # NHWC memory format for models and batches; None: on the CPU (1.4-2x faster training measured), off on CUDA
    )
    cudnn_benchmark: bool = True  # let cuDNN pick the fastest kernels for the fixed input shapes
    batch_norm: str = (
        "global"  # data-parallel trials: global (the global batch's statistics: N workers train as one) | local (each worker's slice)
    )


class DeviceError(RuntimeError):
    """A phase was asked for a device or precision this process cannot provide."""


def select_device(setting: str, gpu_granted: bool | None = None) -> torch.device:
    """The device for ``setting``; ``gpu_granted`` is what the scheduler gave this process (None: not scheduled, ask torch)."""
    if setting not in DEVICES:
        raise DeviceError(f"compute.device {setting!r} is not one of {', '.join(DEVICES)}")
    has_gpu = torch.cuda.is_available() and (gpu_granted is None or gpu_granted)
    if setting == "cuda" and not has_gpu:
        why = (
            "no GPU was reserved for it (set ray.gpus_per_trial / ray.gpus_per_task)"
            if gpu_granted is False
            else "torch sees no CUDA device here"
        )
        raise DeviceError(f"compute.device is cuda but {why}; use compute.device: auto to run on the CPU instead")
    if setting == "cpu" or not has_gpu:
        return torch.device("cpu")
    return torch.device("cuda", torch.cuda.current_device())


@dataclass
class Compute:
    """A phase's device and numerics: moves models and batches, wraps forward passes, steps optimizers."""

    device: torch.device = field(default_factory=lambda: torch.device("cpu"))
    precision: str = "fp32"
    channels_last: bool = False
    sync: Sync = field(default_factory=Sync)  # the data-parallel group this process trains in (raynas/parallel.py; alone by default)
    global_batch_norm: bool = True  # in a group: BatchNorm over the global batch (else each process's slice)

    def __post_init__(self) -> None:
        if self.precision not in PRECISIONS:
            raise DeviceError(f"compute.precision {self.precision!r} is not one of {', '.join(PRECISIONS)}")
        if self.precision == "fp16" and self.device.type != "cuda":
            raise DeviceError("compute.precision fp16 needs a CUDA device (this phase runs on the CPU); use bf16 or fp32")
        self.scaler = torch.amp.GradScaler(self.device.type, enabled=self.precision == "fp16")

    @classmethod
    def from_config(cls, cfg: ComputeConfig, gpu_granted: bool | None = None) -> "Compute":
        device = select_device(cfg.device, gpu_granted)
        if device.type == "cuda":
            torch.backends.cudnn.benchmark = cfg.cudnn_benchmark
        channels_last = device.type == "cpu" if cfg.channels_last is None else cfg.channels_last
        return cls(device, cfg.precision, channels_last, sync=group_sync(), global_batch_norm=cfg.batch_norm == "global")

    @property
    def memory_format(self) -> torch.memory_format:
        return torch.channels_last if self.channels_last else torch.contiguous_format

    def module(self, model: nn.Module) -> nn.Module:
        """``model`` moved to the device (in place) in the configured memory format; in a data-parallel
        group its BatchNorm normalizes over the global batch unless ``batch_norm: local`` (raynas/parallel.py)."""
        model = model.to(self.device, memory_format=self.memory_format)
        return global_batch_norm(model, self.device) if self.sync.active and self.global_batch_norm else model

    def batch(self, x: torch.Tensor, y: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """A batch on the device; copies from pinned memory overlap with compute."""
        x = x.to(self.device, non_blocking=True, memory_format=self.memory_format) if x.dim() == 4 else x.to(self.device, non_blocking=True)
        return x, y.to(self.device, non_blocking=True)

    def autocast(self) -> contextlib.AbstractContextManager:
        """Mixed-precision forward passes (a no-op in fp32)."""
        if self.precision == "fp32":
            return contextlib.nullcontext()
        return torch.autocast(self.device.type, dtype=_DTYPES[self.precision])

    def step(self, loss: torch.Tensor, optimizer: torch.optim.Optimizer) -> None:
        """Backward and optimizer step, through the gradient scaler when training in fp16; in a
        data-parallel group the (share-scaled) gradients are summed over it first."""
        self.scaler.scale(loss).backward()
        if self.sync.active:
            self.sync.reduce_grads(p for group in optimizer.param_groups for p in group["params"])
        self.scaler.step(optimizer)
        self.scaler.update()

    def synchronize(self) -> None:
        if self.device.type == "cuda":
            torch.cuda.synchronize(self.device)


CPU = Compute()


def iterate_on(compute: Compute, loader) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
    """Batches of ``loader`` on ``compute``'s device (a no-op copy for loaders already there)."""
    for x, y in loader:
        yield compute.batch(x, y)
