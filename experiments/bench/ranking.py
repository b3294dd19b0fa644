"""Do shared weights rank architectures? The ranking check of a weight-sharing supernet against NB201's truth.

On real CIFAR-10 under NAS-Bench-201's protocol (half of the training images train, the other half
validate), a supernet of the NB201 cell space (``raynas.supernet.cells``, one binary-gated decision
per edge) is trained with one uniformly sampled path per step, a cosine learning rate and a fixed
number of epochs (stage ``train``, one checkpoint per epoch). Then (stage ``score``) architectures
are scored with the shared weights on fixed validation batches after BatchNorm recalibration on
fixed training batches: ``--per-window`` sampled inside each latency window [0.9 B, B] of the
devices x budgets (B at the 25/50/75 % quantiles of the device's latency over connected cells), and
``--whole`` spread uniformly over the connected cells. Kendall tau (tau-b) between shared-weight
accuracy and the table's 12-epoch validation accuracy (the signal searches may use) and its
200-epoch test accuracy (reported only), over the whole space and per window.

Stage ``search``: per (device, budget), ProxylessNAS (two-path binary gates; its latency loss reads
per-edge costs fitted to the device's column by least squares, its window checks use the table
itself) and random search with weight sharing, each from a copy of the trained supernet with the
same number of in-window weight steps, both ending with the same final step (their top K
candidates re-scored on the fixed batches); what each returns is looked up in the table (true
accuracy and latency), beside the window's optimum, a uniform pick from the window (no shared
weights), the black-box searches of ``benchmarks/nb201_hw`` at the same simulated seconds, and the
NB201 paper's one-shot rows.

Every stage caches its results under ``--work`` (scores by cell code) and resumes where it stopped.
Prints tables; writes ``benchmarks/ranking/``; the last line is one JSON object.

    python experiments/bench/ranking.py [--work runs/ranking] [--epochs 20] [--threads 2] [--stages train score search report]
    python experiments/bench/ranking.py --smoke-test
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import torch
from pages import BENCHMARKS, write_page  # this folder

from raynas.data.datasets import DataConfig, load_splits
from raynas.data.loading import endless
from raynas.data.sources import DatasetError, data_folder
from raynas.evaluation.statistics import pooled_paired
from raynas.hardware.accuracy import kendall_tau
from raynas.hardware.tabular import LATENCY_PREFIX, REPORTED_SUFFIX, SIGNAL_SUFFIX, TabularBenchmark
from raynas.search.blackbox import search_class
from raynas.search.cost import TrainingCost, calibrate
from raynas.search.oneshot import OneShotConfig, UniformTraining, final_step, most_probable
from raynas.search.proxyless import ProxylessSearch, SearchConfig
from raynas.search.tabular import SignalOracle, run_search
from raynas.space.nb201 import NB201, Cell
from raynas.supernet.cells import CellSupernet
from raynas.supernet.scoring import FixedBatches
from raynas.training import sgd, train_step

STAGES = ("train", "score", "search", "report")
DEVICES = ("pixel3", "gold_6226", "1080ti_b1")  # a phone, a server CPU, a GPU at batch 1
DATASET = "cifar10"
BUDGETS = ("q25", "q50", "q75")
WINDOW_FLOOR = 0.9  # a window is [0.9 B, B], as the pipeline's derivation uses
SEARCH_DATA_SEED = 7919  # the loaders' seed for each search seed's batches
SEARCH_WEIGHT_LR = 0.01  # the weights keep training during the searches, at a low constant rate
SEARCH_ARCH_LR = 0.05  # alpha's Adam rate (the paper's 6e-3 over 120 epochs; here tens of steps)
BLACKBOX = ("random", "evolution", "tpe")  # black-box searches given the same CPU seconds (simulated)
BLACKBOX_SEEDS = 10
BLACKBOX_EVALUATIONS = 100
TAU_KEYS = ("space", "sharing", "device", "budget", "archs", "kendall_tau_signal", "kendall_tau_test")
# NB201's one-shot rows on CIFAR-10 (Dong and Yang, ICLR 2020, Table 5: mean +- std test accuracy of 3 runs,
# each searched on the same 25,000/25,000 split with 100+ GPU epochs). The paper itself was not at hand: these
# are the values later papers quote, at least two agreeing for each row kept; RSPS and ENAS are also quoted as
# 84.07 +- 3.61 and 53.89 +- 0.58 (the table lists the one-shot methods under two BatchNorm settings).
PAPER_ONE_SHOT = {
    "RSPS": (87.66, 1.69), "DARTS-V1": (54.30, 0.00), "DARTS-V2": (54.30, 0.00), "GDAS": (93.61, 0.09), "SETN": (87.64, 0.00),
    "ENAS": (54.30, 0.00), "optimum": (94.37, 0.0),
}  # fmt: skip
TITLE = "Do shared weights rank NB201 cells? Kendall tau against the table, and what one-shot searches return"
NOTES = """\
Kendall tau-b between shared-weight accuracy (fixed validation batches after BatchNorm recalibration
on fixed training batches) and the table's `cifar10_valid_12ep` (the signal a search may read) and
`cifar10_test_200ep` (reported only), over cells spread uniformly on the connected space
(`all/all`) and inside each latency window [0.9 B, B] (B: the 25/50/75 % quantile of the device's
latency). Search rows: the true test accuracy of what each method returns, averaged over seeds;
`uniform` is the window's mean (a pick made without shared weights), `optimum` its best cell. The
black-box searches get the CPU seconds the supernet took (training + one search: the process's
CPU time, or wall seconds x torch threads for epochs logged without it), counted in the tabular
benchmark's simulated training seconds (one 12-epoch training of a cell costs thousands of them; at
least one evaluation is granted); the count of evaluations that bought stands in brackets. NB201's
one-shot rows (`paper_one_shot`) were searched with far more GPU epochs than this CPU run.
"""


@dataclass(frozen=True)
class Settings:
    """One ranking run's sizes; saved beside its results so a resumed run cannot mix two."""

    epochs: int = 20
    batch_size: int = 128
    lr: float = 0.1
    label_smoothing: float = 0.0
    limit: int | None = None  # training images (None: NB201's half of the 50,000)
    eval_limit: int | None = None
    seed: int = 0


