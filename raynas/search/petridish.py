"""Petridish (Hu et al., 2019): forward search that grows networks from a small parent, on raynas's
chain-shaped MBConv spaces, with the target's latency table as the cost.

Each round takes a parent from the lower convex hull of (latency, validation error) and joins weak
learners to it: for every layer and every op dearer there than the layer's current one, a candidate
``alpha * (op(sg(x)) - current(sg(x)))`` added to the layer's output through stop-forward (its value
is zero, its gradient passes), so the parent computes exactly what it did while the candidates
train on the gradient of the loss at the layer they join (they match its negative, as gradient
boosting's weak learners do). An L1 penalty on alpha, weighted by each candidate's added latency,
selects; the best ``children_per_round`` candidates each make a child (on a skipped layer:
the op joins with the layer's shortcut, the space's residual connection), warm-started from the
parent and the candidate's weights (alpha folded into its last BatchNorm) and trained briefly. Every
model's (latency, error) joins the pool; one run yields a frontier for a target, and each budget's
finalist is the most accurate model within it.

Its baseline (``random``): architectures uniform over each budget's window, each trained from
scratch as long as a Petridish model in total, scored on the same validation batches, for the
same seconds.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from torch import nn

from raynas.compute import CPU, Compute
from raynas.data.loading import Batches, generator_state, set_generator_state
from raynas.hardware.lut import LatencyTable
from raynas.search.derive import budget_window
from raynas.search.random_search import sample_in_window
from raynas.space.architecture import Architecture
from raynas.space.macro import MacroConfig, get_space
from raynas.space.network import Head, build_stem, resize_input
from raynas.space.ops import SKIP, build_op
from raynas.training import evaluate, recalibrate_bn, sgd


@dataclass(frozen=True)
class PetridishConfig:
    """Growth schedule of a Petridish search (steps are training batches)."""

    rounds: int = 6  # growth rounds after the parent
    children_per_round: int = 2  # the best candidates of a round each make a child
    parent_steps: int = 100  # training of the initial parent
    weak_steps: int = 40  # weak-learner training per round
    child_steps: int = 60  # warm-started training of each child
    sparsity: float = 0.01  # L1 on alpha, times the candidate's added latency over the parent's
    lr: float = 0.05  # SGD rate of the weights while growing
    momentum: float = 0.9  # SGD momentum
    weight_decay: float = 4e-5  # L2 penalty on every weight
    eval_batches: int = 8  # validation batches scoring each model (after BatchNorm recalibration)
    budget_floor: float = 0.9  # the random baseline draws from [floor * B, B]


class GrowingNet(nn.Module):
    """A chain network of one architecture, plus weak learners (stop-forward candidates) on its layers."""

    def __init__(self, arch: Architecture, num_classes: int, candidates: tuple[tuple[int, str], ...] = ()) -> None:
        super().__init__()
        macro = get_space(arch.space)
        self.arch, self.specs, self.input_size = arch, macro.layers(), macro.input_size
        self.stem, self.head = build_stem(macro), Head(macro, num_classes)
        self.ops = nn.ModuleDict(
            {
                str(i): build_op(op, s.in_channels, s.out_channels, stride=s.stride)
                for i, (s, op) in enumerate(zip(self.specs, arch.ops))
                if op != SKIP
            }
        )
        self.candidates = candidates
        self.weak = nn.ModuleDict(
            {
                f"{i}_{op}": build_op(op, self.specs[i].in_channels, self.specs[i].out_channels, stride=self.specs[i].stride)
                for i, op in candidates
            }
        )
        self.alpha = nn.Parameter(torch.zeros(len(candidates)))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.stem(resize_input(x, self.input_size))
        for i, spec in enumerate(self.specs):
            out = self.ops[str(i)](x) if str(i) in self.ops else None
            y = x if out is None else (out + x if spec.residual else out)
            z = self._weak(i, x, out)
            x = y if z is None else y + (z - z.detach())  # stop-forward: the value is y, the gradient reaches z
        return self.head(x)

    def _weak(self, layer: int, x: torch.Tensor, out: torch.Tensor | None) -> torch.Tensor | None:
        """Sum of alpha * (candidate(sg(x)) - current(sg(x))) over this layer's candidates."""
        z = None
        for n, (i, op) in enumerate(self.candidates):
            if i != layer:
                continue
            term = self.weak[f"{i}_{op}"](x.detach())
            term = term - out.detach() if out is not None else term
            z = self.alpha[n] * term if z is None else z + self.alpha[n] * term
        return z

    def base_state(self) -> dict[str, torch.Tensor]:
        """The network's own weights, without weak learners and their alpha."""
        return {k: v for k, v in self.state_dict().items() if not k.startswith(("weak.", "alpha"))}

    def grown(self, n: int, num_classes: int) -> GrowingNet:
        """The child with candidate ``n`` in place: parent weights, the candidate's (alpha folded into its last BN on a shortcut layer)."""
        i, op = self.candidates[n]
        ops = list(self.arch.ops)
        ops[i] = op
        child = GrowingNet(Architecture(self.arch.space, tuple(ops)), num_classes)
        state = {k: v for k, v in self.base_state().items() if not k.startswith(f"ops.{i}.")}
        weak = self.weak[f"{i}_{op}"].state_dict()
        if self.arch.ops[i] == SKIP:
            bn = self.weak[f"{i}_{op}"].project[1]
            a = float(self.alpha[n].detach())
            weak = weak | {"project.1.weight": bn.weight.detach() * a, "project.1.bias": bn.bias.detach() * a}
        state |= {f"ops.{i}.{k}": v for k, v in weak.items()}
        child.load_state_dict(state, strict=False)  # the child's alpha: empty, as it has no weak learners yet
        return child


