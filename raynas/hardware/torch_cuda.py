"""Backend ``torch-cuda``: torch eager on a CUDA GPU, timed with CUDA events after warm-up.

Each timed call is bracketed by two events on the current stream and synchronised, so the time is
the GPU's execution of that call; medians over interleaved rounds as on CPU. Without CUDA it
refuses: a CUDA target is never silently measured on the CPU.
"""

from __future__ import annotations

import statistics
from typing import Hashable

import torch

from raynas.hardware.backend import Backend, HardwareUnavailable, Modules, register_backend


def require_cuda() -> torch.device:
    if not torch.cuda.is_available():
        raise HardwareUnavailable(
            f"this target needs a CUDA GPU but torch {torch.__version__} sees none on this node; "
            "run it on a node that has one (label it with the target's raynas_target resource)"
        )
    return torch.device("cuda", torch.cuda.current_device())


def measure_cuda_ms(modules: Modules, threads: int, warmup: int = 10, repeats: int = 60, rounds: int = 10) -> dict[Hashable, float]:
    """Median GPU time in ms of each module, from CUDA events around each call."""
    device = require_cuda()
    inputs = {key: torch.randn(shape, device=device) for key, (_, shape) in modules.items()}
    nets = {key: module.to(device).eval() for key, (module, _) in modules.items()}
    samples: dict[Hashable, list[float]] = {key: [] for key in modules}
    per_round = max(1, repeats // rounds)
    with torch.inference_mode():
        for _ in range(rounds):
            for key, net in nets.items():
                for _ in range(warmup):
                    net(inputs[key])
                for _ in range(per_round):
                    start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
                    start.record()
                    net(inputs[key])
                    end.record()
                    end.synchronize()
                    samples[key].append(start.elapsed_time(end))
    return {key: statistics.median(times) for key, times in samples.items()}


register_backend(Backend("torch-cuda", measure_cuda_ms, lambda threads: {"num_cpus": 1, "num_gpus": 1}))
