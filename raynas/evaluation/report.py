"""``report.md`` and ``report.html`` of a run directory, rendered from its saved results alone.

The document is a list of blocks (heading, text, table, image, code) rendered twice, so the
Markdown and HTML versions always say the same thing.
"""

from __future__ import annotations

import html
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pyarrow.parquet as pq

from raynas.api import HAND, RANDOM_BASELINES, strategy_class, strategy_names
from raynas.evaluation.compare import budget_steps, dominance, headline, paired_comparisons, summarize
from raynas.evaluation.plots import architecture_plot, frontier_plot, over_time_plot, pareto_plot
from raynas.space.cells import is_cell_space


class ReportError(ValueError):
    """The run directory has no results to report on."""


@dataclass(frozen=True)
class Block:
    kind: str  # heading | text | table | image | code
    content: Any


def write_report(run_dir: str | Path) -> list[Path]:
    """Write report.md, report.html and report/*.png into ``run_dir``; returns every written path."""
    run_dir = Path(run_dir)
    results_path = run_dir / "results.parquet"
    if not results_path.is_file():
        failed = run_dir / "FAILED"
        if failed.is_file():
            raise ReportError(
                f"{run_dir} is a run that stopped on an error ({failed.read_text().strip()}); "
                f"fix it and continue with `raynas run --resume {run_dir}`"
            )
        raise ReportError(
            f"{results_path} does not exist; pass a run directory of a finished `raynas run` (or of experiments/budget_sweep.py)"
        )
    rows = pq.read_table(results_path).to_pylist()
    record_path = run_dir / "record.json"
    record = json.loads(record_path.read_text()) if record_path.is_file() else None
    targets = sorted({r["target"] for r in rows})
    images = [pareto_plot(rows, t, run_dir / "report" / f"pareto-{t}.png") for t in targets]
    frontiers = {t: [f for f in _frontiers(run_dir) if f["target"] == t] for t in targets}
    images += [frontier_plot(frontiers[t], t, run_dir / "report" / f"frontier-{t}.png") for t in targets if frontiers[t]]
    curves_path = run_dir / "curves.json"
    curves = json.loads(curves_path.read_text()) if curves_path.is_file() else []
    timed = {c["target"] for c in curves}
    images += [over_time_plot(curves, t, run_dir / "report" / f"over-time-{t}.png") for t in targets if t in timed]
    if not any(is_cell_space(r["space"]) for r in rows):  # the drawing is of MBConv chains; cells stay as strings in the table
        images.append(architecture_plot(rows, targets, run_dir / "report" / "architectures.png"))
    blocks = _document(run_dir.name, rows, targets, record=record, with_frontier={t for t in targets if frontiers[t]}, timed=timed)
    md, page = run_dir / "report.md", run_dir / "report.html"
    md.write_text(_markdown(blocks))
    page.write_text(_html(blocks, run_dir.name))
    return [md, page, *images]


def _pooled_text(pooled: dict | None) -> str:
    """The pooled estimate first: every paired seed of every cell, its interval and what it can detect."""
    if pooled is None:
        return "No paired seeds: nothing to pool."
    low, high = pooled["ci95"]
    needed = pooled["pairs_for_80_power"]
    return (
        f"Pooled over {pooled['pairs']} paired seeds in {pooled['cells']} cells, NAS minus random search: "
        f"{pooled['mean']:+.2f} points of test accuracy (95 % interval {low:+.2f} to {high:+.2f}, resampling whole cells). "
        f"At the observed spread (sd {pooled['sd']:.2f} points) these pairs detect a {pooled['effect']:g}-point difference with "
        f"{100 * pooled['power']:.0f} % power; 80 % power needs {needed if needed is not None else 'n/a'} pairs."
    )


def _constrained_count(rows: list[dict]) -> str:
    """How many NAS results the budget window picked because the search's own argmax lay outside it."""
    searched = [r for r in rows if r.get("constrained") is not None and r["method"] not in RANDOM_BASELINES]
    if not searched:
        return ""
    outside = sum(bool(r["constrained"]) for r in searched)
    return (
        f"{outside} of {len(searched)} NAS results came from the budget window's fallback, not from the search's own argmax "
        f"(which lay outside [floor x B, B]); the results table shows where that argmax was (argmax ms)."
    )


