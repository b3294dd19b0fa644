"""A found network as it ships: the file its target runs, and the recipe of the process that runs it.

A torch target ships the TorchScript trace its backend timed (``model.pt``), an ONNX Runtime target
the ONNX file (``model.onnx``); ``recipe.json`` beside it names the runtime, threads, batch and the
environment the process must start with (raynas/hardware/process.py), and the latencies measured or
predicted for it. What was measured is what ships.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import torch
from torch import nn

from raynas.hardware.backend import trace
from raynas.hardware.targets import HardwareTarget

RECIPE_FILE = "recipe.json"


@dataclass(frozen=True)
class Deployment:
    """One exported network: its folder, the model file and the recipe written beside it."""

    folder: Path
    model_file: Path
    recipe: dict


def export_network(
    net: nn.Module, shape: tuple[int, ...], folder: Path, *, target: HardwareTarget | None, facts: dict | None = None
) -> Deployment:
    """Write ``net`` as ``target`` runs it, at input ``shape``, with its recipe (plus ``facts``: latencies,
    accuracy). ``target`` None: hardware raynas cannot reach (an estimated target) gets the TorchScript
    trace, to convert for its own runtime."""
    folder.mkdir(parents=True, exist_ok=True)
    net = net.eval().cpu()
    with torch.inference_mode():
        output_shape = list(net(torch.zeros(shape)).shape)
    if target is not None and target.backend == "onnxruntime-cpu":
        from raynas.hardware.onnx_cpu import export as onnx_export

        path = onnx_export(net, shape, folder / "model.onnx")
    else:
        path = folder / "model.pt"
        trace(net, torch.randn(shape)).save(str(path))
    runtime = (
        target.recipe()
        if target is not None
        else {"runtime": "not measured here: latency estimated; convert the TorchScript file for the device's runtime"}
    )
    recipe = (
        runtime | {"file": path.name, "input_shape": list(shape), "input_dtype": "float32", "output_shape": output_shape} | (facts or {})
    )
    (folder / RECIPE_FILE).write_text(json.dumps(recipe, indent=2, sort_keys=True) + "\n")
    return Deployment(folder, path, recipe)


def deployment_path(run_dir: Path, key: str, target: str) -> Path:
    """Where a finalist's export for ``target`` lives inside the run directory."""
    return run_dir / "deploy" / key.replace(":", "_").replace("#", "_").replace("@", "_") / target
