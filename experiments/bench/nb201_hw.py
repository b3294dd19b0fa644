"""Black-box searches against the truth on the hardware-aware tabular benchmark (NB201 x devices).

For every dataset with a search signal and a reported column, every device of the table and three
latency budgets (25/50/75 % quantiles of the device's latencies over connected cells), each
registered black-box search runs ``--seeds`` times with ``--evaluations`` evaluations of the
12-epoch validation accuracy; its pick (best signal seen) is scored by the 200-epoch held-out
accuracy, which no search reads. One Ray Tune trial per (dataset, device) runs its budgets,
searches and seeds; MLflow gets one run per (dataset, device) with its aggregates.

Per cell (dataset, device, budget) and search: mean regret in the signal (against the best feasible
12-epoch accuracy) and in the reported accuracy (against the best feasible 200-epoch accuracy) with
95 % t-intervals over seeds, the share of seeds that found the signal's optimum, and a paired t-test
against random search on the signal regret (seed i of a search beside seed i of random search).
NSGA-II searches the accuracy-latency front: one run per (dataset, device, seed) over the device's
whole range with the same evaluations answers all three budgets (its pick: the best evaluated point
within each); beside its regrets, the hypervolume gap to the true front of connected cells and the
share of that front it evaluated.
Pooled figures average the cells' means; their intervals are t-intervals over cells. Cost is counted
in evaluations and in simulated training seconds (``raynas/search/cost.py``: training steps of a few
cells timed here, a line in FLOPs fitted, 12 epochs of 25,000 images; infeasible proposals cost
nothing); regret is drawn against both. Prints tables; writes
``benchmarks/nb201_hw/`` (``--out``); the last line is one JSON object.

    python experiments/bench/nb201_hw.py [--seeds 100] [--optuna-seeds 30] [--evaluations 100] [--smoke-test]
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import tempfile
import time
from pathlib import Path

import numpy as np
import ray
from pages import BENCHMARKS, write_page  # this folder
from ray import tune
from scipy import stats

from raynas.data.sources import DatasetError, data_folder
from raynas.hardware.tabular import TabularBenchmark
from raynas.search.blackbox import FRONT_SEARCHES, SEARCHES, search_class
from raynas.search.cost import TrainingCost, calibrate
from raynas.search.nsga2 import hypervolume, pareto_mask, pick_within
from raynas.search.tabular import SignalOracle, Trace, Truth, run_front, run_search
from raynas.space.nb201 import NB201
from raynas.tracking.mlflow_tracker import ExperimentTracker

RANDOM = "random"
OPTUNA = ("tpe", "nsga2")  # searches whose sampler costs enough to run fewer seeds
BUDGETS = ("q25", "q50", "q75")

# NB201's black-box rows (Dong and Yang, ICLR 2020, Table 5: mean +- std test accuracy over 500 runs, searched
# unconstrained on CIFAR-10 with 12,000 simulated seconds of 12-epoch training; test on the 10,000 CIFAR-10 test
# images after 200 epochs on all 50,000 training images). Only the cells found in two sources that quote the
# table are here: REA's and BOHB's rows are left out until checked against the paper. Regret: optimal - method.
PAPER_OPTIMUM = {"cifar10": 94.37, "cifar100": 73.51}
PAPER_ROWS = {
    "random": {"cifar10": (93.70, 0.36)},  # quoted by LLMatic's review
    "reinforce": {"cifar10": (93.85, 0.37), "cifar100": (71.71, 1.09)},  # quoted by RMI-NAS's README
}


def paper_rows() -> dict:
    """The paper's rows as regrets against its optimum, with their provenance."""

    def row(acc: float, std: float, dataset: str) -> dict:
        return {"test_acc": acc, "std": std, "regret": round(PAPER_OPTIMUM[dataset] - acc, 2)}

    rows = {method: {d: row(*values, d) for d, values in by_dataset.items()} for method, by_dataset in PAPER_ROWS.items()}
    footing = (
        "NB201 Table 5 (secondary quotes): unconstrained, CIFAR-10 search, 500 runs, 12,000 simulated s; "
        "ours: latency-constrained cells, 100 evaluations, 25,000 training images for the 200-epoch column"
    )
    return rows | {"footing": footing}