@dataclass(frozen=True)
class Scoring:
    """Which cells are scored with the shared weights, and on how many fixed batches (saved with the scores)."""

    recal_batches: int = 4
    val_batches: int = 4
    per_window: int = 50
    whole: int = 200
    devices: tuple[str, ...] = DEVICES


@dataclass(frozen=True)
class SearchOptions:
    """The searches run from the trained supernet (saved with their results)."""

    steps: int = 50  # search steps (ProxylessNAS: a weight and an architecture step; random search: an in-window weight step)
    top_k: int = 10  # candidates each search re-scores on the fixed batches
    seeds: int = 2


SMOKE = Settings(epochs=1, batch_size=32, limit=256, eval_limit=256)
SMOKE_SCORING = Scoring(recal_batches=2, val_batches=2, per_window=4, whole=8, devices=DEVICES[:1])
SMOKE_SEARCH = SearchOptions(steps=4, top_k=3, seeds=2)


def data_root(arg: str | None, name: str) -> Path:
    try:
        return Path(arg) if arg else data_folder(name)
    except DatasetError as exc:
        raise SystemExit(f"{exc}") from None


def loaders(root: Path, settings: Settings, work: Path) -> tuple:
    """NB201's protocol: the 50,000 training images split in halves, train and validation."""
    cfg = DataConfig(
        dataset="cifar10", root=str(root), val_fraction=0.5, batch_size=settings.batch_size, limit=settings.limit,
        eval_limit=settings.eval_limit, test_limit=settings.batch_size, cache_dir=str(work / "data-cache"), seed=settings.seed,
    )  # fmt: skip
    splits = load_splits(cfg)
    train, val, _ = splits.loaders(settings.batch_size, settings.seed)
    return train, val, splits.num_classes


def check_settings(work: Path, settings: Settings) -> None:
    """A work folder belongs to one trained supernet: resuming with other sizes would mix two experiments."""
    path = work / "settings.json"
    mine = json.loads(json.dumps(asdict(settings)))
    saved = json.loads(path.read_text()) if path.exists() else mine
    if {k: saved.get(k) for k in mine} != mine:
        raise SystemExit(f"{work} holds a run with other settings ({path}); use another --work or the same options")
    work.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(mine, indent=1))


