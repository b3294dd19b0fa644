"""The ``raynas`` command: run an experiment, report on a run, list targets, spaces and strategies."""

from __future__ import annotations

import argparse
import json
import math
import os
import sys
from pathlib import Path
from typing import Any, Callable, Sequence

import yaml

from raynas.api import strategy_class, strategy_names
from raynas.checkpoints import CheckpointError
from raynas.config import ConfigError, ExperimentConfig, check_dataset_folder, load_config
from raynas.config_reference import render
from raynas.data.datasets import DatasetError
from raynas.evaluation.report import ReportError, write_report
from raynas.execution.runtime import ClusterError
from raynas.hardware.backend import HardwareUnavailable
from raynas.hardware.estimates import estimated_table
from raynas.hardware.lut import LatencyTableError
from raynas.hardware.targets import TARGETS
from raynas.space.cells import CELL_SPACES, is_cell_space
from raynas.space.macro import SPACES, get_space
from raynas.tracking.mlflow_tracker import TrackingError

USER_ERRORS = (ConfigError, DatasetError, LatencyTableError, CheckpointError, ClusterError, TrackingError, HardwareUnavailable, ReportError)
COLUMNS = (
    "target",
    "budget_ms",
    "method",
    "seed",
    "space",
    "arch",
    "predicted_ms",
    "measured_ms",
    "measured_wall_ms",
    "test_acc",
    "constrained",
)
COMPARISON_COLUMNS = (
    "target",
    "budget_ms",
    "seeds",
    "nas_method",
    "nas_acc_mean",
    "random_acc_mean",
    "gap_pp",
    "p_value",
    "asha_acc_mean",
    "asha_gap_pp",
    "hand_gap_pp",
    "hand_p_value",
    "nas_ms_mean",
    "random_ms_mean",
)


def parse_overrides(items: Sequence[str]) -> dict[str, Any]:
    """``--set search.search_epochs=2`` -> {"search.search_epochs": 2} (values parsed as YAML)."""
    out = {}
    for item in items:
        key, sep, value = item.partition("=")
        if not sep or not key:
            raise ConfigError(f"--set {item!r}: expected dotted.key=value")
        out[key] = yaml.safe_load(value)
    return out


def format_table(summary: dict[str, Any]) -> str:
    """The results table, then NAS versus random search per (target, budget), then where to look."""
    results = sorted(summary["results"], key=lambda r: (r["target"], r["method"], r["budget_ms"] or 0, r["seed"], r["width_mult"]))
    rows = [[_cell(r.get(c)) for c in COLUMNS[:-1]] + [_constrained(r), _ratio(r)] for r in results]
    lines = _aligned(list(COLUMNS) + ["meas/pred"], rows)
    lines += [
        "(latencies: ms in the unit of each target's latency table, its yardstick; "
        "measured_wall_ms: the same measurement in wall-clock ms of its moment)"
    ]
    if summary.get("comparisons"):
        lines += [
            "",
            "NAS versus random search (test accuracy; gap in percentage points; p: paired t-test over seeds)",
            "and versus the MobileNetV2-style widths at NAS's measured latency "
            "(hand_gap_pp; linear between widths, the nearest width outside them)",
        ]
        lines += _aligned(list(COMPARISON_COLUMNS), [[_cell(c.get(k)) for k in COMPARISON_COLUMNS] for c in summary["comparisons"]])
    lines += ["", f"run directory: {summary['run_dir']}", f"browse MLflow: mlflow ui --backend-store-uri {summary['mlflow_uri']}"]
    return "\n".join(lines)


def _aligned(header: list[str], rows: list[list[str]]) -> list[str]:
    widths = [max(len(h), *(len(row[i]) for row in rows)) if rows else len(h) for i, h in enumerate(header)]
    lines = ["  ".join(h.ljust(w) for h, w in zip(header, widths)), "  ".join("-" * w for w in widths)]
    return lines + ["  ".join(c.ljust(w) for c, w in zip(row, widths)) for row in rows]


def _constrained(r: dict[str, Any]) -> str:
    """'no' when the search's own argmax fit the budget window; else where that argmax was, as a multiple of B."""
    if r.get("constrained") is None:
        return "-"
    if not r["constrained"]:
        return "no"
    return f"yes (argmax {r['argmax_ms'] / r['budget_ms']:.2f} B)" if r.get("argmax_ms") else "yes"


def _ratio(r: dict[str, Any]) -> str:
    if r["measured_ms"] is None:
        return "estimated"
    return "n/a" if r["predicted_ms"] is None else f"{100 * (r['measured_ms'] / r['predicted_ms'] - 1):+.1f}%"


def _cell(value: Any) -> str:
    if value is None:
        return "-"
    return f"{value:.3f}" if isinstance(value, float) else str(value)