def training_cost(table: TabularBenchmark, *, cells: int) -> TrainingCost:
    """Calibrated on connected cells at evenly spaced FLOPs quantiles (before Ray starts: nothing else runs)."""
    flops = table.columns["flops_m"]
    order = [i for i in np.argsort(flops) if table.connected[i]]
    picks = [order[int(q * (len(order) - 1))] for q in np.linspace(0, 1, cells)]
    return calibrate([table.cells[i] for i in picks], [float(flops[i]) for i in picks])


def table_path(arg: str | None) -> Path:
    try:
        return Path(arg) if arg else data_folder("nb201-hw") / "nb201_hw.csv"
    except DatasetError as exc:
        raise SystemExit(f"--table: {exc}") from None


def cell_group(
    config: dict, *, path: str, searches: list[str], seeds: dict[str, int], evaluations: int, cost: TrainingCost, grid: list[float]
) -> None:
    """One Tune trial: every budget, search and seed of one (dataset, device). A front search (NSGA-II)
    runs once per seed over the device's whole range, and every budget picks from that run. ``grid``:
    the simulated seconds at which regret over time is read."""
    table = TabularBenchmark.load(path)
    seconds = table.by_code(cost.seconds(table.columns["flops_m"]))
    dataset, device = config["group"].split("/")
    whole = SignalOracle.of(table, dataset, device=device, budget_ms=float("inf"))
    connected = table.by_code(table.connected)
    fronts = {
        n: [run_front(search_class(n)(NB201, seed=s), whole, evaluations=evaluations) for s in range(seeds[n])]
        for n in searches
        if n in FRONT_SEARCHES
    }
    cells = []
    for label, budget in zip(BUDGETS, table.budgets(device)):
        oracle = SignalOracle.of(table, dataset, device=device, budget_ms=budget)
        truth = Truth.of(table, dataset, device=device, budget_ms=budget)
        for name in searches:
            if name in FRONT_SEARCHES:
                traces = fronts[name]
            else:
                traces = [run_search(search_class(name)(NB201, seed=s), oracle, evaluations=evaluations) for s in range(seeds[name])]
            regret = lambda t, k=evaluations: cell_regret(t, k, oracle=oracle, truth=truth)  # noqa: E731
            spent = [np.cumsum(seconds[list(t.codes)]) for t in traces]
            cells.append({
                "dataset": dataset, "device": device, "budget": label, "budget_ms": budget, "search": name,
                "signal_regret": [round(regret(t)[0], 4) for t in traces],
                "reported_regret": [round(regret(t)[1], 4) for t in traces],
                "curve": [round(float(np.mean([regret(t, k)[0] for t in traces])), 4) for k in range(1, evaluations + 1)],
                "curve_seconds": [
                    round(float(np.mean([regret(t, int(np.searchsorted(s, g, side="right")))[0] for t, s in zip(traces, spent)])), 4)
                    for g in grid
                ],
                "seconds": [round(float(s[-1]), 1) for s in spent],
                "infeasible": float(np.mean([t.infeasible for t in traces])),
                "floor": truth.floor_regret,
            })  # fmt: skip
    tune.report(
        {
            "cells": json.dumps(cells),
            "fronts": json.dumps([front_record(n, fronts[n], whole=whole, connected=connected, group=(dataset, device)) for n in fronts]),
        }
    )


