"""``PerScenario`` in a real Tune run: with HyperBand, a scenario whose budget is spent stops at once
while another runs its brackets to the end, its paused trials going on from their saved epoch
(``report_epoch`` / ``restored_state``, as ``standalone_trial`` does); with ASHA, ``InBudget``
proposes candidates only while their scenario's budget lasts, so Tune creates no trial that never starts;
with ``ask``, stopped trials end by themselves (as data-parallel trials must)."""

from __future__ import annotations

import pytest
from ray import tune
from ray.tune.stopper import Stopper

from raynas.config import ASHAConfig
from raynas.execution.schedulers import InBudget, PerScenario, scheduler
from raynas.orchestration.asha import report_epoch, restored_state

pytestmark = pytest.mark.integration


def test_hyperband_per_scenario_stops_only_the_spent_scenario(ray_session, tmp_path):
    def toy_trial(config: dict) -> None:  # nested: pickled by value, so Ray's workers need not import this module
        state = restored_state(tune.get_checkpoint())
        for epoch in range(0 if state is None else state["epoch"] + 1, 3):  # later candidates are better
            report_epoch({"val_acc": config["candidate"] / 10 + epoch / 100, "epoch": epoch}, {"epoch": epoch})

    per_scenario, stranded = (
        PerScenario(ASHAConfig(scheduler="hyperband", max_epochs=3, reduction_factor=3), {"spent": 0.0, "free": 1e9}, devices=1),
        Stranded(),
    )
    candidates = 5  # HyperBand (max_t 3, eta 3): 2 trials run 3 epochs, then a bracket of 3 keeps 1 after its first
    grid = tune.Tuner(
        tune.with_resources(toy_trial, {"cpu": 1}),
        param_space={"scenario": tune.grid_search(["spent", "free"]), "candidate": tune.grid_search(list(range(candidates)))},
        tune_config=tune.TuneConfig(metric="val_acc", mode="max", scheduler=per_scenario, reuse_actors=True),  # as the pipeline runs it
        run_config=tune.RunConfig(name="per-scenario", storage_path=str(tmp_path), stop=stranded, callbacks=[stranded]),
    ).fit()
    assert not stranded.stop_all()
    ran = [r for r in grid if r.config is not None and r.metrics_dataframe is not None]
    spent = [len(r.metrics_dataframe) for r in ran if r.config["scenario"] == "spent"]
    assert 1 <= sum(spent) <= 2  # the first report spent the budget; at most one other trial had reported
    epochs = {r.config["candidate"]: list(r.metrics_dataframe["epoch"]) for r in ran if r.config["scenario"] == "free"}
    assert len(epochs) == candidates and epochs[candidates - 1] == [0, 1, 2]  # the best went the distance
    assert sorted(map(len, epochs.values())) == [1, 1, 3, 3, 3]  # HyperBand paused a bracket of three and resumed its best
    assert all(e == sorted(set(e)) for e in epochs.values())  # a resumed trial never trained an epoch twice
    assert not grid.errors


def test_asha_candidates_are_proposed_only_while_their_budget_lasts(ray_session, tmp_path):
    def toy_trial(config: dict) -> None:
        for epoch in range(3):
            tune.report({"val_acc": config["candidate"] / 10 + epoch / 100, "epoch": epoch})

    candidates = 6
    per_scenario = PerScenario(ASHAConfig(max_epochs=3, grace_epochs=1, reduction_factor=3), {"spent": 1e-9, "free": 1e9}, devices=1)
    grid = tune.Tuner(
        tune.with_resources(toy_trial, {"cpu": 1}),
        tune_config=tune.TuneConfig(  # as the pipeline runs ASHA
            metric="val_acc",
            mode="max",
            scheduler=per_scenario,
            search_alg=InBudget({"spent": candidates, "free": candidates}, per_scenario),
            num_samples=2 * candidates,
            reuse_actors=True,
        ),
        run_config=tune.RunConfig(name="in-budget", storage_path=str(tmp_path)),
    ).fit()
    started = [r for r in grid if r.metrics_dataframe is not None]
    assert len(grid) - len(started) <= 1  # at most the one trial waiting to start when a budget was spent
    assert sorted(r.config["candidate"] for r in started if r.config["scenario"] == "free") == list(range(candidates))
    assert 1 <= sum(len(r.metrics_dataframe) for r in started if r.config["scenario"] == "spent") <= 2  # the first report spent it
    assert len(grid) <= candidates + 3  # a grid would have created all 2 x 6
    assert not grid.errors