def train_stage(work: Path, settings: Settings, *, train, num_classes: int) -> tuple[CellSupernet, list[dict]]:
    """Train (or resume training) the supernet; one checkpoint and one log line per epoch."""
    supernet = CellSupernet(num_classes)
    cfg = OneShotConfig(epochs=settings.epochs, lr=settings.lr, label_smoothing=settings.label_smoothing)
    training = UniformTraining(supernet, train, cfg=cfg, seed=settings.seed)
    checkpoint, log_path = work / "supernet.pt", work / "train_log.json"
    log = json.loads(log_path.read_text()) if log_path.exists() else []
    if checkpoint.exists():
        training.load_state_dict(torch.load(checkpoint, weights_only=True))
        log = log[: training.epoch]
    while not training.done:
        began, cpu = time.perf_counter(), time.process_time()
        stats = training.step()
        spent = {"seconds": round(time.perf_counter() - began, 1), "cpu_seconds": round(time.process_time() - cpu, 1)}
        log.append(stats | spent | {"threads": torch.get_num_threads()})
        torch.save(training.state_dict(), checkpoint.with_suffix(".tmp"))
        checkpoint.with_suffix(".tmp").replace(checkpoint)
        log_path.write_text(json.dumps(log, indent=1))
        print(
            f"epoch {stats['epoch']}/{cfg.epochs}: loss {stats['loss']:.3f}, train acc {stats['acc']:.3f}, {log[-1]['seconds']} s",
            flush=True,
        )
    return supernet, log


def windows(table: TabularBenchmark, scoring: Scoring) -> dict[str, tuple[str, float, np.ndarray]]:
    """Each ``device/qNN`` window: (device, budget, codes of its connected cells with latency in [0.9 B, B])."""
    connected = table.by_code(table.connected)
    out = {}
    for device in scoring.devices:
        latency = table.by_code(table.columns[f"{LATENCY_PREFIX}{device}"])
        for label, budget in zip(BUDGETS, table.budgets(device)):
            inside = connected & (latency >= WINDOW_FLOOR * budget) & (latency <= budget)
            out[f"{device}/{label}"] = (device, budget, np.flatnonzero(inside))
    return out


def sample_groups(table: TabularBenchmark, scoring: Scoring, *, seed: int) -> dict[str, list[int]]:
    """Cell codes to score: ``whole`` (uniform over connected cells) and ``per_window`` inside each window."""
    rng = np.random.default_rng(seed)
    connected = np.flatnonzero(table.by_code(table.connected))
    groups = {"whole": sorted(rng.choice(connected, scoring.whole, replace=False).tolist())}
    for name, (_, _, codes) in windows(table, scoring).items():
        groups[name] = sorted(rng.choice(codes, min(scoring.per_window, len(codes)), replace=False).tolist())
    return groups


class ScoreCache:
    """Shared-weight accuracies by cell code, saved every 25 scores (a restart rescores at most those);
    refused when they were scored another way."""

    def __init__(self, path: Path, scoring: Scoring) -> None:
        self.path, self.scoring = path, json.loads(json.dumps(asdict(scoring)))
        saved = json.loads(path.read_text()) if path.exists() else {"scoring": self.scoring, "scores": {}}
        if saved["scoring"] != self.scoring:
            raise SystemExit(f"{path} holds scores made with {saved['scoring']}, not {self.scoring}; pass those options or delete it")
        self.scores = {int(k): v for k, v in saved["scores"].items()}

    def get(self, code: int, score) -> float:
        if code not in self.scores:
            self.scores[code] = score(Cell.from_code(code))
            if len(self.scores) % 25 == 0:
                self.save()
        return self.scores[code]

    def save(self) -> None:
        self.path.write_text(json.dumps({"scoring": self.scoring, "scores": {str(k): v for k, v in sorted(self.scores.items())}}))


def score_stage(
    work: Path, groups: dict[str, list[int]], *, scoring: Scoring, supernet: CellSupernet, fixed: FixedBatches
) -> dict[int, float]:
    cache = ScoreCache(work / "scores.json", scoring)
    codes = sorted({c for g in groups.values() for c in g})
    began = time.perf_counter()
    for i, code in enumerate(codes):
        cache.get(code, lambda cell: fixed.score(supernet, cell))
        if (i + 1) % 50 == 0:
            print(f"scored {i + 1}/{len(codes)} ({time.perf_counter() - began:.0f} s)", flush=True)
    cache.save()
    return cache.scores


