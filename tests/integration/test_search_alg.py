"""The run context's ``run_search_alg`` verb: one Tune trial per candidate a Tune search algorithm
proposes (what black-box strategies build on), each trial's config and last metrics returned."""

from __future__ import annotations

import os

from ray import tune
from ray.tune.search import BasicVariantGenerator

from raynas.config import parse_config
from raynas.orchestration.context import PipelineContext
from raynas.orchestration.tuner import TuneRunner
from raynas.tracking.mlflow_tracker import ExperimentTracker


def test_each_proposed_candidate_runs_once_and_reports_its_own_score(ray_session, sqlite_store, tmp_path, capsys):
    cfg = parse_config({"name": "alg", "targets": [{"name": "cpu-1t", "budget_fractions": [0.5]}], "ray": {"max_concurrent_trials": 1}})
    tracker = ExperimentTracker(sqlite_store(tmp_path / "mlflow.db"), "alg", tmp_path, run_name="alg")
    ctx = PipelineContext(cfg, tmp_path, tracker, TuneRunner(cfg, str(tmp_path / "tune")), log=lambda _: None)

    def objective(config: dict) -> None:  # defined here: Ray pickles it by value (tests/ is not importable on workers)
        tune.report({"score": -((config["x"] - 3) ** 2)})

    trials = ctx.run_search_alg(
        "blackbox",
        objective,
        search_alg=BasicVariantGenerator(random_state=0),
        param_space={"x": tune.grid_search([1, 3, 5])},
        num_samples=1,
        metric="score",
        mode="max",
    )
    assert sorted(t.config["x"] for t in trials) == [1, 3, 5]
    assert all(t.metrics["score"] == -((t.config["x"] - 3) ** 2) for t in trials)
    assert max(trials, key=lambda t: t.metrics["score"]).config["x"] == 3
    printed = capsys.readouterr().out  # the phase's view is its progress lines, not Tune's tables and paths
    assert "[raynas] blackbox: 3/3 trials done" in printed and "Configuration for experiment" not in printed
    assert "View detailed results" not in printed and "RAY_AIR_NEW_OUTPUT" not in os.environ  # the engine was set for the run only
