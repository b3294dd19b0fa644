"""MLflow model from code: serves a raynas export (TorchScript ``model.pt``, ONNX ``model.onnx``,
ExecuTorch ``model.pte`` or a ``torch.export`` program ``model.pt2``).

MLflow copies this file into the logged model and runs it on ``mlflow.pyfunc.load_model``; it needs
torch (or onnxruntime, or executorch) and numpy, not raynas. It unpickles nothing, except that
``torch.export.load`` (``.pt2``) falls back to a full unpickle when its safe load fails: serve only
files you trust. Input: float32 images (batch, channels, height, width); output: class logits
(batch, classes). An ExecuTorch program has the static batch of its recipe: any batch is served in
chunks of it, the last padded, on the recipe's number of threads.
"""

import json
from pathlib import Path

import mlflow
import numpy as np
from mlflow.pyfunc import PythonModel


class ExportedNetwork(PythonModel):
    def load_context(self, context):
        path = Path(context.artifacts["model"])
        recipe = json.loads(Path(context.artifacts["recipe"]).read_text())
        self.empty = np.zeros((0, *recipe["output_shape"][1:]), dtype=np.float32)
        if path.suffix == ".pte":
            self.run = _executorch(path, recipe["input_shape"][0], threads=int(recipe.get("num_threads", 1)))
        elif path.suffix == ".pt2":
            self.run = _exported(path)
        elif path.suffix == ".onnx":
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
        if len(model_input) == 0:
            return self.empty
        return self.run(np.ascontiguousarray(model_input, dtype=np.float32))


def _exported(path: Path):
    """A ``torch.export`` program with a dynamic batch dimension."""
    import torch

    module = torch.export.load(str(path)).module()

    def run(x):
        with torch.inference_mode():
            return module(torch.from_numpy(x)).numpy()

    return run


def _executorch(path: Path, batch: int, *, threads: int):
    import torch
    from executorch.extension.pybindings.portable_lib import _unsafe_reset_threadpool  # not public API: the only way
    from executorch.runtime import Runtime

    _unsafe_reset_threadpool(threads)  # before loading: a program keeps the pool it was loaded with

    buffer = path.read_bytes()
    program = Runtime.get().load_program(buffer)
    method = program.load_method("forward")

    def run(x):
        outputs = []
        for start in range(0, len(x), batch):
            chunk = torch.from_numpy(x[start : start + batch])
            padded = torch.cat([chunk, chunk.new_zeros((batch - len(chunk), *chunk.shape[1:]))])
            outputs.append(method.execute([padded])[0][: len(chunk)].numpy())
        return np.concatenate(outputs)

    run.keep = (buffer, program, method)  # the method points into the program, the program into the buffer
    return run


mlflow.models.set_model(ExportedNetwork())
