"""NAS versus baselines: the results schema and paired comparisons over seeds."""

from __future__ import annotations

import dataclasses
from collections import defaultdict
from dataclasses import dataclass
from typing import Any, Iterable

import numpy as np
import pyarrow as pa

from raynas.api import ASHA, HAND, RANDOM, RANDOM_BASELINES, strategy_names
from raynas.evaluation.statistics import pooled_paired

DETECT_PP = 1.0  # the NAS-minus-random difference (points of test accuracy) whose detection power is reported


def nas_methods() -> list[str]:
    """Every registered strategy's name (the ``method`` of its results) but the black-box random
    search, which is the baseline of the other black-box strategies."""
    return [n for n in strategy_names() if n != RANDOM]


@dataclass(frozen=True)
class ResultRow:
    """One finalist measured on one target: a row of ``results.parquet`` (``RESULTS_SCHEMA`` has a comment per column)."""

    key: str
    target: str
    budget_ms: float | None
    method: str
    seed: int
    arch: str
    space: str
    arch_id: str
    width_mult: float
    predicted_ms: float | None
    measured_ms: float | None
    measured_wall_ms: float | None
    estimated: bool
    val_acc: float
    test_acc: float
    constrained: bool | None
    argmax_ms: float | None
    search_seconds: float
    evaluations: int | None
    retrain_seconds: float

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


# One row per (target, budget, method, seed); hand-designed rows have no budget, scaled ones no prediction.
RESULTS_SCHEMA = pa.schema(
    [
        ("key", pa.string()),  # the finalist: its MLflow child run and weights file
        ("target", pa.string()),
        ("budget_ms", pa.float64()),
        ("method", pa.string()),
        ("seed", pa.int64()),
        ("arch", pa.string()),
        ("space", pa.string()),  # the architecture's space, variants included (mnist-small@w0.5, mnist-ofa@r24)
        ("arch_id", pa.string()),
        ("width_mult", pa.float64()),
        ("predicted_ms", pa.float64()),
        (
            "measured_ms",
            pa.float64(),
        ),  # in the unit of the target's latency table (its yardstick ms, raynas/hardware/timing.py); null on estimated targets
        ("measured_wall_ms", pa.float64()),  # the same measurement in wall-clock ms of the moment it was taken
        ("estimated", pa.bool_()),  # the target's latency is an estimate (imported table or roofline), not a measurement
        ("val_acc", pa.float64()),  # the retrained network's validation accuracy: what tuning reads (experiments/tune_search.py)
        ("test_acc", pa.float64()),
        ("constrained", pa.bool_()),  # the search's own argmax left the budget window and the window picked the result
        ("argmax_ms", pa.float64()),  # predicted latency of the search's own argmax of alpha (ProxylessNAS), before the window
        ("search_seconds", pa.float64()),
        (
            "evaluations",
            pa.int64(),
        ),  # architectures the search scored (shared weights, predictor samples included, or trained models); null where it counts none
        ("retrain_seconds", pa.float64()),
    ]
)


def _first(by_method: dict[str, dict], methods: Iterable[str]) -> dict | None:
    return next((by_method[m] for m in methods if m in by_method), None)


