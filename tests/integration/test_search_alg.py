"""The run context's ``run_search_alg`` verb: one Tune trial per candidate a Tune search algorithm
proposes (what black-box strategies build on), each trial's config and last metrics returned."""

from __future__ import annotations

import os

from ray import tune
from ray.tune.search import BasicVariantGenerator
from ray.util import placement_group_table

from raynas.config import ASHAConfig, parse_config
from raynas.execution import data_parallel as dp
from raynas.execution.blackbox import candidate_trial
from raynas.execution.schedulers import PerScenario
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


def test_data_parallel_candidates_train_as_train_jobs_and_end_when_asked(ray_session, sqlite_store, tmp_path):
    """A black-box search's candidates with ``ray.workers_per_trial: 2``: each trains as a 2-worker Ray
    Train job; ASHA's stop at its last rung is a request the workers read, so each job ends by itself
    and gives its workers back before the next candidate starts."""
    cfg = parse_config(
        {
            "name": "alg-dp",
            "targets": [{"name": "cpu-1t", "budget_fractions": [0.5]}],
            "data": {"limit": 128, "eval_limit": 64, "batch_size": 32},
            "ray": {"workers_per_trial": 2},
        }
    )
    tracker = ExperimentTracker(sqlite_store(tmp_path / "mlflow.db"), "alg-dp", tmp_path, run_name="alg-dp")
    ctx = PipelineContext(cfg, tmp_path, tracker, TuneRunner(cfg, str(tmp_path / "tune")), log=lambda _: None)
    storage = str(tmp_path / "tune" / "candidates-train")
    asha = ASHAConfig(max_epochs=2, grace_epochs=1, reduction_factor=2)
    archs = ["k3e3|skip|k3e3|skip|k3e3|skip", "k5e6|k3e3|k5e3|skip|k3e3|k3e3"]  # seeds 0 and 1: distinct Train runs
    trials = ctx.run_search_alg(
        "candidates",
        tune.with_parameters(candidate_trial, cfg=cfg, epochs=2, storage=storage),
        search_alg=BasicVariantGenerator(random_state=0),
        param_space={"scenario": "s", "arch": tune.grid_search(archs), "seed": tune.sample_from(lambda s: archs.index(s.config.arch))},
        num_samples=1,
        metric="val_acc",
        mode="max",
        scheduler=PerScenario(asha, {"s": float("inf")}, devices=2, ask=dp.ask_to_stop),
        workers=2,
    )
    assert sorted(t.config["arch"] for t in trials) == sorted(archs)
    assert all(t.metrics["workers"] == 2 and 0 <= t.metrics["val_acc"] <= 1 for t in trials)
    assert {g["state"] for g in placement_group_table().values()} <= {"REMOVED"}  # no Train job holds a bundle
