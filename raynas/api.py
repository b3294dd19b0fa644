"""What a search strategy is to raynas: typed scenarios, jobs and finalists, the steps a strategy
implements, the verbs a run offers it, and the registry of strategies by name.

Below the config, the adapters and the pipeline; free of Ray and MLflow. The pipeline
(``raynas/orchestration/pipeline.py``) runs one sequence for every strategy: latency models ->
``prepare`` (shared state per seed) -> ``search`` -> ``random_baseline`` -> retrain (``initial_model``)
-> measure -> report. Adding a strategy: its algorithm in ``raynas/search/``, its adapter (a
``Strategy`` subclass) in ``raynas/strategies/``, and one line in ``STRATEGIES`` below.
"""

from __future__ import annotations

import importlib
from contextlib import AbstractContextManager
from dataclasses import KW_ONLY, dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable, ClassVar, Protocol, Sequence

from raynas._registry import Registry
from raynas.hardware.models import LatencyModels
from raynas.space.architecture import Architecture

if TYPE_CHECKING:  # the config sits above this module; strategies receive it as plain data
    from raynas.config import ExperimentConfig

RANDOM_WS, ASHA, HAND = "random-ws", "asha", "hand-designed"  # the pipeline's baselines (random-ws: random search with the
# strategy's shared weights); every other method is a registered strategy
RANDOM = "random"  # the black-box random search: a strategy of its own, and the random baseline of every other black-box strategy
BASELINES = (RANDOM_WS, ASHA, HAND)
RANDOM_BASELINES = (RANDOM_WS, RANDOM)  # what a search is paired with, by seed, in the comparisons


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
    _: KW_ONLY
    seed: int
    budget_ms: float | None = None
    budget_seconds: float | None = None  # the baseline's compute budget: its paired search's measured seconds
    budget_evaluations: int | None = None  # or a number of shared-weight evaluations
    budgets_ms: tuple[float, ...] = ()  # a frontier search (Petridish): every budget of its target

    @classmethod
    def of(cls, scenario: Scenario, method: str, **extra: Any) -> Job:
        return cls(scenario.key(method), method, scenario.target, seed=scenario.seed, budget_ms=scenario.budget_ms, **extra)


@dataclass(frozen=True)
class Finalist:
    """A network to retrain and measure: found by a search, picked by a baseline, or hand-designed."""

    key: str
    method: str
    arch: Architecture
    _: KW_ONLY
    seed: int
    search_seconds: float = 0.0
    target: str | None = None  # None: a hand-designed reference, measured on every target
    budget_ms: float | None = None
    constrained: bool | None = None  # the search's own pick left the budget window and the window chose
    argmax_ms: float | None = None  # predicted latency of the search's own pick before the window
    init_seed: int | None = None  # retrain from this seed's shared weights (``Strategy.initial_model``), not from scratch
    evaluations: int | None = None  # what the search spent in shared-weight (or predictor) evaluations, where it counts them

    @classmethod
    def found(cls, job: Job, arch: Architecture, metrics: dict[str, Any], **extra: Any) -> Finalist:
        """The finalist of a finished search or baseline job, from its last reported metrics."""
        constrained = metrics.get("constrained")
        return cls(
            job.key,
            job.method,
            arch,
            seed=job.seed,
            search_seconds=float(metrics.get("search_seconds", 0.0)),
            target=job.target,
            budget_ms=job.budget_ms,
            constrained=None if constrained is None else bool(constrained),
            argmax_ms=metrics.get("argmax_latency_ms"),
            evaluations=metrics.get("evaluations"),
            **extra,
        )


def finalists_in(space: str, jobs: Sequence[Job], results: dict[str, dict[str, Any]]) -> list[Finalist]:
    """Each job's pick from its trial's last metrics, an architecture of ``space``."""
    return [Finalist.found(j, Architecture.from_string(space, results[j.key]["arch"]), results[j.key]) for j in jobs]


@dataclass(frozen=True)
class LocalProblem:
    """One search in this process, without Ray (notebooks, the strategy contract test): a space, one
    target's latency table and budget, loaders, and the strategy's config section."""

    space: str
    lut: Any  # LatencyTable of ``space`` on the target
    budget_ms: float
    _: KW_ONLY
    train: Any
    val: Any
    num_classes: int
    config: Any
    compute: Any = None  # raynas.compute.Compute; None: the CPU
    sharing: str = "separate"  # a chain supernet's weight sharing (raynas.supernet.supernet.SHARINGS)


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


BuildSearcher = Callable[[Job, Any, "ExperimentConfig"], Searcher]  # (job, the strategy's shared state, config) -> searcher, in the trial


@dataclass(frozen=True)
class RunInputs:
    """What a strategy's run steps read, passed explicitly: the run's config (its own section is
    ``cfg.<section>``), its latency models and its directory."""

    cfg: ExperimentConfig
    latency: LatencyModels
    run_dir: Path
    _: KW_ONLY
    resume: bool = False  # continuing an interrupted run: reuse what it saved


@dataclass(frozen=True)
class SampledTrial:
    """One trial of a Tune ``search_alg`` run: the configuration it was given and its last metrics."""

    config: dict[str, Any]
    metrics: dict[str, Any]


