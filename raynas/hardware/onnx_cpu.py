"""Backend ``onnxruntime-cpu``: each module exported to ONNX and timed in an ONNX Runtime CPU session.

Deployment stacks rarely run torch eager; ONNX Runtime fuses conv + BN + activation and picks its
own kernels, so per-op latencies (and their ranking) differ. Sessions use ``threads`` intra-op
threads, one inter-op thread, sequential execution and every graph optimization. Timed against the
yardstick as on the torch backend (raynas/hardware/timing.py). Needs ``pip install raynas[onnx]`` on the target's
nodes; elsewhere it refuses with that instruction.
"""

from __future__ import annotations

import functools
from pathlib import Path

import torch

from raynas.hardware.backend import Backend, HardwareUnavailable, Modules, SideBySide, register_backend, yardstick
from raynas.hardware.timing import Latencies, paired_latency_ms

OPSET = 18  # the torch.export-based exporter's own default
MODEL_FILE = "model.onnx"  # what an ONNX Runtime target ships


def _onnxruntime():
    try:
        import onnxruntime
    except ImportError:
        raise HardwareUnavailable(
            "this target needs ONNX Runtime on its node: pip install 'raynas[onnx]' (onnxruntime, onnx, onnxscript)"
        ) from None
    return onnxruntime


def export(module: torch.nn.Module, shape: tuple[int, ...], path: Path) -> Path:
    """``module`` at ``shape`` as one self-contained ONNX file (weights inside) through the
    ``torch.export``-based exporter (needs onnxscript; TorchScript's exporter is deprecated)."""
    path.write_bytes(model_bytes(module, shape))
    return path


def model_bytes(module: torch.nn.Module, shape: tuple[int, ...]) -> bytes:
    """The ONNX file ``export`` writes, as bytes."""
    return _proto(module.eval(), (torch.randn(shape),), inputs=["x"], outputs=["y"]).SerializeToString()


def _proto(module: torch.nn.Module, args: tuple, *, inputs: list[str], outputs: list[str]):
    program = torch.onnx.export(module, args, input_names=inputs, output_names=outputs, opset_version=OPSET, dynamo=True, verbose=False)
    return program.model_proto


def export_each(modules: list[tuple[torch.nn.Module, tuple[int, ...]]]) -> list[bytes]:
    """Each module at its shape as its own ONNX model (input ``x``, output ``y``), exported together
    and split apart: the exporter's fixed cost (about 0.7 s a call here) is paid once, not per module."""
    import onnx.utils

    names = [(f"x{i}", f"y{i}") for i in range(len(modules))]
    args = tuple(torch.randn(shape) for _, shape in modules)
    whole = _proto(SideBySide([m for m, _ in modules]).eval(), args, inputs=[x for x, _ in names], outputs=[y for _, y in names])
    models = []
    for x, y in names:
        part = onnx.utils.Extractor(whole).extract_model([x], [y])
        taken = {n for node in part.graph.node for n in (*node.input, *node.output)} | {i.name for i in part.graph.initializer}
        if {"x", "y"} & (taken - {x, y}):
            raise RuntimeError("an exported op already names a tensor x or y; the split cannot rename its input and output")
        del part.graph.value_info[:]  # shapes inferred for the names before renaming
        for value in (*part.graph.input, *part.graph.output):
            value.name = {x: "x", y: "y"}.get(value.name, value.name)
        for node in part.graph.node:
            node.input[:] = ["x" if n == x else n for n in node.input]
            node.output[:] = ["y" if n == y else n for n in node.output]
        models.append(part.SerializeToString())
    return models


def session(model: Path | bytes, threads: int):
    """An ONNX Runtime CPU session of ``model`` (a file, or its bytes) with the target's settings."""
    ort = _onnxruntime()
    options = ort.SessionOptions()
    options.intra_op_num_threads = threads
    options.inter_op_num_threads = 1
    options.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    return ort.InferenceSession(model if isinstance(model, bytes) else str(model), options, providers=["CPUExecutionProvider"])


def measure_onnx_ms(
    modules: Modules, threads: int, *, warmup: int = 10, repeats: int = 60, rounds: int = 10, yardstick_ms: float | None = None
) -> Latencies:
    """Latency in ms of each module run by ONNX Runtime on a random input of its shape, timed
    against the yardstick, itself run by ONNX Runtime (see raynas/hardware/timing.py). The modules
    are exported together and split (``export_each``); each one's file comes back with the latencies
    (``Latencies.files``): for a whole network, what was timed is what ships."""
    _onnxruntime()
    keys = list(modules)
    models = export_each([modules[k] for k in keys] + [(yardstick(), BACKEND.yardstick_shape)])
    calls = {key: _ort_call(model, modules[key][1], threads=threads) for key, model in zip(keys, models)}
    reference = _ort_call(models[-1], BACKEND.yardstick_shape, threads=threads)
    ms = paired_latency_ms(calls, reference, warmup=warmup, repeats=repeats, rounds=rounds, yardstick_ms=yardstick_ms)
    ms.files = {key: (MODEL_FILE, model) for key, model in zip(keys, models)}
    return ms


def _ort_call(model: bytes, shape: tuple[int, ...], *, threads: int):
    """One inference of ``model`` in its own ONNX Runtime session, on a fixed random input."""
    return functools.partial(session(model, threads).run, None, {"x": torch.randn(shape).numpy()})


# ONNX Runtime runs the 14 px yardstick in ~27 us, mostly per-call overhead whose share shifts with
# what ran just before; at 56 px compute dominates it (its tables read 17 % off whole networks at 14 px).
BACKEND = register_backend(Backend("onnxruntime-cpu", measure_onnx_ms, lambda threads: {"num_cpus": threads}, yardstick_size=56))
