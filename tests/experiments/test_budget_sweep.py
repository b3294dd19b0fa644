"""The budget sweep's --smoke-test, in-process on the session Ray: rows, headline JSON, report."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

import pyarrow.parquet as pq
import pytest

ROOT = Path(__file__).resolve().parents[2]
pytestmark = pytest.mark.integration


def load_script():
    spec = importlib.util.spec_from_file_location("budget_sweep", ROOT / "experiments" / "budget_sweep.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_smoke_sweep_prints_the_comparison_and_headline(ray_session, tmp_path, capsys):
    sweep = load_script()
    assert sweep.main(["--smoke-test", "--set", f"run_root={tmp_path}", "--set", "profile.settle_seconds=0"]) == 0
    out = capsys.readouterr().out.strip().splitlines()
    line = json.loads(out[-1])
    assert {"rows": 14, "budgets": 2, "seeds": 2, "comparisons": 2} == {k: line[k] for k in ("rows", "budgets", "seeds", "comparisons")}  # 4 NAS, 4 random, 4 ASHA, 2 hand
    assert 0 <= line["nas_wins"] <= 2 and isinstance(line["nas_minus_random_mean_pp"], float)
    assert any(row.startswith("NAS versus random search") for row in out)
    run_dir = Path(line["run_dir"])
    table = pq.read_table(run_dir / "results.parquet").to_pylist()
    assert sorted({(r["method"], r["seed"]) for r in table}) == [(m, s) for m in ("asha", "hand-designed", "proxyless", "random") for s in (0, 1)]
    assert any("asha_acc_mean" in row for row in out)  # the comparison table's early-stopped random search column
    assert (run_dir / "report.html").is_file() and (run_dir / "record.json").is_file()


def test_bad_sweep_options_fail_cleanly(tmp_path, capsys):
    sweep = load_script()
    assert sweep.main(["--config", str(tmp_path / "missing.yaml")]) == 2
    assert "does not exist" in capsys.readouterr().err
