"""Backend ``torch-cpu``: networks compiled into AOTInductor packages (the file a torch target ships,
raynas/hardware/aoti.py) and run by torch on the node's CPU; warm-ups, interleaved rounds, timed
against a yardstick.

Compiling costs seconds per network, so the per-op entries of a latency table are timed eager (under
``torch.inference_mode``) and whole networks -- the table's calibration networks and every finalist --
and the yardstick compiled: the calibration's overhead and scale (raynas/hardware/build.py) map
summed eager ops onto compiled networks, and experiments/bench/latency_accuracy.py checks the result.

The allocator is the process's own (raynas/hardware/process.py): the target decides it, not this code.
"""

from __future__ import annotations

import functools
import tempfile
from pathlib import Path

import torch
from torch import nn

from raynas.hardware.aoti import PACKAGE_FILE, compiled_call
from raynas.hardware.backend import Backend, Modules, register_backend, yardstick
from raynas.hardware.timing import Latencies, paired_latency_ms


def measure_ms(
    modules: Modules, threads: int, *, warmup: int = 10, repeats: int = 60, rounds: int = 10, yardstick_ms: float | None = None
) -> Latencies:
    """Latency in ms of each module run eager on a random input of its shape, timed against the
    yardstick (see raynas/hardware/timing.py): per-op entries."""
    torch.set_num_threads(threads)
    calls = {key: functools.partial(module.eval(), torch.randn(shape)) for key, (module, shape) in modules.items()}
    with tempfile.TemporaryDirectory() as tmp:
        return _timed(calls, Path(tmp), warmup=warmup, repeats=repeats, rounds=rounds, yardstick_ms=yardstick_ms)


def measure_networks_ms(
    modules: Modules, threads: int, *, warmup: int = 10, repeats: int = 60, rounds: int = 10, yardstick_ms: float | None = None
) -> Latencies:
    """Latency in ms of each whole network as its AOTInductor package runs it; the packages come back
    with them (``Latencies.files``): what was timed is what ships."""
    torch.set_num_threads(threads)
    with tempfile.TemporaryDirectory() as tmp:
        paths = {key: Path(tmp) / f"net{i}.pt2" for i, key in enumerate(modules)}
        calls = {key: _compiled_call(module, shape, paths[key]) for key, (module, shape) in modules.items()}
        ms = _timed(calls, Path(tmp), warmup=warmup, repeats=repeats, rounds=rounds, yardstick_ms=yardstick_ms)
        ms.files = {key: (PACKAGE_FILE, path.read_bytes()) for key, path in paths.items()}
        return ms


def _timed(calls, folder: Path, **timing) -> Latencies:
    """The calls timed against the yardstick compiled as a torch target ships it, so the unit is the
    one a user's own timing of a shipped yardstick sees (latency_accuracy.py --run)."""
    reference = _compiled_call(yardstick(), BACKEND.yardstick_shape, folder / "yardstick.pt2")
    with torch.inference_mode():
        return paired_latency_ms(calls, reference, **timing)


def _compiled_call(module: nn.Module, shape: tuple[int, ...], path: Path):
    return compiled_call(module, torch.randn(shape), path)


BACKEND = register_backend(
    Backend("torch-cpu", measure_ms, lambda threads: {"num_cpus": threads}, yardstick_size=14, measure_networks=measure_networks_ms)
)