def run_command(config: str, overrides: Sequence[str], resume: str | None = None) -> dict[str, Any]:
    from raynas.orchestration.pipeline import new_run_dir, resume_experiment, run_experiment  # here: ~0.7 s other commands skip

    os.environ.setdefault("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", "false")  # else a bar per logged model on the console

    if resume:
        if overrides:
            raise ConfigError("--resume continues a run with the config it started with; drop the --set overrides")
        print(f"[raynas] resuming run directory {resume}", flush=True)
        summary = resume_experiment(resume)
    else:
        cfg = load_config(config, parse_overrides(overrides), check_data=False)
        print_estimated_budgets(cfg)
        check_dataset_folder(cfg)
        run_dir = new_run_dir(cfg)
        print(f"[raynas] run directory {run_dir}", flush=True)
        summary = run_experiment(cfg, run_dir)
    print("\n" + format_table(summary), flush=True)
    report = Path(summary["run_dir"]) / "report.html"
    if report.is_file():
        print(f"report: {report} (and report.md)", flush=True)
    print(f"results: {Path(summary['run_dir']) / 'results.json'} (every row; results.parquet holds the same)", flush=True)
    return summary


def print_estimated_budgets(cfg: ExperimentConfig) -> None:
    """Budgets of targets estimated from a published table or a roofline: known before any data or cluster
    (a tabular target's are printed when its lookup is read)."""
    if is_cell_space(cfg.space):
        return
    macro = get_space(cfg.space)
    for tgt in cfg.targets:
        if tgt.estimated:
            est = tgt.estimate
            lut = estimated_table(tgt.name, macro, table=est.table, device=est.device, batch_size=est.batch_size)
            low, high = lut.latency_range(macro)
            source = lut.metadata.get("source", lut.metadata.get("device"))
            budgets = ", ".join(f"{b:.2f}" for b in tgt.budgets(low, high))
            print(
                f"[raynas] {tgt.name}: {lut.metadata['provenance']} estimate ({source}); "
                f"space {macro.name} spans {low:.2f}-{high:.2f} ms; budgets {budgets} ms",
                flush=True,
            )


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="raynas", description="Hardware-aware neural architecture search on Ray.")
    sub = parser.add_subparsers(dest="command", required=True)
    run = sub.add_parser("run", help="search, retrain and measure every (target, budget) of a config")
    run.add_argument("--config", default="experiments/configs/smoke.yaml", help="YAML experiment config")
    run.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE", help="override a config field")
    run.add_argument("--resume", metavar="RUN_DIR", help="continue a run whose driver died: finished trials are kept, MLflow runs reused")
    report = sub.add_parser("report", help="(re)write report.md / report.html of a finished run directory")
    report.add_argument("run_dir", help="a run directory holding results.parquet")
    sync = sub.add_parser("sync-mlflow", help="upload a finished run to MLflow (after the server was down mid-run)")
    sync.add_argument("run_dir", help="the run directory")
    sync.add_argument("--uri", help="tracking URI (default: the run's tracking.mlflow_uri)")
    sub.add_parser("targets", help="list registered hardware targets")
    sub.add_parser("spaces", help="list registered search spaces")
    sub.add_parser("strategies", help="list registered search strategies")
    reference = sub.add_parser("config-reference", help="print (or write) the configuration reference, generated from the code")
    reference.add_argument("--out", help="write it to this file (the repository's copy: docs/configuration.md)")
    return parser


def exit_status(prog: str, work: Callable[[], object]) -> int:
    """Run ``work``: 0 when it finishes, 2 with one line on stderr naming ``prog`` when the user's
    input is wrong (every script's ``main`` ends this way)."""
    try:
        work()
    except USER_ERRORS as exc:
        print(f"{prog}: error: {exc}", file=sys.stderr)
        return 2
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    return exit_status("raynas", lambda: _dispatch(args))


def _dispatch(args: argparse.Namespace) -> None:
    if args.command == "run":
        run_command(args.config, args.overrides, args.resume)
    elif args.command == "sync-mlflow":
        from raynas.orchestration.pipeline import sync_mlflow  # here: ~0.7 s other commands skip

        print(json.dumps(sync_mlflow(args.run_dir, args.uri)))
    elif args.command == "report":
        for path in write_report(args.run_dir):
            print(path)
    elif args.command == "config-reference":
        if args.out:
            Path(args.out).write_text(render())
        else:
            print(render(), end="")
    elif args.command == "strategies":
        for name in strategy_names():
            cls = strategy_class(name)
            print(f"{name:12s} {cls.label:16s} config section: {cls.section}")
    elif args.command == "targets":
        for name in TARGETS.names():
            t = TARGETS.get(name)
            print(f"{name:18s} {t.backend:16s} allocator {t.allocator:14s} {t.description}")
    else:
        for name in SPACES.names():
            m = SPACES.get(name)
            print(f"{name:12s} {len(m.layers())} layers, {m.num_architectures():.3g} architectures, {m.input_size}px")
        for name in CELL_SPACES.names():
            s = CELL_SPACES.get(name)
            print(f"{name:12s} a cell of {len(s.options)} edges, {math.prod(s.options):.3g} architectures, 32px (black-box strategies)")


if __name__ == "__main__":
    sys.exit(main())
