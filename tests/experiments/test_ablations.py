"""The ablation plan: every variant is validated before anything runs, and the table reads each variant's NAS rows."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from raynas.config import ConfigError
from raynas.search.proxyless import ProxylessSearch, SearchConfig
from raynas.space.macro import get_space
from raynas.supernet.loss import latency_aware_loss
from raynas.supernet.supernet import Supernet
from tests import conftest
from tests.unit.hardware.test_lut import synthetic_table
from tests.unit.search.test_proxyless import loaders

ROOT = Path(__file__).resolve().parents[2]


def load_script():
    return conftest.load_script("experiments/ablations.py")


def test_the_shipped_plan_has_one_switch_per_variant_and_every_variant_parses():
    plan = load_script().load_plan(str(ROOT / "experiments" / "configs" / "plans" / "ablations.yaml"))
    assert {"default", "no-latency-loss", "uniform-alpha", "binarization-full", "binarization-reinforce", "no-warmup"} <= set(plan.variants)
    assert all(len(switches) <= 1 for switches in plan.variants.values())
    assert plan.config("no-latency-loss", {}).search.latency_loss == "none" and plan.config("uniform-alpha", {}).search.arch_every == 0


def test_a_bad_switch_names_its_variant_before_anything_runs(tmp_path):
    bad = tmp_path / "plan.yaml"
    bad.write_text(f"base: {ROOT / 'experiments/configs/smoke.yaml'}\nvariants:\n  typo: {{search.binarisation: two}}\n")
    with pytest.raises(ConfigError, match="ablation variant 'typo'.*binarisation"):
        load_script().load_plan(str(bad))


def test_the_table_reports_accuracy_window_share_and_argmax_per_variant():
    def rows(acc, constrained):
        return [
            {"method": "proxyless", "target": "cpu-1t", "budget_ms": 1.0, "test_acc": a, "constrained": c, "argmax_ms": 1.2 if c else 0.95}
            for a, c in zip(acc, constrained)
        ] + [{"method": "random-ws", "target": "cpu-1t", "budget_ms": 1.0, "test_acc": 0.1}]

    out = load_script().table({"default": rows([0.9, 0.92], [False, True]), "no-latency-loss": rows([0.8, 0.84], [True, True])})
    by = {r["variant"]: r for r in out}
    assert by["default"]["acc_mean"] == pytest.approx(0.91) and by["default"]["window_picked"] == 1 and by["default"]["seeds"] == 2
    assert by["no-latency-loss"]["window_picked"] == 2 and by["no-latency-loss"]["argmax_over_budget"] == pytest.approx(1.2)


def test_no_latency_loss_is_cross_entropy_and_no_arch_steps_leave_alpha_uniform():
    ce = torch.tensor(2.0)
    assert latency_aware_loss(ce, torch.tensor(5.0), 1.0, form="none") is ce
    macro, table = get_space("mnist-small"), synthetic_table()
    search = ProxylessSearch(
        Supernet(macro, 10), table, table.latency_range(macro)[1] * 0.5, cfg=SearchConfig(arch_every=0, eval_batches=1), seed=0
    )
    search.epoch(*loaders())
    assert all(torch.allclose(p, torch.full_like(p, 1 / len(p))) for p in search.supernet.probabilities())
