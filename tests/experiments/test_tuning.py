"""Tuning the search settings: variants are scored on validation accuracy only, the shipped CIFAR-10
plan cuts the sweep to its tuning scenarios, and a bad plan or variant is refused before any run."""

from __future__ import annotations

from pathlib import Path

import pytest

from raynas.config import ConfigError
from tests import conftest

ROOT = Path(__file__).resolve().parents[2]


def tuning():
    return conftest.load_script("experiments/tune_search.py")


def _row(method: str, val: float, test: float, measured: float = 0.9) -> dict:
    return {"method": method, "val_acc": val, "test_acc": test, "measured_ms": measured, "budget_ms": 1.0}


def test_the_score_reads_validation_accuracy_and_never_test_accuracy():
    rows = [
        _row("proxyless", 0.6, 0.1),
        _row("proxyless", 0.7, 0.2, measured=1.2),
        _row("random-ws", 0.55, 0.9),
        _row("hand-designed", 0.99, 0.99),
    ]
    module = tuning()
    score = module.score(rows)
    assert score.nas_val == pytest.approx(0.65) and score.random_val == pytest.approx(0.55) and score.gap_pp == pytest.approx(10.0)
    assert score.within_budget == pytest.approx(0.5) and score.finalists == 2
    assert module.score([dict(r, test_acc=0.0) for r in rows]) == score
    assert module.score(rows[:2]).gap_pp is None  # random search off: no gap


@pytest.mark.integration
def test_the_score_of_a_real_run_and_its_table(tiny_sweep, capsys):
    summary, _, _ = tiny_sweep
    assert all(0.0 <= r["val_acc"] <= 1.0 for r in summary["results"])
    module = tuning()
    score = module.score(summary["results"])
    assert score.finalists == 4 and score.random_val is not None
    plan = module.plans.VariantPlan("tuning", "base.yaml", {}, {"as-is": {}, "slow": {"search.arch_lr": 0.02}})
    line = module.report(plan, {"as-is": score, "slow": score}, {"as-is": 10.0, "slow": 20.0}, {"as-is": "a", "slow": "b"})
    assert line["best"] == "as-is" and line["tuning_core_seconds"] == 30 and line["best_switches"] == {}
    assert "search.arch_lr=0.02" in capsys.readouterr().out


def test_the_shipped_cifar10_plan_tunes_at_the_tightest_budgets_with_one_seed():
    conftest.shared_data("cifar10")  # the base config reads the data folder
    plan = tuning().load_plan(str(ROOT / "experiments/configs/plans/cifar10-tuning.yaml"))
    configs = plan.configs([], {})
    assert "as-is" in configs and len(configs) >= 2
    for cfg in configs.values():
        assert [t.budget_fractions for t in cfg.targets] == [(0.25,), (0.25,)] and cfg.evaluation.seeds == 1
        assert cfg.evaluation.random_search and not cfg.evaluation.hand_designed_widths and not cfg.evaluation.asha.enabled


def test_an_unknown_variant_or_a_bad_switch_is_refused_before_any_run(tmp_path, capsys):
    plan = tmp_path / "plan.yaml"
    plan.write_text(f"base: {ROOT / 'experiments/configs/smoke.yaml'}\nvariants:\n  as-is: {{}}\n")
    assert tuning().main(["--plan", str(plan), "--variant", "nope"]) == 2
    assert "'nope' is not in the tuning plan; valid: as-is" in capsys.readouterr().err
    plan.write_text(f"base: {ROOT / 'experiments/configs/smoke.yaml'}\nvariants:\n  typo: {{search.arch_lrr: 0.1}}\n")
    with pytest.raises(ConfigError, match="tuning variant 'typo'.*arch_lrr"):
        tuning().load_plan(str(plan))
    plan.write_text("base: [unclosed\n")
    with pytest.raises(ConfigError, match="not valid YAML"):
        tuning().load_plan(str(plan))


@pytest.mark.integration
def test_a_finished_variant_is_read_back_not_rerun(ray_session, tmp_path):
    module = tuning()
    plan_file = tmp_path / "plan.yaml"
    plan_file.write_text(f"base: {ROOT / 'experiments/configs/smoke.yaml'}\nvariants:\n  as-is: {{}}\n")
    plan = module.load_plan(str(plan_file))
    configs = plan.configs([], {})
    out = tmp_path / "out"
    out.mkdir()
    rows = [_row("proxyless", 0.6, 0.1), _row("random-ws", 0.5, 0.2)]
    module.write_json(
        out / "as-is.json", {"switches": {}, "config": configs["as-is"].to_dict(), "rows": rows, "core_seconds": 12.0, "run_dir": "r"}
    )
    scores, costs, run_dirs = module.run_variants(plan, configs, out)
    assert scores["as-is"].nas_val == pytest.approx(0.6) and costs == {"as-is": 12.0} and run_dirs == {"as-is": "r"}
