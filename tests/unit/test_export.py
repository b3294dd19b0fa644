"""A found network as it ships: the file its target runs, its recipe, and its MLflow Model."""

import json

import mlflow
import numpy as np
import pytest
import torch
from mlflow.tracking import MlflowClient

from raynas.export import RECIPE_FILE, export_network
from raynas.hardware.targets import get_target
from raynas.space.architecture import Architecture
from raynas.space.network import ChildNetwork
from raynas.tracking.mlflow_tracker import ExperimentTracker
from raynas.tracking.models import log_model, registered_name, save_model

ARCH = Architecture("mnist-small", ("k3e6", "skip", "k5e3", "k7e6", "k3e3", "skip"))


def test_a_torch_target_ships_the_aotinductor_package_it_timed_with_its_recipe(tmp_path):
    net = ChildNetwork(ARCH, 10).eval()
    deployment = export_network(net, (16, 1, 28, 28), tmp_path / "d", target=get_target("cpu-1t-b16-tuned"), facts={"measured_ms": 3.2})
    assert deployment.model_file.name == "model.aoti.pt2" and "aoti_load_package" in deployment.recipe["load"]
    loaded = torch._inductor.aoti_load_package(str(deployment.model_file))
    x = torch.randn(16, 1, 28, 28)
    with torch.inference_mode():
        assert torch.allclose(loaded(x), net(x), atol=1e-5)
    recipe = json.loads((tmp_path / "d" / RECIPE_FILE).read_text())
    assert recipe["input_shape"] == [16, 1, 28, 28] and recipe["output_shape"] == [16, 10] and recipe["measured_ms"] == 3.2
    assert (
        recipe["allocator"] == "glibc-tuned"
        and recipe["start"].startswith("GLIBC_TUNABLES=")
        and recipe["threads"] == "torch.set_num_threads(1)"
    )


def test_an_onnx_runtime_target_ships_an_onnx_file(tmp_path):
    pytest.importorskip("onnxruntime", reason="the ONNX target needs onnxruntime (pip install 'raynas[onnx]')")
    from raynas.hardware.onnx_cpu import session

    net = ChildNetwork(ARCH, 10).eval()
    deployment = export_network(net, (1, 1, 28, 28), tmp_path, target=get_target("ort-cpu-1t"))
    assert deployment.model_file.name == "model.onnx" and deployment.recipe["threads"] == "intra_op_num_threads=1"
    x = torch.randn(1, 1, 28, 28)
    with torch.inference_mode():
        assert np.allclose(session(deployment.model_file, 1).run(None, {"x": x.numpy()})[0], net(x).numpy(), atol=1e-4)
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted([RECIPE_FILE, "model.onnx"])  # one self-contained file


def test_the_file_a_measurement_timed_ships_as_it_is(tmp_path):
    timed = b"the bytes a target's measurement timed"
    net, target = ChildNetwork(ARCH, 10), get_target("ort-cpu-1t")
    deployment = export_network(net, (1, 1, 28, 28), tmp_path, target=target, shipped=("model.onnx", timed))
    assert deployment.model_file.read_bytes() == timed and deployment.recipe["file"] == "model.onnx"


def test_an_estimated_target_ships_the_exported_program_for_any_batch_and_says_it_was_not_measured(tmp_path):
    net = ChildNetwork(ARCH, 10).eval()
    deployment = export_network(net, (1, 1, 28, 28), tmp_path, target=None, serving=True)
    assert deployment.model_file.name == "model.pt2" and "not measured here" in deployment.recipe["runtime"]
    assert deployment.recipe["serving_file"] == "model.pt2"  # already any-batch: no twin
    program = torch.export.load(str(deployment.model_file)).module()
    served = mlflow.pyfunc.load_model(str(save_model(tmp_path, tmp_path / "mlflow-model")))
    for batch in (1, 5):
        x = torch.randn(batch, 1, 28, 28)
        with torch.inference_mode():
            assert torch.allclose(program(x), net(x), atol=1e-5)
            assert np.allclose(served.predict(x.numpy()), net(x).numpy(), atol=1e-5)
    assert served.predict(np.zeros((0, 1, 28, 28), dtype=np.float32)).shape == (0, 10)


def test_a_registered_export_serves_through_pyfunc_and_registers_once_per_run(tmp_path, sqlite_store):
    uri = sqlite_store(tmp_path / "mlflow.db")
    tracker = ExperimentTracker(uri, "ship", tmp_path, run_name="run")
    run_id = tracker.child("proxyless:cpu-1t@1.2ms#s0")
    net = ChildNetwork(ARCH, 10).eval()
    deployment = export_network(net, (1, 1, 28, 28), tmp_path / "d", target=get_target("ort-cpu-1t"), serving=True)
    assert deployment.recipe["serving_file"] == "serving.pt2" and deployment.model_file.name == "model.onnx"
    name = registered_name("ship", "cpu-1t", 1.2)
    for _ in range(2):  # a resumed run records the finalist again
        log_model(tracker, run_id, tmp_path / "d", register_as=name, tags={"seed": "0"})
    versions = MlflowClient(uri).search_model_versions(f"name = '{name}'")
    assert name == "ship-cpu-1t-1.2ms" and [str(v.version) for v in versions] == ["1"] and versions[0].tags == {"seed": "0"}
    previous = mlflow.get_tracking_uri()
    mlflow.set_tracking_uri(uri)
    try:
        model = mlflow.pyfunc.load_model(f"models:/{name}/1")
    finally:
        mlflow.set_tracking_uri(previous)
    x = np.random.default_rng(0).standard_normal((3, 1, 28, 28)).astype(np.float32)
    with torch.inference_mode():
        assert np.allclose(model.predict(x), net(torch.from_numpy(x)).numpy(), atol=1e-5)
    assert model.metadata.get_input_schema().inputs[0].shape == (-1, 1, 28, 28)


def test_an_export_without_its_any_batch_program_is_not_saved_as_a_model(tmp_path):
    export_network(ChildNetwork(ARCH, 10), (1, 1, 28, 28), tmp_path / "d", target=None)
    with pytest.raises(ValueError, match="serving=True"):
        save_model(tmp_path / "d", tmp_path / "model")
