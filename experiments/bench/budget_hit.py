"""Does the latency loss steer the search, or does the budget window do the work?

For several budgets and seeds on the embedded MNIST data, one ProxylessNAS search per (loss, budget,
seed) from the same warmed-up weights and the same measured latency table, with the new unit-free
``ratio`` loss and the old ``mul`` loss side by side. A search *hits* when its own argmax of alpha
(not the window-constrained derivation) lands in [floor * B, B]. Prints a table per run, the hit
rates, writes a plot of E[lat]/B per epoch, and, last, one JSON line
``{"hit_rate", "hit_rate_old_loss", "median_lat_over_budget", "runs", ...}``.

    python experiments/bench/budget_hit.py [--budgets 0.25 0.5 0.75] [--seeds 3] [--epochs 4] [--smoke-test] [--page DIR]

Writes its page to benchmarks/budget_hit/ (pages.py; none in --smoke-test unless --page is given).
"""

from __future__ import annotations

import argparse
import copy
import json
import statistics
import time
from dataclasses import replace
from pathlib import Path

import numpy as np
import torch
from pages import add_page_argument, page_root, write_page  # this folder: the benchmark page writer

from raynas.data.datasets import DataConfig, load_splits
from raynas.hardware.build import build_latency_table
from raynas.hardware.lut import LatencyTable
from raynas.hardware.process import reexec_with
from raynas.hardware.targets import get_target
from raynas.search.derive import budget_window
from raynas.search.proxyless import ProxylessSearch, SearchConfig, warm_up
from raynas.space.macro import get_space
from raynas.supernet.supernet import Supernet

TITLE = "Budget hit: does the latency loss steer the search into the window?"
NOTES = (
    "One ProxylessNAS search per (loss, budget, seed) from the same warmed-up weights and latency table; a search "
    "hits when its own argmax of alpha (not the window-constrained derivation) lands in [floor x B, B]. ratio: the "
    "unit-free loss the configs use; mul: ProxylessNAS's multiplicative loss."
)
LOSSES = {"ratio": "new: CE * (E/B)^beta above B, ^-gamma below", "mul": "old: CE * (log E_us / log B_us)^beta"}


def latency_table(args, macro) -> LatencyTable:
    """The saved table given, else one profiled here and saved beside the results (reuse it with --table)."""
    if args.table:
        return LatencyTable.load(args.table)
    target = get_target(args.target)
    reexec_with(target.process_env())  # profile in a process started as the target's would be
    lut = build_latency_table(target, macro, 10, warmup=5, repeats=args.repeats, calibration_archs=4, fit_scale=True)
    Path(args.out).mkdir(parents=True, exist_ok=True)
    lut.save(Path(args.out) / f"{args.target}-{macro.name}.parquet")
    return lut


