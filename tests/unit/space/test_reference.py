import pytest
import torch

from raynas.space.macro import base_name, get_space
from raynas.space.network import ChildNetwork
from raynas.space.reference import mobilenet_v2_like, width_multiplier


def test_width_scaled_space_scales_every_width_to_multiples_of_eight():
    base, half = get_space("cifar"), get_space("cifar@w0.5")
    assert [s.channels for s in half.stages] == [16, 32, 48, 80]
    assert all(s.channels % 8 == 0 for s in half.stages) and half.head_channels == base.head_channels
    assert [s.depth for s in half.stages] == [s.depth for s in base.stages] and half.space_hash() != base.space_hash()
    assert get_space("cifar@w1.4").head_channels == 896


@pytest.mark.parametrize("name", ["cifar@wide", "cifar@w0", "cifar@w9"])
def test_bad_width_multipliers_are_refused(name):
    with pytest.raises(KeyError, match="width multiplier"):
        get_space(name)


def test_mobilenet_v2_like_is_all_k3e6_and_in_the_base_space_at_width_one():
    full, half = mobilenet_v2_like("mnist-small"), mobilenet_v2_like("mnist-small", 0.5)
    assert full.space == "mnist-small" and set(full.ops) == {"k3e6"} and len(full.ops) == 6
    assert half.space == "mnist-small@w0.5" and base_name(half.space) == "mnist-small"
    assert width_multiplier(half.space) == 0.5 and width_multiplier(full.space) == 1.0
    small, large = ChildNetwork(half, 10), ChildNetwork(full, 10)
    assert small(torch.randn(2, 1, 28, 28)).shape == (2, 10)
    assert sum(p.numel() for p in small.parameters()) < sum(p.numel() for p in large.parameters())
