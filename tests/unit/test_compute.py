"""The device rule, mixed precision and memory format, checked on the CPU (CUDA itself: needs_cuda tests)."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from raynas.compute import Compute, ComputeConfig, DeviceError, select_device
from raynas.search.proxyless import ProxylessSearch, SearchConfig
from raynas.space.macro import get_space
from raynas.supernet.supernet import Supernet
from tests.unit.hardware.test_lut import synthetic_table


def test_cpu_unless_a_gpu_is_visible_and_granted(monkeypatch):
    assert select_device("cpu") == torch.device("cpu")
    assert select_device("auto", gpu_granted=False) == torch.device("cpu")
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "current_device", lambda: 0)
    assert select_device("auto", gpu_granted=True) == torch.device("cuda", 0)
    assert select_device("auto", gpu_granted=None) == torch.device("cuda", 0)  # outside Ray: whatever torch sees
    assert select_device("auto", gpu_granted=False) == torch.device("cpu")  # Ray gave this trial no GPU
    assert select_device("cpu", gpu_granted=True) == torch.device("cpu")


@pytest.mark.faults
def test_cuda_without_a_gpu_and_unknown_settings_are_refused(monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    with pytest.raises(DeviceError, match="compute.device is cuda but torch sees no CUDA"):
        select_device("cuda")
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    with pytest.raises(DeviceError, match="no GPU was reserved"):
        select_device("cuda", gpu_granted=False)
    with pytest.raises(DeviceError, match="compute.device 'tpu'"):
        select_device("tpu")
    with pytest.raises(DeviceError, match="fp16 needs a CUDA device"):
        Compute(torch.device("cpu"), "fp16")
    with pytest.raises(DeviceError, match="compute.precision 'fp8'"):
        Compute.from_config(ComputeConfig(device="cpu", precision="fp8"))


def _search(compute: Compute) -> ProxylessSearch:
    macro = get_space("mnist-small")
    supernet = compute.module(Supernet(macro, 10))
    lut = synthetic_table()
    return ProxylessSearch(supernet, lut, lut.latency_range(macro)[1] * 0.6, cfg=SearchConfig(), seed=0, compute=compute)


def test_bf16_trains_weights_while_the_architecture_step_stays_fp32():
    search = _search(Compute(torch.device("cpu"), "bf16"))
    x, y = torch.randn(4, 1, 28, 28), torch.randint(0, 10, (4,))
    loss = search.weight_step(x, y)
    assert loss == loss and loss > 0
    seen = []
    handle = search.supernet.head.classifier.register_forward_hook(lambda m, i, out: seen.append(out.dtype))
    search.arch_step(x, y)
    handle.remove()
    assert seen == [torch.float32]
    assert all(a.grad is not None and a.grad.dtype == torch.float32 for a in search.supernet.arch_parameters())
    assert search.expected_latency().dtype == torch.float32
    with search.compute.autocast():
        assert search.supernet.head.classifier(torch.randn(2, search.supernet.macro.head_channels)).dtype == torch.bfloat16


def test_channels_last_moves_models_and_image_batches():
    compute = Compute(torch.device("cpu"), channels_last=True)
    conv = compute.module(nn.Conv2d(3, 8, 3))
    assert conv.weight.is_contiguous(memory_format=torch.channels_last)
    x, y = compute.batch(torch.randn(2, 3, 8, 8), torch.tensor([0, 1]))
    assert x.is_contiguous(memory_format=torch.channels_last) and y.tolist() == [0, 1]


def test_channels_last_defaults_to_on_for_the_cpu_and_follows_an_explicit_setting():
    assert Compute.from_config(ComputeConfig(device="cpu")).channels_last
    assert not Compute.from_config(ComputeConfig(device="cpu", channels_last=False)).channels_last


@pytest.mark.needs_cuda
def test_channels_last_defaults_to_off_on_cuda():
    assert not Compute.from_config(ComputeConfig(device="cuda")).channels_last


def test_path_sampling_draws_on_the_cpu_generator_from_one_copy_of_alpha(monkeypatch):
    """A CPU generator cannot sample tensors on a GPU: sampling must read CPU copies of alpha."""
    supernet = Supernet(get_space("mnist-small"), 10)
    calls, copies = [], []
    real_multinomial, real_cpu_alphas = torch.multinomial, supernet.cpu_alphas

    def spy(probs, *args, generator=None, **kwargs):
        calls.append((probs.device.type, generator.device.type))
        return real_multinomial(probs, *args, generator=generator, **kwargs)

    def counted():
        copies.append(1)
        return real_cpu_alphas()

    monkeypatch.setattr(torch, "multinomial", spy)
    monkeypatch.setattr(supernet, "cpu_alphas", counted)
    gen = torch.Generator().manual_seed(0)
    supernet.sample_single(gen)
    supernet.sample_pairs(gen)
    supernet.sample_single(gen, uniform=True)
    assert calls and set(calls) == {("cpu", "cpu")}
    assert len(copies) == 2  # one transfer per sampling, not one per layer


def test_a_seed_draws_the_same_paths_whatever_alpha_was_copied_from():
    supernet = Supernet(get_space("mnist-small"), 10)
    for layer in supernet.layers:
        nn.init.normal_(layer.alpha)
    draws = []
    for _ in range(2):
        supernet.sample_pairs(torch.Generator().manual_seed(5))
        draws.append([layer.pair for layer in supernet.layers])
    per_layer = torch.Generator().manual_seed(5)
    for layer in supernet.layers:
        layer.sample_pair(per_layer)
    assert draws[0] == draws[1] == [layer.pair for layer in supernet.layers]