class RunContext(Protocol):
    """The verbs a running strategy may use; the pipeline implements them (``raynas/orchestration/context.py``)."""

    def run_trials(self, name: str, jobs: Sequence[Job], build: BuildSearcher, *, shared: Any = None) -> dict[str, dict[str, Any]]:
        """One checkpointed Tune trial per job stepping ``build(job, shared, cfg)``; each job's last metrics by key."""

    def run_search_alg(
        self,
        name: str,
        trainable: Callable[[dict], None],
        *,
        search_alg: Any,
        param_space: dict,
        num_samples: int,
        metric: str,
        mode: str,
        scheduler: Any = None,
        workers: int = 1,
    ) -> list[SampledTrial]:
        """One Tune trial per candidate a Tune ``search_alg`` proposes (black-box strategies); a Tune
        ``scheduler`` may stop trials early. ``workers`` above 1: each trial drives a Ray Train job of
        that many workers (its scheduler asks it to stop instead of stopping it)."""

    def log(self, message: str) -> None: ...

    def log_metrics(self, metrics: dict[str, float]) -> None:
        """Run-level metrics (MLflow's parent run)."""

    def phase(self, name: str) -> AbstractContextManager[None]:
        """Time a phase (``with ctx.phase("warmup"):``); the record and MLflow report it."""

    def add_artifact(self, path: Path, *, folder: str) -> None:
        """A file of the run directory, logged to MLflow under ``folder``."""

    def add_curve(self, job: Job, points: Sequence[tuple[float, float]]) -> None:
        """Performance over time of one search: (its seconds so far, score of what it would return then)."""


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
    cell_spaces: ClassVar[bool] = False  # also searches cell spaces (nb201); else MBConv chains only
    resume: ClassVar[str] = "exact"  # a resumed search ends as the uninterrupted one ("history": replays its history, may differ)
    smoke: ClassVar[dict] = {}  # section overrides that make it tiny but still run every part (contract test, smoke runs)
    shared: Any = None  # the strategy's typed per-run state from ``prepare``, handed to every trial's ``build``

    def validate(self, section: Any, cfg: ExperimentConfig) -> None:
        """Refuse bad values of the strategy's section with a ConfigError naming the field."""

    def gpu_requests(self, cfg: ExperimentConfig) -> dict[str, float]:
        """GPU reservations beyond the trials', by config field, checked against the cluster up front."""
        return {}

    def held_cpus(self, cfg: ExperimentConfig) -> dict[str, float]:
        """CPUs the strategy's actors hold while the searches run, by config field; checked up front so
        a search trial still fits beside them (else the run waits forever for a CPU)."""
        return {}

    def latency_spaces(self, cfg: ExperimentConfig) -> list[str]:
        """Spaces besides the run's whose latency tables the strategy needs on every target; default none."""
        return []

    def budget_ranges(self, cfg: ExperimentConfig, latency: LatencyModels) -> dict[str, tuple[float, float]] | None:
        """Per target, the latencies budget fractions span; None: the space's fastest to slowest network."""
        return None

    def prepare(self, ctx: RunContext, run: RunInputs, seeds: list[int]) -> None:
        """Shared state built once per seed before any search (warm-up, elastic training)."""

    def search(self, ctx: RunContext, run: RunInputs, scenarios: list[Scenario]) -> list[Finalist]:
        raise NotImplementedError

    def local_search(self, problem: LocalProblem, seed: int) -> Searcher:
        """The same search for one budget in this process: shared state built here, then a searcher
        whose last step's ``arch`` is the answer."""
        raise NotImplementedError

    def random_baseline(self, ctx: RunContext, run: RunInputs, found: list[Finalist]) -> list[Finalist]:
        """Random search under the same budget and cost as each search of ``found``; default: none."""
        return []

    def release(self) -> None:
        """Give back what ``prepare`` holds (actors) before retraining."""

    def retrain_payload(self) -> Any:
        """What ``initial_model`` needs inside a retraining trial (object refs, not arrays)."""
        return None

    @staticmethod
    def initial_model(finalist: Finalist, payload: Any, *, cfg: ExperimentConfig, num_classes: int):
        """The network a finalist's retraining starts from; None: from scratch."""
        return None


def scenario_of(finalist: Finalist) -> Scenario:
    """The scenario a search's finalist answers (its target, budget and seed)."""
    return Scenario(finalist.target, finalist.budget_ms, finalist.seed)


def frontier_path(run_dir: Path, target: str, seed: int) -> Path:
    """Where a frontier search keeps its whole (latency, accuracy) model set, which the report draws:
    JSON ``{"target", "seed", "method", "models": [{"arch", "latency_ms", "val_acc", "seconds"}, ...]}``."""
    return run_dir / "frontiers" / f"{target}-s{seed}.json"


# name -> module, imported on first use (as Ray Tune maps searcher names to modules), so listing or
# validating one strategy never imports another's dependencies. One line per strategy.
STRATEGIES: Registry[str] = Registry("search strategy")
STRATEGIES.add("proxyless", "raynas.strategies.proxyless")
STRATEGIES.add("ofa", "raynas.strategies.ofa")
STRATEGIES.add("petridish", "raynas.strategies.petridish")
STRATEGIES.add("random", "raynas.strategies.blackbox")
STRATEGIES.add("local", "raynas.strategies.blackbox")
STRATEGIES.add("evolution", "raynas.strategies.blackbox")
STRATEGIES.add("reinforce", "raynas.strategies.blackbox")
STRATEGIES.add("tpe", "raynas.strategies.blackbox")


def strategy_names() -> list[str]:
    return STRATEGIES.names()


def strategy_class(name: str) -> type[Strategy]:
    """The registered strategy class; an unknown name lists the valid ones."""
    module = importlib.import_module(STRATEGIES.get(name))
    found = [
        obj for obj in vars(module).values() if isinstance(obj, type) and issubclass(obj, Strategy) and getattr(obj, "name", None) == name
    ]
    if len(found) != 1:
        raise TypeError(f"{module.__name__} must define exactly one Strategy subclass named {name!r}")
    return found[0]


def get_strategy(name: str) -> Strategy:
    """A fresh instance (strategies hold per-run state from ``prepare``)."""
    return strategy_class(name)()
