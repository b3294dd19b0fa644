"""ProxylessNAS gradient search: warm-up, then alternating weight and architecture steps.

Weight steps train shared weights on the training split (one path sampled from softmax(alpha), or
every path in ``full`` mode); architecture steps update alpha on the validation split with the
latency-aware loss, by one of three estimators (``binarization``):
* ``two``: two-path binary gates (the paper's default; memory of about one path);
* ``full``: every path with its graph, mixed by softmax(alpha) (DARTS; memory grows with paths);
* ``reinforce``: one sampled path, REINFORCE on the same objective with the path's table latency,
  for latency sources that have no gradient.
Plain PyTorch: no Ray, no MLflow; the orchestration layer wraps it.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Callable, Iterator

import numpy as np
import torch
from torch import nn
from torch.utils.data import DataLoader

from raynas.compute import CPU, Compute, iterate_on
from raynas.data.loading import endless, generator_state, set_generator_state
from raynas.hardware.lut import LatencyTable, expected_latency
from raynas.search.derive import budget_window, most_probable_in_window, most_probable_within
from raynas.search.oneshot import final_step
from raynas.space.architecture import Architecture
from raynas.supernet.loss import latency_aware_loss
from raynas.supernet.reinforce import RewardBaseline, reinforce_grads
from raynas.supernet.scoring import FixedBatches
from raynas.supernet.supernet import Supernet
from raynas.training import SCHEDULES, cosine, scheduled, set_lr, sgd, train_epoch, train_step

BINARIZATIONS = ("two", "full", "reinforce")
WEIGHT_OPTIMIZERS = ("sgd", "adam")
LATENCY_ESTIMATES = ("expected", "derived")
ARCH_SCHEDULES = SCHEDULES


@dataclass(frozen=True)
class SearchConfig:
    """Warm-up and architecture-search hyperparameters (defaults follow the paper, scaled down)."""

    warmup_epochs: int = 2  # shared-weight training with uniformly sampled paths
    search_epochs: int = 4  # alternating weight / architecture epochs
    binarization: str = "two"  # two | full | reinforce
    weight_optimizer: str = "sgd"  # sgd (Nesterov momentum) | adam
    weight_lr: float = 0.05  # SGD rate of the supernet weights
    momentum: float = 0.9  # SGD momentum of the weights
    weight_decay: float = 4e-5  # L2 penalty on the weights
    arch_lr: float = 6e-3  # Adam for alpha, betas (0, 0.999) as in the paper
    arch_schedule: str = "constant"  # constant | cosine: alpha's learning rate falls to 0 over search_epochs, so the argmax settles
    arch_every: int = 1  # one architecture step after every N weight steps (0: none, alpha stays uniform: the ablation)
    latency_loss: str = (
        "mul"  # ratio: CE * (E[lat]/B)^beta above B, ^-gamma below ; mul: CE * (log E[lat] / log B)^beta (us) ; add: CE + lam * E[lat] / B
    )
    beta: float = 0.6  # exponent of the latency loss above the budget
    gamma: float = 0.0  # ratio loss: pull toward B from below (0: downward only)
    aim: float = 1.0  # the latency loss steers E[lat] to aim x B (0.95: the middle of the window [0.9 B, B])
    aim_floor: float = 0.0  # ratio loss: above 0, it steers into the band [aim_floor x B, aim x B] and leaves CE alone inside it
    latency_temperature: float = (
        1.0  # E[lat] under softmax(alpha / T): below 1 it tracks the argmax path's latency, which is what is derived
    )
    latency_estimate: str = (
        "expected"  # expected: the loss reads E[lat] ; derived: the argmax path's latency, with E[lat]'s gradient (straight-through)
    )
    lam: float = 0.1  # add loss: weight of E[lat] / B
    reinforce_decay: float = 0.9  # moving-average reward baseline
    budget_floor: float = 0.9  # derived nets land in [floor * B, B] when B is below the slowest net
    eval_batches: int = 8  # batches for BN recalibration and for scoring the derived path each epoch
    weight_schedule: str = "constant"  # constant | cosine: the weights' rate falls to 0 over warmup_epochs + search_epochs
    label_smoothing: float = 0.0  # of the weight steps' cross-entropy (architecture steps read the plain one)
    final_top_k: int = (
        10  # both searches end by re-scoring K in-window candidates on the same fixed batches (0: NAS returns its derived path)
    )
    final_train_steps: int = 0  # weight steps on those K candidates before they are re-scored, the same for both searches


def weight_lr(cfg: SearchConfig, epoch: float) -> float:
    """The weights' rate in ``epoch`` counted from the warm-up's first (cosine: to 0 after the last search epoch)."""
    return scheduled(cfg.weight_lr, epoch, cfg.warmup_epochs + cfg.search_epochs, schedule=cfg.weight_schedule)


def final_lr(cfg: SearchConfig) -> float:
    """The weights' rate in the final step of both searches: the last search epoch's."""
    return weight_lr(cfg, cfg.warmup_epochs + cfg.search_epochs - 1)


def weight_optimizer(params, cfg: SearchConfig) -> torch.optim.Optimizer:
    if cfg.weight_optimizer == "adam":
        return torch.optim.Adam(params, lr=cfg.weight_lr, weight_decay=cfg.weight_decay)
    return sgd(params, cfg.weight_lr, momentum=cfg.momentum, weight_decay=cfg.weight_decay)


def warm_up(
    supernet: Supernet,
    train: DataLoader,
    cfg: SearchConfig,
    *,
    seed: int,
    on_epoch: Callable[[int, dict], None] | None = None,
    compute: Compute = CPU,
) -> dict:
    """Train shared weights (on ``compute``'s device) with one uniformly sampled path per step, so every op is trained."""
    gen = torch.Generator().manual_seed(seed)
    optimizer = weight_optimizer(supernet.weight_parameters(), cfg)
    stats: dict = {}
    for epoch in range(cfg.warmup_epochs):
        set_lr(optimizer, weight_lr(cfg, epoch))
        stats = train_epoch(
            supernet,
            train,
            optimizer,
            loss_fn=nn.CrossEntropyLoss(label_smoothing=cfg.label_smoothing),
            before_batch=lambda: supernet.sample_single(gen, uniform=True),
            compute=compute,
        )
        if on_epoch is not None:
            on_epoch(epoch, stats)
    return stats


class ProxylessSearch:
    """One architecture search of a supernet for one latency table and budget."""

    def __init__(
        self, supernet: Supernet, lut: LatencyTable, budget_ms: float, *, cfg: SearchConfig, seed: int, compute: Compute = CPU
    ) -> None:
        """``supernet`` must already live on ``compute``'s device."""
        self.supernet, self.lut, self.budget_ms, self.cfg, self.compute = supernet, lut, budget_ms, cfg, compute
        self.costs = lut.layer_costs(supernet.macro, self.choices)  # checks the space once, not per step
        self.gen = torch.Generator().manual_seed(seed)
        self.weight_opt = weight_optimizer(supernet.weight_parameters(), cfg)
        self.arch_opt = torch.optim.Adam(supernet.arch_parameters(), lr=cfg.arch_lr, betas=(0.0, 0.999), eps=1e-8)
        self.ce = nn.CrossEntropyLoss()
        self.weight_ce = nn.CrossEntropyLoss(label_smoothing=cfg.label_smoothing)
        self.baseline = RewardBaseline(cfg.reinforce_decay)
        self._pairs: list[tuple[int, int]] | None = None
        self._share = 1.0  # this process's share of the architecture step's batch (data-parallel; 1 alone)
        self._steps = self._epochs = 0
        self._arch_step = {"two": self._two_path_step, "full": self._full_step, "reinforce": self._reinforce_step}[cfg.binarization]

    def expected_latency(self, temperature: float | None = None) -> torch.Tensor:
        """E[lat] under softmax(alpha / T) (T: ``latency_temperature`` unless given; 1 is the plain distribution)."""
        t = self.cfg.latency_temperature if temperature is None else temperature
        probs = self.supernet.probabilities() if t == 1.0 else [torch.softmax(layer.alpha / t, 0) for layer in self.supernet.layers]
        return expected_latency(probs, self.costs, self.lut.fixed_ms)

    def loss_latency(self) -> torch.Tensor:
        """The latency the loss reads: E[lat], or (``derived``) the argmax path's table latency carrying
        E[lat]'s gradient, so the pull's direction follows the network that will be derived."""
        soft = self.expected_latency()
        if self.cfg.latency_estimate == "expected":
            return soft
        argmax = [int(layer.alpha.detach().argmax()) for layer in self.supernet.layers]
        hard = self.lut.fixed_ms + sum(row[i] for row, i in zip(self.costs, argmax))
        return soft + (hard - soft.detach())

    @property
    def choices(self) -> list[tuple[str, ...]]:
        return [layer.choices for layer in self.supernet.layers]

    def objective(self, ce: torch.Tensor, latency_ms: torch.Tensor) -> torch.Tensor:
        floor = self.cfg.aim_floor * self.budget_ms if self.cfg.aim_floor else None
        return latency_aware_loss(
            ce,
            latency_ms,
            self.cfg.aim * self.budget_ms,
            form=self.cfg.latency_loss,
            beta=self.cfg.beta,
            lam=self.cfg.lam,
            gamma=self.cfg.gamma,
            floor_ms=floor,
        )

    def epoch(self, train: DataLoader, val: DataLoader) -> dict[str, float | str]:
        """One pass over ``train`` with architecture steps interleaved; returns epoch metrics and the derived ``arch``."""
        val_batches = endless(val)  # one validation batch held at a time, reshuffled every pass
        self._schedule_arch_lr()
        set_lr(self.weight_opt, weight_lr(self.cfg, self.cfg.warmup_epochs + self._epochs))
        weight_losses, arch_losses = [], []
        for x, y in iterate_on(self.compute, train):
            weight_loss, arch_loss = self.step(x, y, val_batches)
            weight_losses.append(weight_loss)
            if arch_loss is not None:
                arch_losses.append(arch_loss)
        arch, constrained = self.derive()
        self._epochs += 1
        return {
            "train_loss": float(torch.stack(weight_losses).float().mean()) if weight_losses else 0.0,
            "arch_loss": sum(arch_losses) / max(len(arch_losses), 1),
            "val_acc": self.supernet.score(arch, train, val, batches=self.cfg.eval_batches, compute=self.compute),
            "expected_latency_ms": self.expected_latency(1.0).item(),
            "derived_latency_ms": self.lut.predict(arch, self.supernet.macro),
            "entropy": self.entropy(),
            "constrained": float(constrained),
            "argmax_latency_ms": self.lut.predict(self.supernet.derive(), self.supernet.macro),
            "arch": arch.to_string(),
        }

    def _schedule_arch_lr(self) -> None:
        """Cosine: epoch e of search_epochs uses arch_lr x (1 + cos(pi e / search_epochs)) / 2."""
        if self.cfg.arch_schedule == "cosine":
            set_lr(self.arch_opt, cosine(self.cfg.arch_lr, self._epochs, self.cfg.search_epochs))

    def step(
        self,
        x: torch.Tensor,
        y: torch.Tensor,
        val_batches: Iterator,
        *,
        arch: Architecture | None = None,
        pairs: list[tuple[int, int]] | None = None,
    ) -> tuple[torch.Tensor, float | None]:
        """One search iteration: a weight step on a training batch (on the device), then, every
        ``arch_every`` iterations, an architecture step on the next validation batch. ``arch`` and
        ``pairs`` force the paths instead of sampling them (see ``weight_step`` and ``arch_step``)."""
        weight_loss = self._weight_step(x, y, arch)
        self._steps += 1
        if not self.cfg.arch_every or self._steps % self.cfg.arch_every:
            return weight_loss, None
        return weight_loss, self.arch_step(*next(val_batches), pairs)

    def weight_step(self, x: torch.Tensor, y: torch.Tensor, arch: Architecture | None = None) -> float:
        """One SGD/Adam step of the shared weights on a sampled path (``arch`` forces one)."""
        return float(self._weight_step(*self.compute.batch(x, y), arch))

    def _weight_step(self, x: torch.Tensor, y: torch.Tensor, arch: Architecture | None = None) -> torch.Tensor:
        """``weight_step`` on a batch already on the device; the loss stays there (no sync per step)."""
        self.supernet.train()
        if arch is not None:
            self.supernet.set_architecture(arch)
        elif self.cfg.binarization == "full":
            self.supernet.activate_all()
        else:
            self.supernet.sample_single(self.gen)
        return train_step(self.supernet, self.weight_opt, self.weight_ce, x=x, y=y, compute=self.compute)[0]

    def arch_step(self, x: torch.Tensor, y: torch.Tensor, pairs: list[tuple[int, int]] | None = None) -> float:
        """One update of alpha on a validation batch; shared weights are frozen for it.

        ``pairs`` forces the (active, other) path of every layer in ``two`` mode instead of
        sampling them, e.g. to measure the worst case where the largest path is active. Runs in
        fp32 whatever ``compute.precision`` says: the latency loss and alpha's gradients stay exact.
        """
        x, y = self.compute.batch(x, y)
        x, y, self._share = self.compute.sync.shard(x, y)  # data-parallel: this process's slice of the global batch
        self._pairs = pairs
        self.supernet.train()
        weights = list(self.supernet.weight_parameters())
        for p in weights:
            p.requires_grad_(False)
        try:
            self.arch_opt.zero_grad(set_to_none=True)
            loss = self._arch_step(x, y)
            if self.cfg.binarization != "reinforce":  # REINFORCE's gradient comes from the global reward: already equal
                self.compute.sync.reduce_grads(self.supernet.arch_parameters())
            self.arch_opt.step()
            for layer in self.supernet.layers:
                layer.rescale_pair()
        finally:
            for p in weights:
                p.requires_grad_(True)
            self.supernet.sample_single(self.gen)
        return loss

    def _two_path_step(self, x: torch.Tensor, y: torch.Tensor) -> float:
        if self._pairs is None:
            self.supernet.sample_pairs(self.gen)
        else:
            for layer, (active, other) in zip(self.supernet.layers, self._pairs):
                layer.set_pair(active, other)
        loss = self.objective(self.ce(self.supernet(x), y), self.loss_latency())
        self._backward(loss)
        for layer in self.supernet.layers:
            layer.accumulate_alpha_grad()
        return loss.item()

    def _full_step(self, x: torch.Tensor, y: torch.Tensor) -> float:
        self.supernet.activate_all()
        loss = self.objective(self.ce(self.supernet(x), y), self.loss_latency())
        self._backward(loss)
        return loss.item()

    def _backward(self, loss: torch.Tensor) -> None:
        """Every latency loss is linear in the cross-entropy, so share-scaled losses summed over a
        data-parallel group are the global batch's loss (raynas/parallel.py)."""
        (loss * self._share if self.compute.sync.active else loss).backward()

    def _reinforce_step(self, x: torch.Tensor, y: torch.Tensor) -> float:
        """Reward = -objective of one sampled path, its latency read from the table (no gradient needed)."""
        sampled = [layer.sample_single(self.gen) for layer in self.supernet.layers]
        arch = Architecture(self.supernet.macro.name, tuple(layer.choices[i] for layer, i in zip(self.supernet.layers, sampled)))
        with torch.no_grad():
            loss = self.objective(self.ce(self.supernet(x), y), torch.tensor(self.lut.predict(arch, self.supernet.macro), device=x.device))
        if self.compute.sync.active:  # the reward of the global batch, the same on every process
            loss = self.compute.sync.sum(loss * self._share)
        reward = -loss.item()
        advantage = reward - self.baseline.update(reward)
        for alpha, grad in zip(self.supernet.arch_parameters(), reinforce_grads(self.supernet.probabilities(), sampled, advantage)):
            alpha.grad = grad
        return loss.item()

    def derive(self) -> tuple[Architecture, bool]:
        """Most probable path; if it leaves the budget window, the most probable one inside it.

        The window is [floor * B, B] when B is below the slowest network of the space, else [0, B].
        Returns the architecture and whether the window changed the argmax.
        """
        macro = self.supernet.macro
        arch = self.supernet.derive()
        low, high = self.window()
        if low <= self.lut.predict(arch, macro) <= high:
            return arch, False
        log_probs = [torch.log_softmax(layer.alpha.detach(), 0).tolist() for layer in self.supernet.layers]
        fixed = self.lut.fixed_ms
        choice = most_probable_in_window(log_probs, self.costs, lower=max(low - fixed, 0.0), upper=high - fixed)
        if choice is None:  # a window narrower than the DP's grid (a budget just above the fastest net): the budget alone, exactly
            choice = most_probable_within(log_probs, self.costs, high - fixed)
        if choice is None:
            raise ValueError(f"no architecture of space {macro.name!r} lies in [{low:.3f}, {high:.3f}] ms on {self.lut.target!r}")
        return Architecture(macro.name, tuple(layer.choices[i] for layer, i in zip(self.supernet.layers, choice))), True

    def ranked_in_window(self, k: int, *, draws: int = 4096) -> list[Architecture]:
        """Its ``k`` most probable paths inside the budget window, most probable first: the derived path,
        then the distinct in-window paths among ``draws`` samples of softmax(alpha), by probability
        (the exact top k whenever they are among the draws, as they are once alpha has settled). The
        draws are seeded by the step count: the same answer for the same state, the sampler untouched."""
        first, _ = self.derive()
        low, high = self.window()
        macro, choices = self.supernet.macro, self.choices
        alphas = self.supernet.cpu_alphas()
        gen = torch.Generator().manual_seed(self._steps)
        drawn = torch.stack([torch.multinomial(torch.softmax(a, 0), draws, replacement=True, generator=gen) for a in alphas], 1)
        log_probs = [torch.log_softmax(a, 0).tolist() for a in alphas]
        ranked = {first.ops: math.inf} if low <= self.lut.predict(first, macro) <= high else {}  # a fitted cost model may miss
        for row in {tuple(r) for r in drawn.tolist()}:
            arch = Architecture(macro.name, tuple(c[i] for c, i in zip(choices, row)))
            if arch.ops not in ranked and low <= self.lut.predict(arch, macro) <= high:
                ranked[arch.ops] = sum(lp[i] for lp, i in zip(log_probs, row))
        best = sorted(ranked, key=lambda ops: -ranked[ops])[:k]
        return [Architecture(macro.name, ops) for ops in best]

    def window(self) -> tuple[float, float]:
        """[floor * B, B] when B is below the slowest network of this supernet's choices, else [fastest, B]."""
        return budget_window(self.costs, self.lut.fixed_ms, self.budget_ms, floor=self.cfg.budget_floor)

    def state_dict(self) -> dict:
        """Everything a resumed search needs (weights, alpha, optimizers, sampler, reward baseline);
        tensors and plain values only, so ``torch.load(weights_only=True)`` reads it."""
        return {
            "supernet": self.supernet.state_dict(),
            "weight_opt": self.weight_opt.state_dict(),
            "arch_opt": self.arch_opt.state_dict(),
            "gen": self.gen.get_state(),
            "baseline": self.baseline.value,
            "steps": self._steps,
            "epochs": self._epochs,
        }

    def load_state_dict(self, state: dict) -> None:
        self.supernet.load_state_dict(state["supernet"])
        self.weight_opt.load_state_dict(state["weight_opt"])
        self.arch_opt.load_state_dict(state["arch_opt"])
        self.gen.set_state(state["gen"])
        self.baseline.value, self._steps, self._epochs = state["baseline"], state["steps"], state.get("epochs", 0)

    @torch.no_grad()
    def entropy(self) -> float:
        """Mean per-layer entropy of softmax(alpha), in nats (log 7 = 1.95 is uniform)."""
        ents = [float(-(p * p.clamp_min(1e-12).log()).sum()) for p in self.supernet.probabilities()]
        return sum(ents) / max(len(ents), 1)


class EpochSearch:
    """ProxylessNAS as steps: one search epoch per step; with ``fixed`` batches and ``final_top_k``, the
    last step ends with the final step every weight-sharing search shares (``raynas.search.oneshot``)."""

    def __init__(self, search: ProxylessSearch, train, val, *, epochs: int, fixed: FixedBatches | None = None) -> None:
        self.search, self.train, self.val, self.epochs, self.epoch, self.fixed = search, train, val, epochs, 0, fixed

    @property
    def done(self) -> bool:
        return self.epoch >= self.epochs

    def step(self) -> dict:
        self.epoch += 1
        metrics = self.search.epoch(self.train, self.val)
        metrics |= {"score": metrics["val_acc"]}  # the derived architecture's shared-weight accuracy
        return self.finish(metrics) if self.done else metrics

    def finish(self, metrics: dict) -> dict:
        """The K most probable in-window paths, trained alike and re-scored on the fixed batches."""
        cfg, search = self.search.cfg, self.search
        if not (cfg.final_top_k and self.fixed):
            return metrics
        candidates = search.ranked_in_window(cfg.final_top_k) or [search.derive()[0]]
        seed = int(torch.randint(2**31 - 1, (), generator=search.gen))
        set_lr(search.weight_opt, final_lr(cfg))
        pick, scores = final_step(
            search.supernet, candidates, fixed=self.fixed, train_steps=cfg.final_train_steps, batches=endless(self.train),
            optimizer=search.weight_opt, loss_fn=search.weight_ce, rng=np.random.default_rng(seed), compute=search.compute,
        )  # fmt: skip
        return metrics | {
            "derived_arch": metrics["arch"], "arch": pick.to_string(), "score": max(scores), "val_acc": max(scores),
            "derived_latency_ms": search.lut.predict(pick, search.supernet.macro), "final_candidates": len(candidates),
        }  # fmt: skip

    def state_dict(self) -> dict:
        """The search's state and the loaders' generators after the epoch: the next epoch sees the batches it would have."""
        return {
            "search": self.search.state_dict(),
            "epoch": self.epoch,
            "loaders": [generator_state(self.train), generator_state(self.val)],
        }

    def load_state_dict(self, state: dict) -> None:
        self.search.load_state_dict(state["search"])
        self.epoch = state["epoch"]
        for loader, saved in zip((self.train, self.val), state["loaders"]):
            set_generator_state(loader, saved)
