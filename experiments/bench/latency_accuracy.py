"""Is the latency table right? Predicted versus measured latency of random whole networks.

Builds the target's table (profiling every op), samples N random architectures of the space,
measures each end to end on the target in interleaved rounds (twice: how well two measurements of
the same networks agree bounds what any predictor can reach), and compares. Runs in a process
started with the target's allocator settings (it restarts itself with them).

Then the **independent check**: every network is exported as the target ships it (AOTInductor,
ONNX or ExecuTorch, raynas/export.py) and timed by ``independent_timer.py`` -- ``torch.utils.benchmark`` medians,
nothing of raynas -- each in a fresh process started with the target's environment, as a server
serving that one network would be, beside the yardstick. This machine's speed moves by up to 1.6x
within seconds, so each harness timing is brought to the median moment's speed by the yardstick
timed beside it in the same process. ``unit_factor`` (wall-clock ms per table ms) is the median of
harness over predicted latency: raynas's unit is the yardstick's fastest calls while its ratios pair
each network call with a yardstick call right after another network (slower, its caches cold), so
a table ms is not a tight-loop wall-clock ms; what must hold is that one factor fits every network.
Two passes bound the harness's
own noise. Prints the worst predictions and the summaries; results go to Parquet (and to MLflow
when a run is active). The last line is one JSON object: target, n, mape, within_10pct,
kendall_tau, independent_within_10pct, independent_kendall_tau, unit_factor, ...

    python experiments/bench/latency_accuracy.py --target cpu-1t [--n 100] [--smoke-test]

**Drift versus bias** of a finished run (``--run RUN_DIR``): every measured target's shipped files under
``deploy/`` are timed by the same harness, each in a fresh process beside the target's yardstick;
the yardstick is also timed by raynas's own timing now. ``drift_factor`` = yardstick now / the
yardstick its table recorded (the machine's speed moved); ``bias_factor`` = the harness's timing in
yardstick units / the reported latency in yardstick units (what a user measures against what raynas
reported, with the machine's drift taken out). Per target and pooled (medians); last line JSON.

    python experiments/bench/latency_accuracy.py --run runs/smoke/<run>

Pages (pages.py; none in --smoke-test unless ``--page`` is given): benchmarks/latency_accuracy/<target>/
and, for ``--run``, benchmarks/latency_accuracy/drift_bias/.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
from pages import add_page_argument, page_root, write_page  # this folder: the benchmark page writer

from raynas.config import ProfileConfig
from raynas.export import Deployment, export_network
from raynas.hardware.accuracy import kendall_tau, prediction_accuracy, sample_architectures
from raynas.hardware.backend import get_backend, yardstick
from raynas.hardware.build import build_latency_table, input_shape
from raynas.hardware.lut import LatencyTable
from raynas.hardware.process import reexec_with
from raynas.hardware.targets import HardwareTarget, get_target
from raynas.space.macro import get_space
from raynas.space.network import ChildNetwork
from raynas.tracking.sync import lut_path

TITLE = "Latency accuracy: predicted against measured whole networks ({target})"
NOTES = (
    "Random architectures of the space, predicted by the target's latency table (summed ops, calibrated on whole "
    "networks) against their measurement on the target (twice: the re-measure tau bounds any predictor), then the "
    "independent check: each network exported as the target ships it and timed by experiments/bench/independent_timer.py "
    "in a fresh process. Goal: >= 95 % of networks within 10 %, Kendall tau >= 0.9. fastest_error_pct and "
    "slowest_error_pct: the space's two ends by summed ops, measured beside them (calibration networks, so in-sample: "
    "whether the fitted line reaches the latencies that low and high budgets ask for)."
)
DRIFT_TITLE = "Drift versus bias: a finished run's shipped files timed as a user would"
DRIFT_NOTES = (
    "drift_factor: the yardstick now / the yardstick its table recorded (the machine's speed moved); bias_factor: "
    "the user's timing in yardstick units / the reported latency in yardstick units (medians). Goal: bias within +-5 %."
)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--target", default="cpu-1t")
    parser.add_argument("--space", default="mnist-small")
    parser.add_argument("--n", type=int, default=100)
    parser.add_argument("--repeats", type=int, default=200)
    parser.add_argument("--out", default="runs/bench")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--harness-n", type=int, default=40, help="networks of the independent check (the first of the N)")
    parser.add_argument("--harness-passes", type=int, default=2, help="independent timings of every network (fresh processes each)")
    parser.add_argument("--harness-rounds", type=int, default=5)
    parser.add_argument("--smoke-test", action="store_true", help="10 architectures, few repeats, a 4-network independent check")
    parser.add_argument("--run", type=Path, help="a finished run directory: drift and bias of its shipped files (no other option applies)")
    add_page_argument(parser)
    args = parser.parse_args()
    root = page_root(args.page, args.smoke_test)
    if args.run is not None:
        return drift_and_bias(args.run, rounds=args.harness_rounds, per_target=2 if args.smoke_test else None, page=root)
    if args.smoke_test:
        args.n, args.repeats, args.harness_passes, args.harness_rounds = 10, 10, 1, 2
    target, macro = get_target(args.target), get_space(args.space)
    reexec_with(target.process_env())
    start = time.perf_counter()
    profile = ProfileConfig(warmup=2, calibration_archs=4) if args.smoke_test else ProfileConfig()  # 4: the fewest a fitted scale takes
    table = build_latency_table(
        target, macro, 10, warmup=profile.warmup, repeats=args.repeats, calibration_archs=profile.calibration_archs, seed=0, fit_scale=True
    )
    archs, ends = sample_architectures(macro, args.n, args.seed), dict(zip(("fastest", "slowest"), table.range_ends(macro)))
    nets = {a.arch_id: (ChildNetwork(a, 10), input_shape(macro, target)) for a in [*archs, *ends.values()]}
    measured = target.measure_networks(nets, warmup=min(5, profile.warmup), repeats=args.repeats, yardstick_ms=table.yardstick_ms)
    again = target.measure_networks(
        nets, warmup=min(5, profile.warmup), repeats=args.repeats, yardstick_ms=table.yardstick_ms
    )  # the measurement's own noise
    ceiling = kendall_tau([measured[a.arch_id] for a in archs], [again[a.arch_id] for a in archs])
    offset_only = dataclasses.replace(table, scale=1.0, fixed={**table.fixed, "overhead": float(table.metadata["offset_only_overhead"])})
    default = "fitted_scale" if profile.fit_scale else "offset_only"  # the predictor the pipeline uses by default
    rows = []
    for a in archs:
        row = {
            "arch": a.to_string(),
            "arch_id": a.arch_id,
            "offset_only_ms": offset_only.predict(a, macro),
            "fitted_scale_ms": table.predict(a, macro),
            "measured_ms": measured[a.arch_id],
        }
        rows.append(row | {"predicted_ms": row[f"{default}_ms"]})
    truth = [r["measured_ms"] for r in rows]
    variants = {name: prediction_accuracy([r[f"{name}_ms"] for r in rows], truth) for name in ("offset_only", "fitted_scale")}
    acc = variants[default]
    report(rows, variants, default, table, target.name, macro.name, time.perf_counter() - start)
    print(f"the same networks measured twice agree at Kendall tau {ceiling:.3f}: no predictor can rank them much better")
    checked = archs[: 4 if args.smoke_test else args.harness_n]
    harness = independent_timings(
        target, {a.arch_id: nets[a.arch_id] for a in checked}, passes=args.harness_passes, rounds=args.harness_rounds
    )
    independent = independent_report(rows, harness, target)
    save(rows, Path(args.out) / f"latency_accuracy-{target.name}-{macro.name}.parquet")
    log_to_active_mlflow_run(acc, target.name)
    headline = {
        "target": target.name,
        "n": acc.n,
        "mape": round(acc.mape, 3),
        "within_10pct": round(acc.within_10pct, 3),
        "kendall_tau": round(acc.kendall_tau, 3),
        "remeasure_tau": round(ceiling, 3),
    }
    headline |= end_errors(ends, measured, table, macro=macro)
    headline |= (
        independent | {k: _rounded(v) for k, v in variants.items()} | {"space": macro.name, "correction": table.metadata.get("correction")}
    )
    if root is not None:
        page_rows = [{k: round(v, 4) if isinstance(v, float) else v for k, v in r.items()} for r in rows]
        folder = write_page(
            f"latency_accuracy/{target.name}",
            summary=headline,
            rows=page_rows,
            title=TITLE.format(target=target.name),
            notes=NOTES,
            root=root,
        )
        print(f"page: {folder / 'README.md'}")
    print(json.dumps(headline))


def end_errors(ends: dict, measured: dict, table, *, macro) -> dict[str, float]:
    """Signed error in percent of the predicted fastest and slowest networks (calibration networks, so
    in-sample: whether the fitted line reaches the ends that budgets use, not only the random middle)."""
    errors = {f"{name}_error_pct": round(100 * (table.predict(a, macro) / measured[a.arch_id] - 1), 2) for name, a in ends.items()}
    print("range ends, predicted against measured: " + ", ".join(f"{k.split('_')[0]} {v:+.1f} %" for k, v in errors.items()))
    return errors


TIMER = Path(__file__).with_name("independent_timer.py")


@dataclasses.dataclass(frozen=True)
class Harness:
    """The independent timings, wall-clock ms per network per pass, and the yardstick's ms in the same
    process (alternating with the network: the machine's speed at that moment)."""

    passes: list[dict[str, float]]
    yardsticks: list[dict[str, float]]

    def steady(self, p: int) -> dict[str, float]:
        """Pass ``p``'s timings at the machine speed of the median moment: each divided by its process's
        yardstick over the median yardstick."""
        middle = statistics.median(v for y in self.yardsticks for v in y.values())
        return {key: ms * middle / self.yardsticks[p][key] for key, ms in self.passes[p].items()}


def independent_timings(target: HardwareTarget, nets: dict, *, passes: int, rounds: int) -> Harness:
    """Time every network as shipped, each in a fresh process started with the target's environment,
    beside the shipped yardstick; ``passes`` times over all networks, alternating their order."""
    timings, yardsticks = [{} for _ in range(passes)], [{} for _ in range(passes)]
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        files = {key: export_network(net, shape, folder / key, target=target) for key, (net, shape) in nets.items()}
        yard = shipped_yardstick(target, folder)
        for p in range(passes):
            for key in list(files) if p % 2 == 0 else list(files)[::-1]:
                timings[p][key], yardsticks[p][key] = time_beside_yardstick(target, files[key], yard, folder, rounds=rounds)
    return Harness(timings, yardsticks)


def shipped_yardstick(target: HardwareTarget, folder: Path):
    """The yardstick exported as the target ships a network."""
    return export_network(yardstick(), get_backend(target.backend).yardstick_shape, folder / "yardstick", target=target)


def time_beside_yardstick(target: HardwareTarget, shipped, yard, folder: Path, *, rounds: int) -> tuple[float, float]:
    """(network ms, yardstick ms) of one shipped file (a ``Deployment``), timed by independent_timer.py in a
    fresh process started with the target's environment (every allocator variable stated, empty ones too)."""
    entries = {
        name: {"file": str(d.model_file.resolve()), "shape": d.recipe["input_shape"]} for name, d in (("net", shipped), ("yardstick", yard))
    }
    manifest = folder / "manifest.json"
    manifest.write_text(json.dumps({"threads": target.num_threads(), "rounds": rounds, "networks": entries}))
    env = os.environ | target.process_env()
    subprocess.run([sys.executable, str(TIMER), str(manifest), str(folder / "out.json")], env=env, check=True)
    ms = json.loads((folder / "out.json").read_text())
    return ms["net"], ms["yardstick"]


def independent_report(rows: list[dict], harness: Harness, target: HardwareTarget) -> dict:
    """Predictions against the independent harness, after scaling by one unit factor: the median
    ratio of harness ms (at the median moment's machine speed) to predicted table ms."""
    steady = harness.steady(0)
    for r in rows:
        r["harness_ms"] = harness.passes[0].get(r["arch_id"])
    mine = [r for r in rows if r["harness_ms"] is not None]
    factor = statistics.median(steady[r["arch_id"]] / r["predicted_ms"] for r in mine)
    scaled = [r["predicted_ms"] * factor for r in mine]
    acc = prediction_accuracy(scaled, [steady[r["arch_id"]] for r in mine])
    again = (
        kendall_tau([steady[r["arch_id"]] for r in mine], [harness.steady(len(harness.passes) - 1)[r["arch_id"]] for r in mine])
        if len(harness.passes) > 1
        else None
    )
    print(
        f"\nindependent harness ({target.name}, allocator {target.allocator}; one fresh process per network, torch.utils.benchmark medians)"
    )
    print(
        f"unit factor {factor:.3f} wall-clock ms per table ms (median of harness / predicted; "
        "each harness timing at the median moment's speed, by the yardstick timed beside it)"
    )
    print(f"{'architecture':36s} {'predicted x factor':>18s} {'harness':>9s} {'error':>7s}")
    for r, p in sorted(zip(mine, scaled), key=lambda x: -abs(x[1] / steady[x[0]["arch_id"]] - 1))[:6]:
        print(f"{r['arch']:36s} {p:18.3f} {steady[r['arch_id']]:9.3f} {100 * (p / steady[r['arch_id']] - 1):+6.1f}%")
    print(
        f"MAPE {acc.mape:.2f} %, within 10 % {100 * acc.within_10pct:.1f} %, Kendall tau {acc.kendall_tau:.3f} over {acc.n} networks"
        + (f"; the harness against its own second pass: tau {again:.3f}" if again is not None else "")
    )
    out = {
        "independent_n": acc.n,
        "independent_mape": round(acc.mape, 3),
        "independent_within_10pct": round(acc.within_10pct, 3),
        "independent_kendall_tau": round(acc.kendall_tau, 3),
    }
    return out | {
        "independent_remeasure_tau": None if again is None else round(again, 3),
        "unit_factor": round(factor, 4),
        "allocator": target.allocator,
    }


def drift_and_bias(run_dir: Path, *, rounds: int, per_target: int | None, page: Path | None) -> None:
    """Time a finished run's measured deployments against its tables' yardsticks (see the docstring)."""
    recipes = [(p.parent, json.loads(p.read_text())) for p in sorted((run_dir / "deploy").glob("*/*/recipe.json"))]
    if not recipes:
        raise SystemExit(f"{run_dir} has no deploy/*/*/recipe.json: give the directory of a finished run (runs/<name>/<run>)")
    by_target: dict[str, list] = {}
    for folder, recipe in recipes:
        if "backend" in recipe and recipe.get("measured_ms"):  # estimated targets ship files raynas did not time
            by_target.setdefault(recipe["target"], []).append((folder, recipe))
    by_target = {name: found[:per_target] for name, found in by_target.items()}
    rows, summary = [], []
    for name, deployments in sorted(by_target.items()):
        target = get_target(name)
        recorded = LatencyTable.load(lut_path(run_dir, name)).yardstick_ms
        now = _yardstick_now(target)
        harness = _harness_run(target, deployments, rounds=rounds)
        for (folder, recipe), (net_ms, yard_ms) in zip(deployments, harness):
            bias = (net_ms / yard_ms) / (recipe["measured_ms"] / recorded)
            rows.append({"target": name, "deployment": str(folder.relative_to(run_dir)), "user_ms": net_ms, "bias_factor": bias})
        biases = [r["bias_factor"] for r in rows if r["target"] == name]
        summary.append({"target": name, "n": len(biases), "drift_factor": now / recorded, "bias_factor": statistics.median(biases)})
    print(
        f"{'target':28s} {'n':>3s} {'drift':>7s} {'bias':>7s}   (drift: yardstick now / recorded; bias: user / reported, yardstick units)"
    )
    for s in summary:
        print(f"{s['target']:28s} {s['n']:3d} {s['drift_factor']:7.3f} {s['bias_factor']:7.3f}")
    pooled_bias = statistics.median(r["bias_factor"] for r in rows)
    pooled_drift = statistics.median(s["drift_factor"] for s in summary)
    print(f"{'pooled':28s} {len(rows):3d} {pooled_drift:7.3f} {pooled_bias:7.3f}")
    save(rows, run_dir / "drift_bias.parquet")
    headline = {
        "run": str(run_dir),
        "targets": [{k: round(v, 4) if isinstance(v, float) else v for k, v in s.items()} for s in summary],
        "drift_factor": round(pooled_drift, 4),
        "bias_factor": round(pooled_bias, 4),
    }
    if page is not None:
        page_rows = [{k: round(v, 4) if isinstance(v, float) else v for k, v in r.items()} for r in rows]
        folder = write_page(
            "latency_accuracy/drift_bias", summary=headline, rows=page_rows, title=DRIFT_TITLE, notes=DRIFT_NOTES, root=page
        )
        print(f"page: {folder / 'README.md'}")
    print(json.dumps(headline))


def _yardstick_now(target: HardwareTarget) -> float:
    """The yardstick's steady latency now, timed by raynas as its table's was (paired with itself: ratio 1
    times its steady latency), in a fresh process with the target's environment."""
    code = (
        "import sys, json; from raynas.hardware.targets import get_target; from raynas.hardware.backend import get_backend, yardstick; "
        "t = get_target(sys.argv[1]); m = t.measure({'y': (yardstick(), get_backend(t.backend).yardstick_shape)}, warmup=10, repeats=200); "
        "print(m['y'])"
    )
    out = subprocess.run([sys.executable, "-c", code, target.name], env=os.environ | target.process_env(), check=True, capture_output=True)
    return float(out.stdout.decode().strip().splitlines()[-1])


def _harness_run(target: HardwareTarget, deployments: list, *, rounds: int) -> list[tuple[float, float]]:
    """(network ms, yardstick ms) of each shipped file in its own fresh process, beside the yardstick."""
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        yard = shipped_yardstick(target, folder)
        return [time_beside_yardstick(target, Deployment(d, d / r["file"], r), yard, folder, rounds=rounds) for d, r in deployments]


def _rounded(acc) -> dict:
    return {"mape": round(acc.mape, 3), "within_10pct": round(acc.within_10pct, 3), "kendall_tau": round(acc.kendall_tau, 3)}


def report(rows: list[dict], variants: dict, default: str, table, target: str, space: str, seconds: float) -> None:
    print(f"target {target}, space {space}: {len(rows)} random architectures, {seconds:.0f} s")
    print(f"{'architecture':36s} {'predicted':>10s} {'measured':>10s} {'error':>7s}")
    worst = sorted(rows, key=lambda r: -abs(r["predicted_ms"] / r["measured_ms"] - 1))[:8]
    for r in worst:
        print(
            f"{r['arch']:36s} {r['predicted_ms']:10.3f} {r['measured_ms']:10.3f} {100 * (r['predicted_ms'] / r['measured_ms'] - 1):+6.1f}%"
        )
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
