"""What a search strategy is to the pipeline: typed scenarios, jobs and finalists, and the steps it implements.

The pipeline (``raynas/orchestration/pipeline.py``) runs one generic sequence for every strategy:
profile -> ``prepare`` (shared state per seed) -> ``search`` -> ``random_baseline`` -> retrain
(``initial_model``) -> measure -> report. A strategy is one module defining a ``Strategy`` subclass
plus one line in ``raynas/strategies/__init__.py``; comparisons, plots, the record and MLflow read
its name, label and config section from the registry.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, ClassVar, Protocol

from raynas.space.architecture import Architecture


@dataclass(frozen=True)
class Scenario:
    """One (target, latency budget, seed) a strategy searches for."""

    target: str
    budget_ms: float
    seed: int

    @property
    def pair(self) -> str:
        """The name NAS and its baseline share for this scenario."""
        return f"{self.target}@{self.budget_ms:.3f}ms#s{self.seed}"

    def key(self, method: str) -> str:
        return f"{method}:{self.pair}"


@dataclass(frozen=True)
class Job:
    """One Tune trial of a search or of a baseline: the scenario and what it may spend."""

    key: str
    method: str
    target: str
    seed: int
    budget_ms: float | None = None
    budget_seconds: float | None = None  # the baseline's compute budget: its paired search's measured seconds
    budget_evaluations: int | None = None  # or a number of shared-weight evaluations
    budgets_ms: tuple[float, ...] = ()  # a frontier search (Petridish): every budget of its target

    @classmethod
    def of(cls, scenario: Scenario, method: str, **extra: Any) -> "Job":
        return cls(scenario.key(method), method, scenario.target, scenario.seed, scenario.budget_ms, **extra)


@dataclass(frozen=True)
class Finalist:
    """A network to retrain and measure: found by a search, picked by a baseline, or hand-designed."""

    key: str
    method: str
    seed: int
    arch: Architecture
    search_seconds: float = 0.0
    target: str | None = None  # None: a hand-designed reference, measured on every target
    budget_ms: float | None = None
    constrained: bool | None = None  # the search's own pick left the budget window and the window chose
    argmax_ms: float | None = None  # predicted latency of the search's own pick before the window
    init_seed: int | None = None  # retrain from this seed's shared weights (``Strategy.initial_model``), not from scratch
    evaluations: int | None = None  # what the search spent in shared-weight (or predictor) evaluations, where it counts them

    @classmethod
    def found(cls, job: Job, arch: Architecture, metrics: dict[str, Any], **extra: Any) -> "Finalist":
        """The finalist of a finished search or baseline job, from its last reported metrics."""
        constrained = metrics.get("constrained")
        return cls(
            job.key,
            job.method,
            job.seed,
            arch,
            float(metrics.get("search_seconds", 0.0)),
            job.target,
            job.budget_ms,
            None if constrained is None else bool(constrained),
            metrics.get("argmax_latency_ms"),
            evaluations=metrics.get("evaluations"),
            **extra,
        )


@dataclass(frozen=True)
class LocalProblem:
    """One search in this process, without Ray (notebooks, the strategy contract test): a space, one
    target's latency table and budget, loaders, and the strategy's config section."""

    space: str
    lut: Any  # LatencyTable of ``space`` on the target
    budget_ms: float
    train: Any
    val: Any
    num_classes: int
    config: Any
    compute: Any = None  # raynas.compute.Compute; None: the CPU


def finalists_in(space: str, jobs: list[Job], results: dict) -> list[Finalist]:
    """Each job's pick from its Tune result, an architecture of ``space``."""
    return [Finalist.found(j, Architecture.from_string(space, results[j.key].metrics["arch"]), results[j.key].metrics) for j in jobs]


class Searcher(Protocol):
    """A search as steps (epochs, generations, rounds) whose state survives a restart: the generic
    Tune trainable reports after every step and saves the state every ``ray.checkpoint_seconds``,
    and a retried trial resumes from the last save."""

    def step(self) -> dict[str, Any]:
        """Run one step; return its metrics (``arch``: the architecture it would return now;
        ``score``: that architecture's validation accuracy, for performance over time)."""

    @property
    def done(self) -> bool: ...

    def state_dict(self) -> dict[str, Any]: ...

    def load_state_dict(self, state: dict[str, Any]) -> None: ...


@dataclass
class Strategy:
    """A search strategy: metadata the reports read, and the steps the pipeline calls.

    Subclasses set the class variables and implement ``search``; the rest have defaults that fit a
    strategy with no shared state and no random baseline of its own.
    """

    name: ClassVar[str]  # ``strategy:`` in configs and ``method`` in results
    label: ClassVar[str]  # in plots and reports
    section: ClassVar[str]  # its config section (parsed into ``config_type``)
    config_type: ClassVar[type]
    style: ClassVar[tuple[str, str]] = ("tab:purple", "v")  # plot colour and marker
    phases: ClassVar[tuple[str, ...]] = ()  # its Tune experiments, in order (MLflow replays their curves)
    smoke: ClassVar[dict] = {}  # section overrides that make it tiny but still run every part (contract test, smoke runs)
    shared: dict = field(default_factory=dict)  # per-seed state from ``prepare``

    def validate(self, section: Any, cfg: Any) -> None:
        """Refuse bad values of the strategy's section with a ConfigError naming the field."""

    def gpu_requests(self, cfg: Any) -> dict[str, float]:
        """GPU reservations beyond the trials', by config field, checked against the cluster up front."""
        return {}

    def held_cpus(self, cfg: Any) -> dict[str, float]:
        """CPUs the strategy's actors hold while the searches run, by config field; checked up front so
        a search trial still fits beside them (else the run waits forever for a CPU)."""
        return {}

    def latency_tables(self, run: Any) -> None:
        """Profile extra tables the strategy needs (``run.profile(target, space)``); default none."""

    def budget_ranges(self, run: Any) -> dict[str, tuple[float, float]] | None:
        """Per target, the latencies budget fractions span; None: the space's fastest to slowest network."""
        return None

    def prepare(self, run: Any, seeds: list[int]) -> None:
        """Shared state built once per seed before any search (warm-up, elastic training)."""

    def search(self, run: Any, scenarios: list[Scenario]) -> list[Finalist]:
        raise NotImplementedError

    def local_search(self, problem: LocalProblem, seed: int) -> Searcher:
        """The same search for one budget in this process: shared state built here, then a searcher
        whose last step's ``arch`` is the answer."""
        raise NotImplementedError

    def random_baseline(self, run: Any, scenarios: list[Scenario], found: list[Finalist]) -> list[Finalist]:
        """Random search under the same budget and cost as ``found``; default: none."""
        return []

    def release(self, run: Any) -> None:
        """Give back what ``prepare`` holds (actors) before retraining."""

    def retrain_payload(self) -> Any:
        """What ``initial_model`` needs inside a retraining trial (object refs, not arrays)."""
        return None

    @staticmethod
    def initial_model(finalist: Finalist, payload: Any, cfg: Any, num_classes: int):
        """The network a finalist's retraining starts from; None: from scratch."""
        return None
