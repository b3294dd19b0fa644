"""Every benchmark runs in --smoke-test mode and ends with one JSON line of its headline figures."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def run_smoke(script: str, *args: str) -> dict:
    done = subprocess.run([sys.executable, str(ROOT / script), "--smoke-test", *args], capture_output=True, text=True, timeout=600, cwd=ROOT)
    assert done.returncode == 0, done.stderr[-2000:]
    return json.loads(done.stdout.strip().splitlines()[-1])


def test_supernet_cost_reports_ratios():
    out = run_smoke("experiments/bench/supernet_cost.py")
    assert {"memory_ratio_two", "time_ratio_two", "memory_ratio_full", "candidates", "device"} <= set(out)
    by_n = out["memory_ratio_full_by_candidates"]
    assert by_n["4"] < by_n["6"] <= by_n["7"]
    assert out["memory_ratio_two"] < out["memory_ratio_full"]