def _nas_names(rows: list[dict]) -> str:
    """The NAS methods this run compared, by their registered labels."""
    ran = [strategy_class(m).label for m in strategy_names() if any(r["method"] == m for r in rows)]
    return " and ".join(ran) or "NAS"


def _frontiers(run_dir: Path) -> list[dict]:
    """Frontier searches' saved model sets (``frontiers/*.json``)."""
    return [json.loads(p.read_text()) for p in sorted((run_dir / "frontiers").glob("*.json"))]


def _document(
    name: str,
    rows: list[dict],
    targets: list[str],
    *,
    record: dict | None,
    with_frontier: set[str] = frozenset(),
    timed: set[str] = frozenset(),
) -> list[Block]:
    comparisons = paired_comparisons(rows)
    head = headline(comparisons)
    blocks = [
        Block("heading", (1, f"raynas report: {name}")),
        Block(
            "text",
            f"{_nas_names(rows)} against random search in the same latency window, pipeline and wall-clock budget, and against "
            f"MobileNetV2-style references, all retrained with one recipe. {_pooled_text(head['nas_minus_random_pooled'])} "
            f"Per cell: NAS beat random search in {head['nas_wins']} of {head['comparisons']} (target, budget) comparisons; "
            f"mean gap {_num(head['nas_minus_random_mean_pp'], '+.2f')} percentage points of test accuracy. p: paired t-test "
            f"over seeds (n/a with one seed). {_constrained_count(rows)}",
        ),
    ]
    for target in targets:
        mine = [c for c in comparisons if c["target"] == target]
        blocks += [Block("heading", (2, target)), Block("image", f"report/pareto-{target}.png")]
        if target in timed:
            blocks += [
                Block(
                    "text",
                    "Performance over time: the validation accuracy of the architecture each search would return if stopped then "
                    "(shared weights for ProxylessNAS, its random search and OFA; its own weights for Petridish), against the "
                    "search's own seconds; mean +- std over seeds. Shared one-off costs (warm-up, elastic training, predictor) "
                    "are in the phase table below.",
                ),
                Block("image", f"report/over-time-{target}.png"),
            ]
        if target in with_frontier:
            blocks += [
                Block("text", "One search grew every model below; each budget's finalist is the most accurate one within it."),
                Block("image", f"report/frontier-{target}.png"),
            ]
        if mine:
            blocks += [
                Block(
                    "table",
                    (
                        [
                            "budget ms",
                            "seeds",
                            "NAS acc %",
                            "random acc %",
                            "gap pp",
                            "p",
                            "random + ASHA acc %",
                            "gap pp",
                            "p",
                            "MobileNetV2-style at NAS ms, acc %",
                            "gap pp",
                            "p",
                            "NAS ms",
                            "random ms",
                        ],
                        [
                            [
                                f"{c['budget_ms']:.3f}",
                                c["seeds"],
                                _pm(c["nas_acc_mean"], c["nas_acc_std"]),
                                _pm(c["random_acc_mean"], c["random_acc_std"]),
                                f"{c['gap_pp']:+.2f} +- {c['gap_pp_std']:.2f}",
                                _num(c["p_value"], ".3f"),
                                _num(None if c.get("asha_acc_mean") is None else 100 * c["asha_acc_mean"], ".2f"),
                                _num(c.get("asha_gap_pp"), "+.2f"),
                                _num(c.get("asha_p_value"), ".3f"),
                                _hand_cell(c),
                                _num(c.get("hand_gap_pp"), "+.2f"),
                                _num(c.get("hand_p_value"), ".3f"),
                                f"{c['nas_ms_mean']:.3f}",
                                f"{c['random_ms_mean']:.3f}",
                            ]
                            for c in mine
                        ],
                    ),
                ),
                Block("text", _trend(mine)),
            ]
        hand = summarize([r for r in rows if r["target"] == target and r["method"] == HAND], ("width_mult",))
        if hand:
            blocks.append(
                Block(
                    "table",
                    (
                        ["MobileNetV2-style width", "seeds", "acc %", "measured ms"],
                        [
                            [f"x{h['width_mult']:g}", h["n"], _pm(h["acc_mean"], h["acc_std"]), f"{h['ms_mean']:.3f} +- {h['ms_std']:.3f}"]
                            for h in hand
                        ],
                    ),
                )
            )
    blocks += [
        Block("heading", (2, "Found architectures")),
        Block("text", "Colour: kernel size; block height: expansion ratio; thin line: skipped layer."),
        Block("image", "report/architectures.png"),
        Block("heading", (2, "All results")),
        Block(
            "text",
            "Latencies (budget, predicted, measured) are in the unit of each target's latency table: its yardstick ms "
            "(raynas/hardware/timing.py), wall-clock ms when the table was profiled. "
            "'wall ms' is the same measurement in wall-clock ms of its moment.",
        ),
        Block(
            "table",
            (
                [
                    "target",
                    "budget ms",
                    "method",
                    "seed",
                    "arch",
                    "predicted ms",
                    "measured ms",
                    "wall ms",
                    "test acc",
                    "constrained",
                    "argmax ms",
                ],
                [
                    [
                        r["target"],
                        _num(r["budget_ms"], ".3f"),
                        r["method"],
                        r["seed"],
                        r["arch"],
                        _num(r["predicted_ms"], ".3f"),
                        _num(r["measured_ms"], ".3f") if r["measured_ms"] is not None else "estimated",
                        _num(r.get("measured_wall_ms"), ".3f"),
                        f"{r['test_acc']:.4f}",
                        "n/a" if r.get("constrained") is None else ("yes" if r["constrained"] else "no"),
                        _num(r.get("argmax_ms"), ".3f"),
                    ]
                    for r in sorted(rows, key=lambda r: (r["target"], r["method"], r["budget_ms"] or 0, r["seed"], r["width_mult"]))
                ],
            ),
        ),
    ]
    return blocks + _record_blocks(record)