def cell_regret(trace: Trace, k: int, *, oracle: SignalOracle, truth: Truth) -> tuple[float, float]:
    """(signal, reported) regret of the best feasible cell among the trace's first ``k`` (the first of
    equals); with none feasible yet (a front search), the regret of the worst feasible cell."""
    code = pick_within([(c, s, oracle.latency_ms[c]) for c, s in zip(trace.codes[:k], trace.signals[:k])], oracle.budget_ms)
    if code is None:
        feasible = np.flatnonzero(oracle.latency_ms <= oracle.budget_ms)
        code = int(feasible[np.argmin(oracle.signal[feasible])])
    return truth.signal_regret(code), truth.reported_regret(code)


def front_record(name: str, traces: list[Trace], *, whole: SignalOracle, connected: np.ndarray, group: tuple[str, str]) -> dict:
    """A front search's hypervolume gap and share of the true front found, per seed (connected cells,
    ``connected`` by cell code, define both)."""
    dataset, device = group
    signal, latency = whole.signal, whole.latency_ms
    reference = (float(signal[connected].min()), float(latency[connected].max()))
    true_front = np.flatnonzero(connected)[pareto_mask(signal[connected], latency[connected])]
    best = hypervolume(signal[connected], latency[connected], reference=reference)
    gaps, shares = [], []
    for t in traces:
        mine = np.array([c for c in t.codes if connected[c]], dtype=int)
        gaps.append(1 - hypervolume(signal[mine], latency[mine], reference=reference) / best if len(mine) else 1.0)
        shares.append(float(np.isin(true_front, mine).mean()))
    return {"dataset": dataset, "device": device, "search": name, "hypervolume_gap": gaps, "front_found": shares}


def ci95(values) -> list[float]:
    values = np.asarray(values, dtype=float)
    if len(values) < 2 or np.allclose(values, values[0]):
        return [float(values.mean())] * 2
    lo, hi = stats.t.interval(0.95, len(values) - 1, loc=values.mean(), scale=stats.sem(values))
    return [float(lo), float(hi)]


def beats_random(cell: dict, random: dict) -> bool:
    """Significantly lower signal regret than random search (paired over common seeds, p < 0.05)."""
    n = min(len(cell["signal_regret"]), len(random["signal_regret"]))
    diff = np.asarray(cell["signal_regret"][:n]) - np.asarray(random["signal_regret"][:n])
    if n < 2 or np.allclose(diff, diff[0]):
        return bool(diff.mean() < 0 and n >= 2)
    return bool(diff.mean() < 0 and stats.ttest_1samp(diff, 0.0).pvalue < 0.05)


def summarize(cells: list[dict], searches: list[str]) -> dict:
    """Pooled figures per search over every cell."""
    random = {(c["dataset"], c["device"], c["budget"]): c for c in cells if c["search"] == RANDOM}
    out: dict = {
        "regret_mean": {}, "regret_ci95": {}, "signal_regret_mean": {}, "beats_random_cells": {}, "optimum_found_share": {},
        "simulated_seconds_mean": {},
    }  # fmt: skip
    for name in searches:
        mine = [c for c in cells if c["search"] == name]
        reported = [np.mean(c["reported_regret"]) for c in mine]
        out["regret_mean"][name] = round(float(np.mean(reported)), 3)
        out["regret_ci95"][name] = [round(v, 3) for v in ci95(reported)]
        out["signal_regret_mean"][name] = round(float(np.mean([np.mean(c["signal_regret"]) for c in mine])), 3)
        out["simulated_seconds_mean"][name] = round(float(np.mean([np.mean(c["seconds"]) for c in mine])), 1)
        out["optimum_found_share"][name] = round(float(np.mean([np.mean(np.asarray(c["signal_regret"]) == 0) for c in mine])), 3)
        if name != RANDOM:
            out["beats_random_cells"][name] = sum(beats_random(c, random[(c["dataset"], c["device"], c["budget"])]) for c in mine)
    by_cell = {(c["dataset"], c["device"], c["budget"]): c["floor"] for c in cells}
    out["floor_regret_mean"] = round(float(np.mean(list(by_cell.values()))), 3)
    out["cells"] = len(by_cell)
    return out


