import pytest
import torch

from raynas.hardware.backend import HardwareUnavailable, get_backend
from raynas.hardware.targets import TARGETS, get_target
from raynas.space.macro import get_space
from raynas.space.network import ResidualLayer

needs_cuda = pytest.mark.needs_cuda


@pytest.mark.parametrize("name", TARGETS.names())
def test_every_target_has_a_backend_and_task_resources(name):
    target = get_target(name)
    assert get_backend(target.backend).name == target.backend
    options = target.task_resources()
    assert options["resources"] == {target.resource: 1} and options["num_cpus"] >= 1
    assert options["runtime_env"] == {"env_vars": target.process_env()}  # the measuring process starts with the target's allocator
    assert target.recipe()["allocator"] == target.allocator and target.recipe()["batch_size"] == str(target.batch_size)


def test_unknown_backend_lists_valid_ones():
    with pytest.raises(KeyError, match="torch-cpu, torch-cuda"):
        get_backend("tflite")


@pytest.mark.skipif(torch.cuda.is_available(), reason="checks the refusal on a machine without CUDA")
def test_cuda_target_refuses_without_cuda_instead_of_falling_back_to_cpu():
    spec = get_space("mnist-small").layers()[0]
    with pytest.raises(HardwareUnavailable, match="needs a CUDA GPU"):
        get_target("cuda-b1").measure({"op": (ResidualLayer(spec, "k3e3"), (1, 16, 14, 14))}, warmup=1, repeats=1)
    assert get_target("cuda-b1").task_resources()["num_gpus"] == 1


@needs_cuda
def test_cuda_events_time_every_module():
    spec = get_space("mnist-small").layers()[0]
    ms = get_target("cuda-b64").measure({"op": (ResidualLayer(spec, "k7e6"), (64, 16, 14, 14))}, warmup=2, repeats=10)
    assert ms["op"] > 0
