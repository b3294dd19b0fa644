import pytest
import torch
from torch.utils.data import DataLoader, TensorDataset

from raynas.search.proxyless import BINARIZATIONS, ProxylessSearch, SearchConfig, warm_up
from raynas.space.macro import get_space
from raynas.supernet.supernet import Supernet
from tests.unit.hardware.test_lut import synthetic_table

MACRO = get_space("mnist-small")


def loaders(n=64):
    x, y = torch.randn(n, 1, 28, 28), torch.randint(0, 10, (n,))
    data = TensorDataset(x, y)
    return DataLoader(data, batch_size=16, shuffle=True), DataLoader(data, batch_size=16)


@pytest.mark.parametrize("binarization", BINARIZATIONS)
def test_tight_budget_pulls_expected_latency_down_and_derivation_lands_in_the_window(binarization):
    table = synthetic_table()
    low, high = table.latency_range(MACRO)
    budget = low + 0.1 * (high - low)
    cfg = SearchConfig(binarization=binarization, arch_lr=0.1, latency_loss="add", lam=5.0, eval_batches=1)
    search = ProxylessSearch(Supernet(MACRO, 10), table, budget, cfg=cfg, seed=0)
    start = search.expected_latency().item()
    train, val = loaders()
    for _ in range(3):
        metrics = search.epoch(train, val)
    assert metrics["expected_latency_ms"] < start
    arch, _ = search.derive()
    assert 0.9 * budget <= table.predict(arch, MACRO) <= budget
    assert metrics["arch"] == arch.to_string() and metrics["derived_latency_ms"] == table.predict(arch, MACRO)
    assert 0 <= metrics["val_acc"] <= 1 and metrics["entropy"] < torch.log(torch.tensor(7.0))


def test_warm_up_trains_shared_weights_but_not_alpha():
    supernet = Supernet(MACRO, 10)
    alphas = [a.detach().clone() for a in supernet.arch_parameters()]
    head = supernet.head.classifier.weight.detach().clone()
    train, _ = loaders()
    stats = warm_up(supernet, train, SearchConfig(warmup_epochs=1), seed=0)
    assert stats["loss"] > 0
    assert not torch.equal(head, supernet.head.classifier.weight)
    assert all(torch.equal(a, b) for a, b in zip(alphas, supernet.arch_parameters()))


def test_budget_above_the_slowest_network_has_no_floor():
    table = synthetic_table()
    search = ProxylessSearch(Supernet(MACRO, 10), table, 10 * table.latency_range(MACRO)[1], cfg=SearchConfig(), seed=0)
    assert search.window()[0] == pytest.approx(table.latency_range(MACRO)[0])
    arch, constrained = search.derive()
    assert not constrained and arch == search.supernet.derive()


def test_a_budget_just_above_the_fastest_network_derives_a_network_that_fits():
    torch.manual_seed(0)
    macro, lut = get_space("mnist-small"), synthetic_table()
    fastest = lut.latency_range(macro)[0]
    search = ProxylessSearch(Supernet(macro, 10), lut, fastest * 1.001, cfg=SearchConfig(), seed=0)
    for layer in search.supernet.layers:
        torch.nn.init.normal_(layer.alpha)  # an argmax far from the budget: derivation must fall back
    arch, constrained = search.derive()
    assert constrained and lut.predict(arch, macro) <= fastest * 1.001 + 1e-9


def test_the_loss_steers_to_aim_times_the_budget():
    macro, lut = get_space("mnist-small"), synthetic_table()
    budget = lut.latency_range(macro)[1] * 0.6
    at_b = ProxylessSearch(Supernet(macro, 10), lut, budget, cfg=SearchConfig(latency_loss="ratio", gamma=0.1), seed=0)
    aimed = ProxylessSearch(Supernet(macro, 10), lut, budget, cfg=SearchConfig(latency_loss="ratio", gamma=0.1, aim=0.95), seed=0)
    ce = torch.tensor(1.0)
    assert at_b.objective(ce, torch.tensor(budget)).item() == pytest.approx(1.0)
    assert aimed.objective(ce, torch.tensor(0.95 * budget)).item() == pytest.approx(1.0)
    assert aimed.objective(ce, torch.tensor(budget)).item() > 1.0  # at B it already pulls down toward 0.95 B


def test_a_low_latency_temperature_makes_expected_latency_track_the_argmax_path():
    table = synthetic_table()
    search = ProxylessSearch(Supernet(MACRO, 10), table, table.latency_range(MACRO)[1], cfg=SearchConfig(latency_temperature=0.01), seed=0)
    with torch.no_grad():
        for layer in search.supernet.layers:
            layer.alpha.copy_(torch.linspace(0.0, 0.5, len(layer.alpha)))  # a mild preference for the last choice
    argmax = table.predict(search.supernet.derive(), MACRO)
    assert abs(search.expected_latency().item() - argmax) < 0.1 * abs(search.expected_latency(1.0).item() - argmax)


def test_the_derived_estimate_reads_the_argmax_paths_latency_with_the_expected_latencys_gradient():
    table = synthetic_table()
    cfg = SearchConfig(latency_estimate="derived", latency_temperature=0.5)
    search = ProxylessSearch(Supernet(MACRO, 10), table, table.latency_range(MACRO)[1], cfg=cfg, seed=0)
    with torch.no_grad():
        for layer in search.supernet.layers:
            layer.alpha.copy_(torch.randn(len(layer.alpha)))
    derived = search.loss_latency()
    assert derived.item() == pytest.approx(table.predict(search.supernet.derive(), MACRO), rel=1e-6)
    grads = torch.autograd.grad(derived, list(search.supernet.arch_parameters()))
    expected = torch.autograd.grad(search.expected_latency(), list(search.supernet.arch_parameters()))
    assert all(torch.allclose(a, b) for a, b in zip(grads, expected))


def test_a_cosine_schedule_lowers_alphas_learning_rate_each_epoch_and_resumes_where_it_was():
    table = synthetic_table()
    cfg = SearchConfig(arch_schedule="cosine", search_epochs=4, arch_lr=0.1, eval_batches=1)
    search = ProxylessSearch(Supernet(MACRO, 10), table, table.latency_range(MACRO)[1], cfg=cfg, seed=0)
    train, val = loaders(32)
    rates = []
    for _ in range(3):
        search.epoch(train, val)
        rates.append(search.arch_opt.param_groups[0]["lr"])
    assert rates == pytest.approx([0.1, 0.1 * (1 + 2**-0.5) / 2, 0.05])
    resumed = ProxylessSearch(Supernet(MACRO, 10), table, table.latency_range(MACRO)[1], cfg=cfg, seed=0)
    resumed.load_state_dict(search.state_dict())
    search.epoch(train, val)
    resumed.epoch(train, val)
    assert resumed.arch_opt.param_groups[0]["lr"] == search.arch_opt.param_groups[0]["lr"] == pytest.approx(0.1 * (1 - 2**-0.5) / 2)
