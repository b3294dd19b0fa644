"""Report figures: accuracy versus measured latency per target, and drawings of found architectures."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402  (the backend must be chosen first)
import numpy as np  # noqa: E402
from matplotlib.patches import Rectangle  # noqa: E402

from raynas.api import ASHA, HAND, RANDOM, RANDOM_WS, strategy_class, strategy_names  # noqa: E402  # noqa: E402
from raynas.evaluation.compare import summarize  # noqa: E402
from raynas.space.macro import get_space  # noqa: E402
from raynas.space.ops import SKIP, parse_mbconv  # noqa: E402

BASELINE_STYLE = {
    RANDOM_WS: ("tab:blue", "s", "random search (shared weights)"),
    RANDOM: ("tab:cyan", "D", "random search (black-box)"),
    ASHA: ("tab:orange", "P", "random search + ASHA"),
    HAND: ("tab:gray", "^", "hand-designed"),
}


def method_styles() -> dict[str, tuple[str, str, str]]:
    """Colour, marker and label of every method: each registered strategy's own, then the baselines."""
    return {name: (*strategy_class(name).style, strategy_class(name).label) for name in strategy_names()} | BASELINE_STYLE


KERNEL_COLOURS = {3: "#4c72b0", 5: "#dd8452", 7: "#c44e52"}


def pareto_plot(rows: list[dict[str, Any]], target: str, path: Path) -> Path:
    """Test accuracy versus measured latency on ``target``: mean +- std over seeds per budget (or width)."""
    fig, ax = plt.subplots(figsize=(6, 4.2))
    mine = [r for r in rows if r["target"] == target]
    for method, (colour, marker, label) in method_styles().items():
        points = sorted(summarize([r for r in mine if r["method"] == method], ("budget_ms", "width_mult")), key=lambda p: p["ms_mean"])
        if not points:
            continue
        xs, ys = [p["ms_mean"] for p in points], [100 * p["acc_mean"] for p in points]
        ax.errorbar(
            xs,
            ys,
            xerr=[p["ms_std"] for p in points],
            yerr=[100 * p["acc_std"] for p in points],
            color=colour,
            marker=marker,
            capsize=3,
            label=label,
        )
        if method == HAND:
            for p, x, y in zip(points, xs, ys):
                ax.annotate(f"x{p['width_mult']:g}", (x, y), textcoords="offset points", xytext=(4, -10), fontsize=8, color=colour)
    for budget in sorted({r["budget_ms"] for r in mine if r["budget_ms"] is not None}):
        ax.axvline(budget, color="0.8", linestyle="--", linewidth=0.8, zorder=0)
    kind = "estimated (not measured)" if any(r.get("estimated") for r in mine) else "measured"
    ax.set(
        xlabel=f"{kind} latency on {target} (ms of its table's yardstick unit)",
        ylabel="test accuracy (%)",
        title=f"{target}: accuracy vs latency (mean +- std over seeds)",
    )
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    return _save(fig, path)


def frontier_plot(frontiers: list[dict], target: str, path: Path) -> Path:
    """Every model a frontier search trained on ``target`` (validation accuracy against predicted
    latency), its lower convex hull joined, one colour per seed."""
    fig, ax = plt.subplots(figsize=(6, 4.2))
    for n, f in enumerate(sorted(frontiers, key=lambda f: f["seed"])):
        pts = sorted((m["latency_ms"], 100 * m["val_acc"]) for m in f["models"])
        colour = plt.cm.tab10(n % 10)
        ax.scatter(*zip(*pts), color=colour, s=18, alpha=0.6, label=f"{f['method']} seed {f['seed']}: {len(pts)} models")
        best, front = -1.0, []
        for x, y in pts:  # the models no faster one beats: the frontier each budget picks from
            if y > best:
                front.append((x, y))
                best = y
        ax.step(*zip(*front), where="post", color=colour, linewidth=1.2)
    ax.set(
        xlabel=f"predicted latency on {target} (ms of its table's yardstick unit)",
        ylabel="validation accuracy (%)",
        title=f"{target}: search frontier (models trained during the search)",
    )
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    return _save(fig, path)


