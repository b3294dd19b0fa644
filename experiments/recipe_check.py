"""Is a config's retraining recipe long enough for architectures to differ? Checked on validation.

    python experiments/recipe_check.py --config experiments/configs/cifar10-sweep.yaml
    python experiments/recipe_check.py --config ... --set retrain.epochs=12 --widths 0.25 0.5 1.0

Trains the MobileNetV2-style references at the config's widths (``evaluation.hand_designed_widths``)
with its retraining recipe, one network per (width, seed), and scores each on the **validation**
split; test accuracy is never computed. A recipe too short for capacity to matter leaves the widths
inside each other's seed spread, and then a sweep on it cannot tell a good architecture from a bad
one. Prints one row per width (validation accuracy per seed, mean, spread = max - min over seeds)
and, last, one JSON object with ``separated``: every pair of adjacent widths' mean gap exceeds the
larger of their two spreads.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np
import torch

from raynas.cli import exit_status, parse_overrides
from raynas.compute import Compute
from raynas.config import ConfigError, ExperimentConfig, load_config
from raynas.data.datasets import load_splits
from raynas.space.network import ChildNetwork
from raynas.space.reference import mobilenet_v2_like
from raynas.training import retrain


@dataclass(frozen=True)
class Job:
    """One reference network to train: its width multiplier and seed."""

    width: float
    seed: int


def train_one(cfg: ExperimentConfig, job: Job) -> tuple[float, float]:
    """Validation accuracy of one reference network after the config's recipe, and its CPU seconds."""
    torch.set_num_threads(cfg.ray.cpus_per_trial)
    torch.manual_seed(job.seed)
    start = time.process_time()
    compute = Compute.from_config(cfg.compute)
    splits = load_splits(cfg.data)
    train, val, _ = splits.loaders(cfg.data.batch_size, job.seed, compute.device)
    model = compute.module(ChildNetwork(mobilenet_v2_like(cfg.space, job.width), splits.num_classes))
    metrics = retrain(model, train, val, cfg=cfg.retrain, compute=compute)
    return metrics["val_acc"], time.process_time() - start


def spread(values: list[float]) -> float:
    return max(values) - min(values)


def separated(accs: dict[float, list[float]]) -> bool:
    """Every pair of adjacent widths differs in mean by more than the larger of their seed spreads."""
    widths = sorted(accs)
    return all(abs(np.mean(accs[b]) - np.mean(accs[a])) > max(spread(accs[a]), spread(accs[b])) for a, b in zip(widths, widths[1:]))


def run(cfg: ExperimentConfig, widths: list[float], seeds: int, workers: int) -> tuple[dict[float, list[float]], float]:
    """Validation accuracies per width (one per seed) and the CPU seconds of all the training."""
    jobs = [Job(w, s) for w in widths for s in range(cfg.seed, cfg.seed + seeds)]
    load_splits(cfg.data)  # decode (and cache) the images once, before the workers read them
    with ProcessPoolExecutor(workers) as pool:
        futures, done = [pool.submit(train_one, cfg, job) for job in jobs], []
        for job, future in zip(jobs, futures):
            done.append(future.result())
            print(f"[recipe_check] width {job.width:g} seed {job.seed}: validation accuracy {100 * done[-1][0]:.2f} %", flush=True)
    accs = {w: [acc for job, (acc, _) in zip(jobs, done) if job.width == w] for w in widths}
    return accs, sum(sec for _, sec in done)


def report(cfg: ExperimentConfig, accs: dict[float, list[float]], cpu_seconds: float) -> dict:
    """The table and the JSON line (returned too)."""
    print(
        f"recipe: {cfg.retrain.epochs} epochs, lr {cfg.retrain.lr}, batch {cfg.data.batch_size}, "
        f"{cfg.data.limit or 'all'} training images; validation accuracy %"
    )
    print(f"{'width':>6} {'per seed':<28} {'mean':>6} {'spread':>6}")
    for w, values in sorted(accs.items()):
        print(f"{w:>6g} {' '.join(f'{100 * v:.2f}' for v in values):<28} {100 * np.mean(values):>6.2f} {100 * spread(values):>6.2f}")
    ok = separated(accs)
    print(f"widths separated by more than their seed spreads: {'yes' if ok else 'no'}; {cpu_seconds:.0f} CPU-seconds of training")
    line = {
        "config": cfg.name,
        "epochs": cfg.retrain.epochs,
        "widths": sorted(accs),
        "val_acc_mean": {str(w): round(float(np.mean(v)), 4) for w, v in sorted(accs.items())},
        "spread": {str(w): round(spread(v), 4) for w, v in sorted(accs.items())},
        "separated": ok,
        "cpu_seconds": round(cpu_seconds),
    }
    print(json.dumps(line), flush=True)
    return line


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--config", default="experiments/configs/cifar10-sweep.yaml")
    parser.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE")
    parser.add_argument("--widths", type=float, nargs="+", help="width multipliers (default: the config's evaluation.hand_designed_widths)")
    parser.add_argument("--seeds", type=int, help="networks per width (default: the config's evaluation.seeds)")
    parser.add_argument("--workers", type=int, default=2, help="networks trained at once, each on ray.cpus_per_trial threads")
    args = parser.parse_args(argv)

    def work() -> None:
        cfg = load_config(args.config, parse_overrides(args.overrides))
        widths = args.widths or list(cfg.evaluation.hand_designed_widths)
        seeds = args.seeds or cfg.evaluation.seeds
        if len(widths) < 2 or seeds < 2 or args.workers < 1:
            raise ConfigError(
                "recipe_check needs at least two widths (--widths), two seeds (--seeds) and one worker (--workers): "
                "a spread needs seeds and a separation needs widths"
            )
        cache = cfg.data.cache_dir or str(Path("runs") / "recipe-check" / "data-cache")
        report(cfg, *run(replace(cfg, data=replace(cfg.data, cache_dir=cache)), widths, seeds, args.workers))

    return exit_status("recipe_check", work)


if __name__ == "__main__":
    sys.exit(main())
