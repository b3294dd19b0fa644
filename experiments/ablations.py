"""Ablations of the search: each variant flips one switch of a base config (latency loss off, uniform
alpha, binarization, warm-up), runs on the same targets, budgets and seeds, and all are reported in
one table, so what each part of the search contributes is measured, not assumed.

    python experiments/ablations.py                                   # experiments/configs/plans/ablations.yaml
    python experiments/ablations.py --variant default --variant no-latency-loss

Prints, per (target, budget), each variant's test accuracy (mean +- std over seeds), how many of
its results the budget window picked instead of the search's own argmax, and that argmax's latency
over the budget; last, one JSON line {"variants", "rows", "run_dirs"}.
"""

from __future__ import annotations

import argparse
import json
import sys

import numpy as np

from raynas.cli import exit_status, parse_overrides
from raynas.evaluation import plans
from raynas.evaluation.compare import nas_methods
from raynas.evaluation.plans import VariantPlan
from raynas.orchestration.pipeline import new_run_dir, run_experiment


def load_plan(path: str) -> VariantPlan:
    """The ablation plan at ``path``, every variant validated."""
    return plans.load_plan(path, "ablation")


def table(rows_by_variant: dict[str, list[dict]]) -> list[dict]:
    """Per (target, budget, variant): NAS test accuracy over seeds, the window's share and where the argmax was."""
    out = []
    for variant, rows in rows_by_variant.items():
        nas = [r for r in rows if r["method"] in nas_methods()]
        for target, budget in sorted({(r["target"], r["budget_ms"]) for r in nas}):
            mine = [r for r in nas if r["target"] == target and r["budget_ms"] == budget]
            acc = np.array([r["test_acc"] for r in mine])
            over = [r["argmax_ms"] / budget for r in mine if r.get("argmax_ms")]
            out.append(
                {
                    "target": target,
                    "budget_ms": budget,
                    "variant": variant,
                    "seeds": len(mine),
                    "acc_mean": float(acc.mean()),
                    "acc_std": float(acc.std(ddof=1)) if len(acc) > 1 else 0.0,
                    "window_picked": sum(bool(r.get("constrained")) for r in mine),
                    "argmax_over_budget": float(np.median(over)) if over else None,
                }
            )
    return sorted(out, key=lambda r: (r["target"], r["budget_ms"], r["variant"]))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--plan", default="experiments/configs/plans/ablations.yaml")
    parser.add_argument("--variant", action="append", default=[], help="run only these variants (default: all)")
    parser.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE", help="a switch for every variant")
    args = parser.parse_args(argv)
    results, run_dirs = {}, {}

    def work() -> None:
        plan = load_plan(args.plan)
        for variant, cfg in plan.configs(args.variant, parse_overrides(args.overrides)).items():
            run_dir = new_run_dir(cfg)
            print(f"[raynas] ablation {variant}: run directory {run_dir}", flush=True)
            results[variant] = run_experiment(cfg, run_dir)["results"]
            run_dirs[variant] = str(run_dir)

    status = exit_status("ablations", work)
    if status:
        return status
    rows = table(results)
    print(f"\n{'target':<12}{'budget ms':>10}  {'variant':<24}{'seeds':>6}{'test acc %':>18}{'window picked':>15}{'argmax / B':>12}")
    for r in rows:
        over = "-" if r["argmax_over_budget"] is None else f"{r['argmax_over_budget']:.2f}"
        print(
            f"{r['target']:<12}{r['budget_ms']:>10.3f}  {r['variant']:<24}{r['seeds']:>6}"
            f"{100 * r['acc_mean']:>11.2f} +- {100 * r['acc_std']:<4.2f}{r['window_picked']:>15}{over:>12}"
        )
    print(json.dumps({"variants": list(results), "rows": rows, "run_dirs": run_dirs}), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
