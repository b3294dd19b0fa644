"""An independent latency harness: times exported networks the way a user would, with nothing of raynas.

Reads a manifest (JSON: threads, rounds, and per network its exported file and input shape),
loads each file as it ships -- an AOTInductor package (``.aoti.pt2``, ``torch._inductor.aoti_load_package``),
an ONNX model (``.onnx``, ONNX Runtime, sequential, all graph optimizations) or an ExecuTorch program
(``.pte``, ExecuTorch's runtime with XNNPACK) -- and times it with ``torch.utils.benchmark``:
after ``warmup_seconds`` of calls each,
``rounds`` passes over all networks, each a ``blocked_autorange``; a network's latency is the median
of its round medians, in ms. Passes alternate between the networks, so a manifest that lists a
reference network beside the others (the bench lists the yardstick) sees the machine's speed of
the same seconds. Writes ``{key: ms}`` as JSON. Run it in a fresh process started with the
target's environment (``experiments/bench/latency_accuracy.py`` does).

    python experiments/bench/independent_timer.py manifest.json out.json
"""

from __future__ import annotations

import json
import statistics
import sys
from pathlib import Path

import torch
import torch.utils.benchmark as benchmark


def load(path: Path, threads: int):
    """A callable running the shipped file on one input."""
    if path.suffix == ".pte":  # ExecuTorch's runtime; its thread pool sized through its (non-public) reset
        from executorch.extension.pybindings.portable_lib import _unsafe_reset_threadpool
        from executorch.runtime import Runtime

        _unsafe_reset_threadpool(threads)
        buffer = path.read_bytes()
        program = Runtime.get().load_program(buffer)
        method = program.load_method("forward")
        return lambda x, keep=(buffer, program): method.execute([x])
    if path.suffix == ".onnx":
        import onnxruntime as ort

        options = ort.SessionOptions()
        options.intra_op_num_threads, options.inter_op_num_threads = threads, 1
        options.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
        options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        session = ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
        name = session.get_inputs()[0].name
        return lambda x: session.run(None, {name: x.numpy()})
    if path.name.endswith(".aoti.pt2"):
        return torch._inductor.aoti_load_package(str(path))
    raise ValueError(f"{path}: not a file a measured target ships (.aoti.pt2, .onnx, .pte)")


def main(manifest_path: str, out_path: str) -> None:
    manifest = json.loads(Path(manifest_path).read_text())
    threads, rounds, min_run = manifest["threads"], manifest["rounds"], manifest.get("min_run_time", 0.05)
    warmup = manifest.get("warmup_seconds", 0.5)
    torch.set_num_threads(threads)
    folder = Path(manifest_path).parent
    timers = {}
    for key, entry in manifest["networks"].items():
        fn, x = load(folder / entry["file"], threads), torch.randn(entry["shape"])
        timers[key] = benchmark.Timer(stmt="fn(x)", globals={"fn": fn, "x": x}, num_threads=threads)
    medians: dict[str, list[float]] = {key: [] for key in timers}
    with torch.inference_mode():
        for timer in timers.values():
            timer.blocked_autorange(min_run_time=warmup)  # discarded: warm-up
        for _ in range(rounds):
            for key, timer in timers.items():
                medians[key].append(timer.blocked_autorange(min_run_time=min_run).median * 1e3)
    Path(out_path).write_text(json.dumps({key: statistics.median(values) for key, values in medians.items()}))


if __name__ == "__main__":
    main(*sys.argv[1:3])
