import pytest
import torch

from raynas.space.architecture import Architecture
from raynas.space.macro import SPACES, get_space
from raynas.space.network import ChildNetwork
from raynas.space.ops import SKIP
from raynas.supernet.supernet import Supernet


@pytest.mark.parametrize("name", SPACES.names())
def test_child_network_classifies_at_the_space_resolution(name):
    macro = get_space(name)
    arch = Architecture(name, tuple(spec.choices[-1] for spec in macro.layers()))
    out = ChildNetwork(arch, num_classes=7)(torch.randn(2, macro.in_channels, macro.input_size, macro.input_size))
    assert out.shape == (2, 7)


def test_skipped_layers_are_removed_not_computed():
    arch = Architecture("mnist-small", ("k3e3", SKIP, "k3e3", SKIP, "k3e3", SKIP))
    assert len(ChildNetwork(arch, 10).layers) == 3


def test_pruned_supernet_computes_exactly_the_supernet_path():
    macro = get_space("mnist-small")
    supernet = Supernet(macro, 10).eval()
    arch = Architecture("mnist-small", ("k5e6", SKIP, "k7e3", "k3e6", "k3e3", SKIP))
    supernet.set_architecture(arch)
    child = supernet.prune(arch).eval()
    x = torch.randn(3, 1, 28, 28)
    torch.testing.assert_close(child(x), supernet(x))
