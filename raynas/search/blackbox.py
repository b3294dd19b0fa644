"""Black-box searches over any ``SearchSpace``, written once as ask/tell: ``ask()`` proposes an
architecture; ``tell(arch, score)`` returns its score, or None when it was infeasible (over the
latency budget: never evaluated, never counted, but the search learns it). A driver -- the tabular
evaluator, or one Tune trial per candidate on real training -- owns the budget of evaluations.

Each search's ``state_dict`` holds its history and random state as plain data (choice tuples, not
objects), so a resumed search goes on exactly as an uninterrupted one (``resume = "exact"``).
"""

from __future__ import annotations

import importlib
from collections import deque
from dataclasses import dataclass
from typing import Any, ClassVar, Protocol

import numpy as np

from raynas._registry import Registry
from raynas.space.interface import SearchSpace


class AskTell(Protocol):
    name: ClassVar[str]
    resume: ClassVar[str]  # "exact": the state restores the search; "history": it replays the history
    space: SearchSpace
    history: list[tuple[tuple[int, ...], float | None]]  # every told (choices, score), in order

    def ask(self) -> Any: ...

    def tell(self, arch: Any, score: float | None) -> None: ...

    def state_dict(self) -> dict[str, Any]: ...

    def load_state_dict(self, state: dict[str, Any]) -> None: ...


@dataclass
class _Base:
    """Shared state: the space, the random generator and every told (choices, score)."""

    space: SearchSpace
    seed: int = 0

    resume: ClassVar[str] = "exact"

    def __post_init__(self) -> None:
        self.rng = np.random.default_rng(self.seed)
        self.history: list[tuple[tuple[int, ...], float | None]] = []
        self._seen: set[tuple[int, ...]] = set()

    def tell(self, arch: Any, score: float | None) -> None:
        self.history.append((self.space.choices(arch), score))
        self._seen.add(self.history[-1][0])
        self._learn(arch, score)

    def _learn(self, arch: Any, score: float | None) -> None:
        """What the search does with a told result beyond keeping it."""

    @property
    def seen(self) -> set[tuple[int, ...]]:
        """Every architecture told so far (kept as told: a search asks thousands of times near the end of a small space)."""
        return self._seen

    def state_dict(self) -> dict[str, Any]:
        return {"rng": self.rng.bit_generator.state, "history": [(list(c), s) for c, s in self.history]} | self._state()

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.rng.bit_generator.state = state["rng"]
        self.history = [(tuple(c), s) for c, s in state["history"]]
        self._seen = {c for c, _ in self.history}
        self._load(state)

    def _state(self) -> dict[str, Any]:
        return {}

    def _load(self, state: dict[str, Any]) -> None:
        """Restore what ``_state`` saved."""

    def _fresh(self, tries: int = 1000) -> Any:
        """A uniform sample not told before (any sample once ``tries`` are spent)."""
        seen = self.seen
        for _ in range(tries):
            arch = self.space.sample(self.rng)
            if self.space.choices(arch) not in seen:
                return arch
        return self.space.sample(self.rng)


class RandomSearch(_Base):
    """Uniform samples, each architecture at most once."""

    name: ClassVar[str] = "random"

    def ask(self) -> Any:
        return self._fresh()


class LocalSearch(_Base):
    """First-improvement local search (a strong NB201 baseline in White et al., 2021): neighbours of
    the current architecture in random order; the first that scores higher becomes current; at a
    local optimum (every neighbour told) it restarts from a fresh random architecture."""

    name: ClassVar[str] = "local"

    def __post_init__(self) -> None:
        super().__post_init__()
        self.current: tuple[tuple[int, ...], float] | None = None
        self.queue: deque[tuple[int, ...]] = deque()

    def ask(self) -> Any:
        seen = self.seen
        while self.queue:
            choices = self.queue.popleft()
            if choices not in seen:
                return self.space.from_choices(choices)
        return self._fresh()

    def _learn(self, arch: Any, score: float | None) -> None:
        if score is None or (self.current is not None and score <= self.current[1]):
            return
        self.current = (self.space.choices(arch), score)
        moves = [self.space.choices(n) for n in self.space.neighbours(arch)]
        self.queue = deque(moves[i] for i in self.rng.permutation(len(moves)))

    def _state(self) -> dict[str, Any]:
        current = None if self.current is None else [list(self.current[0]), self.current[1]]
        return {"current": current, "queue": [list(q) for q in self.queue]}

    def _load(self, state: dict[str, Any]) -> None:
        self.current = None if state["current"] is None else (tuple(state["current"][0]), state["current"][1])
        self.queue = deque(tuple(q) for q in state["queue"])


