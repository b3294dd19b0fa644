import json
import math
import time

from raynas.evaluation.compare import HAND
from raynas.evaluation.record import PhaseClock, git_commit, library_versions, trial_seconds
from raynas.files import write_json

PROXYLESS = "proxyless"


def test_phase_clock_accumulates_per_phase_even_when_the_phase_raises():
    clock = PhaseClock()
    with clock("search"):
        time.sleep(0.02)
    try:
        with clock("search"):
            raise RuntimeError
    except RuntimeError:
        pass
    with clock("retrain"):
        pass
    assert set(clock.seconds) == {"search", "retrain"} and clock.seconds["search"] >= 0.02


def test_trial_seconds_count_each_finalist_once():
    base = {"budget_ms": 1.0, "seed": 0, "arch_id": "a", "search_seconds": 10.0, "retrain_seconds": 5.0}
    rows = [base | {"method": PROXYLESS, "target": "cpu-1t"}, base | {"method": PROXYLESS, "target": "cpu-1t-b16"}]
    rows += [base | {"method": HAND, "target": t, "budget_ms": None, "search_seconds": 0.0} for t in ("cpu-1t", "cpu-1t-b16")]
    assert trial_seconds(rows) == {
        PROXYLESS: {"search": 20.0, "retrain": 10.0, "finalists": 2},
        HAND: {"search": 0.0, "retrain": 5.0, "finalists": 1},
    }


def test_versions_commit_and_json_without_nan(tmp_path):
    assert {"python", "torch", "ray", "mlflow"} <= set(library_versions())
    assert git_commit()
    path = write_json(tmp_path / "r.json", {"p": math.nan, "x": [1.5, math.inf]})
    assert json.loads(path.read_text()) == {"p": None, "x": [1.5, None]}
