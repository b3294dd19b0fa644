"""The actor that owns the warmed-up supernet weights and serves them to every search trial."""

from __future__ import annotations

import ray
import torch

from raynas.checkpoints import load_state_dict


@ray.remote(num_cpus=0, max_restarts=3, max_task_retries=3)
class SupernetHost:
    """Loads the shared weights once and keeps them in the object store, owned by this actor.

    Trials fetch the reference and read the numpy arrays zero-copy on the same node; on restart
    the actor reloads from the checkpoint file, so the weights outlive any one process.
    """

    def __init__(self, checkpoint: str) -> None:
        state = load_state_dict(checkpoint)
        self._num_params = sum(int(v.numel()) for v in state.values() if isinstance(v, torch.Tensor))
        self._ref = ray.put({k: v.numpy() for k, v in state.items()})

    def weights(self) -> list[ray.ObjectRef]:
        """A list so the reference travels as-is instead of being resolved by Ray."""
        return [self._ref]

    def num_parameters(self) -> int:
        return self._num_params