def paired_comparisons(rows: Iterable[dict[str, Any]]) -> list[dict[str, Any]]:
    """Per (target, budget): NAS (whichever strategy ran) and random test accuracy over the
    seeds both finished, and their gap.

    Pairs share the seed, hence the warm-up weights, data order and retraining initialisation, so
    the gap is tested with a paired t-test (None where undefined: one seed or constant differences).
    """
    grouped: dict[tuple, dict[int, dict[str, dict]]] = defaultdict(dict)
    nas = nas_methods()
    asha: dict[tuple, dict[int, float]] = defaultdict(dict)
    hand: dict[tuple, list[dict]] = defaultdict(list)
    for r in rows:
        if r["method"] == HAND:
            hand[(r["target"], r["seed"])].append(r)
        if r["method"] == ASHA:
            asha[(r["target"], r["budget_ms"])][r["seed"]] = r["test_acc"]
        if r["method"] in (*nas, *RANDOM_BASELINES):
            grouped[(r["target"], r["budget_ms"])].setdefault(r["seed"], {})[r["method"]] = r
    out = []
    for (target, budget), by_seed in sorted(grouped.items()):
        pairs = [(_first(m, nas), _first(m, RANDOM_BASELINES)) for _, m in sorted(by_seed.items())]
        pairs = [p for p in pairs if None not in p]
        if not pairs:
            continue
        found, rnd = (np.array([p[i]["test_acc"] for p in pairs]) for i in (0, 1))
        out.append(
            {
                "target": target,
                "budget_ms": budget,
                "seeds": len(pairs),
                "nas_method": pairs[0][0]["method"],
                "nas_acc_mean": float(found.mean()),
                "nas_acc_std": _std(found),
                "random_acc_mean": float(rnd.mean()),
                "random_acc_std": _std(rnd),
                "gap_pp": float(100 * (found - rnd).mean()),
                "gap_pp_std": 100 * _std(found - rnd),
                "gaps_pp": [float(100 * d) for d in found - rnd],
                "p_value": paired_p_value(found, rnd),
                "nas_ms_mean": float(np.mean([latency_ms(p[0]) for p in pairs])),
                "random_ms_mean": float(np.mean([latency_ms(p[1]) for p in pairs])),
            }
            | _versus_asha(pairs, asha.get((target, budget), {}))
            | versus_hand_curve([p[0] for p in pairs], {s: hand[(target, s)] for s in by_seed})
        )
    return out


def versus_hand_curve(found: list[dict[str, Any]], hand: dict[int, list[dict[str, Any]]]) -> dict[str, Any]:
    """NAS against the MobileNetV2-style widths of the same seed and target, read at NAS's measured
    latency: linear between widths, and outside the widths' latency range the nearest width (so a NAS
    net faster than every width is compared with the fastest). Seeds with fewer than two widths are
    left out; ``hand_seeds`` counts the seeds compared, ``hand_inside`` those read between two widths."""
    ours, theirs, inside = [], [], 0
    for r in found:
        curve = sorted((latency_ms(h), h["test_acc"]) for h in hand.get(r["seed"], []))
        if len(curve) < 2:
            continue
        ms, (xs, ys) = latency_ms(r), zip(*curve)
        inside += xs[0] <= ms <= xs[-1]
        ours.append(r["test_acc"])
        theirs.append(float(np.interp(ms, xs, ys)))
    if not ours:
        return {"hand_acc_at_nas_ms": None, "hand_gap_pp": None, "hand_p_value": None, "hand_seeds": 0, "hand_inside": 0}
    return {
        "hand_acc_at_nas_ms": float(np.mean(theirs)),
        "hand_gap_pp": float(100 * (np.mean(ours) - np.mean(theirs))),
        "hand_p_value": paired_p_value(ours, theirs),
        "hand_seeds": len(ours),
        "hand_inside": inside,
    }


def _versus_asha(pairs: list[tuple[dict, dict]], asha: dict[int, float]) -> dict[str, Any]:
    """NAS against the early-stopped random search on the seeds both ran (None where ASHA did not run)."""
    both = [(p[0]["test_acc"], asha[p[0]["seed"]]) for p in pairs if p[0]["seed"] in asha]
    if not both:
        return {"asha_acc_mean": None, "asha_gap_pp": None, "asha_p_value": None}
    found, early = (np.array([b[i] for b in both]) for i in (0, 1))
    return {
        "asha_acc_mean": float(early.mean()),
        "asha_gap_pp": float(100 * (found - early).mean()),
        "asha_p_value": paired_p_value(found, early),
    }


def latency_ms(row: dict[str, Any]) -> float:
    """The measured latency, or on an estimated target the estimate (rows say which in ``estimated``)."""
    return row["measured_ms"] if row["measured_ms"] is not None else row["predicted_ms"]


