"""MLflow model from code: serves a raynas export's ``serving.pt2`` -- the network as a ``torch.export``
program whose batch dimension is dynamic (raynas/export.py), so any batch runs as one call.

MLflow copies this file into the logged model and runs it on ``mlflow.pyfunc.load_model``; it needs
torch and numpy, not raynas. ``torch.export.load`` falls back to a full unpickle when its safe load
fails: serve only files you trust. Input: float32 images (batch, channels, height, width); output:
class logits (batch, classes). The per-target deployment file (static batch) sits beside it in the
run's ``deploy/<target>`` artifacts.
"""

import json
from pathlib import Path

import mlflow
import numpy as np
from mlflow.pyfunc import PythonModel


class ExportedNetwork(PythonModel):
    def load_context(self, context):
        import torch

        recipe = json.loads(Path(context.artifacts["recipe"]).read_text())
        self.empty = np.zeros((0, *recipe["output_shape"][1:]), dtype=np.float32)
        self.module = torch.export.load(str(context.artifacts["model"])).module()

    def predict(self, context, model_input: np.ndarray, params=None) -> np.ndarray:
        import torch

        if len(model_input) == 0:
            return self.empty
        with torch.inference_mode():
            return self.module(torch.from_numpy(np.ascontiguousarray(model_input, dtype=np.float32))).numpy()


mlflow.models.set_model(ExportedNetwork())