def cheapest_parent(macro: MacroConfig, lut: LatencyTable) -> Architecture:
    """The fastest network of the space on the target: every shortcut layer skipped, the cheapest op elsewhere."""
    return lut.range_ends(macro)[0]


def lower_hull(points: list[tuple[float, float]]) -> list[int]:
    """Indices of the lower convex hull of (latency, error) points, by latency (Andrew's monotone chain)."""
    order = sorted(range(len(points)), key=lambda i: points[i])
    hull: list[int] = []
    for i in order:
        while len(hull) >= 2:
            (x1, y1), (x2, y2), (x3, y3) = points[hull[-2]], points[hull[-1]], points[i]
            if (x2 - x1) * (y3 - y1) - (y2 - y1) * (x3 - x1) > 0:
                break
            hull.pop()
        hull.append(i)
    best, kept = float("inf"), []
    for i in hull:  # the part that falls with latency: a slower model on the hull must be more accurate
        if points[i][1] < best:
            kept.append(i)
            best = points[i][1]
    return kept


class PetridishSearch:
    """One Petridish run for one target: the parent in the first step, one growth round per later step."""

    def __init__(
        self,
        macro: MacroConfig,
        lut: LatencyTable,
        num_classes: int,
        *,
        cfg: PetridishConfig,
        loaders,
        max_ms: float,
        compute: Compute = CPU,
    ) -> None:
        """``loaders``: (train, val); data order and initial weights follow the caller's seeds."""
        self.macro, self.lut, self.num_classes, self.cfg, self.compute, self.max_ms = macro, lut, num_classes, cfg, compute, max_ms
        self.train, self.val = loaders
        self.batches = Batches(self.train)
        self.costs = {spec.index: dict(zip(spec.choices, row)) for spec, row in zip(macro.layers(), lut.layer_costs(macro))}
        self.models: list[dict] = []  # every trained model: arch, latency, val_acc, expansions, seconds (search time when it joined)
        self.spent, self._began = 0.0, time.perf_counter()
        self.weights: dict[str, dict] = {}  # state dicts of hull models (parents to come), by arch string
        self.round = 0

    @property
    def done(self) -> bool:
        return self.round > self.cfg.rounds or (bool(self.models) and self._parent() is None)

    def latency(self, arch: Architecture) -> float:
        return self.lut.predict(arch, self.macro)

    def step(self) -> dict[str, Any]:
        self._began = time.perf_counter()
        if not self.models:
            net = self._fit(GrowingNet(cheapest_parent(self.macro, self.lut), self.num_classes), self.cfg.parent_steps)
            self._add(net)
        else:
            self._grow(self._parent())
        self.round += 1
        self.spent += time.perf_counter() - self._began
        return self.metrics()

    def _parent(self) -> dict | None:
        """The hull model expanded least often (the slowest among equals, pushing the frontier outward),
        if it can grow within ``max_ms``."""
        hull = [self.models[i] for i in self.hull()]
        growable = [m for m in hull if self._candidates(Architecture.from_string(self.macro.name, m["arch"]))]
        return min(growable, key=lambda m: (m["expansions"], -m["latency_ms"])) if growable else None

    def _candidates(self, arch: Architecture) -> tuple[tuple[int, str], ...]:
        """Every (layer, op) dearer than the layer's op whose child stays within ``max_ms``."""
        base = self.latency(arch)
        return tuple(
            (i, op)
            for i, current in enumerate(arch.ops)
            for op, ms in self.costs[i].items()
            if op != SKIP and ms > self.costs[i][current] and base + ms - self.costs[i][current] <= self.max_ms
        )

    def _grow(self, parent: dict) -> None:
        parent["expansions"] += 1
        arch = Architecture.from_string(self.macro.name, parent["arch"])
        candidates = self._candidates(arch)
        net = GrowingNet(arch, self.num_classes, candidates)
        net.load_state_dict(self.weights[parent["arch"]], strict=False)  # weak learners start fresh
        base = self.latency(arch)
        added = torch.tensor([(self.costs[i][op] - self.costs[i][arch.ops[i]]) / base for i, op in candidates])
        self._fit(net, self.cfg.weak_steps, lambda: self.cfg.sparsity * (net.alpha.abs() * added.to(net.alpha.device)).sum())
        ranked = torch.argsort(net.alpha.detach().abs().cpu(), descending=True).tolist()
        for n in ranked[: self.cfg.children_per_round]:
            child = net.grown(n, self.num_classes)
            if child.arch.to_string() not in {m["arch"] for m in self.models}:
                self._add(self._fit(child, self.cfg.child_steps))

    def _fit(self, net: GrowingNet, steps: int, penalty=None) -> GrowingNet:
        net = self.compute.module(net)
        opt = sgd(net.parameters(), self.cfg.lr, momentum=self.cfg.momentum, weight_decay=self.cfg.weight_decay)
        loss_fn = nn.CrossEntropyLoss()
        net.train()
        for _ in range(steps):
            x, y = self.compute.batch(*next(self.batches))
            with self.compute.autocast():
                loss = loss_fn(net(x), y)
            if penalty is not None:
                loss = loss + penalty()
            opt.zero_grad(set_to_none=True)
            self.compute.step(loss, opt)
        return net

    def _add(self, net: GrowingNet) -> None:
        recalibrate_bn(net, self.train, self.cfg.eval_batches, compute=self.compute)
        acc = evaluate(net, self.val, max_batches=self.cfg.eval_batches, compute=self.compute)
        arch = net.arch.to_string()
        seconds = self.spent + time.perf_counter() - self._began
        self.models.append({"arch": arch, "latency_ms": self.latency(net.arch), "val_acc": acc, "expansions": 0, "seconds": seconds})
        self.weights[arch] = {k: v.detach().cpu().clone() for k, v in net.base_state().items()}
        hull = {self.models[i]["arch"] for i in self.hull()}
        self.weights = {a: w for a, w in self.weights.items() if a in hull}  # only hull models become parents

    def hull(self) -> list[int]:
        return lower_hull([(m["latency_ms"], 1 - m["val_acc"]) for m in self.models])

    def metrics(self) -> dict[str, Any]:
        best = max(self.models, key=lambda m: m["val_acc"])
        return {
            "arch": best["arch"],
            "val_acc": best["val_acc"],
            "score": best["val_acc"],
            "derived_latency_ms": best["latency_ms"],
            "models": len(self.models),
            "hull": len(self.hull()),
            "round": self.round,
            "frontier": json.dumps([{k: m[k] for k in ("arch", "latency_ms", "val_acc", "seconds")} for m in self.models]),
        }

    def state_dict(self) -> dict:
        """Models, hull weights, the data position and the RNG that initialises weak learners: a resumed
        search continues exactly as an uninterrupted one would."""
        return {
            "models": [dict(m) for m in self.models],
            "weights": self.weights,
            "round": self.round,
            "spent": self.spent,
            "batches": self.batches.state_dict(),
            "val": generator_state(self.val),
            "rng": torch.get_rng_state(),
        }

    def load_state_dict(self, state: dict) -> None:
        self.models, self.weights, self.round, self.spent = (
            [dict(m) for m in state["models"]],
            state["weights"],
            state["round"],
            state["spent"],
        )
        self.batches.load_state_dict(state["batches"])
        set_generator_state(self.val, state["val"])
        torch.set_rng_state(state["rng"])