def search_run(supernet: Supernet, lut: LatencyTable, budget: float, cfg: SearchConfig, seed: int, loaders, epochs: int) -> dict:
    """One search; per epoch E[lat]/B and the unconstrained argmax's latency / B."""
    torch.manual_seed(seed)
    search = ProxylessSearch(copy.deepcopy(supernet), lut, budget, cfg=cfg, seed=seed)
    low, high = search.window()
    curve, argmax_curve = [], []
    for _ in range(epochs):
        metrics = search.epoch(*loaders)
        curve.append(metrics["expected_latency_ms"] / budget)
        argmax_curve.append(metrics["argmax_latency_ms"] / budget)
    argmax_ms = argmax_curve[-1] * budget
    return {
        "budget_ms": budget,
        "seed": seed,
        "loss": cfg.latency_loss,
        "window": (low, high),
        "argmax_ms": argmax_ms,
        "hit": low - 1e-9 <= argmax_ms <= high + 1e-9,
        "curve": curve,
        "argmax_curve": argmax_curve,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument(
        "--budgets", type=float, nargs="+", default=[0.25, 0.5, 0.75], help="positions between the fastest and slowest network"
    )
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--epochs", type=int, default=4, help="search epochs")
    parser.add_argument("--warmup-epochs", type=int, default=2)
    parser.add_argument("--beta", type=float, default=3.0, help="the new loss's pull from above the band")
    parser.add_argument("--gamma", type=float, default=3.0, help="the new loss's pull from below the band")
    parser.add_argument("--arch-lr", type=float, default=0.06, help="Adam learning rate of alpha (both losses)")
    parser.add_argument("--aim", type=float, default=1.0, help="the new loss steers to at most aim x B")
    parser.add_argument(
        "--aim-floor", type=float, default=0.9, help="... and at least aim_floor x B, leaving CE alone inside (0: a point at aim x B)"
    )
    parser.add_argument(
        "--temperature", type=float, default=0.25, help="the new loss's gradient comes from E[lat] under softmax(alpha / T)"
    )
    parser.add_argument(
        "--schedule", choices=("constant", "cosine"), default="cosine", help="alpha's learning rate over the search epochs (both losses)"
    )
    parser.add_argument(
        "--estimate",
        choices=("expected", "derived"),
        default="derived",
        help="the new loss reads E[lat] or the derived path's latency (straight-through)",
    )
    parser.add_argument(
        "--losses", nargs="+", choices=tuple(LOSSES), default=list(LOSSES), help="which losses to run (both for the reported comparison)"
    )
    parser.add_argument(
        "--space",
        default="mnist-ofa",
        help="a registered space whose input matches the embedded MNIST (mnist-ofa: 12 layers; mnist-small: 6)",
    )
    parser.add_argument("--target", default="cpu-1t")
    parser.add_argument("--table", help="a saved latency table (Parquet) instead of profiling the target here")
    parser.add_argument("--repeats", type=int, default=30)
    parser.add_argument("--out", default="runs/budget_hit")
    parser.add_argument("--smoke-test", action="store_true", help="one budget, one seed, one epoch on 256 images")
    add_page_argument(parser)
    args = parser.parse_args()
    if args.smoke_test:
        args.budgets, args.seeds, args.epochs, args.warmup_epochs, args.repeats = [0.5], 1, 1, 1, 5
    torch.set_num_threads(2)
    macro, start = get_space(args.space), time.perf_counter()
    splits = load_splits(DataConfig(limit=256 if args.smoke_test else None))
    lut = latency_table(args, macro)
    low, high = lut.latency_range(macro)
    budgets = [round(low + f * (high - low), 4) for f in args.budgets]
    costs = lut.layer_costs(macro, [spec.choices for spec in macro.layers()])
    floor = SearchConfig().budget_floor
    density = {b: window_share(costs, lut.fixed_ms, *budget_window(costs, lut.fixed_ms, b, floor=floor)) for b in budgets}
    print(
        "share of the space's networks in each budget's window: " + ", ".join(f"B={b:.3f}: {100 * d:.2g} %" for b, d in density.items()),
        flush=True,
    )
    runs = []
    for seed in range(args.seeds):
        torch.manual_seed(seed)
        loaders = splits.loaders(64, seed)[:2]
        supernet = Supernet(macro, splits.num_classes)
        warm_up(supernet, loaders[0], SearchConfig(warmup_epochs=args.warmup_epochs), seed=seed)
        for budget in budgets:
            for loss in args.losses:
                cfg = replace(
                    SearchConfig(),
                    latency_loss=loss,
                    beta=args.beta,
                    gamma=args.gamma if loss == "ratio" else 0.0,
                    arch_lr=args.arch_lr,
                    arch_schedule=args.schedule,
                    search_epochs=args.epochs,
                    aim=args.aim if loss == "ratio" else 1.0,
                    aim_floor=args.aim_floor if loss == "ratio" else 0.0,
                    latency_temperature=args.temperature if loss == "ratio" else 1.0,
                    latency_estimate=args.estimate if loss == "ratio" else "expected",
                )
                runs.append(search_run(supernet, lut, budget, cfg, seed, loaders, args.epochs))
                print(row(runs[-1]), flush=True)
    report(runs, args, Path(args.out), time.perf_counter() - start)


def window_share(costs: list[list[float]], fixed_ms: float, low: float, high: float, resolution: float = 1e-3) -> float:
    """Share of all architectures whose table latency lies in [low, high]: how hard the window is to
    hit (a histogram over a latency grid, convolved layer by layer; exact up to the grid step)."""
    hist = np.ones(1)
    for row_costs in costs:
        layer = np.zeros(int(round(max(row_costs) / resolution)) + 1)
        np.add.at(layer, np.rint(np.asarray(row_costs) / resolution).astype(int), 1.0)
        hist = np.convolve(hist, layer)
    ticks = np.arange(len(hist)) * resolution + fixed_ms
    return float(hist[(ticks >= low) & (ticks <= high)].sum() / hist.sum())


def row(r: dict) -> str:
    return (
        f"{r['loss']:5s} B={r['budget_ms']:.3f} seed={r['seed']} window=[{r['window'][0]:.3f}, {r['window'][1]:.3f}] "
        f"argmax={r['argmax_ms']:.3f} ({'hit' if r['hit'] else 'miss'}), "
        f"argmax/B per epoch {' '.join(f'{c:.2f}' for c in r['argmax_curve'])}, "
        f"E[lat]/B per epoch {' '.join(f'{c:.2f}' for c in r['curve'])}"
    )


def report(runs: list[dict], args, out: Path, seconds: float) -> None:
    out.mkdir(parents=True, exist_ok=True)
    plot(runs, out / "budget_hit.png")
    rate = lambda loss: sum(r["hit"] for r in runs if r["loss"] == loss) / max(sum(r["loss"] == loss for r in runs), 1)  # noqa: E731
    over = lambda loss: statistics.median([r["argmax_ms"] / r["budget_ms"] for r in runs if r["loss"] == loss] or [float("nan")])  # noqa: E731
    print(f"\n{'loss':6s} {'hits':>5s} {'of':>3s} {'hit rate':>9s} {'median argmax/B':>16s}  form")
    for loss, form in LOSSES.items():
        n = sum(r["loss"] == loss for r in runs)
        print(f"{loss:6s} {sum(r['hit'] for r in runs if r['loss'] == loss):5d} {n:3d} {rate(loss):9.2f} {over(loss):16.3f}  {form}")
    print(
        f"beta {args.beta}, gamma {args.gamma}, arch_lr {args.arch_lr}, aim {args.aim}, aim floor {args.aim_floor}, "
        f"latency temperature {args.temperature}, latency estimate {args.estimate} (new loss); alpha's lr schedule {args.schedule}; "
        f"{args.epochs} search epochs after {args.warmup_epochs} warm-up epochs; {seconds / 60:.1f} min; plot {out / 'budget_hit.png'}"
    )
    headline = {
                "hit_rate": round(rate("ratio"), 3),
                "hit_rate_old_loss": round(rate("mul"), 3),
                "median_lat_over_budget": round(over("ratio"), 3),
                "median_lat_over_budget_old_loss": round(over("mul"), 3),
                "runs": len(runs),
                "budgets": len({r["budget_ms"] for r in runs}),
                "seeds": args.seeds,
                "beta": args.beta,
                "gamma": args.gamma,
                "arch_lr": args.arch_lr,
                "aim": args.aim,
                "aim_floor": args.aim_floor,
                "temperature": args.temperature,
                "schedule": args.schedule,
                "estimate": args.estimate,
                "target": args.target,
                "epochs": args.epochs,
                "warmup_epochs": args.warmup_epochs,
    }  # fmt: skip
    root = page_root(args.page, args.smoke_test)
    if root is not None:
        rows = [
            {"loss": r["loss"], "budget_ms": round(r["budget_ms"], 4), "seed": r["seed"], "window_low_ms": round(r["window"][0], 4),
             "window_high_ms": round(r["window"][1], 4), "argmax_ms": round(r["argmax_ms"], 4), "hit": r["hit"],
             "argmax_over_budget_by_epoch": " ".join(f"{c:.3f}" for c in r["argmax_curve"])}
            for r in runs
        ]  # fmt: skip
        folder = write_page("budget_hit", summary=headline, rows=rows, title=TITLE, notes=NOTES, root=root)
        print(f"page: {folder / 'README.md'}")
    print(json.dumps(headline))


def plot(runs: list[dict], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    budgets = sorted({r["budget_ms"] for r in runs})
    fig, axes = plt.subplots(1, len(budgets), figsize=(4 * len(budgets), 3.2), squeeze=False)
    for ax, budget in zip(axes[0], budgets):
        for loss, colour in zip(LOSSES, ("tab:blue", "tab:red")):
            for r in (r for r in runs if r["loss"] == loss and r["budget_ms"] == budget):
                ax.plot(range(1, len(r["curve"]) + 1), r["curve"], color=colour, alpha=0.7, label=loss if r["seed"] == 0 else None)
        window = next(r["window"] for r in runs if r["budget_ms"] == budget)
        ax.axhspan(window[0] / budget, window[1] / budget, color="green", alpha=0.1)  # where the argmax must land
        ax.set(title=f"B = {budget:.3f} ms", xlabel="search epoch", ylabel="E[lat] / B")
        ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


if __name__ == "__main__":
    main()
