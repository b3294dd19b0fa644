"""MLflow model from code: serves a raynas export (TorchScript ``model.pt`` or ONNX ``model.onnx``).

MLflow copies this file into the logged model and runs it on ``mlflow.pyfunc.load_model``; it needs
torch (or onnxruntime) and numpy, not raynas, and unpickles nothing. Input: float32 images
(batch, channels, height, width); output: class logits (batch, classes).
"""

from pathlib import Path

import mlflow
import numpy as np
from mlflow.pyfunc import PythonModel


class ExportedNetwork(PythonModel):
    def load_context(self, context):
        path = Path(context.artifacts["model"])
        if path.suffix == ".onnx":
            import onnxruntime

            session = onnxruntime.InferenceSession(str(path), providers=["CPUExecutionProvider"])
            name = session.get_inputs()[0].name
            self.run = lambda x: session.run(None, {name: x})[0]
        else:
            import torch

            module = torch.jit.load(str(path), map_location="cpu").eval()

            def run(x):
                with torch.inference_mode():
                    return module(torch.from_numpy(x)).numpy()

            self.run = run

    def predict(self, context, model_input, params=None):
        return self.run(np.ascontiguousarray(model_input, dtype=np.float32))


mlflow.models.set_model(ExportedNetwork())