def over_time_plot(curves: list[dict], target: str, path: Path) -> Path:
    """Performance over time on ``target``, one panel per budget: the validation accuracy of what each
    search would return, against its seconds so far; mean +- std over seeds on a common time grid."""
    budgets = sorted({c["budget_ms"] for c in curves if c["target"] == target})
    fig, axes = plt.subplots(1, len(budgets), figsize=(4.6 * len(budgets), 3.6), squeeze=False)
    styles = method_styles()
    for ax, budget in zip(axes[0], budgets):
        mine = [c for c in curves if c["target"] == target and c["budget_ms"] == budget]
        for method in sorted({c["method"] for c in mine}):
            colour, _, label = styles.get(method, ("black", "o", method))
            grid, mean, std = anytime_band(
                [
                    [(c["seconds"], c["score"]) for c in mine if c["method"] == method and c["seed"] == s]
                    for s in sorted({c["seed"] for c in mine})
                ]
            )
            ax.plot(grid, 100 * mean, color=colour, label=label)
            ax.fill_between(grid, 100 * (mean - std), 100 * (mean + std), color=colour, alpha=0.2)
        ax.set(
            xlabel="device-seconds of the search (shared one-off phases excluded)",
            ylabel="validation accuracy (%)",
            title=f"{target} @ {budget:.3f} ms",
        )
        ax.grid(alpha=0.3)
        ax.legend(fontsize=7)
    return _save(fig, path)


def anytime_band(runs: list[list[tuple[float, float]]], points: int = 50) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Step functions (each run's latest score at time t) on a common grid from the first score of any
    run to the longest run's end; a run counts from its first score and holds its last one after it ends."""
    runs = [sorted(r) for r in runs if r]
    grid = np.linspace(min(r[0][0] for r in runs), max(r[-1][0] for r in runs), points)
    values = np.array([[_latest(r, t) for t in grid] for r in runs])
    std = np.nanstd(values, axis=0, ddof=1) if len(runs) > 1 else np.zeros(points)
    return grid, np.nanmean(values, axis=0), np.nan_to_num(std)


def _latest(run: list[tuple[float, float]], t: float) -> float:
    seen = [score for seconds, score in run if seconds <= t]
    return seen[-1] if seen else np.nan


def architecture_plot(rows: list[dict[str, Any]], targets: list[str], path: Path) -> Path:
    """One column per target, one row per found network: a block per layer, colour = kernel size,
    height = expansion ratio, a thin line where the layer is skipped (as drawn in ProxylessNAS)."""
    found = {
        t: sorted((r for r in rows if r["target"] == t and r["method"] != HAND), key=lambda r: (r["method"], r["budget_ms"], r["seed"]))
        for t in targets
    }
    height = max([len(v) for v in found.values()] + [1])
    fig_height = 0.45 * height + 1.6
    fig, axes = plt.subplots(1, len(targets), figsize=(5.5 * len(targets), fig_height), squeeze=False)
    for ax, target in zip(axes[0], targets):
        for row, r in enumerate(found[target]):
            y = height - row - 1
            _draw_arch(ax, r["arch"].split("|"), y)
            resolution = f" @{get_space(r['space']).input_size}px" if r.get("space") and "@r" in r["space"] else ""
            ax.text(-0.3, y + 0.4, f"{r['method']} {r['budget_ms']:.2f}ms s{r['seed']}{resolution}", ha="right", va="center", fontsize=7)
        layers = max((len(r["arch"].split("|")) for r in found[target]), default=1)
        ax.set(xlim=(-6, layers + 0.2), ylim=(-0.2, height), title=target)
        ax.axis("off")
    handles = [Rectangle((0, 0), 1, 1, color=c) for c in KERNEL_COLOURS.values()]
    fig.legend(
        handles,
        [f"kernel {k}" for k in KERNEL_COLOURS],
        loc="lower center",
        ncol=3,
        fontsize=8,
        title="block height: expansion ratio",
        title_fontsize=8,
    )
    return _save(fig, path, bottom=0.7 / fig_height)


def _draw_arch(ax, ops: list[str], y: float) -> None:
    for i, op in enumerate(ops):
        if op == SKIP:
            ax.plot([i, i + 0.9], [y + 0.4, y + 0.4], color="0.6", linewidth=1)
            continue
        kernel, expansion = parse_mbconv(op)
        h = 0.8 * expansion / 6
        ax.add_patch(Rectangle((i, y + 0.4 - h / 2), 0.9, h, color=KERNEL_COLOURS[kernel]))


def _save(fig, path: Path, bottom: float = 0.0) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.tight_layout(rect=(0, bottom, 1, 1))
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path