@dataclass
class RegularizedEvolution(_Base):
    """Regularized (aging) evolution (Real et al., 2019): a population of the last ``population``
    feasible architectures; each child mutates one decision of the best of ``tournament`` members
    drawn at random; the oldest member leaves as a child joins."""

    population: int = 10
    tournament: int = 3

    name: ClassVar[str] = "evolution"

    def __post_init__(self) -> None:
        super().__post_init__()
        self.members: deque[tuple[tuple[int, ...], float]] = deque()

    def ask(self) -> Any:
        if len(self.members) < self.population:
            return self._fresh()
        picks = self.rng.choice(len(self.members), size=min(self.tournament, len(self.members)), replace=False)
        parent = max((self.members[int(i)] for i in picks), key=lambda m: m[1])
        seen = self.seen
        for _ in range(100):  # a child not told before, where one exists
            child = self.space.mutate(self.space.from_choices(parent[0]), self.rng)
            if self.space.choices(child) not in seen:
                return child
        return child

    def _learn(self, arch: Any, score: float | None) -> None:
        if score is None:
            return  # infeasible: it never joins the population
        self.members.append((self.space.choices(arch), score))
        if len(self.members) > self.population:
            self.members.popleft()

    def _state(self) -> dict[str, Any]:
        return {"members": [[list(c), s] for c, s in self.members]}

    def _load(self, state: dict[str, Any]) -> None:
        self.members = deque((tuple(c), s) for c, s in state["members"])


@dataclass
class ReinforceController(_Base):
    """A REINFORCE controller over the decisions (NB201's black-box REINFORCE): an independent softmax
    per decision, updated by the policy gradient of the score (in [0, 1]) against a moving-average
    baseline; an infeasible proposal is rewarded ``penalty``, so the policy learns to avoid it."""

    lr: float = 0.1
    baseline_decay: float = 0.9
    penalty: float = 0.0

    name: ClassVar[str] = "reinforce"

    def __post_init__(self) -> None:
        super().__post_init__()
        self.logits = [np.zeros(n) for n in self.space.options]
        self.baseline: float | None = None

    def probabilities(self) -> list[np.ndarray]:
        return [np.exp(z - z.max()) / np.exp(z - z.max()).sum() for z in self.logits]

    def ask(self) -> Any:
        return self.space.from_choices(tuple(int(self.rng.choice(len(p), p=p)) for p in self.probabilities()))

    def _learn(self, arch: Any, score: float | None) -> None:
        reward = self.penalty if score is None else score / 100.0
        self.baseline = reward if self.baseline is None else self.baseline_decay * self.baseline + (1 - self.baseline_decay) * reward
        advantage = reward - self.baseline
        for z, p, choice in zip(self.logits, self.probabilities(), self.space.choices(arch)):
            grad = -p
            grad[choice] += 1.0
            z += self.lr * advantage * grad

    def _state(self) -> dict[str, Any]:
        return {"logits": [z.tolist() for z in self.logits], "baseline": self.baseline}

    def _load(self, state: dict[str, Any]) -> None:
        self.logits = [np.asarray(z, dtype=np.float64) for z in state["logits"]]
        self.baseline = state["baseline"]


# name -> "module:class", imported on first use (TPE imports Optuna). One line per search.
SEARCHES = Registry[str]("black-box search")
SEARCHES.add("random", "raynas.search.blackbox:RandomSearch")
SEARCHES.add("local", "raynas.search.blackbox:LocalSearch")
SEARCHES.add("evolution", "raynas.search.blackbox:RegularizedEvolution")
SEARCHES.add("reinforce", "raynas.search.blackbox:ReinforceController")
SEARCHES.add("tpe", "raynas.search.tpe:TPESearch")
FRONT_SEARCHES = Registry[str]("front search")  # told (score, latency) over a device's whole range; each budget picks after
FRONT_SEARCHES.add("nsga2", "raynas.search.nsga2:NSGA2Search")


def search_class(name: str) -> type:
    """The registered black-box search (or front search); an unknown name lists the valid ones."""
    module, cls = (FRONT_SEARCHES if name in FRONT_SEARCHES else SEARCHES).get(name).split(":")
    found = getattr(importlib.import_module(module), cls)
    if found.name != name:
        raise TypeError(f"{module}.{cls} is registered as {name!r} but names itself {found.name!r}")
    return found