def summarize_fronts(fronts: list[dict]) -> dict:
    """A front search's pooled hypervolume gap and share of the true front found (over groups' means)."""
    names = sorted({f["search"] for f in fronts})
    return {
        "hypervolume_gap_mean": {
            n: round(float(np.mean([np.mean(f["hypervolume_gap"]) for f in fronts if f["search"] == n])), 4) for n in names
        },
        "front_found_share": {n: round(float(np.mean([np.mean(f["front_found"]) for f in fronts if f["search"] == n])), 3) for n in names},
    }


def run_groups(groups: list[str], *, path: Path, storage: Path, **params) -> tuple[list[dict], list[dict]]:
    """One Tune trial per (dataset, device) on the local Ray; every cell, and every front record, of every trial.
    ``params``: the rest of ``cell_group``'s keywords."""
    trainable = tune.with_parameters(cell_group, path=str(path), **params)
    tuner = tune.Tuner(
        tune.with_resources(trainable, {"cpu": 1}),
        param_space={"group": tune.grid_search(groups)},
        tune_config=tune.TuneConfig(reuse_actors=True),
        run_config=tune.RunConfig(name="nb201-hw", storage_path=str(storage), verbose=0),
    )
    grid = tuner.fit()
    failed = [r for r in grid if r.error is not None]
    if failed:
        raise RuntimeError(f"{len(failed)} cell group(s) failed; first: {failed[0].error}")
    return [c for r in grid for c in json.loads(r.metrics["cells"])], [f for r in grid for f in json.loads(r.metrics["fronts"])]


def log_mlflow(cells: list[dict], *, uri: str, run_dir: Path) -> None:
    """One MLflow run per (dataset, device): each search's mean regrets over its budgets."""
    tracker = ExperimentTracker(uri, "nb201-hw", run_dir, run_name=run_dir.name)
    for group in sorted({f"{c['dataset']}/{c['device']}" for c in cells}):
        run_id = tracker.child(group, {"raynas.group": group})
        mine = [c for c in cells if f"{c['dataset']}/{c['device']}" == group]
        metrics = {f"{c['search']}/{k}_{c['budget']}": float(np.mean(c[k])) for c in mine for k in ("signal_regret", "reported_regret")}
        tracker.log_metrics(run_id, metrics | {f"floor_{c['budget']}": c["floor"] for c in mine})
    tracker.finish()


