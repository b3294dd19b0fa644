"""Do shared weights rank MBConv chains inside one latency window? The ranking check on ``cifar-small``.

At the CIFAR-10 sweep's sizes and recipe (experiments/configs/cifar10-sweep.yaml: 5,000 training
images, 2,000 validation images from the rest of the training set, batch 64), ``--archs``
architectures are drawn uniformly from one latency window [0.9 B, B] of a target's latency table
(B: the sweep's middle budget fraction on that target, profiled here and kept in the work folder).
Each is retrained alone with the sweep's retraining recipe under ``--seeds`` seeds and scored on the
validation split only (never the test set). Supernets of the space, one per variant (weight sharing
``separate`` or ``entangled``, weight learning rate ``constant`` or ``cosine``), are trained with
uniformly sampled paths for the sweep's warm-up + search epochs at the sweep's weight learning rate;
each architecture's shared-weight accuracy is taken on fixed validation batches after BatchNorm
recalibration on fixed training batches.

Reported: Kendall tau between each variant's shared-weight accuracy and the standalone validation
accuracy (mean over seeds); how far two single-seed rankings agree; and how the standalone spread
splits into architecture and seed variance (two-way random effects: a seed fixes the data order for
every architecture). If the architecture variance is below the seed noise that reorders
architectures, no method can beat a random pick in this window.

Every run is cached under ``--work`` as it finishes (standalone results by architecture and seed,
supernet checkpoints per epoch, scores) and a rerun resumes. Jobs run in ``--processes`` processes
of one thread each. Prints tables; writes ``benchmarks/ranking_chain/``; the last line is one JSON object.

    python experiments/bench/ranking_chain.py [--work runs/ranking-chain] [--processes 2]
    python experiments/bench/ranking_chain.py --report-only     # the page from what has finished so far
    python experiments/bench/ranking_chain.py --smoke-test
"""

from __future__ import annotations

import argparse
import dataclasses
import functools
import json
import multiprocessing
import tempfile
import time
from concurrent.futures import FIRST_COMPLETED, ProcessPoolExecutor, wait
from pathlib import Path

import numpy as np
import torch
from pages import BENCHMARKS, write_page  # this folder

from raynas.config import ExperimentConfig, load_config
from raynas.data.datasets import load_splits
from raynas.evaluation.statistics import variance_components
from raynas.hardware.accuracy import kendall_tau
from raynas.hardware.build import build_latency_table
from raynas.hardware.lut import LatencyTable
from raynas.hardware.targets import get_target
from raynas.search.oneshot import OneShotConfig, UniformTraining
from raynas.search.random_search import window_candidates
from raynas.space.architecture import Architecture
from raynas.space.catalog import build_network
from raynas.space.macro import get_space
from raynas.supernet.scoring import FixedBatches
from raynas.supernet.supernet import Supernet
from raynas.training import retrain

CONFIG = Path(__file__).resolve().parents[1] / "configs" / "cifar10-sweep.yaml"
TARGET = "ort-cpu-1t"
WINDOW_FLOOR = 0.9
# (sharing, weight learning-rate schedule, label smoothing of the weight steps)
VARIANTS = (
    ("separate", "constant", 0.0), ("separate", "cosine", 0.0), ("entangled", "constant", 0.0), ("entangled", "cosine", 0.0),
    ("separate", "constant", 0.1),
)  # fmt: skip


def variant_name(variant: tuple[str, str, float]) -> str:
    """sharing/schedule, plus /ls<smoothing> when the weight steps smooth their labels (the cache's keys)."""
    sharing, schedule, smoothing = variant
    return f"{sharing}/{schedule}" + (f"/ls{smoothing:g}" if smoothing else "")
