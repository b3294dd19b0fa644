"""Driving an ask/tell search (``raynas.search.blackbox``) under a latency budget: only feasible,
new architectures are evaluated; an infeasible proposal is told as such (score None) and a repeat is
answered from what was told before, neither counted. ``BudgetedSearch`` is raynas's step
``Searcher`` over it (one evaluation per step), for in-process searches and the contract test."""

from __future__ import annotations

import time
from dataclasses import KW_ONLY, dataclass, field
from typing import Any, Callable

from raynas.search.blackbox import AskTell
from raynas.space.catalog import as_architecture

Told = dict[tuple[int, ...], "float | None"]  # by choices: the score told, None when infeasible


class Exhausted(RuntimeError):
    """The search proposed nothing new and feasible in its allowance of proposals (the feasible
    architectures it can reach are all told)."""


def next_feasible(
    search: AskTell, feasible: Callable[[Any], bool], told: Told, *, busy: set = frozenset(), max_proposals: int = 20_000
) -> Any:
    """Ask until the search proposes a feasible architecture not told before and not ``busy`` (being
    evaluated, its score not known yet: asked again); tell it the rest."""
    for _ in range(max_proposals):
        arch = search.ask()
        key = search.space.choices(arch)
        if key in busy:
            continue
        if key in told:
            search.tell(arch, told[key])
        elif not feasible(arch):
            told[key] = None
            search.tell(arch, None)
        else:
            return arch
    raise Exhausted(f"{search.name} proposed no new feasible architecture in {max_proposals} proposals; raise the latency budget")


@dataclass
class BudgetedSearch:
    """``evaluations`` feasible evaluations of ``search``, one per step. ``evaluate(arch, i)`` scores
    the i-th: a validation accuracy in [0, 1] (the search is told it in percent); it seeds anything
    random by ``i``, so a resumed search scores as the uninterrupted one did."""

    search: AskTell
    feasible: Callable[[Any], bool]
    evaluate: Callable[[Any, int], float]
    _: KW_ONLY
    evaluations: int
    space: str  # the pipeline's name of the space (what ``arch`` in the metrics belongs to)
    told: Told = field(default_factory=dict)
    scores: list[tuple[tuple[int, ...], float]] = field(default_factory=list)  # evaluated, in order
    seconds: float = 0.0
    exhausted: bool = False  # every feasible architecture the search reaches is evaluated
    max_proposals: int = 20_000  # proposals without a new feasible one before the search counts as exhausted

    def __post_init__(self) -> None:
        self.told |= dict(self.search.history)

    @property
    def done(self) -> bool:
        return self.exhausted or len(self.scores) >= self.evaluations

    def step(self) -> dict[str, Any]:
        began = time.perf_counter()
        try:
            arch = next_feasible(self.search, self.feasible, self.told, max_proposals=self.max_proposals)
        except Exhausted as exc:
            if not self.scores:
                raise Exhausted(f"the latency budget admits no architecture the search reached: {exc}") from None
            self.exhausted = True
            return self.best() | {"evaluations": len(self.scores), "exhausted": True}
        score = 100.0 * float(self.evaluate(arch, len(self.scores)))  # searches are told percent, as NB201's tables
        key = self.search.space.choices(arch)
        self.told[key] = score
        self.scores.append((key, score))
        self.search.tell(arch, score)
        self.seconds += time.perf_counter() - began
        return self.best() | {"evaluations": len(self.scores), "infeasible": sum(s is None for s in self.told.values())}

    def best(self) -> dict[str, Any]:
        """The best evaluated architecture (the first of equals) and its score."""
        choices, score = max(self.scores, key=lambda cs: cs[1])
        arch = as_architecture(self.space, self.search.space.from_choices(choices))
        return {"arch": arch.to_string(), "score": score / 100.0, "space": self.space}

    def state_dict(self) -> dict[str, Any]:
        return {
            "search": self.search.state_dict(),  # its history is everything told, so ``told`` is rebuilt from it
            "scores": [[list(c), s] for c, s in self.scores],
            "seconds": self.seconds,
            "exhausted": self.exhausted,
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.search.load_state_dict(state["search"])
        self.told = dict(self.search.history)
        self.scores = [(tuple(c), s) for c, s in state["scores"]]
        self.seconds, self.exhausted = state["seconds"], state["exhausted"]
