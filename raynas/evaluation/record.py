"""The reproducibility record of an experiment (Lindauer & Hutter's NAS best-practice checklist)."""

from __future__ import annotations

import contextlib
import dataclasses
import datetime as _dt
import importlib.metadata
import platform
import subprocess
import time
from collections import defaultdict
from pathlib import Path
from typing import Any, Iterator

from raynas.api import HAND, strategy_class

LIBRARIES = ("torch", "torchvision", "ray", "mlflow", "numpy", "pyarrow", "scipy", "matplotlib")


class PhaseClock:
    """Wall-clock seconds per named phase of the driver (a phase entered twice accumulates)."""

    def __init__(self) -> None:
        self.seconds: dict[str, float] = {}

    @contextlib.contextmanager
    def __call__(self, phase: str) -> Iterator[None]:
        start = time.perf_counter()
        try:
            yield
        finally:
            self.seconds[phase] = round(self.seconds.get(phase, 0.0) + time.perf_counter() - start, 3)


def git_commit() -> str:
    """HEAD of the raynas checkout, with ``-dirty`` when tracked files differ from it."""
    root = Path(__file__).resolve().parents[2]

    def _git(*args: str) -> str:
        return subprocess.run(["git", "-C", str(root), *args], capture_output=True, text=True, check=True, timeout=10).stdout.strip()

    try:
        head = _git("rev-parse", "HEAD")
        return head + ("-dirty" if _git("status", "--porcelain", "--untracked-files=no") else "")
    except (OSError, subprocess.SubprocessError):
        return "unknown (not a git checkout)"


def library_versions() -> dict[str, str]:
    out = {"python": platform.python_version()}
    for name in LIBRARIES:
        try:
            out[name] = importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            out[name] = "not installed"
    return out


def trial_seconds(results: list[dict[str, Any]]) -> dict[str, dict[str, float]]:
    """Summed search and retraining seconds of every finalist, per method (device-seconds of trials)."""
    seen, out = set(), defaultdict(lambda: {"search": 0.0, "retrain": 0.0, "finalists": 0})
    for r in results:
        key = (r["method"], None if r["method"] == HAND else r["target"], r["budget_ms"], r["seed"], r["arch_id"])
        if key in seen:
            continue
        seen.add(key)
        out[r["method"]]["search"] += r["search_seconds"]
        out[r["method"]]["retrain"] += r["retrain_seconds"]
        out[r["method"]]["finalists"] += 1
    return {m: {k: round(v, 2) for k, v in d.items()} for m, d in out.items()}


def reproducibility_record(cfg, clock: PhaseClock, results: list[dict[str, Any]], *, luts: dict, splits) -> dict[str, Any]:
    """Everything needed to rerun and judge the experiment, in one JSON-able dict."""
    return {
        "created": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
        "git_commit": git_commit(),
        "libraries": library_versions(),
        "driver_host": platform.node(),
        "seeds": list(range(cfg.seed, cfg.seed + cfg.evaluation.seeds)),
        "space": cfg.space,
        "strategy": cfg.strategy,
        "hardware": {name: {"target": lut.target, "batch_size": lut.batch_size, **lut.metadata} for name, lut in luts.items()},
        "data": {
            "dataset": cfg.data.dataset,
            "root": cfg.data.root,
            "split_seed": cfg.data.seed,
            "sizes": {"train": len(splits.train), "val": len(splits.val), "test": len(splits.test)},
            "protocol": "weights train on train, architecture steps and candidate scoring on val, reported accuracy on test",
        },
        "tuning": cfg.evaluation.tuning or "not stated (evaluation.tuning in the config says how the search settings were chosen)",
        "hyperparameters": {
            k: dataclasses.asdict(getattr(cfg, k))
            for k in (strategy_class(cfg.strategy).section, "retrain", "evaluation", "profile", "data", "ray")
        },
        "phase_seconds": dict(clock.seconds),
        "trial_seconds": trial_seconds(results),
    }