def test_asked_trials_end_by_themselves_instead_of_being_stopped(ray_session, tmp_path):
    """Data-parallel trials are not stopped by Tune, which would kill their Train job's controller and
    strand its placement group: ASHA's stops and the spent budget's become requests (``ask``) that the
    trial reads after each epoch, and it returns by itself."""

    folder = str(tmp_path)  # closed over: InBudget proposes only the scenario and the candidate

    def toy_trial(config: dict) -> None:
        import pathlib

        from raynas.execution import data_parallel as dp

        run = f"{folder}/{config['scenario']}-{config['candidate']}"
        for epoch in range(3):  # later candidates are worse: ASHA stops them at its first rung
            tune.report({"val_acc": 1 - config["candidate"] / 10 + epoch / 100})
            if dp.stop_requested(run):
                break
        pathlib.Path(f"{run}.returned").write_text(str(epoch + 1))

    def ask(trial) -> None:
        from raynas.execution import data_parallel as dp

        dp.request_stop(f"{folder}/{trial.config['scenario']}-{trial.config['candidate']}")

    candidates = 6
    asha = ASHAConfig(max_epochs=3, grace_epochs=1, reduction_factor=3)
    per_scenario = PerScenario(asha, {"spent": 1e-9, "free": 1e9}, devices=1, ask=ask)
    grid = tune.Tuner(
        tune.with_resources(toy_trial, {"cpu": 1}),
        tune_config=tune.TuneConfig(
            metric="val_acc",
            mode="max",
            scheduler=per_scenario,
            search_alg=InBudget({"spent": candidates, "free": candidates}, per_scenario),
            num_samples=2 * candidates,
        ),
        run_config=tune.RunConfig(name="asked", storage_path=str(tmp_path)),
    ).fit()
    assert not grid.errors
    started = [r for r in grid if r.config is not None and r.metrics_dataframe is not None]  # not the one left waiting
    for r in started:  # every trial that ran returned by itself, after as many epochs as it reported
        returned = tmp_path / f"{r.config['scenario']}-{r.config['candidate']}.returned"
        assert returned.is_file() and int(returned.read_text()) == len(r.metrics_dataframe)
    free = [len(r.metrics_dataframe) for r in started if r.config["scenario"] == "free"]
    assert len(free) == candidates and max(free) == 3 and min(free) < 3  # ASHA's stops were asked for and honoured
    assert 1 <= sum(len(r.metrics_dataframe) for r in started if r.config["scenario"] == "spent") <= 2


def test_hyperband_bracket_finishing_beside_a_pause_leaves_no_trial_paused(ray_session, tmp_path):
    """Two trials of one final-rung bracket report their last epoch at the same instant: under Ray's own
    HyperBand the first is paused, the second finishes the bracket before that pause lands, and the
    paused trial is never stopped or resumed (the run hangs). ``scheduler`` stops a trial at max_t instead."""

    def lockstep_trial(config: dict) -> None:  # both start, then report each epoch at the same wall-clock instant
        import pathlib
        import time

        folder = pathlib.Path(config["folder"])
        (folder / f"{config['candidate']}.start").write_text(str(time.time()))
        while len(starts := list(folder.glob("*.start"))) < 2:
            time.sleep(0.01)
        t0 = max(float(p.read_text()) for p in starts) + 0.5
        for epoch in range(3):
            time.sleep(max(0.0, t0 + epoch * 0.5 - time.time()))
            tune.report({"val_acc": config["candidate"] / 10 + epoch / 100})

    stranded = Stranded()
    tune.Tuner(  # max_t 3, eta 3: the first bracket holds these two trials and runs them to max_t
        tune.with_resources(lockstep_trial, {"cpu": 1}),
        param_space={"candidate": tune.grid_search([0, 1]), "folder": str(tmp_path)},
        tune_config=tune.TuneConfig(
            metric="val_acc",
            mode="max",
            scheduler=scheduler(ASHAConfig(scheduler="hyperband", max_epochs=3, reduction_factor=3)),
            time_budget_s=120,
        ),
        run_config=tune.RunConfig(name="lockstep", storage_path=str(tmp_path), stop=stranded, callbacks=[stranded]),
    ).fit()
    assert not stranded.stop_all()


class Stranded(tune.Callback, Stopper):
    """Ends a Tune run whose controller stepped ``STEPS`` times in a row with a trial paused and none
    running or waiting to start: a paused trial nobody resumes (after a promotion, the next step starts it)."""

    STEPS = 20

    def __init__(self) -> None:
        self.idle_steps = 0

    def on_step_end(self, iteration: int, trials: list, **info) -> None:
        if self.stop_all():
            return  # stays stranded while Tune ends the run
        statuses = {t.status for t in trials}
        self.idle_steps = self.idle_steps + 1 if "PAUSED" in statuses and statuses <= {"PAUSED", "TERMINATED"} else 0

    def __call__(self, trial_id: str, result: dict) -> bool:
        return False

    def stop_all(self) -> bool:
        return self.idle_steps >= self.STEPS