TITLE = "Do shared weights rank cifar-small chains inside one latency window? Separate against entangled weights"
NOTES = """\
Architectures drawn uniformly from one latency window [0.9 B, B] of the target's table, each
retrained alone with the CIFAR-10 sweep's recipe under every seed and scored on validation data
only. Each supernet variant (`sharing`, weight learning-rate `schedule`, `label_smoothing` of the
weight steps) is trained with uniformly sampled paths for the sweep's warm-up + search epochs, from
one seed; shared-weight accuracy is taken on fixed validation batches after BatchNorm recalibration
on fixed training batches. With 20 architectures, tau's standard error is about 0.16. `kendall_tau_signal`:
tau against the standalone validation accuracy (mean over seeds); `seed_vs_seed_tau`: how far two
single-seed rankings of the same architectures agree (the standalone ranking's own repeatability);
`arch_sd_pp` against `seed_sd_pp`: the architectures' spread against the seed noise that reorders
them (two-way random effects, seeds crossed with architectures: a seed fixes the data order for all;
`seed_shared_sd_pp` is the part of a seed's luck every architecture shares, which reorders nothing);
`arch_variance_share`: the architectures' share of those two.
"""


@dataclasses.dataclass(frozen=True)
class Check:
    """One ranking check's sizes (saved beside its results, so a resumed run cannot mix two)."""

    archs: int = 20
    seeds: int = 2
    budget_fraction: float = 0.5
    recal_batches: int = 8
    val_batches: int = 16
    limit: int | None = None  # training images (None: the sweep's)
    eval_limit: int | None = None
    retrain_epochs: int | None = None  # None: the sweep's recipe
    supernet_epochs: int | None = None  # None: the sweep's warm-up + search epochs
    profile_repeats: int | None = None  # timed calls per module of the target's table (None: the sweep's)
    sample_seed: int = 0


SMOKE = Check(archs=3, seeds=2, recal_batches=2, val_batches=2, limit=256, eval_limit=128, retrain_epochs=1, supernet_epochs=1,
              profile_repeats=10)  # fmt: skip


def experiment(check: Check, data: str | None) -> ExperimentConfig:
    """The sweep's config with this check's sizes (and ``--data`` for its images)."""
    overrides = {k: v for k, v in {"data.limit": check.limit, "data.eval_limit": check.eval_limit, "data.root": data}.items() if v}
    overrides |= {"data.test_limit": 64}  # the test split is never scored here
    if check.retrain_epochs:
        overrides["retrain.epochs"] = check.retrain_epochs
    if check.profile_repeats:
        overrides |= {"profile.repeats": check.profile_repeats, "profile.calibration_archs": 2}
    return load_config(CONFIG, overrides)


def supernet_epochs(cfg: ExperimentConfig, check: Check) -> int:
    return check.supernet_epochs or cfg.search.warmup_epochs + cfg.search.search_epochs


def latency_table(cfg: ExperimentConfig, work: Path) -> LatencyTable:
    """The target's table of the space, profiled once with the sweep's profiling settings."""
    path = work / f"{TARGET}.parquet"
    if path.exists():
        return LatencyTable.load(path)
    p = cfg.profile
    table = build_latency_table(get_target(TARGET), get_space(cfg.space), 10, warmup=p.warmup, repeats=p.repeats,
                                calibration_archs=p.calibration_archs, fit_scale=p.fit_scale)  # fmt: skip
    table.save(path)
    return table


def window_archs(cfg: ExperimentConfig, check: Check, table: LatencyTable) -> tuple[float, list[str]]:
    """The budget B and ``check.archs`` distinct architectures uniform over [0.9 B, B]."""
    macro = get_space(cfg.space)
    target = next(t for t in cfg.targets if t.name == TARGET)
    budget = dataclasses.replace(target, budget_fractions=(check.budget_fraction,), budgets_ms=()).budgets(*table.latency_range(macro))[0]
    drawn = window_candidates(table, macro, budget, floor=WINDOW_FLOOR, n=4 * check.archs, seed=check.sample_seed)
    return budget, list(dict.fromkeys(drawn))[: check.archs]


def standalone_job(cfg: ExperimentConfig, arch: str, seed: int) -> dict:
    """One architecture retrained alone (one thread), as the pipeline retrains finalists: its validation accuracy."""
    torch.set_num_threads(1)
    torch.manual_seed(seed)
    splits = load_splits(cfg.data)
    train, val, _ = splits.loaders(cfg.data.batch_size, seed)
    began = time.perf_counter()
    model = build_network(Architecture.from_string(cfg.space, arch), splits.num_classes)
    metrics = retrain(model, train, val, cfg=cfg.retrain)
    return {"val_acc": metrics["val_acc"], "train_acc": metrics["train_acc"], "seconds": round(time.perf_counter() - began, 1)}


