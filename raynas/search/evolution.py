"""Evolutionary search over OFA subnets (Cai et al., 2020, sec. 3.3) for one target and budget.

Fitness is the accuracy predictor's output; the latency constraint comes from the target's
latency tables (one per input resolution). Mutation resamples each layer's kernel/expansion,
each stage's depth and the resolution with probability ``mutation_prob``; crossover takes every
gene from one of two parents. Infeasible children are redrawn. The top candidates are re-checked
with shared-weight evaluations on the replicas and the best of those is the result.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Callable, Sequence

import numpy as np

from raynas.hardware.lut import LatencyTable
from raynas.search.predictor import AccuracyPredictor
from raynas.space.architecture import Architecture
from raynas.space.macro import MacroConfig, get_space
from raynas.space.ops import SKIP


@dataclass(frozen=True)
class EvolutionConfig:
    population: int = 64  # candidates per generation
    generations: int = 15  # generations of mutation and crossover
    parent_fraction: float = 0.25  # the fittest share kept as parents each generation
    mutation_prob: float = 0.1  # per gene
    mutation_share: float = 0.5  # share of each new generation made by mutation (the rest: crossover)
    recheck_top: int = 4  # best predicted candidates evaluated on the replicas at the end


class SubnetLatency:
    """Predicted latency of any subnet: one latency table per resolution variant of the space."""

    def __init__(self, tables: dict[str, LatencyTable]) -> None:
        self._costs = {}
        for space, lut in tables.items():
            macro = get_space(space)
            self._costs[space] = (lut.fixed_ms, [dict(zip(spec.choices, row)) for spec, row in zip(macro.layers(), lut.layer_costs(macro))])

    def __call__(self, arch: Architecture) -> float:
        if arch.space not in self._costs:
            raise KeyError(
                f"no latency table for {arch.space!r}; profile the target for every elastic resolution ({', '.join(self._costs)})"
            )
        fixed, rows = self._costs[arch.space]
        return fixed + sum(row[op] for row, op in zip(rows, arch.ops))

    def extremes(self, genes: "SubnetGenes") -> tuple[float, float]:
        """Latency of the fastest and of the slowest subnet: per resolution, the cheapest MBConv of each
        layer a stage must keep (its first ``min_depth``) and the dearest of every layer (exact, whatever the table)."""
        ops = {f"k{k}e{e}" for k in genes.macro.kernels for e in genes.macro.expansions}
        low, high = [], []
        for r in genes.resolutions:
            fixed, rows = self._costs[genes.macro.at_resolution(r).name]
            mbconv = [[ms for op, ms in row.items() if op in ops] for row in rows]
            low.append(fixed + sum(min(mbconv[i]) for stage in genes.stages for i in stage[: min(genes.min_depth, len(stage))]))
            high.append(fixed + sum(max(m) for m in mbconv))
        return min(low), max(high)


class SubnetGenes:
    """Subnets of an elastic space as genes: (kernel, expansion) per layer, depth per stage, resolution."""

    def __init__(self, macro: MacroConfig, min_depth: int, resolutions: Sequence[int]) -> None:
        self.macro, self.min_depth, self.resolutions = macro, min_depth, tuple(resolutions)
        self.stages = macro.stage_layers()

    def random(self, rng: np.random.Generator) -> dict:
        layers = len(self.macro.layers())
        return {
            "k": rng.choice(self.macro.kernels, layers).tolist(),
            "e": rng.choice(self.macro.expansions, layers).tolist(),
            "d": [int(rng.integers(min(self.min_depth, len(s)), len(s) + 1)) for s in self.stages],
            "r": int(rng.choice(self.resolutions)),
        }

    def extreme(self, largest: bool) -> dict:
        """The slowest subnet (largest everything) or the fastest (smallest choices, shallowest stages)."""
        pick = max if largest else min
        layers = len(self.macro.layers())
        return {
            "k": [pick(self.macro.kernels)] * layers,
            "e": [pick(self.macro.expansions)] * layers,
            "d": [len(s) if largest else min(self.min_depth, len(s)) for s in self.stages],
            "r": pick(self.resolutions),
        }

    def scaled(self, fraction: float, rng: np.random.Generator) -> dict:
        """Genes drawn toward the largest choices by ``fraction`` (0: the fastest subnet, 1: the slowest):
        each choice is the Binomial(options - 1, fraction)-th smallest, so draws over fractions in [0, 1]
        span the whole latency range (uniform draws crowd its middle)."""
        if not 0.0 <= fraction <= 1.0:
            raise ValueError(f"fraction must be in [0, 1], got {fraction}")

        def step(options):
            return sorted(options)[int(rng.binomial(len(options) - 1, fraction))]

        layers = len(self.macro.layers())
        floors = [min(self.min_depth, len(s)) for s in self.stages]
        return {
            "k": [step(self.macro.kernels) for _ in range(layers)],
            "e": [step(self.macro.expansions) for _ in range(layers)],
            "d": [step(range(floor, len(s) + 1)) for floor, s in zip(floors, self.stages)],
            "r": step(self.resolutions),
        }

    def mutate(self, genes: dict, prob: float, rng: np.random.Generator) -> dict:
        fresh = self.random(rng)

        def pick(mine, new):
            return [n if rng.random() < prob else m for m, n in zip(mine, new)]

        return {
            "k": pick(genes["k"], fresh["k"]),
            "e": pick(genes["e"], fresh["e"]),
            "d": pick(genes["d"], fresh["d"]),
            "r": fresh["r"] if rng.random() < prob else genes["r"],
        }

    def crossover(self, a: dict, b: dict, rng: np.random.Generator) -> dict:
        def mix(x, y):
            return [p if rng.random() < 0.5 else q for p, q in zip(x, y)]

        return {"k": mix(a["k"], b["k"]), "e": mix(a["e"], b["e"]), "d": mix(a["d"], b["d"]), "r": a["r"] if rng.random() < 0.5 else b["r"]}

    def architecture(self, genes: dict) -> Architecture:
        ops = [SKIP] * len(genes["k"])
        for stage, depth in zip(self.stages, genes["d"]):
            for i in stage[:depth]:
                ops[i] = f"k{genes['k'][i]}e{genes['e'][i]}"
        return Architecture(self.macro.at_resolution(genes["r"]).name, tuple(ops))


def draw_feasible(
    make: Callable[[], dict], genes: SubnetGenes, latency: SubnetLatency, *, budget_ms: float, rng: np.random.Generator, tries: int = 5000
) -> tuple[dict, Architecture]:
    """Genes from ``make`` whose subnet fits the budget: rejection (uniform over the feasible draws)
    for ``tries`` draws; for a budget near the fastest subnet, where feasible draws are too rare, the
    last draw is then shrunk one random gene at a time until it fits (no longer uniform)."""
    for _ in range(tries):
        drawn = make()
        arch = genes.architecture(drawn)
        if latency(arch) <= budget_ms:
            return drawn, arch
    return _shrink_until_fits(drawn, genes, latency, budget_ms=budget_ms, rng=rng)


def _shrink_until_fits(
    drawn: dict, genes: SubnetGenes, latency: SubnetLatency, *, budget_ms: float, rng: np.random.Generator
) -> tuple[dict, Architecture]:
    floor = genes.extreme(largest=False)
    drawn = {k: list(v) if isinstance(v, list) else v for k, v in drawn.items()}
    while latency(genes.architecture(drawn)) > budget_ms:
        options = [(key, i) for key in "ked" for i, v in enumerate(drawn[key]) if v > floor[key][i]] + (
            [("r", None)] if drawn["r"] > floor["r"] else []
        )
        if not options:
            raise ValueError(
                f"no subnet fits {budget_ms:.3f} ms: even the fastest takes {latency(genes.architecture(floor)):.3f} ms; raise the budget"
            )
        key, i = options[rng.integers(len(options))]
        choices = {"k": genes.macro.kernels, "e": genes.macro.expansions, "r": genes.resolutions}.get(key)
        if key == "d":
            drawn["d"][i] -= 1
        elif key == "r":
            drawn["r"] = max(c for c in choices if c < drawn["r"])
        else:
            drawn[key][i] = max(c for c in choices if c < drawn[key][i])
    return drawn, genes.architecture(drawn)


class EvolutionarySearch:
    """Maximise predicted accuracy subject to predicted latency <= budget, one generation per step;
    the last step re-checks the top candidates with ``evaluate`` (shared-weight accuracy)."""

    def __init__(
        self,
        genes: SubnetGenes,
        latency: SubnetLatency,
        predictor: AccuracyPredictor,
        *,
        budget_ms: float,
        cfg: EvolutionConfig,
        seed: int,
        evaluate: Callable[[list[Architecture]], list[float]] | None = None,
    ) -> None:
        self.genes, self.latency, self.predictor, self.budget_ms, self.cfg, self.evaluate = (
            genes,
            latency,
            predictor,
            budget_ms,
            cfg,
            evaluate,
        )
        self.rng = np.random.default_rng(seed)
        self.population: list[dict] = []
        self.generation, self.spent, self.result = 0, 0.0, None

    def feasible(self, make: Callable[[], dict]) -> tuple[dict, Architecture]:
        return draw_feasible(make, self.genes, self.latency, budget_ms=self.budget_ms, rng=self.rng)

    @property
    def done(self) -> bool:
        return self.result is not None

    def step(self) -> dict:
        begin = time.perf_counter()
        if not self.population:
            self.population = [self.feasible(lambda: self.genes.random(self.rng))[0] for _ in range(self.cfg.population)]
        if self.generation < self.cfg.generations:
            self._evolve()
        else:
            self.result = self._recheck()
        self.spent += time.perf_counter() - begin
        return (self.result or self._best_predicted()) | {"generation": self.generation, "search_seconds": self.spent}

    def _evolve(self) -> None:
        cfg, rng = self.cfg, self.rng
        n_parents = max(2, int(cfg.population * cfg.parent_fraction))
        fitness = self.predictor.predict([self.genes.architecture(g) for g in self.population])
        parents = [self.population[i] for i in np.argsort(-fitness)[:n_parents]]
        children = []
        while len(children) < cfg.population - n_parents:
            if rng.random() < cfg.mutation_share:
                base = parents[rng.integers(len(parents))]
                children.append(self.feasible(lambda: self.genes.mutate(base, cfg.mutation_prob, rng))[0])
            else:
                a, b = (parents[i] for i in rng.choice(len(parents), 2, replace=False))
                children.append(self.feasible(lambda: self.genes.crossover(a, b, rng))[0])
        self.population = parents + children
        self.generation += 1

    def _ranked(self) -> list[Architecture]:
        unique = list({self.genes.architecture(g): None for g in self.population})
        return [unique[i] for i in np.argsort(-self.predictor.predict(unique))]

    def _best_predicted(self) -> dict:
        best = self._ranked()[0]
        acc = float(self.predictor.predict([best])[0])
        return {
            "arch": best.to_string(),
            "space": best.space,
            "predicted_ms": self.latency(best),
            "predicted_acc": acc,
            "score": acc,
            "evaluations": 0,
        }

    def _recheck(self) -> dict:
        top = self._ranked()[: self.cfg.recheck_top]
        checked = self.evaluate(top)
        best = int(np.argmax(checked))
        return {
            "arch": top[best].to_string(),
            "space": top[best].space,
            "predicted_ms": self.latency(top[best]),
            "predicted_acc": float(self.predictor.predict([top[best]])[0]),
            "shared_acc": checked[best],
            "score": checked[best],
            "evaluations": len(top),
        }

    def run(self, evaluate: Callable[[list[Architecture]], list[float]]) -> dict:
        """Every generation, then the re-check."""
        self.evaluate = evaluate
        while not self.done:
            metrics = self.step()
        return metrics

    def state_dict(self) -> dict:
        return {
            "rng": self.rng.bit_generator.state,
            "population": self.population,
            "generation": self.generation,
            "spent": self.spent,
            "result": self.result,
        }

    def load_state_dict(self, state: dict) -> None:
        self.rng.bit_generator.state = state["rng"]
        self.population, self.generation, self.spent, self.result = (
            state["population"],
            state["generation"],
            state["spent"],
            state["result"],
        )


class RandomSubnetSearch:
    """The OFA random baseline: uniform feasible subnets scored by ``evaluate`` (shared weights) in
    batches of ``batch``, until ``evaluations`` have been spent; the best one is the result."""

    def __init__(
        self,
        genes: SubnetGenes,
        latency: SubnetLatency,
        *,
        budget_ms: float,
        seed: int,
        evaluate: Callable[[list[Architecture]], list[float]],
        evaluations: int,
        batch: int,
    ) -> None:
        self.genes, self.latency, self.budget_ms, self.evaluate, self.evaluations, self.batch = (
            genes,
            latency,
            budget_ms,
            evaluate,
            evaluations,
            batch,
        )
        self.rng = np.random.default_rng(seed)
        self.scored, self.spent, self.best = 0, 0.0, (-1.0, "", "")

    @property
    def done(self) -> bool:
        return self.scored >= max(self.evaluations, 1)

    def step(self) -> dict:
        begin = time.perf_counter()
        n = min(self.batch, max(self.evaluations, 1) - self.scored)
        archs = [
            draw_feasible(lambda: self.genes.random(self.rng), self.genes, self.latency, budget_ms=self.budget_ms, rng=self.rng)[1]
            for _ in range(n)
        ]
        for arch, acc in zip(archs, self.evaluate(archs)):
            self.best = max(self.best, (acc, arch.space, arch.to_string()), key=lambda t: t[0])
        self.scored += n
        self.spent += time.perf_counter() - begin
        acc, space, arch = self.best
        return {
            "arch": arch,
            "space": space,
            "predicted_ms": self.latency(Architecture.from_string(space, arch)),
            "shared_acc": acc,
            "score": acc,
            "evaluations": self.scored,
            "search_seconds": self.spent,
        }

    def state_dict(self) -> dict:
        return {"rng": self.rng.bit_generator.state, "scored": self.scored, "spent": self.spent, "best": list(self.best)}

    def load_state_dict(self, state: dict) -> None:
        self.rng.bit_generator.state = state["rng"]
        self.scored, self.spent, self.best = state["scored"], state["spent"], tuple(state["best"])
