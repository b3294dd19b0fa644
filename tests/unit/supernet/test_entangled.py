"""The weight-entangled chain supernet: paths are standalone networks, every step trains shared weights, gates still work."""

import numpy as np
import pytest
import torch

from raynas.search.proxyless import BINARIZATIONS, ProxylessSearch, SearchConfig
from raynas.space.architecture import Architecture
from raynas.space.macro import get_space
from raynas.space.ops import SKIP
from raynas.supernet.supernet import Supernet
from tests.unit.hardware.test_lut import synthetic_table

MACRO = get_space("mnist-small")


def batch(n: int = 4) -> tuple[torch.Tensor, torch.Tensor]:
    return torch.randn(n, 1, 28, 28), torch.randint(0, 10, (n,))


def sampled(supernet: Supernet, seed: int) -> Architecture:
    supernet.sample_single(torch.Generator().manual_seed(seed), uniform=True)
    return Architecture(MACRO.name, tuple(layer.choices[layer.active] for layer in supernet.layers))


@pytest.mark.parametrize("seed", [0, 1, 2, 3])
def test_a_sampled_path_equals_the_standalone_network_built_from_the_entangled_weights(seed):
    supernet = Supernet(MACRO, 10, sharing="entangled")
    x, _ = batch()
    supernet.train()
    for s in range(3):  # BatchNorm statistics and kernel transforms away from their initial values
        sampled(supernet, 10 + s)
        supernet(x)
    with torch.no_grad():
        for layer in supernet.layers:
            for transform in layer.elastic.kernel_transforms.values():
                transform.add_(0.01 * torch.randn_like(transform))
    arch = sampled(supernet, seed)
    supernet.eval()
    with torch.no_grad():
        assert torch.allclose(supernet(x), supernet.prune(arch).eval()(x), atol=1e-6)


def test_one_step_on_the_smallest_path_trains_weights_the_largest_path_uses_only_when_entangled():
    smallest = Architecture(MACRO.name, tuple(min(spec.choices, key=lambda op: (op == SKIP, op)) for spec in MACRO.layers()))
    largest = Architecture(MACRO.name, tuple("k7e6" for _ in MACRO.layers()))
    for sharing, shared in (("entangled", True), ("separate", False)):
        supernet = Supernet(MACRO, 10, sharing=sharing)
        before = [p.detach().clone() for p in supernet.prune(largest).layers.parameters()]
        supernet.set_architecture(smallest)
        x, y = batch()
        torch.nn.functional.cross_entropy(supernet.train()(x), y).backward()
        with torch.no_grad():
            for p in supernet.weight_parameters():
                if p.grad is not None:
                    p.sub_(0.1 * p.grad)
        after = list(supernet.prune(largest).layers.parameters())
        changed = any(not torch.equal(a, b) for a, b in zip(before, after))
        assert changed == shared, sharing


@pytest.mark.parametrize("binarization", BINARIZATIONS)
def test_every_binarization_runs_an_architecture_step_on_the_entangled_supernet(binarization):
    table = synthetic_table()
    low, high = table.latency_range(MACRO)
    supernet = Supernet(MACRO, 10, sharing="entangled")
    cfg = SearchConfig(binarization=binarization, arch_lr=0.1, latency_loss="add", lam=5.0)
    search = ProxylessSearch(supernet, table, low + 0.3 * (high - low), cfg=cfg, seed=0)
    before = torch.cat([a.detach().clone() for a in supernet.arch_parameters()])
    losses = [search.arch_step(*batch()) for _ in range(2)]  # REINFORCE's first step only sets its reward baseline
    assert all(np.isfinite(losses)) and not torch.equal(before, torch.cat([a.detach() for a in supernet.arch_parameters()]))


def test_an_unknown_sharing_is_refused_with_the_valid_ones():
    with pytest.raises(ValueError, match="separate, entangled"):
        Supernet(MACRO, 10, sharing="tied")
