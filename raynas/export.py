"""A found network as it ships: the file its target runs, and the recipe of the process that runs it.

A torch target ships the AOTInductor package its backend timed (``model.aoti.pt2``), an ONNX Runtime
target the ONNX file (``model.onnx``), an ExecuTorch target the XNNPACK-lowered program
(``model.pte``), an estimated target (hardware raynas cannot reach) the ``torch.export`` program
(``model.pt2``, dynamic batch); ``recipe.json`` beside it names the runtime, threads, batch and the
environment the process must start with (raynas/hardware/process.py), and the latencies measured or
predicted for it. What was measured is what ships. Deployment files have the target's static batch;
``serving=True`` adds ``serving.pt2``, the same network as a ``torch.export`` program of any batch,
which the MLflow Model serves (raynas/tracking/models.py).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import torch
from torch import nn

from raynas.hardware.aoti import PACKAGE_FILE, compile_package
from raynas.hardware.targets import HardwareTarget

RECIPE_FILE = "recipe.json"
SERVING_FILE = "serving.pt2"


@dataclass(frozen=True)
class Deployment:
    """One exported network: its folder, the model file and the recipe written beside it."""

    folder: Path
    model_file: Path
    recipe: dict


def export_network(
    net: nn.Module,
    shape: tuple[int, ...],
    folder: Path,
    *,
    target: HardwareTarget | None,
    facts: dict | None = None,
    serving: bool = False,
    shipped: tuple[str, bytes] | None = None,
) -> Deployment:
    """Write ``net`` as ``target`` runs it, at input ``shape``, with its recipe (plus ``facts``: latencies,
    accuracy). ``target`` None: hardware raynas cannot reach (an estimated target) gets the
    ``torch.export`` program (``model.pt2``), to convert for its own runtime. ``serving``: also the
    any-batch program an MLflow Model serves. ``shipped``: the file (name, bytes) the target's measurement
    timed, written as it is instead of exporting again (raynas/hardware/timing.py ``Latencies.files``)."""
    folder.mkdir(parents=True, exist_ok=True)
    net = net.eval().cpu()
    with torch.inference_mode():
        output_shape = list(net(torch.zeros(shape)).shape)
    if target is not None and shipped is not None:
        path = folder / shipped[0]
        path.write_bytes(shipped[1])
    elif target is not None and target.backend == "onnxruntime-cpu":
        from raynas.hardware.onnx_cpu import export as onnx_export

        path = onnx_export(net, shape, folder / "model.onnx")
    elif target is not None and target.backend == "executorch-xnnpack-cpu":
        from raynas.hardware.executorch_cpu import export as pte_export

        path = pte_export(net, shape, folder / "model.pte")
    elif target is None:  # hardware raynas cannot reach: the exported program, for the device's own converter
        path = folder / "model.pt2"
        torch.export.save(exported_program(net, shape), str(path))
    else:
        path = torch_package(net, shape, folder, target=target)
    runtime = _runtime(path, target)
    files = {"file": path.name}
    if serving:
        files["serving_file"] = path.name if target is None else _serving(net, shape, folder / SERVING_FILE).name
    recipe = runtime | files | {"input_shape": list(shape), "input_dtype": "float32", "output_shape": output_shape} | (facts or {})
    (folder / RECIPE_FILE).write_text(json.dumps(recipe, indent=2, sort_keys=True) + "\n")
    return Deployment(folder, path, recipe)


def torch_package(net: nn.Module, shape: tuple[int, ...], folder: Path, *, target: HardwareTarget) -> Path:
    """A torch target's AOTInductor package (compiled for CUDA on a CUDA target). A CUDA target exported
    where no GPU is visible (a CPU-only driver) gets the ``torch.export`` program to compile on its node."""
    if target.backend == "torch-cuda" and not torch.cuda.is_available():
        path = folder / "model.pt2"
        torch.export.save(torch.export.export(net, (torch.randn(shape),)), str(path))
        return path
    device = "cuda" if target.backend == "torch-cuda" else "cpu"
    path = compile_package(net.to(device), torch.randn(shape, device=device), folder / PACKAGE_FILE)
    net.cpu()
    return path


def _runtime(path: Path, target: HardwareTarget | None) -> dict:
    """The recipe's runtime lines: the target's, or how to use a file raynas did not time."""
    if target is None:
        return {
            "runtime": "not measured here: latency estimated; convert the torch.export program (any batch, the "
            "recipe's image size) for the device's runtime (torch.export.load(path).module() runs it in Python)"
        }
    if path.name.endswith(".aoti.pt2"):
        return target.recipe() | {"load": "torch._inductor.aoti_load_package(path) (static shape: the recipe's input_shape)"}
    if target.backend.startswith("torch"):
        return target.recipe() | {
            "load": "compile on the GPU node: torch._inductor.aoti_compile_and_package(torch.export.load(path)), "
            "then torch._inductor.aoti_load_package (raynas exported it where no GPU was visible)"
        }
    return target.recipe()


def _serving(net: nn.Module, shape: tuple[int, ...], path: Path) -> Path:
    torch.export.save(exported_program(net, shape), str(path))
    return path


def exported_program(net: nn.Module, shape: tuple[int, ...]) -> torch.export.ExportedProgram:
    """``net`` as a ``torch.export`` program whose batch dimension is dynamic (traced at batch 2: a
    batch of 1 would be specialized)."""
    example = torch.randn((2, *shape[1:]))
    return torch.export.export(net, (example,), dynamic_shapes=({0: torch.export.Dim("batch", min=1, max=65536)},))


def deployment_path(run_dir: Path, key: str, target: str) -> Path:
    """Where a finalist's export for ``target`` lives inside the run directory."""
    return run_dir / "deploy" / key.replace(":", "_").replace("#", "_").replace("@", "_") / target