def tau_rows(groups: dict[str, list[int]], scores: dict[int, float], table: TabularBenchmark) -> list[dict]:
    """Kendall tau-b of shared-weight accuracy against the signal and the test column, per group."""
    signal, test = (table.by_code(table.columns[f"{DATASET}{suffix}"]) for suffix in (SIGNAL_SUFFIX, REPORTED_SUFFIX))
    rows = []
    for name, codes in groups.items():
        mine = [scores[c] for c in codes]
        device, budget = name.split("/") if "/" in name else ("all", "all")
        rows.append({
            "space": "nb201", "sharing": "separate", "device": device, "budget": budget, "archs": len(codes),
            "kendall_tau_signal": round(kendall_tau(mine, signal[codes].tolist()), 4),
            "kendall_tau_test": round(kendall_tau(mine, test[codes].tolist()), 4),
            "shared_acc_mean": round(float(np.mean(mine)), 4), "test_acc_spread": round(float(np.std(test[codes])), 3),
        })  # fmt: skip
    return rows


def search_config(fixed: FixedBatches) -> SearchConfig:
    """ProxylessNAS from a trained supernet: no warm-up; the weights keep training at a low rate; alpha
    takes larger steps than the paper's (as ``make run``'s config does): the search is far shorter."""
    return SearchConfig(warmup_epochs=0, search_epochs=1, weight_lr=SEARCH_WEIGHT_LR, weight_decay=5e-4, budget_floor=WINDOW_FLOOR,
                        arch_lr=SEARCH_ARCH_LR, eval_batches=len(fixed.validation))  # fmt: skip


def copy_of(state: dict, num_classes: int) -> CellSupernet:
    supernet = CellSupernet(num_classes)
    supernet.load_state_dict(state)
    return supernet


def nas_run(state: dict, window: tuple, options: SearchOptions, *, table: TabularBenchmark, data: tuple, seed: int) -> dict:
    """ProxylessNAS steps from the trained weights, then the final step on its K most probable
    in-window cells (the window enumerated: exact)."""
    device, budget, codes = window
    train, val, num_classes, fixed = data
    supernet = copy_of(state, num_classes)
    search = ProxylessSearch(supernet, table.latency(device), budget, cfg=search_config(fixed), seed=seed)
    train_batches, val_batches = endless(train), endless(val)
    for _ in range(options.steps):
        search.step(*next(train_batches), val_batches)
    log_probs = [torch.log_softmax(a.detach(), 0).tolist() for a in supernet.arch_parameters()]
    cells = [Cell.from_code(int(c)) for c in codes]
    ranked = [cells[i] for i in most_probable(log_probs, [NB201.choices(c) for c in cells], options.top_k)]
    pick, scores = ending(supernet, ranked, fixed=fixed, train=train, optimizer=search.weight_opt, seed=seed)
    argmax, _ = search.derive()
    return {"pick": pick.code, "scores": scores, "argmax": Cell(argmax.ops).code, "entropy": round(search.entropy(), 4)}


def random_ws_run(state: dict, window: tuple, options: SearchOptions, *, data: tuple, seed: int) -> dict:
    """Random search with weight sharing: as many weight steps on uniformly drawn in-window cells,
    then the final step on K uniformly drawn in-window cells."""
    _, _, codes = window
    train, _, num_classes, fixed = data
    supernet = copy_of(state, num_classes)
    rng = np.random.default_rng(seed)
    optimizer = sgd(supernet.weight_parameters(), SEARCH_WEIGHT_LR, momentum=0.9, weight_decay=5e-4)
    batches, loss_fn = endless(train), torch.nn.CrossEntropyLoss()
    for _ in range(options.steps):
        supernet.train()
        supernet.set_architecture(Cell.from_code(int(rng.choice(codes))))
        x, y = next(batches)
        train_step(supernet, optimizer, loss_fn, x=x, y=y)
    drawn = [Cell.from_code(int(c)) for c in rng.choice(codes, min(options.top_k, len(codes)), replace=False)]
    pick, scores = ending(supernet, drawn, fixed=fixed, train=train, optimizer=optimizer, seed=seed)
    return {"pick": pick.code, "scores": scores}


