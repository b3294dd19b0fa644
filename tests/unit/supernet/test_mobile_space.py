"""The ImageNet mobile setting of the paper builds and trains a step on CPU at a reduced batch."""

import torch

from raynas.hardware.lut import LatencyTable
from raynas.search.proxyless import ProxylessSearch, SearchConfig
from raynas.space.macro import get_space
from raynas.space.ops import SKIP
from raynas.supernet.supernet import Supernet

MOBILE = get_space("proxyless-mobile")


def test_layout_matches_the_paper():
    layers = MOBILE.layers()
    assert len(layers) == 21
    assert [s.out_channels for s in layers][::4] == [24, 40, 80, 96, 192, 320]
    assert layers[0].in_channels == 16 and layers[-1].out_channels == 320 and MOBILE.final_size == 7
    assert sum(s.residual for s in layers) == 15


def test_weight_and_architecture_step_run_at_reduced_batch():
    torch.manual_seed(0)
    supernet = Supernet(MOBILE, 1000)
    entries = {(s.key, op): 1.0 + s.index for s in MOBILE.layers() for op in s.choices if op != SKIP}
    table = LatencyTable("unit", MOBILE.name, MOBILE.space_hash(), 1, entries, {"stem": 1.0})
    search = ProxylessSearch(supernet, table, 0.8 * table.latency_range(MOBILE)[1], cfg=SearchConfig(), seed=0)
    x, y = torch.randn(2, 3, 224, 224), torch.randint(0, 1000, (2,))
    alphas = [a.detach().clone() for a in supernet.arch_parameters()]
    assert search.weight_step(x, y) > 0
    assert search.arch_step(x, y) > 0
    assert any(not torch.equal(a, b) for a, b in zip(alphas, supernet.arch_parameters()))
