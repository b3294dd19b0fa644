"""Hardware targets: where a network runs and how its latency is measured."""

from __future__ import annotations

import os
from dataclasses import dataclass

from raynas._registry import Registry
from raynas.hardware.backend import Modules, get_backend
from raynas.hardware.process import ALLOCATORS
from raynas.hardware.timing import Latencies


@dataclass(frozen=True)
class HardwareTarget:
    """One deployment setting. Its nodes carry the Ray resource ``raynas_target:<name>``."""

    name: str
    backend: (
        str  # "torch-cpu" | "torch-cuda" (AOTInductor packages) | "onnxruntime-cpu" | "executorch-xnnpack-cpu" (raynas/hardware/backend.py)
    )
    threads: int  # intra-op threads; 0 = all cores of the node
    batch_size: int  # images per inference call
    description: str
    allocator: str = "glibc-default"  # the process's allocator (raynas/hardware/process.py); default: a plain `python` process

    @property
    def resource(self) -> str:
        return f"raynas_target:{self.name}"

    def num_threads(self) -> int:
        return self.threads or os.cpu_count() or 1

    def measure(self, modules: Modules, *, warmup: int, repeats: int, yardstick_ms: float | None = None) -> Latencies:
        """Latency in ms of each module on this target's backend, in units of ``yardstick_ms``
        when given (see raynas/hardware/timing.py)."""
        return get_backend(self.backend).measure(modules, self.num_threads(), warmup=warmup, repeats=repeats, yardstick_ms=yardstick_ms)

    def measure_networks(self, modules: Modules, *, warmup: int, repeats: int, yardstick_ms: float | None = None) -> Latencies:
        """Like ``measure``, for whole networks as this target ships them (compiled, on the torch backends)."""
        backend = get_backend(self.backend)
        measure = backend.measure_networks or backend.measure
        return measure(modules, self.num_threads(), warmup=warmup, repeats=repeats, yardstick_ms=yardstick_ms)

    def process_env(self) -> dict[str, str]:
        """Environment variables the measuring (and deployed) process starts with."""
        return ALLOCATORS.get(self.allocator).env()

    def recipe(self) -> dict[str, str]:
        """How to run a network as this target measured it: runtime, threads, batch, process settings."""
        env = {k: v for k, v in self.process_env().items() if v}
        threads = (
            "all cores"
            if not self.threads
            else f"torch.set_num_threads({self.threads})"
            if self.backend.startswith("torch")
            else f"XNNPACK thread pool of {self.threads} (_unsafe_reset_threadpool({self.threads}))"
            if self.backend.startswith("executorch")
            else f"intra_op_num_threads={self.threads}"
        )
        start = " ".join([*(f"{k}={v}" for k, v in env.items()), "python <your server>"])
        return {
            "target": self.name,
            "backend": self.backend,
            "threads": threads,
            "batch_size": str(self.batch_size),
            "num_threads": str(self.num_threads()),
            "allocator": self.allocator,
            "start": start,
        }

    def task_resources(self) -> dict[str, float]:
        """Ray options for a task that measures on this target: its threads or GPU, its label, and
        a worker process started with the target's allocator settings (a runtime env).

        An all-cores target reserves one CPU: the driver cannot know the labelled node's core count,
        and asking for its own could be infeasible there. Such nodes should run nothing else.
        """
        options = get_backend(self.backend).task_resources(self.threads or 1) | {"resources": {self.resource: 1}}
        return options | {"runtime_env": {"env_vars": self.process_env()}}


TARGETS: Registry[HardwareTarget] = Registry("hardware target")
register_target = TARGETS.add_named
get_target = TARGETS.get


register_target(HardwareTarget("cpu-1t", "torch-cpu", 1, 1, "AOTInductor package, 1 CPU thread, batch 1 (single-image latency)"))
register_target(HardwareTarget("cpu-1t-b16", "torch-cpu", 1, 16, "AOTInductor package, 1 CPU thread, batch 16 (compute-bound core)"))
register_target(
    HardwareTarget(
        "cpu-1t-b16-tuned",
        "torch-cpu",
        1,
        16,
        "cpu-1t-b16 in a process started with glibc's tuned thresholds (GLIBC_TUNABLES)",
        allocator="glibc-tuned",
    )
)
register_target(HardwareTarget("cpu-all", "torch-cpu", 0, 1, "AOTInductor package, all CPU threads of the node, batch 1"))
register_target(HardwareTarget("ort-cpu-1t", "onnxruntime-cpu", 1, 1, "ONNX Runtime on 1 CPU thread, batch 1 (a deployment runtime)"))
register_target(HardwareTarget("ort-cpu-1t-b16", "onnxruntime-cpu", 1, 16, "ONNX Runtime on 1 CPU thread, batch 16"))
register_target(
    HardwareTarget(
        "executorch-xnnpack-1t", "executorch-xnnpack-cpu", 1, 1, "ExecuTorch + XNNPACK on 1 CPU thread, batch 1 (a phone's runtime)"
    )
)
register_target(
    HardwareTarget("executorch-xnnpack-1t-b16", "executorch-xnnpack-cpu", 1, 16, "ExecuTorch + XNNPACK on 1 CPU thread, batch 16")
)
register_target(HardwareTarget("cuda-b1", "torch-cuda", 0, 1, "AOTInductor package on one CUDA GPU, batch 1 (CUDA events)"))
register_target(HardwareTarget("cuda-b64", "torch-cuda", 0, 64, "AOTInductor package on one CUDA GPU, batch 64 (CUDA events)"))