def ending(supernet: CellSupernet, candidates: list[Cell], *, fixed: FixedBatches, train, optimizer, seed: int) -> tuple[Cell, list[float]]:
    """The pipeline's final step (``raynas.search.oneshot.final_step``), without extra weight steps."""
    rng = np.random.default_rng(seed)
    return final_step(supernet, candidates, fixed=fixed, train_steps=0, batches=endless(train), optimizer=optimizer,
                      loss_fn=torch.nn.CrossEntropyLoss(), rng=rng)  # fmt: skip


def search_stage(work: Path, scoring: Scoring, *, table: TabularBenchmark, data: tuple, options: SearchOptions) -> dict:
    """Every (window, method, seed), cached in ``searches.json`` as it finishes (refused if it holds
    searches run with other options)."""
    path = work / "searches.json"
    mine = {k: v for k, v in asdict(options).items() if k != "seeds"}  # more or fewer seeds extend or read the same runs
    saved = json.loads(path.read_text()) if path.exists() else {"options": mine, "runs": {}}
    if {k: v for k, v in saved["options"].items() if k != "seeds"} != mine:
        raise SystemExit(f"{path} holds searches run with {saved['options']}, not {mine}; pass those options or delete it")
    done = saved["runs"]
    state = torch.load(work / "supernet.pt", weights_only=True)["supernet"]
    for name, window in windows(table, scoring).items():
        for seed in range(options.seeds):
            for method in ("nas", "random-ws"):
                key = f"{name}/{method}/{seed}"
                if key in done:
                    continue
                began, cpu = time.perf_counter(), time.process_time()
                for n, loader in enumerate(data[:2]):  # each seed's searches read the same batches, whatever ran before
                    loader.generator.manual_seed(SEARCH_DATA_SEED + 2 * seed + n)
                if method == "nas":
                    result = nas_run(state, window, options, table=table, data=data, seed=seed)
                else:
                    result = random_ws_run(state, window, options, data=data, seed=seed)
                done[key] = result | {"seconds": round(time.perf_counter() - began, 1), "cpu_seconds": round(time.process_time() - cpu, 1)}
                path.write_text(json.dumps(saved, indent=1))
                print(f"{key}: pick {Cell.from_code(done[key]['pick']).to_string()} ({done[key]['seconds']} s)", flush=True)
    return done


def print_taus(rows: list[dict]) -> None:
    print(f"{'group':<22}{'archs':>6}{'tau signal':>12}{'tau test':>10}{'shared acc':>12}")
    for r in rows:
        group = f"{r['device']}/{r['budget']}"
        print(f"{group:<22}{r['archs']:>6}{r['kendall_tau_signal']:>12.3f}{r['kendall_tau_test']:>10.3f}{r['shared_acc_mean']:>12.3f}")


def blackbox_at(seconds: float, window: tuple, *, table: TabularBenchmark, cost: TrainingCost, seeds: int) -> dict[str, dict]:
    """Each black-box search's pick after the evaluations whose simulated training fits ``seconds``
    (at least one): mean test accuracy and evaluations, over ``seeds`` runs."""
    device, budget, _ = window
    oracle = SignalOracle.of(table, DATASET, device=device, budget_ms=budget)
    test = table.by_code(table.columns[f"{DATASET}{REPORTED_SUFFIX}"])
    spent = table.by_code(cost.seconds(table.columns["flops_m"]))
    out = {}
    for name in BLACKBOX:
        accs, counts = [], []
        for seed in range(seeds):
            trace = run_search(search_class(name)(NB201, seed=seed), oracle, evaluations=BLACKBOX_EVALUATIONS)
            k = max(1, int(np.searchsorted(np.cumsum(spent[list(trace.codes)]), seconds, side="right")))
            best = trace.codes[int(np.argmax(trace.signals[:k]))]
            accs.append(float(test[best]))
            counts.append(k)
        out[name] = {"test_acc": round(float(np.mean(accs)), 3), "evaluations": float(np.mean(counts))}
    return out


def training_cost() -> TrainingCost:
    """The tabular benchmark's cost model as its page recorded it (so both pages count alike)."""
    page = BENCHMARKS / "nb201_hw" / "results.json"
    if page.exists():
        return TrainingCost(**json.loads(page.read_text())["summary"]["training_cost"])
    return calibrate([Cell.from_code(c) for c in (0, 7000, 15624)], [15.6, 100.0, 184.0])


