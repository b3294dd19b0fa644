"""The budget sweep: the shared tiny sweep's printed rows, headline JSON and report; its smoke
settings and bad options."""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

import pyarrow.parquet as pq
import pytest

from tests.conftest import load_script, shared_data
from tests.scripts import run_json

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.integration
def test_sweep_prints_the_comparison_and_headline(tiny_sweep):
    _, run_dir, out = tiny_sweep
    line = json.loads(out[-1])
    assert {"rows": 16, "budgets": 2, "seeds": 2, "comparisons": 2} == {
        k: line[k] for k in ("rows", "budgets", "seeds", "comparisons")
    }  # 4 NAS, 4 random, 4 ASHA, 2 hand x 2 targets
    assert 0 <= line["nas_wins"] <= 2 and isinstance(line["nas_minus_random_mean_pp"], float)
    assert any(row.startswith("NAS versus random search") for row in out)
    assert Path(line["run_dir"]) == run_dir
    table = pq.read_table(run_dir / "results.parquet").to_pylist()
    assert sorted({(r["method"], r["seed"]) for r in table}) == [
        (m, s) for m in ("asha", "hand-designed", "proxyless", "random-ws") for s in (0, 1)
    ]
    assert any("asha_acc_mean" in row for row in out)  # the comparison table's early-stopped random search column
    assert (run_dir / "report.html").is_file() and (run_dir / "record.json").is_file()


@pytest.mark.integration
def test_page_from_a_finished_sweep_carries_its_commit_and_cost(tiny_sweep, tmp_path):
    """``--page-from``: the page's comparisons recomputed from results.parquet, and from record.json the
    commit the run finished at and each method's trial seconds."""
    _, run_dir, out = tiny_sweep
    page = load_script("experiments/budget_sweep.py").write_sweep_page(run_dir, tmp_path)
    data = json.loads((page / "results.json").read_text())
    record = json.loads((run_dir / "record.json").read_text())
    assert data["summary"]["nas_minus_random_mean_pp"] == json.loads(out[-1])["nas_minus_random_mean_pp"]
    assert set(data["summary"]["trial_seconds"]) == {"proxyless", "random-ws", "asha", "hand-designed"}
    seconds = data["summary"]["trial_seconds"]
    assert all(seconds[m]["retrain"] > 0 for m in ("proxyless", "random-ws", "hand-designed")) and seconds["proxyless"]["search"] > 0
    assert f"finished at commit {record['git_commit'][:7]}" in data["notes"]


def test_smoke_settings_give_one_target_two_budgets_two_seeds_and_the_asha_baseline(tmp_path):
    sweep = load_script("experiments/budget_sweep.py")
    cfg = sweep.sweep_config(str(ROOT / "experiments" / "configs" / "sweep.yaml"), {"run_root": str(tmp_path)}, None, None, True)
    assert [t.budget_fractions for t in cfg.targets] == [(0.3, 0.7)] and cfg.evaluation.seeds == 2
    assert cfg.evaluation.asha.enabled and cfg.search.search_epochs == 1 and cfg.retrain.epochs == 1
    assert cfg.data.eval_limit == cfg.data.test_limit == 256  # a config's larger test set is not scored in a smoke run
    spread = sweep.sweep_config(str(ROOT / "experiments" / "configs" / "sweep.yaml"), {}, 3, 4, False)
    assert all(t.budget_fractions == (0.25, 0.5, 0.75) for t in spread.targets) and spread.evaluation.seeds == 4


@pytest.mark.integration
def test_cifar10_sweep_smoke_runs_on_the_real_data(tmp_path):
    """The CIFAR-10 sweep's smoke version on a 512-image slice, one seed (the tiny sweep covers seeds):
    every row tested on a shuffled test split (a class-ordered one read 0 % for every net), the JSON
    line naming the dataset."""
    root = shared_data("cifar10")
    argv = [
        sys.executable,
        "experiments/budget_sweep.py",
        "--config",
        "experiments/configs/cifar10-sweep.yaml",
        "--smoke-test",
        "--set",
        f"run_root={tmp_path}",
        "--set",
        f"data.root={root}",
        "--set",  # a roofline target: what this checks is the real data's path, not measurement (tests/integration)
        "targets=[{name: phone, budget_fractions: [0.5], estimate: {device: {name: phone-ish, peak_gflops: 20.0, bandwidth_gbs: 8.0}}}]",
        "--set",  # the unscaled reference: an estimated table covers the config's space only
        "evaluation.hand_designed_widths=[1.0]",
        "--set",
        "evaluation.seeds=1",
    ]
    line = run_json(argv, cwd=ROOT, env=os.environ | {"RAY_ADDRESS": "local"})
    assert line["dataset"] == "cifar10" and line["comparisons"] == 2 and line["seeds"] == 1
    table = pq.read_table(Path(line["run_dir"]) / "results.parquet").to_pylist()
    assert {r["method"] for r in table} == {"proxyless", "random-ws", "hand-designed"} and all(r["test_acc"] > 0.03 for r in table)


def test_bad_sweep_options_fail_cleanly(tmp_path, capsys):
    sweep = load_script("experiments/budget_sweep.py")
    assert sweep.main(["--config", str(tmp_path / "missing.yaml")]) == 2
    assert "does not exist" in capsys.readouterr().err
