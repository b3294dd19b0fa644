"""Activation memory of a training step: bytes autograd keeps for backward, or CUDA's peak."""

from __future__ import annotations

from typing import Callable

import torch


def saved_activation_bytes(step: Callable[[], None]) -> int:
    """Bytes of distinct tensor storages autograd saves during ``step`` (CPU-portable measure).

    This is the activation memory a step must hold until its backward pass: the part of memory
    that grows with the number of active paths. Parameters saved for backward are counted too.
    """
    storages: dict[int, int] = {}

    def pack(t: torch.Tensor) -> torch.Tensor:
        storage = t.untyped_storage()
        storages[storage.data_ptr()] = storage.nbytes()
        return t

    with torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t):
        step()
    return sum(storages.values())


def cuda_peak_bytes(step: Callable[[], None], device: torch.device) -> int:
    """Peak bytes allocated by CUDA during ``step`` above what was allocated before it."""
    torch.cuda.synchronize(device)
    torch.cuda.reset_peak_memory_stats(device)
    before = torch.cuda.memory_allocated(device)
    step()
    torch.cuda.synchronize(device)
    return torch.cuda.max_memory_allocated(device) - before