def paired_seeds(searches: dict, name: str) -> list[int]:
    """The seeds of window ``name`` that both searches finished (a stopped run reports what it has)."""
    seeds = {int(k.rsplit("/", 1)[1]) for k in searches if k.startswith(f"{name}/")}
    return sorted(s for s in seeds if all(f"{name}/{m}/{s}" in searches for m in ("nas", "random-ws")))


def search_rows(searches: dict, scoring: Scoring, *, table: TabularBenchmark, cpu_seconds: float) -> list[dict]:
    test = table.by_code(table.columns[f"{DATASET}{REPORTED_SUFFIX}"])
    cost = training_cost()
    rows = []
    for name, window in windows(table, scoring).items():
        device, budget, codes = window
        seeds = paired_seeds(searches, name)
        if not seeds:
            continue
        latency = table.by_code(table.columns[f"{LATENCY_PREFIX}{device}"])
        runs = {m: [searches[f"{name}/{m}/{s}"] for s in seeds] for m in ("nas", "random-ws")}
        picks = {m: [r["pick"] for r in rs] for m, rs in runs.items()}
        argmax = [r["argmax"] for r in runs["nas"]]
        spent = cpu_seconds + float(np.mean([r["cpu_seconds"] for r in runs["nas"]]))
        row = {
            "device": device, "budget": name.split("/")[1], "budget_ms": round(budget, 3), "window_cells": len(codes), "seeds": len(seeds),
            "nas_test_acc": round(float(test[picks["nas"]].mean()), 3), "nas_latency_ms": round(float(latency[picks["nas"]].mean()), 3),
            "nas_argmax_test_acc": round(float(test[argmax].mean()), 3), "nas_argmax_in_window": float(np.isin(argmax, codes).mean()),
            "random_ws_test_acc": round(float(test[picks["random-ws"]].mean()), 3),
            "random_ws_latency_ms": round(float(latency[picks["random-ws"]].mean()), 3),
            "nas_minus_random_pp": [round(float(a - b), 3) for a, b in zip(test[picks["nas"]], test[picks["random-ws"]])],
            "uniform_pick_test_acc": round(float(test[codes].mean()), 3), "optimum_test_acc": round(float(test[codes].max()), 3),
            "cpu_seconds": round(float(spent), 1),
        }  # fmt: skip
        for method, result in blackbox_at(spent, window, table=table, cost=cost, seeds=BLACKBOX_SEEDS).items():
            row[f"{method}_test_acc"], row[f"{method}_evaluations"] = result["test_acc"], result["evaluations"]
        rows.append(row)
    return rows


def report(scoring: Scoring, options: SearchOptions, *, settings: Settings, table: TabularBenchmark, taus: list[dict], scored: int,
           searches: dict, log: list[dict], out, smoke: bool) -> None:  # fmt: skip
    # CPU time per epoch where the log kept it, else wall x threads (this run's threads where the log did not say)
    cpu_seconds = sum(e.get("cpu_seconds", e["seconds"] * e.get("threads", torch.get_num_threads())) for e in log)
    rows = search_rows(searches, scoring, table=table, cpu_seconds=cpu_seconds)
    print_searches(rows)
    print("NB201 paper, one-shot rows (CIFAR-10 test, quoted): " + ", ".join(f"{k} {m:.2f}" for k, (m, _) in PAPER_ONE_SHOT.items()))
    pooled = pooled_paired({(r["device"], r["budget"]): r["nas_minus_random_pp"] for r in rows}, effect=1.0)
    low, high = pooled.ci95
    print(f"NAS minus random-ws, pooled over {pooled.pairs} paired seeds: {pooled.mean:+.2f} pp, 95 % interval [{low:+.2f}, {high:+.2f}]")
    whole = next(r for r in taus if r["device"] == "all")
    in_window = [r["kendall_tau_test"] for r in taus if r["device"] != "all"]
    headline = {
        "rows": [{k: r[k] for k in TAU_KEYS} for r in taus],
        "kendall_tau": whole["kendall_tau_test"], "kendall_tau_in_window": round(float(np.median(in_window)), 4),
        "kendall_tau_signal": whole["kendall_tau_signal"],
        "space": "nb201", "sharing": "separate", "archs": scored,
        "nas_true_acc": round(float(np.mean([r["nas_test_acc"] for r in rows])), 3),
        "random_ws_true_acc": round(float(np.mean([r["random_ws_test_acc"] for r in rows])), 3),
        "uniform_pick_acc": round(float(np.mean([r["uniform_pick_test_acc"] for r in rows])), 3),
        "optimum_acc": round(float(np.mean([r["optimum_test_acc"] for r in rows])), 3),
        "nas_minus_random_pooled": pooled.to_dict(), "windows_searched": len(rows),
        "epochs": len(log), "final_train_acc": log[-1]["acc"], "supernet_cpu_seconds": round(cpu_seconds, 1),
        "settings": asdict(settings), "scoring": asdict(scoring), "search_options": asdict(options), "paper_one_shot": PAPER_ONE_SHOT,
    }  # fmt: skip
    page_root = Path(out) if out else (None if smoke else BENCHMARKS)
    if page_root is not None:
        write_page("ranking", summary=headline, rows=taus + rows, title=TITLE, notes=NOTES, root=page_root)
        print(f"page: {page_root / 'ranking' / 'README.md'}")
    print(json.dumps(headline))


