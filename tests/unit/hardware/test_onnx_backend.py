import numpy as np
import pytest
import torch

from raynas.hardware.build import build_latency_table
from raynas.hardware.targets import get_target
from raynas.space.architecture import Architecture
from raynas.space.macro import get_space
from raynas.space.network import ChildNetwork

pytest.importorskip("onnxruntime", reason="the onnxruntime-cpu backend needs raynas[onnx] (installed by make test)")
from raynas.hardware.onnx_cpu import export, session  # noqa: E402


def test_exported_network_computes_what_torch_computes(tmp_path):
    net = ChildNetwork(Architecture("mnist-ofa@r24", ("k5e4", "k3e6", "skip", "skip") + ("k7e3",) * 8), 10).eval()
    x = torch.randn(2, 1, 24, 24)
    sess = session(export(net, (2, 1, 24, 24), tmp_path / "net.onnx"), threads=1)
    [out] = sess.run(None, {"x": x.numpy()})
    with torch.no_grad():
        assert np.allclose(out, net(x).numpy(), atol=1e-4)


def test_onnxruntime_target_builds_a_latency_table_that_predicts_whole_networks():
    target, macro = get_target("ort-cpu-1t"), get_space("mnist-small")
    table = build_latency_table(target, macro, 10, warmup=2, repeats=10, calibration_archs=2, seed=0)
    assert table.metadata["backend"] == "onnxruntime-cpu"
    assert all(ms > 0 for ms in table.entries.values()) and len(table.entries) == 36
    low, high = table.latency_range(macro)
    assert 0 < low < high


def test_modules_exported_together_are_split_into_models_that_each_compute_their_module():
    from raynas.hardware.onnx_cpu import export_each

    macro = get_space("mnist-small")
    specs = [s for s in macro.layers()][:3]
    from raynas.space.network import ResidualLayer

    modules = [(ResidualLayer(s, s.choices[0]).eval(), (1, s.in_channels, s.input_size, s.input_size)) for s in specs]
    for (module, shape), model in zip(modules, export_each(modules)):
        x = torch.randn(shape)
        [out] = session(model, threads=1).run(None, {"x": x.numpy()})
        with torch.no_grad():
            assert out.shape == tuple(module(x).shape) and np.allclose(out, module(x).numpy(), atol=1e-5)


def test_whole_networks_come_back_with_the_file_that_was_timed():
    net = ChildNetwork(Architecture("mnist-small", ("k3e3",) * 6), 10).eval()
    ms = get_target("ort-cpu-1t").measure_networks({"a": (net, (1, 1, 28, 28))}, warmup=1, repeats=3)
    name, model = ms.files["a"]
    x = torch.randn(1, 1, 28, 28)
    with torch.no_grad():
        assert name == "model.onnx" and np.allclose(session(model, threads=1).run(None, {"x": x.numpy()})[0], net(x).numpy(), atol=1e-4)
