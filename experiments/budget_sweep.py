"""Budget sweep: ProxylessNAS, random search and hand-designed nets, every budget, N seeds.

    python experiments/budget_sweep.py                       # experiments/configs/sweep.yaml
    python experiments/budget_sweep.py --budgets 5 --seeds 3 # 5 budgets spread over each target's range
    python experiments/budget_sweep.py --smoke-test          # a minimal sweep in a few minutes

Each (target, budget, method, seed) is a row of the run's results.parquet; the report
(report.md / report.html) has the Pareto plots and the paired comparison. Prints the tables and,
as its last line, one JSON object with the headline figures.
"""

from __future__ import annotations

import argparse
import json
import sys

from raynas.cli import exit_status, format_table, parse_overrides
from raynas.config import ExperimentConfig, load_config, parse_config
from raynas.evaluation.compare import headline
from raynas.orchestration.pipeline import new_run_dir, run_experiment

# A minimal sweep: one target, two budgets, two seeds, one epoch per phase on 512 images.
SMOKE = {
    "name": "sweep-smoke",
    "data.limit": 512,
    "data.eval_limit": 256,
    "data.test_limit": 256,
    "search.warmup_epochs": 1,
    "search.search_epochs": 1,
    "retrain.epochs": 1,
    "profile.repeats": 10,
    "profile.calibration_archs": 2,
    "profile.settle_seconds": 0.0,
    "evaluation.seeds": 2,
    "evaluation.hand_designed_widths": [0.5],
    "evaluation.asha.max_epochs": 2,
}


def sweep_config(path: str, overrides: dict, budgets: int | None, seeds: int | None, smoke: bool) -> ExperimentConfig:
    """The config with the sweep's options applied, validated again as a whole."""
    raw = load_config(path, (SMOKE if smoke else {}) | overrides).to_dict()
    if smoke:
        raw["targets"] = [raw["targets"][0] | {"budgets_ms": (), "budget_fractions": (0.3, 0.7)}]
    if budgets:
        spread = tuple(round((i + 1) / (budgets + 1), 4) for i in range(budgets))
        raw["targets"] = [t | {"budgets_ms": (), "budget_fractions": spread} for t in raw["targets"]]
    if seeds:
        raw["evaluation"]["seeds"] = seeds
    return parse_config(raw)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--config", default="experiments/configs/sweep.yaml")
    parser.add_argument("--budgets", type=int, help="this many budgets per target, evenly spread between its fastest and slowest net")
    parser.add_argument("--seeds", type=int, help="replicates per (target, budget, method)")
    parser.add_argument("--smoke-test", action="store_true", help="a minimal sweep (one target, two budgets, two seeds) in a few minutes")
    parser.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE")
    args = parser.parse_args(argv)
    return exit_status(
        "budget_sweep",
        lambda: run_sweep(sweep_config(args.config, parse_overrides(args.overrides), args.budgets, args.seeds, args.smoke_test)),
    )


def run_sweep(cfg: ExperimentConfig, log=print) -> dict:
    """Run the sweep, print its tables and, last, the headline JSON line; returns the run's summary."""
    run_dir = new_run_dir(cfg)
    print(f"[raynas] sweep run directory {run_dir}", flush=True)
    summary = run_experiment(cfg, run_dir, log=log)
    print("\n" + format_table(summary), flush=True)
    budgets = sorted({(r["target"], r["budget_ms"]) for r in summary["results"] if r["budget_ms"] is not None})
    line = (
        {"dataset": cfg.data.dataset, "rows": len(summary["results"]), "budgets": len(budgets), "seeds": cfg.evaluation.seeds}
        | headline(summary["comparisons"])
        | {"run_dir": str(run_dir)}
    )
    print(json.dumps(line), flush=True)
    return summary


if __name__ == "__main__":
    sys.exit(main())