def print_searches(rows: list[dict]) -> None:
    print(f"{'window':<20}{'nas':>8}{'rand-ws':>9}{'uniform':>9}{'optimum':>9}" + "".join(f"{n:>11}" for n in BLACKBOX))
    for r in rows:
        line = f"{r['device'] + '/' + r['budget']:<20}{r['nas_test_acc']:>8.2f}{r['random_ws_test_acc']:>9.2f}"
        line += f"{r['uniform_pick_test_acc']:>9.2f}{r['optimum_test_acc']:>9.2f}"
        print(line + "".join(f"{r[n + '_test_acc']:>7.2f}({r[n + '_evaluations']:.0f})" for n in BLACKBOX))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--work", default=None, help="folder of checkpoints and cached scores (default: runs/ranking, or a temp folder with --smoke-test)"
    )
    parser.add_argument("--data", default=None, help="CIFAR-10 class folders (default: $RAYNAS_DATA/cifar10)")
    parser.add_argument("--table", default=None, help="nb201_hw.csv (default: $RAYNAS_DATA/nb201-hw/nb201_hw.csv)")
    parser.add_argument("--epochs", type=int, default=Settings.epochs)
    parser.add_argument("--threads", type=int, default=None, help="torch threads (default: torch's)")
    parser.add_argument("--stages", nargs="*", default=list(STAGES), choices=STAGES)
    parser.add_argument("--search-seeds", type=int, default=SearchOptions.seeds, help="seeds of each (window, method) search")
    parser.add_argument("--search-steps", type=int, default=SearchOptions.steps)
    parser.add_argument("--top-k", type=int, default=SearchOptions.top_k)
    parser.add_argument("--out", default=None, help="folder for the page (default: the repo's benchmarks/; none with --smoke-test)")
    parser.add_argument("--smoke-test", action="store_true", help="256 training images, 1 epoch, one device, a few cells")
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    settings = SMOKE if args.smoke_test else Settings(epochs=args.epochs)
    scoring = SMOKE_SCORING if args.smoke_test else Scoring()
    options = SMOKE_SEARCH if args.smoke_test else SearchOptions(args.search_steps, args.top_k, args.search_seeds)
    root, table_path = data_root(args.data, "cifar10"), Path(args.table) if args.table else data_root(None, "nb201-hw") / "nb201_hw.csv"
    table = TabularBenchmark.load(table_path)
    work = Path(args.work or (tempfile.mkdtemp(prefix="raynas-ranking-") if args.smoke_test else "runs/ranking"))
    check_settings(work, settings)
    train, val, num_classes = loaders(root, settings, work)
    supernet, log = train_stage(work, settings, train=train, num_classes=num_classes)
    if set(args.stages) == {"train"}:
        return
    fixed = FixedBatches.draw(train, val, recalibration=scoring.recal_batches, validation=scoring.val_batches)
    groups = sample_groups(table, scoring, seed=settings.seed)
    scores = score_stage(work, groups, scoring=scoring, supernet=supernet, fixed=fixed)
    taus = tau_rows(groups, scores, table)
    print_taus(taus)
    if "search" in args.stages or "report" in args.stages:
        searches = search_stage(work, scoring, table=table, data=(train, val, num_classes, fixed), options=options)
        report(scoring, options, settings=settings, table=table, taus=taus, scored=len(scores), searches=searches, log=log, out=args.out,
               smoke=args.smoke_test)  # fmt: skip


if __name__ == "__main__":
    main()