def curves_plot(cells: list[dict], searches: list[str], path: Path, *, x: list[float] | None = None) -> Path:
    """Mean signal regret against evaluations (or, given ``x``, against the simulated seconds of each
    cell's ``curve_seconds``), one panel per device (over datasets and budgets)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    devices = sorted({c["device"] for c in cells})
    cols = min(4, len(devices))
    rows = -(-len(devices) // cols)
    fig, axes = plt.subplots(rows, cols, figsize=(4 * cols, 3 * rows), squeeze=False)
    for ax, device in zip(axes.flat, devices):
        for name in searches:
            curves = [c["curve_seconds" if x else "curve"] for c in cells if c["device"] == device and c["search"] == name]
            ax.plot(x or range(1, len(curves[0]) + 1), np.mean(curves, axis=0), label=name)
        ax.set_title(device)
        ax.set_yscale("log")
        if x:
            ax.set_xscale("log")
        ax.set_xlabel("simulated training seconds" if x else "evaluations")
        ax.set_ylabel("signal regret (pp)")
    for ax in list(axes.flat)[len(devices) :]:
        ax.axis("off")
    axes.flat[0].legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(path, dpi=80)
    plt.close(fig)
    return path


def print_tables(summary: dict, cells: list[dict], searches: list[str]) -> None:
    print(f"{'search':<16} {'reported regret (pp)':>22} {'95% CI':>16} {'signal regret':>14} {'optimum found':>14} {'beats random':>13}")
    for name in searches:
        ci = summary["regret_ci95"][name]
        beats = f"{summary['beats_random_cells'].get(name, '-')}/{summary['cells']}"
        interval = f"[{ci[0]:.2f}, {ci[1]:.2f}]"
        print(
            f"{name:<16} {summary['regret_mean'][name]:>22.3f} {interval:>16} "
            f"{summary['signal_regret_mean'][name]:>14.3f} {summary['optimum_found_share'][name]:>14.3f} {beats:>13}"
        )
    print(f"floor (exhaustive search on the signal, reported regret): {summary['floor_regret_mean']:.3f} pp over {summary['cells']} cells")
    for name, gap in summary["hypervolume_gap_mean"].items():
        print(
            f"{name}: one run per (dataset, device, seed) answers all 3 budgets; hypervolume gap {gap:.4f}, "
            f"true front found {summary['front_found_share'][name]:.1%}"
        )
    print(f"\n{'device':<14}" + "".join(f"{name:>16}" for name in searches) + "   (mean signal regret, pp)")
    for device in sorted({c["device"] for c in cells}):
        means = [np.mean([np.mean(c["signal_regret"]) for c in cells if c["device"] == device and c["search"] == n]) for n in searches]
        print(f"{device:<14}" + "".join(f"{m:>16.3f}" for m in means))


def goal(summary: dict, searches: list[str]) -> str:
    """The goal: the best search at most 0.6 x random's pooled signal regret and significantly lower in >= 75 % of cells."""
    others = [n for n in searches if n != RANDOM]
    best = min(others, key=lambda n: summary["signal_regret_mean"][n])
    ratio = summary["signal_regret_mean"][best] / max(summary["signal_regret_mean"][RANDOM], 1e-9)
    share = summary["beats_random_cells"][best] / summary["cells"]
    met = "met" if ratio <= 0.6 and share >= 0.75 else "not met"
    return f"goal {met}: best search {best} at {ratio:.2f} x random's signal regret, significantly lower in {share:.0%} of cells"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--table", default=None, help="nb201_hw.csv (default: $RAYNAS_DATA/nb201-hw/nb201_hw.csv)")
    parser.add_argument("--seeds", type=int, default=100)
    parser.add_argument("--optuna-seeds", type=int, default=30, help="TPE's and NSGA-II's samplers cost ~0.3 s a run: fewer seeds")
    parser.add_argument("--evaluations", type=int, default=100)
    parser.add_argument("--searches", nargs="*", default=None, help="default: every registered black-box search")
    parser.add_argument("--out", default=None, help="folder for the page (default: the repo's benchmarks/; none with --smoke-test)")
    parser.add_argument("--num-cpus", type=int, default=None)
    parser.add_argument("--smoke-test", action="store_true", help="2 devices, one dataset, 3 seeds, 20 evaluations")
    args = parser.parse_args()
    began = time.perf_counter()
    path = table_path(args.table)
    table = TabularBenchmark.load(path)
    searches = args.searches or SEARCHES.names() + FRONT_SEARCHES.names()
    searches = [RANDOM] + [n for n in searches if n != RANDOM]
    datasets, devices = table.datasets, table.devices
    if args.smoke_test:
        datasets, devices, args.seeds, args.optuna_seeds, args.evaluations = datasets[:1], devices[:2], 3, 2, 20
    seeds = {n: args.optuna_seeds if n in OPTUNA else args.seeds for n in searches}
    groups = [f"{d}/{v}" for d in datasets for v in devices]
    cost = training_cost(table, cells=3 if args.smoke_test else 8)
    per_step = f"{cost.overhead_s:.4f} s + {cost.seconds_per_mflop:.6f} s/MFLOP per step"
    print(f"simulated training seconds: {per_step}, {cost.steps} steps ({cost.source})")
    flops = table.columns["flops_m"]
    grid = [round(float(g), 1) for g in np.geomspace(cost.seconds(flops.min()), args.evaluations * cost.seconds(flops.max()), 24)]
    with tempfile.TemporaryDirectory(prefix="raynas-nb201-") as tmp:
        ray.init(address="local", num_cpus=args.num_cpus, include_dashboard=False, log_to_driver=False)
        try:
            cells, fronts = run_groups(
                groups, path=path, storage=Path(tmp), searches=searches, seeds=seeds, evaluations=args.evaluations, cost=cost, grid=grid
            )
        finally:
            ray.shutdown()
        log_mlflow(cells, uri=f"sqlite:///{tmp}/mlflow.db", run_dir=Path(tmp))
    summary = summarize(cells, searches) | summarize_fronts(fronts)
    print_tables(summary, cells, searches)
    print(goal(summary, searches))
    rows = paper_rows()
    print(f"NB201 paper, test-accuracy regret (pp): {rows.pop('footing')}")
    for method, by_dataset in rows.items():
        print(f"  {method:<10} " + ", ".join(f"{d} {r['regret']:.2f} ({r['test_acc']} +- {r['std']})" for d, r in by_dataset.items()))
    headline = {
        "datasets": datasets, "devices": devices, "budgets": len(BUDGETS), "seeds": args.seeds, "seeds_by_search": seeds,
        "evaluations": args.evaluations, "strategies": searches, **summary, "paper_rows": paper_rows(),
        "training_cost": dataclasses.asdict(cost), "seconds_grid": grid,
        "seconds": round(time.perf_counter() - began, 1),
    }  # fmt: skip
    out = Path(args.out) if args.out else (None if args.smoke_test else BENCHMARKS)
    if out is not None:
        write_page("nb201_hw", summary=headline, rows=page_rows(cells, searches), title=TITLE, notes=notes(summary, searches), root=out)
        curves_plot(cells, searches, out / "nb201_hw" / "regret_over_evaluations.png")
        curves_plot(cells, searches, out / "nb201_hw" / "regret_over_seconds.png", x=grid)
        (out / "nb201_hw" / "cells.json").write_text(json.dumps(cells))
        print(f"page: {out / 'nb201_hw' / 'README.md'}")
    print(json.dumps(headline))


