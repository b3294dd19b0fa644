"""Backend ``onnxruntime-cpu``: each module exported to ONNX and timed in an ONNX Runtime CPU session.

Deployment stacks rarely run torch eager; ONNX Runtime fuses conv + BN + activation and picks its
own kernels, so per-op latencies (and their ranking) differ. Sessions use ``threads`` intra-op
threads, one inter-op thread, sequential execution and every graph optimization. Medians over
interleaved rounds, as on the torch backends. Needs ``pip install raynas[onnx]`` on the target's
nodes; elsewhere it refuses with that instruction.
"""

from __future__ import annotations

import statistics
import tempfile
import time
import warnings
from pathlib import Path
from typing import Hashable

import torch

from raynas.hardware.backend import Backend, HardwareUnavailable, Modules, register_backend

OPSET = 17


def _onnxruntime():
    try:
        import onnxruntime
    except ImportError:
        raise HardwareUnavailable("this target needs ONNX Runtime on its node: pip install 'raynas[onnx]' (onnxruntime, onnx)") from None
    return onnxruntime


def export(module: torch.nn.Module, shape: tuple[int, ...], path: Path) -> Path:
    """Trace ``module`` at ``shape`` into an ONNX file (TorchScript exporter: no extra packages)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)  # the TorchScript exporter's notice
        warnings.simplefilter("ignore", torch.jit.TracerWarning)  # resize_input's size check is constant per module
        torch.onnx.export(module.eval(), (torch.randn(shape),), str(path), input_names=["x"], output_names=["y"], opset_version=OPSET, dynamo=False)
    return path


def session(path: Path, threads: int):
    ort = _onnxruntime()
    options = ort.SessionOptions()
    options.intra_op_num_threads = threads
    options.inter_op_num_threads = 1
    options.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    return ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])


def measure_onnx_ms(modules: Modules, threads: int, warmup: int = 10, repeats: int = 60, rounds: int = 10) -> dict[Hashable, float]:
    """Median latency in ms of each module run by ONNX Runtime on a random input of its shape."""
    _onnxruntime()
    sessions, inputs = {}, {}
    with tempfile.TemporaryDirectory() as tmp:
        for i, (key, (module, shape)) in enumerate(modules.items()):
            sessions[key] = session(export(module, shape, Path(tmp) / f"m{i}.onnx"), threads)
            inputs[key] = {"x": torch.randn(shape).numpy()}
    samples: dict[Hashable, list[float]] = {key: [] for key in modules}
    per_round = max(1, repeats // rounds)
    for _ in range(rounds):
        for key, sess in sessions.items():
            for _ in range(warmup):
                sess.run(None, inputs[key])
            for _ in range(per_round):
                start = time.perf_counter()
                sess.run(None, inputs[key])
                samples[key].append(time.perf_counter() - start)
    return {key: statistics.median(times) * 1e3 for key, times in samples.items()}


register_backend(Backend("onnxruntime-cpu", measure_onnx_ms, lambda threads: {"num_cpus": threads}))
