"""Backend ``torch-cpu``: torch eager on the node's CPU; warm-ups, interleaved rounds, timed against a yardstick."""

from __future__ import annotations

import ctypes
import ctypes.util
import functools
from typing import Hashable

import torch
from torch import nn

from raynas.hardware.backend import Backend, register_backend, yardstick
from raynas.hardware.timing import paired_latency_ms


def measure_ms(
    modules: dict[Hashable, tuple[nn.Module, tuple[int, ...]]],
    threads: int,
    warmup: int = 10,
    repeats: int = 60,
    rounds: int = 10,
    yardstick_ms: float | None = None,
) -> dict[Hashable, float]:
    """Latency in ms of each module on a random input of its shape, timed against the yardstick
    (see raynas/hardware/timing.py)."""
    steady_allocator()
    torch.set_num_threads(threads)
    calls = {key: functools.partial(module.eval(), torch.randn(shape)) for key, (module, shape) in modules.items()}
    reference = functools.partial(yardstick(), torch.randn(BACKEND.yardstick_shape))
    with torch.inference_mode():
        return paired_latency_ms(calls, reference, warmup, repeats, rounds, yardstick_ms=yardstick_ms)


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


BACKEND = register_backend(Backend("torch-cpu", measure_ms, lambda threads: {"num_cpus": threads}, yardstick_size=14))  # ~0.2 ms
