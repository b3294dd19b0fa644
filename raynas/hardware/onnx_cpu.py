"""Backend ``onnxruntime-cpu``: each module exported to ONNX and timed in an ONNX Runtime CPU session.

Deployment stacks rarely run torch eager; ONNX Runtime fuses conv + BN + activation and picks its
own kernels, so per-op latencies (and their ranking) differ. Sessions use ``threads`` intra-op
threads, one inter-op thread, sequential execution and every graph optimization. Timed against the
yardstick as on the torch backend (raynas/hardware/timing.py). Needs ``pip install raynas[onnx]`` on the target's
nodes; elsewhere it refuses with that instruction.
"""

from __future__ import annotations

import functools
import tempfile
from pathlib import Path

import torch

from raynas.hardware.backend import Backend, HardwareUnavailable, Modules, register_backend, yardstick
from raynas.hardware.timing import Latencies, paired_latency_ms

OPSET = 18  # the torch.export-based exporter's own default


def _onnxruntime():
    try:
        import onnxruntime
    except ImportError:
        raise HardwareUnavailable(
            "this target needs ONNX Runtime on its node: pip install 'raynas[onnx]' (onnxruntime, onnx, onnxscript)"
        ) from None
    return onnxruntime


def export(module: torch.nn.Module, shape: tuple[int, ...], path: Path) -> Path:
    """``module`` at ``shape`` as an ONNX file through the ``torch.export``-based exporter (needs
    onnxscript; TorchScript's exporter is deprecated)."""
    torch.onnx.export(
        module.eval(),
        (torch.randn(shape),),
        str(path),
        input_names=["x"],
        output_names=["y"],
        opset_version=OPSET,
        dynamo=True,
        verbose=False,
    )
    return path


def session(path: Path, threads: int):
    ort = _onnxruntime()
    options = ort.SessionOptions()
    options.intra_op_num_threads = threads
    options.inter_op_num_threads = 1
    options.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    return ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])


def measure_onnx_ms(
    modules: Modules, threads: int, *, warmup: int = 10, repeats: int = 60, rounds: int = 10, yardstick_ms: float | None = None
) -> Latencies:
    """Latency in ms of each module run by ONNX Runtime on a random input of its shape, timed
    against the yardstick, itself run by ONNX Runtime (see raynas/hardware/timing.py)."""
    _onnxruntime()
    with tempfile.TemporaryDirectory() as tmp:
        calls = {
            key: _ort_call(module, shape, Path(tmp) / f"m{i}.onnx", threads=threads)
            for i, (key, (module, shape)) in enumerate(modules.items())
        }
        reference = _ort_call(yardstick(), BACKEND.yardstick_shape, Path(tmp) / "yardstick.onnx", threads=threads)
    return paired_latency_ms(calls, reference, warmup=warmup, repeats=repeats, rounds=rounds, yardstick_ms=yardstick_ms)


def _ort_call(module: torch.nn.Module, shape: tuple[int, ...], path: Path, *, threads: int):
    """One inference of ``module`` in its own ONNX Runtime session, on a fixed random input."""
    return functools.partial(session(export(module, shape, path), threads).run, None, {"x": torch.randn(shape).numpy()})


# ONNX Runtime runs the 14 px yardstick in ~27 us, mostly per-call overhead whose share shifts with
# what ran just before; at 56 px compute dominates it (its tables read 17 % off whole networks at 14 px).
BACKEND = register_backend(Backend("onnxruntime-cpu", measure_onnx_ms, lambda threads: {"num_cpus": threads}, yardstick_size=56))
