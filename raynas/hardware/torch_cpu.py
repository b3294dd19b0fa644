"""Backend ``torch-cpu``: torch eager on the node's CPU; warm-ups, interleaved rounds, medians."""

from __future__ import annotations

import ctypes
import ctypes.util
import functools
import statistics
import time
from typing import Hashable

import torch
from torch import nn

from raynas.hardware.backend import Backend, register_backend


def measure_ms(
    modules: dict[Hashable, tuple[nn.Module, tuple[int, ...]]],
    threads: int,
    warmup: int = 10,
    repeats: int = 60,
    rounds: int = 10,
) -> dict[Hashable, float]:
    """Median latency in ms of each module on a random input of its shape.

    Modules are measured round-robin in ``rounds`` passes so that slow drifts of a noisy machine
    (frequency, neighbours) spread over all of them instead of biasing whichever ran last.
    """
    steady_allocator()
    torch.set_num_threads(threads)
    inputs = {key: torch.randn(shape) for key, (_, shape) in modules.items()}
    samples: dict[Hashable, list[float]] = {key: [] for key in modules}
    per_round = max(1, repeats // rounds)
    with torch.inference_mode():
        for module, _ in modules.values():
            module.eval()
        for _ in range(rounds):
            for key, (module, _) in modules.items():
                _time_calls(module, inputs[key], warmup, per_round, samples[key])
    return {key: statistics.median(times) * 1e3 for key, times in samples.items()}


def _time_calls(module: nn.Module, x: torch.Tensor, warmup: int, n: int, out: list[float]) -> None:
    for _ in range(warmup):
        module(x)
    for _ in range(n):
        start = time.perf_counter()
        module(x)
        out.append(time.perf_counter() - start)


_M_TRIM_THRESHOLD, _M_MMAP_THRESHOLD = -1, -3
_KEEP_BYTES = 32 * 1024 * 1024  # glibc's ceiling for the mmap threshold on 64-bit


@functools.cache
def steady_allocator() -> bool:
    """Keep freed activation buffers in the process, as a long-running inference server does.

    By default glibc returns large blocks to the OS on free, so every isolated call of a big op
    pays fresh page faults that the same op inside a network mostly does not; that made summed
    per-op latencies overshoot whole networks by up to 2x at batch 16. Returns False off glibc.
    """
    name = ctypes.util.find_library("c")
    try:
        libc = ctypes.CDLL(name)
        return bool(libc.mallopt(_M_MMAP_THRESHOLD, _KEEP_BYTES)) and bool(libc.mallopt(_M_TRIM_THRESHOLD, 2 * _KEEP_BYTES))
    except (OSError, AttributeError, TypeError):
        return False


register_backend(Backend("torch-cpu", measure_ms, lambda threads: {"num_cpus": threads}))
