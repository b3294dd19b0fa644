"""Tune a sweep's search settings on the validation split, and say what the tuning cost.

    python experiments/tune_search.py                      # experiments/configs/plans/cifar10-tuning.yaml
    python experiments/tune_search.py --variant as-is --variant warmup-8

A tuning plan is a base config (the sweep to tune), switches shared by every variant (the tuning
scenarios: which targets, budgets and seeds; NAS and random search with weight sharing) and the
candidate settings as variants. Each variant runs through the pipeline and is scored by the
**validation** accuracy of its retrained NAS finalists; test accuracy is never read. Prints one
row per variant (NAS and random validation accuracy, their gap, share within budget, core-seconds)
and, last, one JSON object with the best variant, its switches and the whole tuning's cost: what
the tuned config's ``evaluation.tuning`` should state (Lindauer & Hutter's "how were the
hyperparameters tuned, at what cost").
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import ray

from raynas.api import RANDOM_BASELINES
from raynas.cli import exit_status, parse_overrides
from raynas.evaluation import plans
from raynas.evaluation.compare import nas_methods
from raynas.evaluation.plans import VariantPlan
from raynas.execution.runtime import cluster_cpus, connect
from raynas.files import write_json
from raynas.orchestration.pipeline import new_run_dir, run_experiment


@dataclass(frozen=True)
class Score:
    """One variant's validation figures over the tuning scenarios."""

    nas_val: float
    random_val: float | None  # None when the plan turns random search off
    within_budget: float  # share of NAS finalists whose measured latency is within their budget
    finalists: int

    @property
    def gap_pp(self) -> float | None:
        return None if self.random_val is None else 100 * (self.nas_val - self.random_val)


def load_plan(path: str) -> VariantPlan:
    """The tuning plan at ``path``, every variant validated."""
    return plans.load_plan(path, "tuning")


def score(rows: list[dict]) -> Score:
    """Mean validation accuracy of the NAS (and random) finalists; test accuracy is not read."""
    nas = [r for r in rows if r["method"] in nas_methods()]
    if not nas:
        raise RuntimeError("the tuning run gave no NAS finalist")
    rand = [r["val_acc"] for r in rows if r["method"] in RANDOM_BASELINES]
    hits = [r["measured_ms"] <= r["budget_ms"] for r in nas if r["measured_ms"] is not None]
    return Score(
        float(np.mean([r["val_acc"] for r in nas])),
        float(np.mean(rand)) if rand else None,
        float(np.mean(hits)) if hits else float("nan"),
        len(nas),
    )


def run_variants(plan: VariantPlan, configs: dict, out: Path, log=print) -> tuple[dict[str, Score], dict[str, float], dict[str, str]]:
    """Every variant through the pipeline on one Ray: its score, core-seconds and run directory. A
    finished variant is saved to ``out/<variant>.json`` and read back, not rerun, while its switches
    config is unchanged (a crash or a stop loses no finished variant)."""
    out.mkdir(parents=True, exist_ok=True)
    first = next(iter(configs.values()))
    started = connect(first.ray.address, first.ray.num_cpus, [t.name for t in first.targets if not t.estimated])
    entries = {}
    try:
        for variant, cfg in configs.items():
            saved = out / f"{variant}.json"
            entry = json.loads(saved.read_text()) if saved.is_file() else None
            if entry is not None and entry["config"] == json.loads(json.dumps(cfg.to_dict())):
                print(f"[raynas] tuning {variant}: finished before, read from {saved}", flush=True)
            else:
                write_json(saved, run_variant(plan.variants[variant], cfg, log))
                entry = json.loads(saved.read_text())  # as a later run reads it back
            entries[variant] = entry
    finally:
        if started:
            ray.shutdown()
    return (
        {v: score(e["rows"]) for v, e in entries.items()},
        {v: e["core_seconds"] for v, e in entries.items()},
        {v: e["run_dir"] for v, e in entries.items()},
    )


def run_variant(switches: dict, cfg, log) -> dict:
    """One variant's pipeline run, reduced to what its score and cost need."""
    run_dir = new_run_dir(cfg)
    print(f"[raynas] tuning {cfg.name}: run directory {run_dir}", flush=True)
    start = time.perf_counter()
    results = run_experiment(cfg, run_dir, log=log)["results"]
    rows = [{k: r[k] for k in ("method", "target", "budget_ms", "seed", "arch", "val_acc", "measured_ms")} for r in results]
    return {
        "switches": switches,
        "config": cfg.to_dict(),
        "rows": rows,
        "core_seconds": (time.perf_counter() - start) * cluster_cpus(),
        "run_dir": str(run_dir),
    }


def report(plan: VariantPlan, scores: dict[str, Score], costs: dict[str, float], run_dirs: dict[str, str]) -> dict:
    """The table, the best variant by NAS validation accuracy, and the JSON line (returned too)."""
    fmt = lambda v, spec: "-" if v is None else format(v, spec)  # noqa: E731
    print(f"\n{'variant':<20} {'switches':<44} {'NAS val %':>9} {'random val %':>12} {'gap pp':>7} {'in budget':>9} {'core_s':>8}")
    for v, s in scores.items():
        switches = "; ".join(f"{k}={x}" for k, x in plan.variants[v].items()) or "(the base config)"
        print(
            f"{v:<20} {switches:<44} {100 * s.nas_val:>9.2f} {fmt(None if s.random_val is None else 100 * s.random_val, '>12.2f'):>12} "
            f"{fmt(s.gap_pp, '+7.2f'):>7} {s.within_budget:>9.0%} {costs[v]:>8.0f}"
        )
    best = max(scores, key=lambda v: scores[v].nas_val)
    total = sum(costs.values())
    print(f"best by NAS validation accuracy: {best}; the tuning took {total:.0f} core-seconds ({total / 3600:.2f} core-hours)")
    line = {
        "best": best,
        "best_switches": plan.variants[best],
        "variants": list(scores),
        "nas_val": {v: round(s.nas_val, 4) for v, s in scores.items()},
        "gap_pp": {v: None if s.gap_pp is None else round(s.gap_pp, 2) for v, s in scores.items()},
        "finalists_per_variant": scores[best].finalists,
        "tuning_core_seconds": round(total),
        "run_dirs": run_dirs,
    }
    print(json.dumps(line), flush=True)
    return line


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--plan", default="experiments/configs/plans/cifar10-tuning.yaml")
    parser.add_argument("--variant", action="append", default=[], help="run only these variants (default: all)")
    parser.add_argument("--out", default="runs/tuning", help="finished variants are kept in OUT/<plan name>/ and not rerun")
    parser.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE", help="a switch for every variant")
    args = parser.parse_args(argv)

    def work() -> None:
        plan = load_plan(args.plan)
        configs = plan.configs(args.variant, parse_overrides(args.overrides))
        report(plan, *run_variants(plan, configs, Path(args.out) / Path(args.plan).stem))

    return exit_status("tune_search", work)


if __name__ == "__main__":
    sys.exit(main())
