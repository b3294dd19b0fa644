"""Backend ``torch-cuda``: on a CUDA GPU, per-op entries run eager and whole networks as the
AOTInductor package a torch target ships (raynas/hardware/aoti.py), timed with CUDA events after warm-up.

Each timed call is bracketed by two events on the current stream and synchronised, so the time is
the GPU's execution of that call; interleaved rounds and a low quantile as on CPU. Without CUDA it
refuses: a CUDA target is never silently measured on the CPU.
"""

from __future__ import annotations

import functools
import tempfile
from pathlib import Path

import torch

from raynas.hardware.aoti import PACKAGE_FILE, compiled_call
from raynas.hardware.backend import Backend, HardwareUnavailable, Modules, register_backend
from raynas.hardware.timing import Latencies, steady_latency_ms


def require_cuda() -> torch.device:
    if not torch.cuda.is_available():
        raise HardwareUnavailable(
            f"this target needs a CUDA GPU but torch {torch.__version__} sees none on this node; "
            "run it on a node that has one (label it with the target's raynas_target resource)"
        )
    return torch.device("cuda", torch.cuda.current_device())


def measure_cuda_ms(
    modules: Modules, threads: int, *, warmup: int = 10, repeats: int = 60, rounds: int = 10, yardstick_ms: float | None = None
) -> Latencies:
    """Steady GPU time in ms of each module run eager, from CUDA events around each call. GPU time does
    not move with the host's CPU load, so no yardstick is needed (``yardstick_ms`` is ignored)."""
    device = require_cuda()
    calls = {
        key: functools.partial(module.eval().to(device), torch.randn(shape, device=device)) for key, (module, shape) in modules.items()
    }
    with torch.inference_mode():
        return steady_latency_ms(calls, warmup=warmup, repeats=repeats, rounds=rounds, timer=cuda_event_ms)


def measure_cuda_networks_ms(
    modules: Modules, threads: int, *, warmup: int = 10, repeats: int = 60, rounds: int = 10, yardstick_ms: float | None = None
) -> Latencies:
    """Steady GPU time in ms of each whole network as its CUDA AOTInductor package runs it."""
    device = require_cuda()
    with tempfile.TemporaryDirectory() as tmp:
        calls, paths = {}, {key: Path(tmp) / f"net{i}.pt2" for i, key in enumerate(modules)}
        for key, (module, shape) in modules.items():
            x = torch.randn(shape, device=device)
            calls[key] = compiled_call(module.to(device), x, paths[key], device_index=device.index)
        with torch.inference_mode():
            ms = steady_latency_ms(calls, warmup=warmup, repeats=repeats, rounds=rounds, timer=cuda_event_ms)
        ms.files = {key: (PACKAGE_FILE, path.read_bytes()) for key, path in paths.items()}  # what ships: the timed packages
        return ms


def cuda_event_ms(call) -> float:
    """GPU time of one call: CUDA events recorded around it on the current stream, synchronised."""
    start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
    start.record()
    call()
    end.record()
    end.synchronize()
    return start.elapsed_time(end)


register_backend(
    Backend("torch-cuda", measure_cuda_ms, lambda threads: {"num_cpus": 1, "num_gpus": 1}, measure_networks=measure_cuda_networks_ms)
)
