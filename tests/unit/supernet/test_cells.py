"""The NB201 cell supernet: paths equal standalone networks, and the two-path architecture step."""

import numpy as np
import pytest
import torch

from raynas.hardware.tabular import EdgeCosts, LookupLatency
from raynas.search.proxyless import ProxylessSearch, SearchConfig
from raynas.space.nb201 import EDGES, NB201, NUM_CELLS, OPS, Cell
from raynas.supernet.cells import CellSupernet

SMALL = dict(channels=4, cells_per_stage=1)


def additive_lookup(seed: int = 0) -> tuple[LookupLatency, np.ndarray, float]:
    """A device whose latency is exactly fixed + one cost per (edge, op)."""
    costs = np.random.default_rng(seed).uniform(0.0, 2.0, (len(EDGES), len(OPS)))
    by_code = {}
    for code in range(NUM_CELLS):
        cell = Cell.from_code(code)
        by_code[code] = 3.0 + sum(costs[e, OPS.index(op)] for e, op in enumerate(cell.ops))
    connected = frozenset(c for c in range(NUM_CELLS) if Cell.from_code(c).connected)
    return LookupLatency("toy", "test", by_code, connected), costs, 3.0


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_a_path_of_the_supernet_equals_the_standalone_network_built_from_its_weights(seed):
    supernet = CellSupernet(10, **SMALL)
    cell = NB201.sample(np.random.default_rng(seed))
    with torch.no_grad():  # BatchNorm statistics away from their defaults, so copying them matters
        for module in supernet.modules():
            if isinstance(module, torch.nn.BatchNorm2d):
                module.running_mean.uniform_(-0.5, 0.5)
                module.running_var.uniform_(0.5, 1.5)
    supernet.eval().set_architecture(cell)
    x = torch.randn(3, 3, 32, 32)
    with torch.no_grad():
        assert torch.equal(supernet(x), supernet.prune(cell).eval()(x))


def test_edge_costs_fitted_to_an_additive_table_recover_its_latency():
    lookup, costs, fixed = additive_lookup()
    fit = lookup.edge_fit
    assert fit.rms_ms < 1e-9
    for code in (0, 1234, NUM_CELLS - 1):
        assert fit.predict(Cell.from_code(code)) == pytest.approx(lookup.by_code[code])
    assert min(min(row) for row in lookup.layer_costs()) == 0.0  # each edge's cheapest op costs nothing
    assert lookup.fixed_ms == pytest.approx(fixed + costs.min(axis=1).sum())


def test_edge_costs_refuse_another_op_order():
    lookup, _, _ = additive_lookup()
    with pytest.raises(ValueError, match="op order"):
        lookup.layer_costs(None, [tuple(reversed(OPS))] * len(EDGES))


def test_the_accuracy_gradient_of_an_architecture_step_moves_only_the_sampled_pair_of_each_edge():
    """Binary gates on an edge shared by every copy of the cell (the latency term, off here, moves every op)."""
    lookup, _, _ = additive_lookup()
    supernet = CellSupernet(10, **SMALL)
    cfg = SearchConfig(warmup_epochs=0, arch_lr=0.1, latency_loss="add", lam=0.0)
    search = ProxylessSearch(supernet, lookup, budget_ms=6.0, cfg=cfg, seed=0)
    before = [p.detach().clone() for p in supernet.probabilities()]
    x, y = torch.randn(4, 3, 32, 32), torch.randint(0, 10, (4,))
    pairs = [(3, 1)] * len(EDGES)
    search.arch_step(x, y, pairs)
    for alpha, p_before, p_after in zip(supernet.arch_parameters(), before, [p.detach() for p in supernet.probabilities()]):
        moved = (p_after - p_before).abs() > 1e-7
        assert not moved[[0, 2, 4]].any()  # unsampled ops keep their probability
        assert moved[[1, 3]].all()
        assert float(p_after[[1, 3]].sum()) == pytest.approx(float(p_before[[1, 3]].sum()), abs=1e-6)
    arch, _ = search.derive()
    assert arch.space == "nb201" and len(arch.ops) == len(EDGES)


def test_edge_costs_fit_is_least_squares_on_a_noisy_table():
    rng = np.random.default_rng(3)
    lookup, _, _ = additive_lookup()
    noisy = {c: v + float(rng.normal(0, 0.1)) for c, v in lookup.by_code.items()}
    fit = EdgeCosts.fit(noisy, lookup.connected_codes)
    assert 0.05 < fit.rms_ms < 0.15