def supernet_job(cfg: ExperimentConfig, variant: tuple[str, str, float], *, epochs: int, path: str) -> dict:
    """A supernet trained with uniform paths, one checkpoint per epoch (a rerun resumes from it)."""
    torch.set_num_threads(1)
    sharing, schedule, smoothing = variant
    splits = load_splits(cfg.data)
    train, _, _ = splits.loaders(cfg.data.batch_size, cfg.seed)
    supernet = Supernet(get_space(cfg.space), splits.num_classes, sharing=sharing)
    one_shot = OneShotConfig(epochs=epochs, lr=cfg.search.weight_lr, weight_decay=cfg.search.weight_decay, schedule=schedule,
                             label_smoothing=smoothing)  # fmt: skip
    training = UniformTraining(supernet, train, cfg=one_shot, seed=cfg.seed)
    checkpoint = Path(path)
    if checkpoint.exists():
        training.load_state_dict(torch.load(checkpoint, weights_only=True))
    began, log, first = time.perf_counter(), [], training.epoch
    while not training.done:
        log.append(training.step())
        torch.save(training.state_dict(), checkpoint.with_suffix(".tmp"))
        checkpoint.with_suffix(".tmp").replace(checkpoint)
    return {"seconds": round(time.perf_counter() - began, 1), "log": log, "resumed_at_epoch": first}  # seconds: this process's epochs


class Results:
    """Every finished job's result in one JSON file, written as each arrives (through a temporary file,
    so a killed run leaves the last complete one); refused when it holds another check's, or scores
    of other architectures."""

    def __init__(self, path: Path, check: Check) -> None:
        self.path, mine = path, json.loads(json.dumps(dataclasses.asdict(check)))
        saved = json.loads(path.read_text()) if path.exists() else {"check": mine, "jobs": {}}
        if json.loads(json.dumps(dataclasses.asdict(Check()))) | saved["check"] != mine:
            raise SystemExit(f"{path} holds a check with {saved['check']}, not {mine}; use another --work or the same options")
        self.saved = saved

    @property
    def jobs(self) -> dict:
        return self.saved["jobs"]

    def pin(self, budget: float, archs: list[str]) -> None:
        """The window's architectures, the same on every rerun (they come from the saved table)."""
        mine = {"budget_ms": round(budget, 6), "archs": archs}
        if self.saved.setdefault("window", mine) != mine:
            raise SystemExit(f"{self.path} holds jobs of another window ({self.saved['window']}); use another --work")
        self._write()

    def put(self, key: str, value: dict) -> None:
        self.jobs[key] = value
        self._write()

    def _write(self) -> None:
        self.path.with_suffix(".tmp").write_text(json.dumps(self.saved, indent=1))
        self.path.with_suffix(".tmp").replace(self.path)


def run_jobs(cfg: ExperimentConfig, check: Check, archs: list[str], *, work: Path, results: Results, processes: int) -> None:
    """The supernets first (each one process for its epochs), then every (architecture, seed), in ``processes`` processes."""
    epochs = supernet_epochs(cfg, check)
    todo = {f"supernet/{variant_name(v)}": functools.partial(supernet_job, cfg, v, epochs=epochs, path=str(supernet_file(work, v)))
            for v in VARIANTS}  # fmt: skip
    todo |= {f"standalone/{a}/{seed}": functools.partial(standalone_job, cfg, a, seed) for a in archs for seed in range(check.seeds)}
    todo = {k: v for k, v in todo.items() if k not in results.jobs}
    if not todo:
        return
    load_splits(cfg.data)  # the decoded images cached once, before the processes read them
    failed = []
    with ProcessPoolExecutor(processes, mp_context=multiprocessing.get_context("spawn")) as pool:
        running = {pool.submit(job): key for key, job in todo.items()}
        while running:
            done, _ = wait(running, return_when=FIRST_COMPLETED)
            for future in done:
                key = running.pop(future)
                if future.exception() is not None:  # the others go on; a rerun retries this one
                    failed.append(f"{key}: {future.exception()!r}")
                    continue
                results.put(key, future.result())
                print(f"{key}: {json.dumps({k: v for k, v in results.jobs[key].items() if k != 'log'})} ({len(running)} left)", flush=True)
    if failed:
        raise SystemExit("jobs failed (the rest are saved; rerun to retry):\n" + "\n".join(failed))