def _trend(mine: list[dict]) -> str:
    """Whether NAS accuracy rises with the budget (each fall weighed against the seeds' noise), and
    how often NAS beats random search on accuracy and latency together."""
    path = " -> ".join(f"{100 * c['nas_acc_mean']:.2f}" for c in mine)
    falls = [s for s in budget_steps(mine) if s["change_pp"] < 0]
    if not falls:
        trend = "it rises with the budget" if len(mine) > 1 else "one budget, so no trend"
    else:
        trend = "it does not rise everywhere: " + "; ".join(
            f"{s['change_pp']:+.2f} points from {s['from_ms']:.3f} to {s['to_ms']:.3f} ms "
            f"({'beyond' if s['beyond_noise'] else 'within'} the seeds' noise, +-{s['noise_pp']:.2f})"
            for s in falls
        )
    counts = {k: sum(dominance(c) == k for c in mine) for k in ("dominates", "dominated", "trade-off")}
    return (
        f"NAS test accuracy over the budgets, tightest first: {path} %; {trend}. Against random search in accuracy and measured latency "
        f"together, NAS is at least as good in both at {counts['dominates']}, at most as good in both at {counts['dominated']} "
        "and trades one for the other at "
        f"{counts['trade-off']} of {len(mine)} budgets."
    )


def _hand_cell(c: dict) -> str:
    """The MobileNetV2-style curve's accuracy at NAS's latency, saying on how many seeds it lay between two widths."""
    if c.get("hand_acc_at_nas_ms") is None:
        return "-"
    where = (
        "" if c["hand_inside"] == c["hand_seeds"] else f" ({c['hand_inside']}/{c['hand_seeds']} seeds between widths, else nearest width)"
    )
    return f"{100 * c['hand_acc_at_nas_ms']:.2f}{where}"


