"""Exported networks as MLflow Models that ``mlflow.pyfunc.load_model`` serves, registered by (target, budget).

Each model is a pyfunc from code (``served_model.py``) serving the export's ``serving.pt2`` (a
``torch.export`` program with a dynamic batch dimension) with the export's recipe beside it, an input
signature (float32 images, any batch) and an input example of one image.
"""

from __future__ import annotations

import json
import re
import tempfile
from pathlib import Path

import mlflow
import numpy as np
import torch
from mlflow.models import ModelSignature
from mlflow.types import Schema, TensorSpec

from raynas.export import RECIPE_FILE

SERVED = Path(__file__).with_name("served_model.py")


def registered_name(experiment: str, target: str, budget_ms: float) -> str:
    """The Model Registry name of the NAS finalist of one (target, budget) of an experiment."""
    return re.sub(r"[^A-Za-z0-9_.-]", "_", f"{experiment}-{target}-{budget_ms:g}ms")


def servable(deployment: Path) -> bool:
    """Whether the export in ``deployment`` has its any-batch program (``export_network(..., serving=True)``)."""
    recipe = deployment / RECIPE_FILE
    return recipe.is_file() and "serving_file" in json.loads(recipe.read_text())


def save_model(deployment: Path, into: Path) -> Path:
    """Write the export in ``deployment`` as an MLflow Model folder ``into``."""
    recipe = json.loads((deployment / RECIPE_FILE).read_text())
    if "serving_file" not in recipe:
        raise ValueError(f"{deployment} has no any-batch program to serve; export it with export_network(..., serving=True)")
    shape, out = recipe["input_shape"], recipe["output_shape"]
    signature = ModelSignature(
        inputs=Schema([TensorSpec(np.dtype(np.float32), (-1, *shape[1:]))]),
        outputs=Schema([TensorSpec(np.dtype(np.float32), (-1, *out[1:]))]),
    )
    mlflow.pyfunc.save_model(
        path=str(into),
        python_model=str(SERVED),
        artifacts={"model": str(deployment / recipe["serving_file"]), "recipe": str(deployment / RECIPE_FILE)},
        signature=signature,
        input_example=np.zeros((1, *shape[1:]), dtype=np.float32),
        pip_requirements=[f"torch=={torch.__version__.split('+')[0]}", "numpy", f"mlflow=={mlflow.__version__}"],
    )
    return into


def log_model(tracker, run_id: str, deployment: Path, *, register_as: str | None, tags: dict[str, str]) -> None:
    """Log the export as the run's ``model`` and, with ``register_as``, register it as a new version."""
    with tempfile.TemporaryDirectory() as tmp:
        tracker.log_dir(run_id, save_model(deployment, Path(tmp) / "model"), "model")
    if register_as:
        tracker.register(register_as, run_id, artifact_path="model", tags=tags)
