"""Is the latency table right? Predicted versus measured latency of random whole networks.

Builds the target's table (profiling every op), samples N random architectures of the space,
measures each end to end on the target in interleaved rounds (twice: how well two measurements of
the same networks agree bounds what any predictor can reach), and compares. Prints a table of the
worst predictions and the summary; results go to Parquet (and to MLflow when a run is active).
The last line is one JSON object: target, n, mape, within_10pct, kendall_tau.

    python experiments/bench/latency_accuracy.py --target cpu-1t [--n 100] [--smoke-test]
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import time
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq

from raynas.config import ProfileConfig
from raynas.hardware.accuracy import kendall_tau, prediction_accuracy, sample_architectures
from raynas.hardware.build import build_latency_table, input_shape
from raynas.hardware.targets import get_target
from raynas.space.macro import get_space
from raynas.space.network import ChildNetwork


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--target", default="cpu-1t")
    parser.add_argument("--space", default="mnist-small")
    parser.add_argument("--n", type=int, default=100)
    parser.add_argument("--repeats", type=int, default=200)
    parser.add_argument("--out", default="runs/bench")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--smoke-test", action="store_true", help="10 architectures, few repeats")
    args = parser.parse_args()
    if args.smoke_test:
        args.n, args.repeats = 10, 10
    target, macro = get_target(args.target), get_space(args.space)
    start = time.perf_counter()
    profile = ProfileConfig()
    table = build_latency_table(target, macro, 10, warmup=10, repeats=args.repeats, calibration_archs=profile.calibration_archs, seed=0, fit_scale=True)
    archs = sample_architectures(macro, args.n, args.seed)
    nets = {a.arch_id: (ChildNetwork(a, 10), input_shape(macro, target)) for a in archs}
    measured = target.measure(nets, warmup=5, repeats=args.repeats, yardstick_ms=table.yardstick_ms)
    again = target.measure(nets, warmup=5, repeats=args.repeats, yardstick_ms=table.yardstick_ms)  # the measurement's own noise
    ceiling = kendall_tau([measured[a.arch_id] for a in archs], [again[a.arch_id] for a in archs])
    offset_only = dataclasses.replace(table, scale=1.0, fixed={**table.fixed, "overhead": float(table.metadata["offset_only_overhead"])})
    default = "fitted_scale" if profile.fit_scale else "offset_only"  # the predictor the pipeline uses by default
    rows = []
    for a in archs:
        row = {"arch": a.to_string(), "arch_id": a.arch_id, "offset_only_ms": offset_only.predict(a, macro), "fitted_scale_ms": table.predict(a, macro), "measured_ms": measured[a.arch_id]}
        rows.append(row | {"predicted_ms": row[f"{default}_ms"]})
    truth = [r["measured_ms"] for r in rows]
    variants = {name: prediction_accuracy([r[f"{name}_ms"] for r in rows], truth) for name in ("offset_only", "fitted_scale")}
    acc = variants[default]
    report(rows, variants, default, table, target.name, macro.name, time.perf_counter() - start)
    print(f"the same networks measured twice agree at Kendall tau {ceiling:.3f}: no predictor can rank them much better")
    save(rows, Path(args.out) / f"latency_accuracy-{target.name}-{macro.name}.parquet")
    log_to_active_mlflow_run(acc, target.name)
    print(json.dumps({"target": target.name, "n": acc.n, "mape": round(acc.mape, 3), "within_10pct": round(acc.within_10pct, 3), "kendall_tau": round(acc.kendall_tau, 3), "remeasure_tau": round(ceiling, 3)} | {k: _rounded(v) for k, v in variants.items()}))


def _rounded(acc) -> dict:
    return {"mape": round(acc.mape, 3), "within_10pct": round(acc.within_10pct, 3), "kendall_tau": round(acc.kendall_tau, 3)}


def report(rows: list[dict], variants: dict, default: str, table, target: str, space: str, seconds: float) -> None:
    print(f"target {target}, space {space}: {len(rows)} random architectures, {seconds:.0f} s")
    print(f"{'architecture':36s} {'predicted':>10s} {'measured':>10s} {'error':>7s}")
    worst = sorted(rows, key=lambda r: -abs(r["predicted_ms"] / r["measured_ms"] - 1))[:8]
    for r in worst:
        print(f"{r['arch']:36s} {r['predicted_ms']:10.3f} {r['measured_ms']:10.3f} {100 * (r['predicted_ms'] / r['measured_ms'] - 1):+6.1f}%")
    print(f"{'predictor':44s} {'MAPE %':>7s} {'within 10%':>11s} {'tau':>6s}")
    labels = {"offset_only": "sum of ops + overhead", "fitted_scale": "sum of ops x scale + overhead (fit_scale)"}
    for name, acc in variants.items():
        label = labels[name] + (" *" if name == default else "")
        print(f"{label:44s} {acc.mape:7.2f} {100 * acc.within_10pct:10.1f}% {acc.kendall_tau:6.3f}")
    print(f"* the pipeline's default (profile.fit_scale: {str(default == 'fitted_scale').lower()}); yardstick {table.yardstick_ms:.4f} ms")
    print(f"fitted correction: {table.metadata.get('correction')}")


def save(rows: list[dict], path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    pq.write_table(pa.Table.from_pylist(rows), path)


def log_to_active_mlflow_run(acc, target: str) -> None:
    import mlflow

    if mlflow.active_run() is not None:
        mlflow.log_metrics({f"latency_accuracy/{target}/{k}": float(v) for k, v in vars(acc).items()})


if __name__ == "__main__":
    main()
