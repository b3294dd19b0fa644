"""The ExecuTorch target: networks lowered to XNNPACK programs compute what torch computes, its
backend times modules through ExecuTorch's runtime, a finalist ships as ``model.pte`` with its
recipe, loaded by ExecuTorch's runtime as the recipe says."""

import json

import pytest
import torch

from raynas.export import RECIPE_FILE, export_network
from raynas.hardware.targets import get_target
from raynas.space.architecture import Architecture
from raynas.space.catalog import build_network
from raynas.space.macro import get_space
from raynas.space.network import ChildNetwork, ResidualLayer

pytest.importorskip("executorch", reason="the executorch target needs raynas[executorch] (installed by make test)")
from raynas.hardware.executorch_cpu import Loaded, lower, lower_each  # noqa: E402

CHAIN = Architecture("mnist-small", ("k3e6", "skip", "k5e3", "k7e6", "k3e3", "skip"))
CELL = Architecture("nb201", ("nor_conv_3x3", "skip_connect", "avg_pool_3x3", "nor_conv_1x1", "none", "skip_connect"))


@pytest.mark.parametrize("arch, shape", [(CHAIN, (2, 1, 28, 28)), (CELL, (1, 3, 32, 32))], ids=["chain", "nb201"])
def test_lowered_networks_compute_what_torch_computes(arch, shape):
    torch.manual_seed(0)
    net = build_network(arch, 10).eval()
    x = torch.randn(shape)
    with torch.inference_mode():
        assert torch.allclose(Loaded(lower(net, shape))(x), net(x), atol=1e-4)


def test_modules_lowered_together_are_split_into_one_program_each():
    """One lowering for all, one delegate per module cut out as its own program; an identity (no op
    to delegate) is lowered alone. Each program computes its own module, at its own shape."""
    torch.manual_seed(0)
    specs = get_space("mnist-small").layers()
    modules = [(ResidualLayer(s, op), (1, s.in_channels, s.input_size, s.input_size)) for s, op in [(specs[0], "k3e3"), (specs[2], "k7e6")]]
    modules += [(build_network(CHAIN, 10), (1, 1, 28, 28)), (torch.nn.Identity(), (1, 1, 1, 1))]
    programs = lower_each(modules)
    assert len(programs) == len(modules) and len(set(programs)) == len(modules)
    with torch.inference_mode():
        for (module, shape), program in zip(modules, programs):
            x = torch.randn(shape)
            assert torch.allclose(Loaded(program)(x), module.eval()(x), atol=1e-4)


def test_executorch_target_times_modules_through_its_runtime():
    spec = get_space("mnist-small").layers()[0]
    shape = (1, spec.in_channels, spec.input_size, spec.input_size)
    modules = {"small": (ResidualLayer(spec, "k3e3"), shape), "large": (ResidualLayer(spec, "k7e6"), shape)}
    ms = get_target("executorch-xnnpack-1t").measure(modules, warmup=2, repeats=10)
    assert 0 < ms["small"] < ms["large"]
    name, program = ms.files["large"]  # the program that was timed, which a finalist ships
    x = torch.randn(shape)
    with torch.inference_mode():
        assert name == "model.pte" and torch.allclose(Loaded(program)(x), modules["large"][0](x), atol=1e-4)


def test_a_finalist_ships_as_an_executorch_program_that_reproduces_the_network(tmp_path):
    torch.manual_seed(0)
    net = ChildNetwork(CHAIN, 10).eval()
    deployment = export_network(net, (1, 1, 28, 28), tmp_path / "d", target=get_target("executorch-xnnpack-1t"))
    recipe = json.loads((tmp_path / "d" / RECIPE_FILE).read_text())
    assert deployment.model_file.name == "model.pte" and recipe["threads"].startswith("XNNPACK thread pool of 1")
    x = torch.randn(1, 1, 28, 28)
    with torch.inference_mode():
        assert torch.allclose(Loaded(deployment.model_file)(x), net(x), atol=1e-4)