def _record_blocks(record: dict | None) -> list[Block]:
    blocks = [Block("heading", (2, "Reproducibility record"))]
    if record is None:
        return blocks + [Block("text", "record.json is missing from this run directory.")]
    phases = [[k, f"{v:.1f}"] for k, v in record["phase_seconds"].items()] + [["total", f"{sum(record['phase_seconds'].values()):.1f}"]]
    trials = [[m, f"{v['search']:.1f}", f"{v['retrain']:.1f}", v["finalists"]] for m, v in record["trial_seconds"].items()]
    return blocks + [
        Block(
            "text",
            f"git commit {record['git_commit']}; seeds {record['seeds']}; space {record['space']}; "
            f"strategy {record.get('strategy', 'proxyless')}; created {record['created']}.",
        ),
        Block("table", (["phase (driver wall-clock)", "seconds"], phases)),
        Block("table", (["method", "search trial-seconds", "retrain trial-seconds", "finalists"], trials)),
        Block(
            "table",
            (
                ["target", "backend", "device", "threads", "batch", "estimated", "latency calibration"],
                [
                    [
                        t,
                        h.get("backend", "?"),
                        h.get("device", "?"),
                        h.get("threads", "?"),
                        h.get("batch_size", "?"),
                        h.get("estimated", "false"),
                        h.get("correction", "n/a"),
                    ]
                    for t, h in record["hardware"].items()
                ],
            ),
        ),
        Block("table", (["library", "version"], [[k, v] for k, v in record["libraries"].items()])),
        Block(
            "text",
            f"Data: {record['data']['dataset']}, split sizes {record['data']['sizes']} "
            f"(split seed {record['data']['split_seed']}); {record['data']['protocol']}.",
        ),
        Block("text", f"How the search settings were chosen: {record.get('tuning', 'not recorded')}"),
        Block("code", json.dumps(record["hyperparameters"], indent=2)),
    ]


def _pm(mean: float, std: float) -> str:
    return f"{100 * mean:.2f} +- {100 * std:.2f}"


def _num(value: float | None, fmt: str) -> str:
    return "n/a" if value is None else format(value, fmt)


def _markdown(blocks: list[Block]) -> str:
    out = []
    for b in blocks:
        if b.kind == "heading":
            out.append("#" * b.content[0] + " " + b.content[1])
        elif b.kind == "text":
            out.append(b.content)
        elif b.kind == "image":
            out.append(f"![{Path(b.content).stem}]({b.content})")
        elif b.kind == "code":
            out.append(f"```json\n{b.content}\n```")
        else:
            header, body = b.content
            out += ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)] + [
                "| " + " | ".join(str(c) for c in row) + " |" for row in body
            ]
        out.append("")
    return "\n".join(out)


def _html(blocks: list[Block], title: str) -> str:
    esc, out = html.escape, []
    for b in blocks:
        if b.kind == "heading":
            out.append(f"<h{b.content[0]}>{esc(b.content[1])}</h{b.content[0]}>")
        elif b.kind == "text":
            out.append(f"<p>{esc(b.content)}</p>")
        elif b.kind == "image":
            out.append(f'<img src="{esc(b.content)}" alt="{esc(Path(b.content).stem)}">')
        elif b.kind == "code":
            out.append(f"<pre>{esc(b.content)}</pre>")
        else:
            header, body = b.content
            cells = "".join(f"<tr>{''.join(f'<td>{esc(str(c))}</td>' for c in row)}</tr>" for row in body)
            out.append(f"<table><tr>{''.join(f'<th>{esc(h)}</th>' for h in header)}</tr>{cells}</table>")
    style = (
        "body{font-family:sans-serif;max-width:1100px;margin:auto}table{border-collapse:collapse;margin:1em 0}"
        "td,th{border:1px solid #ccc;padding:2px 8px;font-size:13px}img{max-width:100%}"
    )
    return (
        f"<!doctype html>\n<html><head><meta charset='utf-8'><title>{esc(title)}</title><style>{style}</style></head><body>\n"
        + "\n".join(out)
        + "\n</body></html>\n"
    )
