"""The retraining-recipe check: separation is judged against seed spreads, it trains real networks on
validation data only, and it refuses a check that could not judge anything."""

from __future__ import annotations

import json
from pathlib import Path

from tests import conftest

ROOT = Path(__file__).resolve().parents[2]


def recipe_check():
    return conftest.load_script("experiments/recipe_check.py")


def test_widths_are_separated_only_when_every_adjacent_gap_beats_both_spreads():
    module = recipe_check()
    assert module.separated({0.5: [0.50, 0.52], 1.0: [0.60, 0.61]})
    assert not module.separated({0.5: [0.50, 0.58], 1.0: [0.60, 0.61]})  # gap 6 points, x0.5's spread 8
    assert not module.separated({0.25: [0.40, 0.41], 0.5: [0.50, 0.51], 1.0: [0.505, 0.515]})  # one close pair is enough
    assert module.separated({1.0: [0.70, 0.71], 0.5: [0.50, 0.51]})  # order of the widths does not matter


def test_a_real_check_trains_every_width_and_seed_and_ends_with_its_json(tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)
    config = ROOT / "experiments/configs/smoke.yaml"
    code = recipe_check().main(
        [
            "--config",
            str(config),
            "--set",
            "retrain.epochs=1",
            "--set",
            "data.limit=256",
            "--widths",
            "0.5",
            "1.0",
            "--seeds",
            "2",
            "--workers",
            "1",
        ]
    )
    out = capsys.readouterr().out.strip().splitlines()
    assert code == 0
    line = json.loads(out[-1])
    assert line["widths"] == [0.5, 1.0] and line["epochs"] == 1 and set(line["val_acc_mean"]) == {"0.5", "1.0"}
    assert all(0.0 <= v <= 1.0 for v in line["val_acc_mean"].values()) and line["cpu_seconds"] > 0
    assert sum(row.startswith("[recipe_check] width") for row in out) == 4


def test_a_check_that_cannot_judge_is_refused_before_training(capsys):
    code = recipe_check().main(["--config", str(ROOT / "experiments/configs/smoke.yaml"), "--widths", "1.0"])
    assert code == 2 and "at least two widths" in capsys.readouterr().err
