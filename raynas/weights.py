"""Weights as plain numpy dicts: zero-copy through Ray, no pickled tensors, safe to load."""

from __future__ import annotations

import numpy as np
import torch
from torch import nn


def state_to_numpy(module: nn.Module) -> dict[str, np.ndarray]:
    """A state dict as plain numpy arrays: zero-copy in Ray's object store, no pickled tensors."""
    return {k: v.detach().cpu().numpy().copy() for k, v in module.state_dict().items()}


def cpu_state(module: nn.Module) -> dict[str, torch.Tensor]:
    """A state dict as contiguous CPU tensors, detached: what a checkpoint file saves from any device."""
    return {k: v.detach().cpu().contiguous() for k, v in module.state_dict().items()}


def load_numpy_state(module: nn.Module, state: dict[str, np.ndarray]) -> None:
    """Load numpy weights (possibly read-only views from the object store) by copying."""
    module.load_state_dict({k: torch.from_numpy(np.array(v)) for k, v in state.items()})
