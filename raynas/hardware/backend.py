"""Measurement backends: how a target times modules, and what a Ray task needs to do it there.

One file per backend (``torch_cpu.py``, ``torch_cuda.py``, ``onnx_cpu.py``, ``executorch_cpu.py``) registers itself here; a target names
its backend. Backends import lazily so a CPU-only node never needs CUDA or ONNX Runtime.
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass
from typing import Callable, Hashable

from torch import nn

from raynas._registry import Registry

Modules = dict[Hashable, tuple[nn.Module, tuple[int, ...]]]
_MODULES = {
    "torch-cpu": "raynas.hardware.torch_cpu",
    "torch-cuda": "raynas.hardware.torch_cuda",
    "onnxruntime-cpu": "raynas.hardware.onnx_cpu",
    "executorch-xnnpack-cpu": "raynas.hardware.executorch_cpu",
}


class HardwareUnavailable(RuntimeError):
    """The node cannot run this backend (e.g. a CUDA target on a machine without CUDA)."""


@dataclass(frozen=True)
class Backend:
    name: str
    measure: Callable[..., dict[Hashable, float]]  # (modules, threads, *, warmup, repeats, yardstick_ms=None) -> ms per key
    task_resources: Callable[[int], dict[str, float]]  # threads -> Ray task options (num_cpus / num_gpus)
    yardstick_size: int = 14  # side of the yardstick's input: long enough that compute, not call overhead, dominates it
    # whole networks as the target ships them, when that differs from how single ops are timed (the
    # torch backends compile networks ahead of time, raynas/hardware/aoti.py); None: ``measure``
    measure_networks: Callable[..., dict[Hashable, float]] | None = None

    @property
    def yardstick_shape(self) -> tuple[int, int, int, int]:
        return (1, 8, self.yardstick_size, self.yardstick_size)


BACKENDS: Registry[Backend] = Registry("latency backend")
register_backend = BACKENDS.add_named


def get_backend(name: str) -> Backend:
    """The backend, importing its module on first use; unknown names list the valid ones."""
    if name not in BACKENDS and name in _MODULES:
        importlib.import_module(_MODULES[name])
    if name not in BACKENDS:
        raise KeyError(f"unknown latency backend {name!r}; valid names: {', '.join(sorted(_MODULES))}")
    return BACKENDS.get(name)


class SideBySide(nn.Module):
    """Several modules side by side, each on its own input: one export for all of them, which a
    backend then splits into one file per module (its fixed cost per export paid once)."""

    def __init__(self, modules: list[nn.Module]) -> None:
        super().__init__()
        self.each = nn.ModuleList(modules)

    def forward(self, *xs):
        return tuple(m(x) for m, x in zip(self.each, xs))


def yardstick() -> nn.Module:
    """The fixed reference block every CPU timing is paired with (raynas/hardware/timing.py): a small
    inverted residual (8 -> 48 -> 8 channels, depthwise 3x3) on the backend's ``yardstick_shape``."""
    return nn.Sequential(
        nn.Conv2d(8, 48, 1, bias=False),
        nn.ReLU6(),
        nn.Conv2d(48, 48, 3, padding=1, groups=48, bias=False),
        nn.ReLU6(),
        nn.Conv2d(48, 8, 1, bias=False),
    ).eval()
