import itertools

import pytest
import torch

from raynas.space.architecture import Architecture
from raynas.space.macro import get_space
from raynas.supernet.elastic import ElasticSupernet
from raynas.training import recalibrate_bn

SPACE = get_space("mnist-ofa")


def _net(resolutions=(24, 28)) -> ElasticSupernet:
    net = ElasticSupernet(SPACE, 10, min_depth=2, resolutions=resolutions)
    with torch.no_grad():  # non-trivial BN statistics and kernel transforms, so extraction has something to get wrong
        for m in net.modules():
            if isinstance(m, torch.nn.BatchNorm2d):
                m.running_mean.normal_(0, 0.1)
                m.running_var.uniform_(0.5, 1.5)
                m.weight.normal_(1, 0.1)
                m.bias.normal_(0, 0.1)
        for layer in net.layers:
            for t in layer.kernel_transforms.values():
                t.add_(0.05 * torch.randn_like(t))
    return net.eval()


@pytest.mark.parametrize("kernel,expansion,depth,size", [(7, 6, 4, 28), (5, 4, 3, 24), (3, 3, 2, 28), (5, 6, 2, 24)])
def test_extracted_subnet_computes_what_the_supernet_path_computes(kernel, expansion, depth, size):
    net, x = _net(), torch.randn(3, 1, 28, 28)
    ops = []
    for stage in SPACE.stage_layers():
        ops += [f"k{kernel}e{expansion}" if n < depth else "skip" for n in range(len(stage))]
    arch = Architecture(SPACE.at_resolution(size).name, tuple(ops))
    net.set_architecture(arch)
    expected = net(x)
    child = net.extract(arch).eval()
    assert torch.allclose(child(x), expected, atol=1e-5)
    assert sum(1 for op in arch.ops if op != "skip") == len(child.layers) == 3 * depth


def test_mixed_subnets_extract_exactly_too():
    net, x, gen = _net(), torch.randn(2, 1, 28, 28), torch.Generator().manual_seed(3)
    for _ in range(5):
        arch = net.sample(gen, kernels=(3, 5, 7), expansions=(3, 4, 6), depths=(2, 3, 4), resolutions=(24, 28))
        expected = net(x)
        assert torch.allclose(net.extract(arch).eval()(x), expected, atol=1e-5)
        assert net.architecture() == arch


def test_kernel_crops_go_through_the_transforms_largest_first():
    layer = _net().layers[0]
    w7 = layer.depthwise_conv.weight
    w5 = (w7[:, :, 1:6, 1:6].reshape(-1, 25) @ layer.kernel_transforms["5"]).reshape(-1, 1, 5, 5)
    w3 = (w5[:, :, 1:4, 1:4].reshape(-1, 9) @ layer.kernel_transforms["3"]).reshape(-1, 1, 3, 3)
    assert torch.equal(layer.kernel_weight(7), w7)
    assert torch.allclose(layer.kernel_weight(5), w5) and torch.allclose(layer.kernel_weight(3), w3)


def test_channel_sorting_keeps_the_full_network_and_puts_important_channels_first():
    net, x = _net(), torch.randn(2, 1, 28, 28)
    net.largest()
    before = net(x)
    net.sort_channels()
    assert torch.allclose(net(x), before, atol=1e-5)
    importance = net.layers[1].project_conv.weight.abs().sum(dim=(0, 2, 3))
    assert torch.all(importance[:-1] >= importance[1:])


def test_sliced_batch_norm_recalibration_matches_the_extracted_networks_own():
    net, gen = _net(), torch.Generator().manual_seed(0)
    batches = [(torch.randn(8, 1, 28, 28), torch.zeros(8, dtype=torch.long)) for _ in range(3)]
    arch = net.sample(gen, kernels=(3, 5), expansions=(3, 4), depths=(2, 3), resolutions=(24,))
    child = net.extract(arch)
    recalibrate_bn(net, batches, 3)
    recalibrate_bn(child, batches, 3)
    x = torch.randn(2, 1, 28, 28)
    assert torch.allclose(net.eval()(x), child.eval()(x), atol=1e-4)


@pytest.mark.parametrize(
    "ops,message",
    [
        (("k3e3", "skip", "k3e3", "k3e3") + ("k3e3",) * 8, "prefix"),
        (("k3e3", "skip", "skip", "skip") + ("k3e3",) * 8, "prefix"),
    ],
)
def test_subnets_that_skip_inside_a_stage_or_go_too_shallow_are_refused(ops, message):
    with pytest.raises(ValueError, match=message):
        _net().set_architecture(Architecture("mnist-ofa", ops))


def test_untrained_resolutions_and_other_spaces_are_refused():
    net = _net(resolutions=(28,))
    with pytest.raises(ValueError, match="resolution 24"):
        net.set_architecture(Architecture("mnist-ofa@r24", ("k3e3",) * 12))
    with pytest.raises(ValueError, match="not a subnet"):
        net.set_architecture(Architecture("mnist-small", ("k3e3",) * 6))


def test_space_has_ofa_choices_and_counts():
    choices = {op for spec in SPACE.layers() for op in spec.choices}
    assert choices == {f"k{k}e{e}" for k, e in itertools.product((3, 5, 7), (3, 4, 6))} | {"skip"}
    assert get_space("mnist-small").space_hash() == get_space("mnist-small").space_hash()
