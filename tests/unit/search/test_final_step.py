"""One final step for both weight-sharing searches: K in-window candidates re-scored on the same fixed batches."""

import pytest
import torch

from raynas.config import parse_config
from raynas.data.datasets import DataConfig, load_splits
from raynas.search.proxyless import EpochSearch, ProxylessSearch, SearchConfig, weight_lr
from raynas.search.random_search import RandomSearch
from raynas.space.architecture import Architecture
from raynas.space.macro import get_space
from raynas.strategies.proxyless import seed_fixed_batches
from raynas.supernet.scoring import FixedBatches
from raynas.supernet.supernet import Supernet
from tests.unit.hardware.test_lut import synthetic_table
from tests.unit.search.test_proxyless import loaders

MACRO = get_space("mnist-small")


def fixed() -> FixedBatches:
    train, val = loaders()
    return FixedBatches.draw(train, val, recalibration=1, validation=2)


def nas(k: int, *, final_train_steps: int = 0) -> tuple[EpochSearch, FixedBatches, float]:
    table = synthetic_table()
    low, high = table.latency_range(MACRO)
    budget = low + 0.5 * (high - low)
    cfg = SearchConfig(search_epochs=1, arch_lr=0.1, eval_batches=1, final_top_k=k, final_train_steps=final_train_steps)
    train, val = loaders()
    batches = fixed()
    return (
        EpochSearch(ProxylessSearch(Supernet(MACRO, 10), table, budget, cfg=cfg, seed=0), train, val, epochs=1, fixed=batches),
        batches,
        budget,
    )


def test_nas_ends_with_its_most_probable_in_window_paths_rescored_on_the_fixed_batches():
    search, batches, budget = nas(4)
    metrics = search.step()
    ranked = search.search.ranked_in_window(4)
    low, high = search.search.window()
    assert ranked[0] == search.search.derive()[0] and len({a.ops for a in ranked}) == len(ranked) == 4
    assert all(low <= search.search.lut.predict(a, MACRO) <= high for a in ranked)
    log_p = [
        sum(
            float(torch.log_softmax(layer.alpha.detach(), 0)[layer.choices.index(op)])
            for layer, op in zip(search.search.supernet.layers, a.ops)
        )
        for a in ranked[1:]
    ]
    assert log_p == sorted(log_p, reverse=True)  # after the derived path, most probable first
    scores = {a.to_string(): batches.score(search.search.supernet, a) for a in ranked}
    assert metrics["arch"] in scores and metrics["score"] == max(scores.values()) == scores[metrics["arch"]]
    assert metrics["final_candidates"] == 4 and "derived_arch" in metrics


def test_without_a_final_step_nas_returns_its_derived_path():
    search, _, _ = nas(0)
    metrics = search.step()
    assert "derived_arch" not in metrics and metrics["arch"] == search.search.derive()[0].to_string()


def test_random_search_ends_with_k_window_draws_rescored_on_the_same_fixed_batches():
    table = synthetic_table()
    low, high = table.latency_range(MACRO)
    budget = low + 0.5 * (high - low)
    cfg = SearchConfig(eval_batches=1, final_top_k=3, final_train_steps=2)
    batches = fixed()
    search = RandomSearch(Supernet(MACRO, 10), table, budget, cfg=cfg, seed=0, train_fraction=0.5, fixed=batches)
    metrics = search.run(*loaders(), seconds=0.5)
    assert metrics["candidates"] == 3 and search.finished
    assert metrics["val_acc"] == batches.score(search.supernet, Architecture.from_string(MACRO.name, metrics["arch"]))
    assert search.window[0] <= metrics["derived_latency_ms"] <= search.window[1]


def test_both_searches_of_a_seed_draw_the_same_fixed_batches_whatever_their_loaders_did():
    cfg = parse_config({"name": "t", "targets": [{"name": "cpu-1t", "budget_fractions": [0.5]}], "data": {"limit": 256, "eval_limit": 128}})
    splits = load_splits(DataConfig(limit=256, eval_limit=128))
    first = seed_fixed_batches(cfg, splits, seed=3)
    train, _, _ = splits.loaders(cfg.data.batch_size, 3)
    next(iter(train))  # a search's own loader moving on changes nothing
    second = seed_fixed_batches(cfg, splits, seed=3)
    other = seed_fixed_batches(cfg, splits, seed=4)
    for a, b in zip(first.recalibration + first.validation, second.recalibration + second.validation):
        assert torch.equal(a[0], b[0]) and torch.equal(a[1], b[1])
    assert not torch.equal(first.validation[0][0], other.validation[0][0])


def test_a_cosine_weight_schedule_spans_warm_up_and_search():
    cfg = SearchConfig(warmup_epochs=2, search_epochs=2, weight_lr=0.1, weight_schedule="cosine")
    assert [round(weight_lr(cfg, e), 4) for e in range(5)] == [0.1, 0.0854, 0.05, 0.0146, 0.0]
    assert weight_lr(SearchConfig(weight_lr=0.1), 3) == 0.1


@pytest.mark.faults
@pytest.mark.parametrize("field, value", [("weight_schedule", "step"), ("label_smoothing", 1.0), ("final_top_k", -1)])
def test_bad_final_step_and_schedule_settings_are_named(field, value):
    from raynas.config import ConfigError

    with pytest.raises(ConfigError, match=f"search.{field}"):
        parse_config({"name": "t", "targets": [{"name": "cpu-1t", "budget_fractions": [0.5]}], "search": {field: value}})


def test_nas_final_step_trains_the_candidates_before_rescoring():
    torch.manual_seed(0)
    trained, _, _ = nas(3, final_train_steps=2)
    torch.manual_seed(0)
    untouched, _, _ = nas(3, final_train_steps=0)
    trained.step(), untouched.step()
    pairs = zip(trained.search.supernet.weight_parameters(), untouched.search.supernet.weight_parameters())
    assert any(not torch.equal(a, b) for a, b in pairs)