def best_within_over_time(models: list[dict], budget_ms: float) -> list[tuple[float, float]]:
    """Performance over time of one budget: (seconds when a model joined, best accuracy within the budget so far)."""
    points: list[tuple[float, float]] = []
    for m in sorted(models, key=lambda m: m["seconds"]):
        if m["latency_ms"] <= budget_ms and (not points or m["val_acc"] > points[-1][1]):
            points.append((m["seconds"], m["val_acc"]))
    return points


def pick_within(frontier: list[dict], budget_ms: float) -> dict:
    """The most accurate model within the budget (the fastest one when none fits)."""
    within = [m for m in frontier if m["latency_ms"] <= budget_ms]
    return max(within, key=lambda m: m["val_acc"]) if within else min(frontier, key=lambda m: m["latency_ms"])


class StandaloneRandomSearch:
    """Petridish's baseline: uniform architectures in the budget window, each trained from scratch
    for ``steps`` batches and scored like a Petridish model, until ``seconds`` are spent."""

    def __init__(
        self,
        macro: MacroConfig,
        lut: LatencyTable,
        num_classes: int,
        *,
        cfg: PetridishConfig,
        seed: int,
        loaders,
        budget_ms: float,
        seconds: float,
        compute: Compute = CPU,
    ) -> None:
        self.inner = PetridishSearch(macro, lut, num_classes, cfg=cfg, loaders=loaders, max_ms=budget_ms, compute=compute)
        costs = lut.layer_costs(macro)
        self.choices = [spec.choices for spec in macro.layers()]
        low, high = budget_window(costs, lut.fixed_ms, budget_ms, floor=cfg.budget_floor)
        picks = sample_in_window(costs, lut.fixed_ms, low=low, high=high, n=256, rng=np.random.default_rng(seed))
        self.pool = [Architecture(macro.name, tuple(c[i] for c, i in zip(self.choices, row))).to_string() for row in picks]
        self.steps, self.seconds, self.spent = cfg.parent_steps + cfg.child_steps, seconds, 0.0

    @property
    def done(self) -> bool:
        return len(self.inner.models) >= 2 and self.spent >= self.seconds

    def step(self) -> dict[str, Any]:
        begin = time.perf_counter()
        arch = Architecture.from_string(self.inner.macro.name, self.pool[len(self.inner.models) % len(self.pool)])
        self.inner._add(self.inner._fit(GrowingNet(arch, self.inner.num_classes), self.steps))
        self.spent += time.perf_counter() - begin
        return self.inner.metrics() | {"evaluations": len(self.inner.models), "budget_seconds": self.seconds}

    def state_dict(self) -> dict:
        return {"inner": self.inner.state_dict() | {"weights": {}}, "spent": self.spent}

    def load_state_dict(self, state: dict) -> None:
        self.inner.load_state_dict(state["inner"])
        self.spent = state["spent"]
