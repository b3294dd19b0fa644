"""Backend ``torch-cpu``: TorchScript traces run by torch on the node's CPU (the file a torch target ships);
warm-ups, interleaved rounds, timed against a yardstick. A trace skips eager's Python dispatch per
op: the same network ran 35 % faster traced than eager at batch 1, so timing eager and shipping a
trace would mislabel every network.

The allocator is the process's own (raynas/hardware/process.py): the target decides it, not this code.
"""

from __future__ import annotations

import functools
from typing import Hashable

import torch
from torch import nn

from raynas.hardware.backend import Backend, register_backend, trace, yardstick
from raynas.hardware.timing import Latencies, paired_latency_ms


def measure_ms(
    modules: dict[Hashable, tuple[nn.Module, tuple[int, ...]]],
    threads: int,
    *,
    warmup: int = 10,
    repeats: int = 60,
    rounds: int = 10,
    yardstick_ms: float | None = None,
) -> Latencies:
    """Latency in ms of each module on a random input of its shape, timed against the yardstick
    (see raynas/hardware/timing.py)."""
    torch.set_num_threads(threads)
    calls = {key: _traced_call(module, shape) for key, (module, shape) in modules.items()}
    reference = _traced_call(yardstick(), BACKEND.yardstick_shape)
    with torch.inference_mode():
        return paired_latency_ms(calls, reference, warmup=warmup, repeats=repeats, rounds=rounds, yardstick_ms=yardstick_ms)


def _traced_call(module: nn.Module, shape: tuple[int, ...]):
    x = torch.randn(shape)
    return functools.partial(trace(module, x), x)


BACKEND = register_backend(Backend("torch-cpu", measure_ms, lambda threads: {"num_cpus": threads}, yardstick_size=14))  # ~0.2 ms
