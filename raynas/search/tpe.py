"""TPE (Bergstra et al., 2011) through Optuna's sampler, as an ask/tell search over any ``SearchSpace``.

An infeasible proposal is told to Optuna as a violated constraint (``Trial.set_constraint``), so the
sampler learns where the budget lies instead of being asked again silently.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, ClassVar

import optuna

from raynas.search.optuna_study import OptunaAskTell

_CONSTRAINT = "over_budget"  # 1.0 when the proposal was infeasible, -1.0 when feasible (Optuna: <= 0 is feasible)
_INFEASIBLE_VALUE = 0.0  # the objective Optuna records for an infeasible proposal (its constraint marks it)


@dataclass
class TPESearch(OptunaAskTell):
    """Optuna's TPE sampler, ``startup`` random proposals first."""

    startup: int = 10

    name: ClassVar[str] = "tpe"

    def _study(self) -> optuna.Study:
        sampler = optuna.samplers.TPESampler(seed=self.seed, n_startup_trials=self.startup)
        return optuna.create_study(direction="maximize", sampler=sampler)

    def _learn(self, arch: Any, score: float | None) -> None:
        trial = self.waiting(arch)
        if trial is not None:
            trial.set_constraint(_CONSTRAINT, 1.0 if score is None else -1.0)
            self.study.tell(trial, _INFEASIBLE_VALUE if score is None else score)

    def _replayed(self, choices: tuple[int, ...], score: float | None) -> optuna.trial.FrozenTrial:
        return optuna.trial.create_trial(
            params=self.params(choices),
            distributions=self.distributions(),
            value=_INFEASIBLE_VALUE if score is None else score,
            constraints={_CONSTRAINT: 1.0 if score is None else -1.0},
        )
