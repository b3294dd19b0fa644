"""Backend ``executorch-xnnpack-cpu``: each module exported with ``torch.export``, lowered with the
XNNPACK partitioner to an ExecuTorch program (``.pte``) and run by ExecuTorch's own runtime, the
runtime Android and iOS apps embed, here on the node's CPU. Timed against the yardstick, itself an
ExecuTorch program (raynas/hardware/timing.py).

Threads: XNNPACK runs on ExecuTorch's process-wide thread pool, sized to the machine's cores at
start. Its size is set through ``_unsafe_reset_threadpool``, which is *not* public ExecuTorch API
(the pybindings expose no other way); if a release removes it, measurement refuses rather than time
with the wrong thread count. A program keeps the pool it was loaded with, so programs are loaded after
the reset and dropped before the next measurement (one at a different count would use a freed pool).
Needs ``pip install 'raynas[executorch]'`` on the target's nodes.
"""

from __future__ import annotations

import functools
from pathlib import Path

import torch

from raynas.hardware.backend import Backend, HardwareUnavailable, Modules, register_backend, yardstick
from raynas.hardware.timing import Latencies, paired_latency_ms

SUFFIX = ".pte"
MODEL_FILE = "model.pte"  # what an ExecuTorch target ships


def _runtime():
    try:
        from executorch.runtime import Runtime
    except ImportError:
        raise HardwareUnavailable("this target needs ExecuTorch on its node: pip install 'raynas[executorch]'") from None
    return Runtime.get()


_POOL: list[int] = []  # the size this process last set: ExecuTorch logs a line at every reset


def set_threads(threads: int) -> None:
    """Size ExecuTorch's thread pool (not public API; see the module docstring), once per size per process."""
    if _POOL == [threads]:
        return
    _runtime()
    try:
        from executorch.extension.pybindings.portable_lib import _unsafe_reset_threadpool
    except ImportError:
        raise HardwareUnavailable("this ExecuTorch build cannot size its thread pool (_unsafe_reset_threadpool is gone)") from None
    _unsafe_reset_threadpool(threads)
    _POOL[:] = [threads]


def lower(module: torch.nn.Module, shape: tuple[int, ...]) -> bytes:
    """``module`` at input ``shape`` as an ExecuTorch program with every op XNNPACK supports delegated to it."""
    _runtime()
    from executorch.backends.xnnpack.partition.xnnpack_partitioner import XnnpackPartitioner
    from executorch.exir import to_edge_transform_and_lower

    program = torch.export.export(module.eval(), (torch.randn(shape),))
    return to_edge_transform_and_lower(program, partitioner=[XnnpackPartitioner()]).to_executorch().buffer


def export(module: torch.nn.Module, shape: tuple[int, ...], path: Path) -> Path:
    """Write the lowered program to ``path`` (the file an ExecuTorch target ships)."""
    path.write_bytes(lower(module, shape))
    return path


class Loaded:
    """A loaded program and its ``forward`` method, kept together: the method points into the program
    (and the program into its buffer), so letting either go while the method runs crashes the process."""

    def __init__(self, program: bytes | Path) -> None:
        self.buffer = program if isinstance(program, bytes) else Path(program).read_bytes()
        self.program = _runtime().load_program(self.buffer)
        self.method = self.program.load_method("forward")

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        return self.method.execute([x.contiguous()])[0]


def measure_executorch_ms(
    modules: Modules, threads: int, *, warmup: int = 10, repeats: int = 60, rounds: int = 10, yardstick_ms: float | None = None
) -> Latencies:
    """Latency in ms of each module run by ExecuTorch with XNNPACK on ``threads`` threads, on a random
    input of its shape, timed against the yardstick run the same way; each module's program comes
    back with it (``Latencies.files``): for a whole network, what was timed is what ships."""
    set_threads(threads)
    programs = {key: lower(module, shape) for key, (module, shape) in modules.items()}
    calls = {key: functools.partial(Loaded(programs[key]), torch.randn(shape)) for key, (_, shape) in modules.items()}
    reference = functools.partial(Loaded(lower(yardstick(), BACKEND.yardstick_shape)), torch.randn(BACKEND.yardstick_shape))
    ms = paired_latency_ms(calls, reference, warmup=warmup, repeats=repeats, rounds=rounds, yardstick_ms=yardstick_ms)
    ms.files = {key: (MODEL_FILE, program) for key, program in programs.items()}
    return ms


# As for ONNX Runtime, a 14 px yardstick is mostly per-call overhead; 56 px puts compute first.
BACKEND = register_backend(
    Backend("executorch-xnnpack-cpu", measure_executorch_ms, lambda threads: {"num_cpus": threads}, yardstick_size=56)
)