def paired_p_value(a: np.ndarray, b: np.ndarray) -> float | None:
    """Two-sided paired t-test p-value; None when it is undefined. scipy.stats is imported here: it
    takes ~1 s, and every search worker imports this module for the method names."""
    from scipy import stats

    diff = np.asarray(a, dtype=float) - np.asarray(b, dtype=float)
    if len(diff) < 2 or np.ptp(diff) < 1e-9:  # constant differences (up to rounding): t is undefined
        return None
    return float(stats.ttest_rel(a, b).pvalue)


def headline(comparisons: list[dict[str, Any]]) -> dict[str, Any]:
    """The figures a sweep is judged by: the pooled NAS-minus-random estimate over every paired seed
    (interval, power), the mean of the cells' gaps in percentage points and how often NAS wins."""
    gaps = [c["gap_pp"] for c in comparisons]
    hand = [c["hand_gap_pp"] for c in comparisons if c.get("hand_gap_pp") is not None]
    cells = {(c["target"], c["budget_ms"]): c.get("gaps_pp", []) for c in comparisons}
    pooled = pooled_paired(cells, effect=DETECT_PP) if any(cells.values()) else None
    return {
        "nas_minus_random_pooled": pooled.to_dict() if pooled else None,
        "nas_minus_random_mean_pp": round(float(np.mean(gaps)), 3) if gaps else None,
        "nas_wins": sum(g > 0 for g in gaps),
        "comparisons": len(gaps),
        "nas_minus_hand_curve_mean_pp": round(float(np.mean(hand)), 3) if hand else None,
    }


def budget_steps(comparisons: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """How NAS accuracy moves from each budget to the next wider one of the same target (``comparisons``
    in ``paired_comparisons``'s order); a step is beyond noise when it exceeds two standard errors
    of the difference of the two seed means."""
    steps = []
    for a, b in zip(comparisons, comparisons[1:]):
        if a["target"] != b["target"]:
            continue
        noise = 2 * 100 * float(np.sqrt(a["nas_acc_std"] ** 2 / a["seeds"] + b["nas_acc_std"] ** 2 / b["seeds"]))
        change = 100 * (b["nas_acc_mean"] - a["nas_acc_mean"])
        steps.append(
            {
                "target": a["target"],
                "from_ms": a["budget_ms"],
                "to_ms": b["budget_ms"],
                "change_pp": change,
                "noise_pp": noise,
                "beyond_noise": abs(change) > noise,
            }
        )
    return steps


def dominance(comparison: dict[str, Any]) -> str:
    """NAS against random search in both accuracy and latency at one budget: dominates (at least as
    good in both), dominated (at most as good in both) or trade-off."""
    acc, ms = comparison["gap_pp"], comparison["nas_ms_mean"] - comparison["random_ms_mean"]
    if acc >= 0 and ms <= 0:
        return "dominates"
    if acc <= 0 and ms >= 0:
        return "dominated"
    return "trade-off"


def summarize(rows: Iterable[dict[str, Any]], keys: tuple[str, ...]) -> list[dict[str, Any]]:
    """Mean and std of test accuracy and measured latency over seeds, grouped by ``keys``."""
    groups: dict[tuple, list[dict]] = defaultdict(list)
    for r in rows:
        groups[tuple(r[k] for k in keys)].append(r)
    out = []
    for key, members in sorted(groups.items(), key=lambda kv: tuple(_sortable(v) for v in kv[0])):
        acc, ms = np.array([m["test_acc"] for m in members]), np.array([latency_ms(m) for m in members])
        out.append(
            dict(zip(keys, key))
            | {"n": len(members), "acc_mean": float(acc.mean()), "acc_std": _std(acc), "ms_mean": float(ms.mean()), "ms_std": _std(ms)}
        )
    return out


def _sortable(value: Any) -> tuple:
    return (value is None, value if value is not None else 0)


def _std(x: np.ndarray) -> float:
    return float(np.std(x, ddof=1)) if len(x) > 1 else 0.0
