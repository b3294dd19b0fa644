"""Loading weight files safely: tensors only, never arbitrary pickles, and clear errors."""

from __future__ import annotations

import pickle
from pathlib import Path

import torch


class CheckpointError(ValueError):
    """A weight file that is missing, truncated or not a plain state dict."""


def load_state_dict(path: str | Path) -> dict[str, torch.Tensor]:
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"checkpoint {path} does not exist")
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except (RuntimeError, EOFError, pickle.UnpicklingError, ValueError) as exc:
        raise CheckpointError(
            f"checkpoint {path} is truncated or not a weights-only state dict ({type(exc).__name__}); re-create it"
        ) from None
    if not isinstance(state, dict) or not all(isinstance(v, torch.Tensor) for v in state.values()):
        raise CheckpointError(f"checkpoint {path} does not hold a state dict of tensors")
    return state
