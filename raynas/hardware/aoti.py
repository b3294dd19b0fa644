"""AOTInductor packages: a network exported with ``torch.export`` at a static shape and compiled ahead
of time into a ``.pt2`` package that ``torch._inductor.aoti_load_package`` runs without Python
dispatch per op -- the file a torch server target ships (TorchScript is deprecated in torch 2.14).

Compiling costs seconds per network (about 6-9 s warm, 20-25 s with a cold kernel cache on one
core here), so the torch backends compile whole networks only; per-op table entries are timed eager
and the table's whole-network calibration maps them onto compiled latency (raynas/hardware/build.py).
"""

from __future__ import annotations

import functools
from pathlib import Path

import torch
from torch import nn

PACKAGE_FILE = "model.aoti.pt2"  # what a torch target ships


def compile_package(module: nn.Module, example: torch.Tensor, path: Path) -> Path:
    """``module`` at ``example``'s shape (and device) as an AOTInductor package at ``path`` (``.pt2``)."""
    program = torch.export.export(module.eval(), (example,))
    return Path(torch._inductor.aoti_compile_and_package(program, package_path=str(path)))


def load_package(path: Path, *, device_index: int = -1):
    """The compiled network in ``path``, callable on tensors of its static shape and device."""
    return torch._inductor.aoti_load_package(str(path), device_index=device_index)


def compiled_call(module: nn.Module, example: torch.Tensor, path: Path, *, device_index: int = -1):
    """One call of ``module`` compiled into ``path`` on ``example`` (its shape and device): what a torch
    backend times."""
    return functools.partial(load_package(compile_package(module, example, path), device_index=device_index), example)
