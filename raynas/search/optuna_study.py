"""Optuna's samplers as ask/tell searches: one categorical parameter per decision of the space; a
trial asked waits, by its choices, until the driver tells its result. Optuna cannot save a sampler's
state, so a resumed search rebuilds its study from the told history (``resume = "history"``: the same
evidence, not the same random draws)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, ClassVar

import optuna

from raynas.search.blackbox import _Base

optuna.logging.set_verbosity(optuna.logging.WARNING)  # one line per trial otherwise


@dataclass
class OptunaAskTell(_Base):
    """The study, its distributions and the trials waiting for their results; subclasses make the study."""

    resume: ClassVar[str] = "history"

    def __post_init__(self) -> None:
        super().__post_init__()
        self.study = self._study()
        self.pending: dict[tuple[int, ...], list[optuna.trial.Trial]] = {}

    def _study(self) -> optuna.Study:
        raise NotImplementedError

    def distributions(self) -> dict[str, optuna.distributions.CategoricalDistribution]:
        return {f"d{i}": optuna.distributions.CategoricalDistribution(list(range(n))) for i, n in enumerate(self.space.options)}

    @staticmethod
    def params(choices: tuple[int, ...]) -> dict[str, int]:
        return {f"d{i}": c for i, c in enumerate(choices)}

    def ask(self) -> Any:
        trial = self.study.ask(self.distributions())
        choices = tuple(int(trial.params[f"d{i}"]) for i in range(len(self.space.options)))
        self.pending.setdefault(choices, []).append(trial)
        return self.space.from_choices(choices)

    def waiting(self, arch: Any) -> optuna.trial.Trial | None:
        """The oldest trial asked for ``arch`` and not yet told; None when it was not asked here
        (a history replayed into a fresh study)."""
        queued = self.pending.get(self.space.choices(arch))
        return queued.pop(0) if queued else None

    def _load(self, state: dict[str, Any]) -> None:
        """A fresh study holding the told history."""
        self.study, self.pending = self._study(), {}
        for choices, score in self.history:
            self.study.add_trial(self._replayed(choices, score))

    def _replayed(self, choices: tuple[int, ...], score: Any) -> optuna.trial.FrozenTrial:
        raise NotImplementedError