def score_variants(cfg: ExperimentConfig, check: Check, archs: list[str], *, work: Path, results: Results) -> dict[str, list[float]]:
    """Each variant's shared-weight accuracy of every architecture, on the same fixed batches."""
    splits = load_splits(cfg.data)
    train, val, _ = splits.loaders(cfg.data.batch_size, cfg.seed)
    fixed = FixedBatches.draw(train, val, recalibration=check.recal_batches, validation=check.val_batches)
    scores = {}
    for variant in VARIANTS:
        key = f"scores/{variant_name(variant)}"
        if key not in results.jobs:
            supernet = Supernet(get_space(cfg.space), splits.num_classes, sharing=variant[0])
            supernet.load_state_dict(torch.load(supernet_file(work, variant), weights_only=True)["supernet"])
            results.put(key, {"acc": [fixed.score(supernet, Architecture.from_string(cfg.space, a)) for a in archs]})
        scores[variant_name(variant)] = results.jobs[key]["acc"]
    return scores


def supernet_file(work: Path, variant: tuple[str, str, float]) -> Path:
    return work / f"supernet-{variant_name(variant).replace('/', '-')}.pt"


def summary(check: Check, archs: list[str], scores: dict[str, list[float]], *, budget: float, results: Results) -> dict:
    """Taus per variant, how far single-seed rankings agree and the variance split, over the
    architectures whose every seed has finished (all of them once the run is complete)."""
    done = [i for i, a in enumerate(archs) if all(f"standalone/{a}/{s}" in results.jobs for s in range(check.seeds))]
    if len(done) < 2:
        raise SystemExit(f"{len(done)} architecture(s) retrained under every seed so far: a ranking needs 2; let the run go on")
    runs = np.array([[results.jobs[f"standalone/{archs[i]}/{s}"]["val_acc"] for s in range(check.seeds)] for i in done]) * 100
    mean = runs.mean(axis=1)
    parts = variance_components(runs)
    scores = {v: [acc[i] for i in done] for v, acc in scores.items()}
    archs = [archs[i] for i in done]
    rows = [{"space": "cifar-small", "sharing": v.split("/")[0], "schedule": v.split("/")[1],
             "label_smoothing": float(v.split("/ls")[1]) if "/ls" in v else 0.0, "device": TARGET,
             "budget": f"{check.budget_fraction:g}", "budget_ms": round(budget, 4), "archs": len(archs),
             "kendall_tau_signal": round(kendall_tau(acc, mean.tolist()), 4), "kendall_tau_test": None,
             "shared_acc_mean": round(float(np.mean(acc)), 4)} for v, acc in scores.items()]  # fmt: skip
    best = max(rows, key=lambda r: r["kendall_tau_signal"])
    return {
        "rows": rows, "space": "cifar-small", "archs": len(archs), "seeds": check.seeds, "complete": len(archs) == check.archs,
        "seed_vs_seed_tau": round(kendall_tau(runs[:, 0].tolist(), runs[:, 1].tolist()), 4) if check.seeds >= 2 else None,
        "standalone_val_acc_mean": round(float(mean.mean()), 3),
        "standalone_val_acc_range": [round(float(mean.min()), 3), round(float(mean.max()), 3)],
        "arch_sd_pp": round(parts.between_sd, 3), "seed_sd_pp": round(parts.residual_sd, 3),
        "seed_shared_sd_pp": round(parts.replicate_sd, 3), "arch_variance_share": round(parts.between_share, 3),
        "highest_tau": variant_name((best["sharing"], best["schedule"], best["label_smoothing"])),
        "standalone_seconds": round(sum(v["seconds"] for k, v in results.jobs.items() if k.startswith("standalone/")), 1),
        "supernet_seconds": {k.split("/", 1)[1]: v["seconds"] for k, v in results.jobs.items() if k.startswith("supernet/")},
        "check": dataclasses.asdict(check), "target": TARGET, "archs_scored": archs,
    }  # fmt: skip


