"""Budget sweep: ProxylessNAS, random search and hand-designed nets, every budget, N seeds.

    python experiments/budget_sweep.py                       # experiments/configs/sweep.yaml
    python experiments/budget_sweep.py --budgets 5 --seeds 3 # 5 budgets spread over each target's range
    python experiments/budget_sweep.py --smoke-test          # a minimal sweep in a few minutes

Each (target, budget, method, seed) is a row of the run's results.parquet; the report
(report.md / report.html) has the Pareto plots and the paired comparison. Prints the tables and,
as its last line, one JSON object with the headline figures. A full (not --smoke-test) sweep writes
its page to benchmarks/<config name>/ (cifar10-sweep: benchmarks/cifar10_sweep/);
``--page-from RUN_DIR`` writes the page of a finished sweep again from its results.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import pyarrow.parquet as pq

from raynas.cli import exit_status, format_table, parse_overrides
from raynas.config import ConfigError, ExperimentConfig, load_config, parse_config
from raynas.evaluation.compare import headline, paired_comparisons
from raynas.orchestration.pipeline import new_run_dir, run_experiment

sys.path.insert(0, str(Path(__file__).with_name("bench")))
from pages import BENCHMARKS, page_root, write_page  # noqa: E402  experiments/bench's page writer

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
    parser.add_argument("--page-from", type=Path, metavar="RUN_DIR", help="only write the results page of a finished sweep's run directory")
    parser.add_argument("--page", type=Path, help="pages under DIR/<config name>_sweep (default: benchmarks/; none in --smoke-test)")
    args = parser.parse_args(argv)
    root = page_root(args.page, args.smoke_test)
    if args.page_from is not None:
        return exit_status("budget_sweep", lambda: print(write_sweep_page(args.page_from, root or BENCHMARKS) / "README.md"))
    return exit_status(
        "budget_sweep",
        lambda: run_sweep(sweep_config(args.config, parse_overrides(args.overrides), args.budgets, args.seeds, args.smoke_test), page=root),
    )


def run_sweep(cfg: ExperimentConfig, log=print, *, page: Path | None = None) -> dict:
    """Run the sweep, print its tables and, last, the headline JSON line (after writing its page under
    ``page``, if given); returns the run's summary."""
    run_dir = new_run_dir(cfg)
    print(f"[raynas] sweep run directory {run_dir}", flush=True)
    summary = run_experiment(cfg, run_dir, log=log)
    print("\n" + format_table(summary), flush=True)
    if page is not None:
        print(f"page: {write_sweep_page(run_dir, page) / 'README.md'}", flush=True)
    print(json.dumps(sweep_headline(summary["results"], summary["comparisons"], cfg) | {"run_dir": str(run_dir)}), flush=True)
    return summary


def sweep_headline(rows: list[dict], comparisons: list[dict], cfg: ExperimentConfig) -> dict:
    budgets = sorted({(r["target"], r["budget_ms"]) for r in rows if r["budget_ms"] is not None})
    return {"dataset": cfg.data.dataset, "rows": len(rows), "budgets": len(budgets), "seeds": cfg.evaluation.seeds} | headline(comparisons)


def write_sweep_page(run_dir: Path, root: Path) -> Path:
    """benchmarks/<config name>_sweep/ from a finished sweep's results (its comparisons recomputed from them)."""
    results = Path(run_dir) / "results.parquet"
    if not results.is_file():
        raise ConfigError(f"--page-from: {results} does not exist; pass the run directory of a finished sweep (printed at its start)")
    cfg = load_config(Path(run_dir) / "config.yaml", check_data=False)
    rows = pq.read_table(results).to_pylist()
    comparisons = paired_comparisons(rows)
    notes = (
        f"Config `{cfg.name}`: space {cfg.space}, dataset {cfg.data.dataset}, {cfg.evaluation.seeds} seeds per cell; each row "
        "compares the NAS finalists of one (target, budget) with random search under the same pipeline, paired by seed "
        "(test accuracy; gap in percentage points). The headline pools every pair. Run directory: "
        f"`{run_dir}`. " + (f"How the settings were chosen: {cfg.evaluation.tuning}" if cfg.evaluation.tuning else "")
    )
    provenance, cost = run_record(Path(run_dir))
    table = [{k: v for k, v in c.items() if not isinstance(v, (list, dict))} for c in comparisons]
    name = cfg.name.replace("-", "_")
    name += "" if name.endswith("sweep") else "_sweep"
    summary = sweep_headline(rows, comparisons, cfg) | cost
    return write_page(name, summary=summary, rows=table, title=f"Budget sweep `{cfg.name}`", notes=provenance + notes, root=root)


def run_record(run_dir: Path) -> tuple[str, dict]:
    """What the run's record.json says of its making: the commit it finished at, whether it was resumed,
    and each method's summed trial seconds (search and retraining: the cost of every phase, all sessions)."""
    path = run_dir / "record.json"
    if not path.is_file():
        return "", {}
    record = json.loads(path.read_text())
    resumed = " after a resume (--resume: trials finished before it were kept)" if record.get("resumed") else ""
    seconds = {m: {k: round(v, 1) for k, v in t.items() if k != "finalists"} for m, t in record.get("trial_seconds", {}).items()}
    return f"The run finished at commit {record['git_commit'][:7]}{resumed}. ", {"trial_seconds": seconds}


if __name__ == "__main__":
    sys.exit(main())