TITLE = "Black-box searches against the truth on NB201 x devices (hardware-aware tabular benchmark)"


def notes(summary: dict, searches: list[str]) -> str:
    return (
        "Regrets in accuracy points: 'signal' against the best feasible 12-epoch validation accuracy (what searches read), "
        "'reported' against the best feasible 200-epoch held-out accuracy (never read). Pooled means are means of the cells' "
        "means, intervals t-intervals over cells; 'beats random' counts cells where the search's signal regret is significantly "
        "lower (paired t-test over seeds, p < 0.05). Cost: evaluations, and simulated training seconds (timed training steps of "
        "a few cells on this machine's CPU, one thread, a line in FLOPs, 12 epochs of 25,000 images; see training_cost). "
        + goal(summary, searches)
        + ". "
        "Figures: regret_over_evaluations.png, regret_over_seconds.png; every cell's data: cells.json."
    )


def page_rows(cells: list[dict], searches: list[str]) -> list[dict]:
    """One row per (dataset, device, search): mean regrets over the three budgets."""
    rows = []
    for dataset in sorted({c["dataset"] for c in cells}):
        for device in sorted({c["device"] for c in cells}):
            for name in searches:
                mine = [c for c in cells if (c["dataset"], c["device"], c["search"]) == (dataset, device, name)]
                rows.append({
                    "dataset": dataset, "device": device, "search": name,
                    "signal_regret": round(float(np.mean([np.mean(c["signal_regret"]) for c in mine])), 3),
                    "reported_regret": round(float(np.mean([np.mean(c["reported_regret"]) for c in mine])), 3),
                    "floor": round(float(np.mean([c["floor"] for c in mine])), 3),
                })  # fmt: skip
    return rows


if __name__ == "__main__":
    main()