def print_summary(head: dict) -> None:
    print(f"{'sharing':<11}{'schedule':<10}{'smoothing':>10}{'tau (standalone val)':>22}{'shared acc':>12}")
    for r in head["rows"]:
        print(f"{r['sharing']:<11}{r['schedule']:<10}{r['label_smoothing']:>10g}{r['kendall_tau_signal']:>22.3f}{r['shared_acc_mean']:>12.3f}")
    if not head["complete"]:
        print(f"not complete: {head['archs']} of {head['check']['archs']} architectures retrained under every seed so far")
    print(f"standalone: {head['archs']} archs x {head['seeds']} seeds, validation accuracy {head['standalone_val_acc_mean']:.2f} % "
          f"(range {head['standalone_val_acc_range']}); two single-seed rankings agree with tau {head['seed_vs_seed_tau']}")  # fmt: skip
    below = " (below the seeds': no method can beat a random pick here)" if head["arch_sd_pp"] < head["seed_sd_pp"] else ""
    print(f"architecture sd {head['arch_sd_pp']:.2f} pp, seed x architecture sd {head['seed_sd_pp']:.2f} pp "
          f"(a seed's luck shared by all: {head['seed_shared_sd_pp']:.2f} pp): "
          f"architecture share of the variance {head['arch_variance_share']:.2f}{below}")  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--work", default=None, help="cached results (default: runs/ranking-chain, or a temp folder with --smoke-test)")
    parser.add_argument("--data", default=None, help="CIFAR-10 class folders (default: the sweep config's, $RAYNAS_DATA/cifar10)")
    parser.add_argument("--archs", type=int, default=Check.archs)
    parser.add_argument("--seeds", type=int, default=Check.seeds)
    parser.add_argument("--processes", type=int, default=2, help="jobs at once, one thread each")
    parser.add_argument("--out", default=None, help="folder for the page (default: the repo's benchmarks/; none with --smoke-test)")
    parser.add_argument("--smoke-test", action="store_true", help="256 training images, 1 epoch, 3 architectures")
    parser.add_argument("--report-only", action="store_true", help="report what has finished and train nothing")
    args = parser.parse_args()
    if args.archs < 2 or args.seeds < 2:
        parser.error("--archs and --seeds need at least 2 each (a ranking, and seed noise to compare with)")
    check = SMOKE if args.smoke_test else Check(archs=args.archs, seeds=args.seeds)
    work = Path(args.work or (tempfile.mkdtemp(prefix="raynas-ranking-chain-") if args.smoke_test else "runs/ranking-chain"))
    work.mkdir(parents=True, exist_ok=True)
    cfg = experiment(check, args.data)
    results = Results(work / "results.json", check)  # refused before any profiling when it holds another check
    budget, archs = window_archs(cfg, check, latency_table(cfg, work))
    if len(archs) < check.archs:
        raise SystemExit(f"the window holds {len(archs)} distinct architectures of the {check.archs} asked for; lower --archs")
    results.pin(budget, archs)
    print(f"{len(archs)} architectures in [{WINDOW_FLOOR} B, B], B = {budget:.3f} ms on {TARGET}", flush=True)
    if not args.report_only:
        run_jobs(cfg, check, archs, work=work, results=results, processes=args.processes)
    head = summary(check, archs, score_variants(cfg, check, archs, work=work, results=results), budget=budget, results=results)
    print_summary(head)
    page_root = Path(args.out) if args.out else (None if args.smoke_test else BENCHMARKS)
    if page_root is not None:
        write_page("ranking_chain", summary={k: v for k, v in head.items() if k != "rows"}, rows=head["rows"], title=TITLE, notes=NOTES,
                   root=page_root)  # fmt: skip
        print(f"page: {page_root / 'ranking_chain' / 'README.md'}")
    print(json.dumps(head))


if __name__ == "__main__":
    main()
