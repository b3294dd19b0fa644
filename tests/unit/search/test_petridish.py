import json

import pytest
import torch

from raynas.search.petridish import (
    GrowingNet,
    PetridishConfig,
    PetridishSearch,
    StandaloneRandomSearch,
    cheapest_parent,
    lower_hull,
    pick_within,
)
from raynas.space.architecture import Architecture
from raynas.space.macro import get_space
from raynas.space.ops import SKIP
from tests.unit.hardware.test_lut import synthetic_table
from tests.unit.search.test_proxyless import loaders

MACRO = get_space("mnist-small")
SMALL = PetridishConfig(rounds=2, children_per_round=2, parent_steps=4, weak_steps=4, child_steps=2, eval_batches=1)


def test_weak_learners_leave_the_forward_pass_unchanged_and_receive_the_gradient():
    parent = cheapest_parent(MACRO, synthetic_table())
    torch.manual_seed(0)
    plain = GrowingNet(parent, 10).eval()
    grown = GrowingNet(parent, 10, ((1, "k5e6"), (2, "k7e6"))).eval()
    grown.load_state_dict(plain.base_state(), strict=False)
    with torch.no_grad():
        grown.alpha.fill_(0.5)
    x = torch.randn(4, 1, 28, 28)
    assert torch.allclose(grown(x), plain(x), atol=1e-6)  # stop-forward: the parent computes what it did
    torch.nn.functional.cross_entropy(grown(x), torch.tensor([0, 1, 2, 3])).backward()
    assert grown.alpha.grad is not None and bool((grown.alpha.grad != 0).all())
    assert all(p.grad is not None for p in grown.weak.parameters() if p.requires_grad)


def test_a_child_grown_on_a_skipped_layer_adds_alpha_times_the_weak_learner():
    parent = cheapest_parent(MACRO, synthetic_table())
    assert parent.ops[1] == SKIP
    net = GrowingNet(parent, 10, ((1, "k3e6"),)).eval()
    with torch.no_grad():
        net.alpha.fill_(0.25)
    child = net.grown(0, 10).eval()
    assert child.arch.ops[1] == "k3e6" and child.arch.ops[0] == parent.ops[0]
    x = torch.randn(2, 16, 14, 14)
    with torch.no_grad():
        layer_in = net.ops["0"](x)
        assert torch.allclose(child.ops["1"](layer_in), 0.25 * net.weak["1_k3e6"](layer_in), atol=1e-5)


def test_lower_hull_keeps_the_convex_frontier_that_falls_with_latency():
    points = [(1.0, 0.5), (2.0, 0.45), (2.0, 0.2), (3.0, 0.3), (4.0, 0.1), (5.0, 0.15)]
    assert lower_hull(points) == [0, 2, 4]


def test_search_grows_within_the_largest_budget_and_picks_per_budget():
    table = synthetic_table()
    low, high = table.latency_range(MACRO)
    top = low + 0.5 * (high - low)
    search = PetridishSearch(MACRO, table, 10, cfg=SMALL, loaders=loaders(), max_ms=top)
    while not search.done:
        metrics = search.step()
    frontier = json.loads(metrics["frontier"])
    assert len(frontier) >= 3 and frontier[0]["latency_ms"] == pytest.approx(low)
    assert all(m["latency_ms"] <= top + 1e-9 for m in frontier)
    assert max(m["latency_ms"] for m in frontier) > low  # it grew
    mid = pick_within(frontier, low + 0.25 * (high - low))
    assert mid["latency_ms"] <= low + 0.25 * (high - low)


def loaders_fixed():
    """Loaders whose order does not depend on the global RNG (so two searches see the same batches)."""
    from torch.utils.data import DataLoader, TensorDataset

    gen = torch.Generator().manual_seed(1)
    x, y = torch.randn(64, 1, 28, 28, generator=gen), torch.randint(0, 10, (64,), generator=gen)
    data = TensorDataset(x, y)
    return DataLoader(data, batch_size=16), DataLoader(data, batch_size=16)


def test_random_baseline_draws_from_the_window_and_spends_its_seconds():
    table = synthetic_table()
    low, high = table.latency_range(MACRO)
    budget = low + 0.4 * (high - low)
    search = StandaloneRandomSearch(MACRO, table, 10, cfg=SMALL, seed=0, loaders=loaders(), budget_ms=budget, seconds=0.0)
    while not search.done:
        metrics = search.step()
    assert metrics["evaluations"] == 2
    assert all(0.9 * budget <= m["latency_ms"] <= budget for m in search.inner.models)
    assert table.predict(Architecture.from_string(MACRO.name, metrics["arch"]), MACRO) <= budget
