import numpy as np
import pandas as pd
from ray.tune.experiment import Trial
from ray.tune.schedulers import TrialScheduler

from raynas.api import Job, Scenario
from raynas.config import ASHAConfig
from raynas.execution.schedulers import PerScenario
from raynas.orchestration.asha import anytime, proposed_all, survivor
from raynas.search.random_search import window_candidates
from raynas.space.architecture import Architecture
from raynas.space.macro import get_space
from tests.unit.hardware.test_lut import synthetic_table

MACRO = get_space("mnist-small")


def test_candidates_are_drawn_from_the_budget_window():
    table = synthetic_table()
    low, high = table.latency_range(MACRO)
    budget = low + 0.4 * (high - low)
    archs = window_candidates(table, MACRO, budget, floor=0.9, n=32, seed=0)
    latencies = [table.predict(Architecture.from_string(MACRO.name, a), MACRO) for a in archs]
    assert len(set(archs)) > 20 and all(0.9 * budget <= ms <= budget for ms in latencies)
    assert archs == window_candidates(table, MACRO, budget, floor=0.9, n=32, seed=0)


class Controller:
    """The two calls PerScenario makes on Tune's controller, over real Trial objects."""

    def __init__(self, trials):
        self.trials, self.stopped = trials, []

    def get_trials(self):
        return self.trials

    def stop_trial(self, trial):
        trial.set_status(Trial.TERMINATED)
        self.stopped.append(trial.config["scenario"] + str(trial.config["candidate"]))


def test_a_scenarios_budget_stops_its_own_trials_only():
    trials = [Trial("t", config={"scenario": s, "candidate": i}, stub=True) for s, i in (("a", 0), ("a", 1), ("a", 2), ("b", 0), ("b", 1))]
    controller, sched = Controller(trials), PerScenario(ASHAConfig(max_epochs=4), {"a": 10.0, "b": 100.0}, devices=2)
    assert sched.set_search_properties("val_acc", "max")
    for t in trials:
        sched.on_trial_add(controller, t)
    for t in trials[:2] + trials[3:4]:
        t.set_status(Trial.RUNNING)
    result = {"training_iteration": 1, "val_acc": 0.5}
    assert sched.on_trial_result(controller, trials[0], result | {"time_this_iter_s": 2.0}) == TrialScheduler.CONTINUE
    assert sched.on_trial_result(controller, trials[3], result | {"time_this_iter_s": 40.0}) == TrialScheduler.CONTINUE
    assert sched.on_trial_result(controller, trials[1], result | {"time_this_iter_s": 3.0}) == TrialScheduler.STOP  # a: 4 + 6 device-s
    assert controller.stopped == ["a0", "a2"] and sched.spent == {"a": 10.0, "b": 80.0}
    trials[1].set_status(Trial.TERMINATED)  # what Tune does with a STOP
    assert trials[3].status == Trial.RUNNING and sched.choose_trial_to_run(controller) is trials[4]  # b goes on


def test_the_survivor_is_the_best_of_the_trials_that_trained_longest():
    results = [
        {"training_iteration": 1, "val_acc": 0.9, "arch": "a"},
        {"training_iteration": 3, "val_acc": 0.6, "arch": "b"},
        {"training_iteration": 3, "val_acc": 0.7, "arch": "c"},
    ]
    assert survivor(results)["arch"] == "c"


def test_anytime_is_monotone_over_device_seconds_in_finishing_order():
    frames = [
        pd.DataFrame({"timestamp": [1, 3], "time_this_iter_s": [1.0, 1.0], "val_acc": [0.2, 0.5]}),
        pd.DataFrame({"timestamp": [2], "time_this_iter_s": [2.0], "val_acc": [0.4]}),
    ]
    points = anytime(frames, devices=1)
    assert points == [(1.0, 0.2), (3.0, 0.4), (4.0, 0.5)]
    assert np.all(np.diff([p[1] for p in points]) >= 0)


class Finished:
    """What ``proposed_all`` reads of a restored Tune result: its config and its per-epoch frame."""

    def __init__(self, scenario: str, seconds: list[float] | None) -> None:
        self.config = {"scenario": scenario}
        self.metrics_dataframe = None if seconds is None else pd.DataFrame({"time_this_iter_s": seconds})


def test_a_restored_asha_run_counts_as_finished_only_when_each_scenario_spent_its_budget_or_its_candidates():
    jobs = [Job.of(Scenario("t", 1.0, 0), "asha", budget_seconds=10.0), Job.of(Scenario("t", 2.0, 0), "asha", budget_seconds=10.0)]
    a, b = (j.key for j in jobs)
    archs = {a: ["x", "y", "z"], b: ["x", "y"]}
    spent_a = [Finished(a, [3.0, 3.0]), Finished(a, None)]  # 6 s x 2 devices: spent; the unstarted trial counts as created
    assert proposed_all([*spent_a, Finished(b, [1.0]), Finished(b, [1.0])], jobs=jobs, archs=archs, devices=2)  # b: every candidate
    assert not proposed_all([*spent_a, Finished(b, [1.0])], jobs=jobs, archs=archs, devices=2)  # b was cut short: run it again
    assert not proposed_all([Finished(a, [3.0]), *[Finished(b, [9.0])] * 2], jobs=jobs, archs=archs, devices=1)  # a: 3 of 10 s, 1 of 3
