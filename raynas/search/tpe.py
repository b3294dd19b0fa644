"""TPE (Bergstra et al., 2011) through Optuna's sampler, as an ask/tell search over any ``SearchSpace``.

Each decision is a categorical parameter. An infeasible proposal is told to Optuna as a violated
constraint (``Trial.set_constraint``), so the sampler learns where the budget lies instead of being
asked again silently. Optuna's sampler state cannot be saved, so a resumed search rebuilds its study
from the told history: ``resume = "history"`` (the same evidence, not the same random draws).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, ClassVar

import optuna

from raynas.search.blackbox import _Base

optuna.logging.set_verbosity(optuna.logging.WARNING)  # one line per trial otherwise

_CONSTRAINT = "over_budget"  # 1.0 when the proposal was infeasible, -1.0 when feasible (Optuna: <= 0 is feasible)
_INFEASIBLE_VALUE = 0.0  # the objective Optuna records for an infeasible proposal (its constraint marks it)


@dataclass
class TPESearch(_Base):
    """Optuna's TPE sampler, ``startup`` random proposals first."""

    startup: int = 10

    name: ClassVar[str] = "tpe"
    resume: ClassVar[str] = "history"

    def __post_init__(self) -> None:
        super().__post_init__()
        self.study = self._study()
        self.pending: dict[tuple[int, ...], list[optuna.trial.Trial]] = {}

    def _study(self) -> optuna.Study:
        sampler = optuna.samplers.TPESampler(seed=self.seed, n_startup_trials=self.startup)
        return optuna.create_study(direction="maximize", sampler=sampler)

    def _distributions(self) -> dict[str, optuna.distributions.CategoricalDistribution]:
        return {f"d{i}": optuna.distributions.CategoricalDistribution(list(range(n))) for i, n in enumerate(self.space.options)}

    def ask(self) -> Any:
        trial = self.study.ask(self._distributions())
        choices = tuple(int(trial.params[f"d{i}"]) for i in range(len(self.space.options)))
        self.pending.setdefault(choices, []).append(trial)
        return self.space.from_choices(choices)

    def _learn(self, arch: Any, score: float | None) -> None:
        queued = self.pending.get(self.space.choices(arch))
        if not queued:
            return  # told without being asked here (a history replayed into a fresh study)
        trial = queued.pop(0)
        trial.set_constraint(_CONSTRAINT, 1.0 if score is None else -1.0)
        self.study.tell(trial, _INFEASIBLE_VALUE if score is None else score)

    def _load(self, state: dict[str, Any]) -> None:
        """A fresh study holding the told history (Optuna cannot restore its sampler's state)."""
        self.study, self.pending = self._study(), {}
        distributions = self._distributions()
        for choices, score in self.history:
            params = {f"d{i}": c for i, c in enumerate(choices)}
            constraints = {_CONSTRAINT: 1.0 if score is None else -1.0}
            value = _INFEASIBLE_VALUE if score is None else score
            told = optuna.trial.create_trial(params=params, distributions=distributions, value=value, constraints=constraints)
            self.study.add_trial(told)
