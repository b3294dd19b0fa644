"""Tune schedulers of raynas's standalone-training trials: early stopping judged per scenario inside
one Tune run (each scenario's own ASHA or HyperBand, and its own budget of device-seconds), as the
early-stopped random baseline and the black-box strategies run their candidates."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Callable, Optional

from ray.tune.experiment import Trial
from ray.tune.schedulers import ASHAScheduler, FIFOScheduler, HyperBandScheduler, TrialScheduler
from ray.tune.search import Searcher

from raynas.config import ASHAConfig


class PerScenario(FIFOScheduler):
    """Early stopping per scenario inside one Tune run: each scenario's trials (``config["scenario"]``)
    are judged by their own ASHA / HyperBand, never against another scenario's, and all of them stop
    once their summed seconds times ``devices`` reach that scenario's budget.

    ``ask``: running trials are not stopped by Tune but asked to stop with ``ask(trial)``, and end by
    themselves, their epoch in progress unreported (data-parallel trials, whose Train jobs must end cleanly)."""

    def __init__(self, cfg: ASHAConfig, budgets: dict[str, float], *, devices: float, ask: Callable[[Trial], None] | None = None) -> None:
        super().__init__()
        self.inner = {key: scheduler(cfg) for key in budgets}
        self.budgets, self.devices, self.spent = budgets, devices, dict.fromkeys(budgets, 0.0)
        self.ask = ask

    def set_search_properties(self, metric: Optional[str], mode: Optional[str], **spec) -> bool:
        agreed = [s.set_search_properties(metric, mode, **spec) for s in self.inner.values()]
        return all(agreed) and super().set_search_properties(metric, mode, **spec)

    def on_trial_add(self, controller, trial: Trial) -> None:
        self._of(trial).on_trial_add(controller, trial)

    def on_trial_error(self, controller, trial: Trial) -> None:
        self._of(trial).on_trial_error(controller, trial)

    def on_trial_complete(self, controller, trial: Trial, result: dict) -> None:
        self._of(trial).on_trial_complete(controller, trial, result)

    def on_trial_remove(self, controller, trial: Trial) -> None:
        self._of(trial).on_trial_remove(controller, trial)

    def on_trial_result(self, controller, trial: Trial, result: dict) -> str:
        """The scenario's scheduler decides, unless this result spends the scenario's budget: then every
        trial of the scenario stops (the others mid-epoch, uncounted) and none of its pending ones starts."""
        key = trial.config["scenario"]
        decision = self.inner[key].on_trial_result(controller, trial, result)
        self.spent[key] += result.get("time_this_iter_s", 0.0) * self.devices
        if self.exhausted(key):
            for other in controller.get_trials():
                if other is not trial and other.config["scenario"] == key and not other.is_finished():
                    self._stop(controller, other)
            decision = TrialScheduler.STOP
        if decision == TrialScheduler.STOP and self.ask is not None:
            self.ask(trial)
            return TrialScheduler.CONTINUE  # the trial ends by itself, before its next report
        return decision

    def _stop(self, controller, trial: Trial) -> None:
        if self.ask is not None and trial.status == Trial.RUNNING:
            self.ask(trial)
        else:
            controller.stop_trial(trial)

    def choose_trial_to_run(self, controller) -> Trial | None:
        """The first trial any scenario's scheduler would run (HyperBand resumes its paused trials in bracket order)."""
        return next((t for s in self.inner.values() if (t := s.choose_trial_to_run(controller)) is not None), None)

    def exhausted(self, key: str) -> bool:
        return self.spent[key] >= self.budgets[key]

    def debug_string(self) -> str:
        return "\n".join(
            f"{key}: {self.spent[key]:.1f}/{self.budgets[key]:.1f} device-s; {s.debug_string()}" for key, s in self.inner.items()
        )

    def _of(self, trial: Trial) -> TrialScheduler:
        return self.inner[trial.config["scenario"]]


class InBudget(Searcher):
    """Each scenario's candidates proposed in turn, only while ``PerScenario`` says its budget lasts, and
    FINISHED once none does. A grid creates every candidate's trial at once, and the spent scenarios'
    rest end stopped unstarted, trials without results; here only the trials waiting to start when a
    budget runs out do (Tune keeps one waiting per searcher, or up to ``max_concurrent_trials``)."""

    def __init__(self, candidates: dict[str, int], budget: PerScenario) -> None:
        super().__init__()
        self.candidates, self.budget, self.proposed = candidates, budget, dict.fromkeys(candidates, 0)

    def set_search_properties(self, metric: Optional[str], mode: Optional[str], config: dict, **spec) -> bool:
        return True  # the space is the candidates; the scheduler judges the metric

    def suggest(self, trial_id: str) -> dict | str | None:
        open_ = [k for k, n in self.candidates.items() if self.proposed[k] < n and not self.budget.exhausted(k)]
        if not open_:
            return Searcher.FINISHED
        key = min(open_, key=self.proposed.__getitem__)  # the scenario with the fewest so far: scenarios take turns
        self.proposed[key] += 1
        return {"scenario": key, "candidate": self.proposed[key] - 1}

    def on_trial_complete(self, trial_id: str, result: Optional[dict] = None, error: bool = False) -> None:
        pass

    def save(self, checkpoint_path: str) -> None:
        Path(checkpoint_path).write_text(json.dumps(self.proposed))

    def restore(self, checkpoint_path: str) -> None:
        self.proposed = json.loads(Path(checkpoint_path).read_text())


class FinalRungHyperBand(HyperBandScheduler):
    """Ray's HyperBand, except that a trial reaching ``max_t`` stops instead of pausing. It could never go
    on, and Ray's pause can strand it: when the bracket finishes while the paused trial's checkpoint save
    is still in flight, ``cleanup_full`` stops only trials already PAUSED, so the trial pauses afterwards
    in a finished bracket that never resumes it, and Tune waits for it forever."""

    def on_trial_result(self, controller, trial: Trial, result: dict) -> str:
        decision = super().on_trial_result(controller, trial, result)
        if decision == TrialScheduler.PAUSE and result[self._time_attr] >= self._max_t_attr:
            return TrialScheduler.STOP
        return decision


def scheduler(cfg: ASHAConfig):
    if cfg.scheduler == "hyperband":
        return FinalRungHyperBand(time_attr="training_iteration", max_t=cfg.max_epochs, reduction_factor=cfg.reduction_factor)
    return ASHAScheduler(
        time_attr="training_iteration", max_t=cfg.max_epochs, grace_period=cfg.grace_epochs, reduction_factor=cfg.reduction_factor
    )
