"""Does one OFA supernet pay for itself? Costs of every phase, measured side by side in one run.

1. profile each target's latency tables (every elastic resolution; shared by both families, shown apart)
2. train the elastic supernet once (progressive shrinking, one task)
3. replica throughput: the same subnets evaluated by 1 and by 2 ``SupernetReplica`` actors
4. the accuracy predictor: random subnets evaluated on the replicas, MLP fitted, held-out RMSE
5. one evolutionary search per (target, budget) as Tune trials (the marginal cost of a scenario)
6. one ProxylessNAS search of the same space (warm-up + search), the per-scenario alternative
7. ranking check: shared-weight accuracy of 20 subnets spread over the whole latency range (fastest
   to slowest) against the same subnets fine-tuned briefly, both on the whole validation split

Costs are CPU-seconds (threads x wall-clock). The last line is one JSON object with
marginal_cost_ratio, break_even_scenarios, replica_speedup_2v1 (and kendall_tau, predictor RMSE).

    python experiments/bench/amortized_search.py [--data cifar10] [--smoke-test]

``--data mnist`` (default): the embedded MNIST subset on ``mnist-ofa``; ``--data cifar10``: CIFAR-10's
JPEG folders under ``$RAYNAS_DATA`` (default ../shared/data) on ``cifar-ofa``, a 5,000-image training
subset, targets cpu-1t and ort-cpu-1t.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import math
import time
from pathlib import Path

import numpy as np
import ray
import torch
from ray import tune
from scipy.stats import kendalltau

from raynas.api import Job
from raynas.config import ProfileConfig, parse_config
from raynas.data.datasets import DataConfig, load_splits
from raynas.data.sources import DatasetError, data_folder
from raynas.execution.ofa import run_elastic_training, train_elastic_supernet
from raynas.execution.replicas import ReplicaPool, start_replicas
from raynas.execution.runtime import connect
from raynas.execution.tasks import on_target, profile_target
from raynas.execution.trials import searcher_trial
from raynas.search.evolution import EvolutionConfig, SubnetGenes, SubnetLatency
from raynas.search.ofa import OFAConfig, collect_and_fit_predictor, predictor_payload, resolution_spaces, resolutions
from raynas.search.proxyless import ProxylessSearch, SearchConfig, warm_up
from raynas.space.architecture import Architecture
from raynas.space.macro import get_space
from raynas.strategies.ofa import OFAShared, build_evolution
from raynas.supernet.elastic import ElasticSupernet, SubnetScorer
from raynas.supernet.progressive import ShrinkConfig
from raynas.supernet.supernet import Supernet
from raynas.tracking.mlflow_tracker import ExperimentTracker, default_tracking_uri
from raynas.training import evaluate, sgd, train_epoch
from raynas.weights import load_numpy_state

FRACTIONS = (0.25, 0.5, 0.75)
RANK_CALIBRATION = 16  # training batches that recalibrate BatchNorm before a rank-check evaluation


@dataclasses.dataclass(frozen=True)
class Setting:
    """What one run benchmarks: the elastic space, its targets and data, and progressive shrinking."""

    dataset: str
    space: str
    targets: tuple[str, str]
    data: DataConfig
    shrink: ShrinkConfig
    rank_data: DataConfig  # the rank check's: the whole validation split, so its noise stays below the subnets' spread


def setting(dataset: str, smoke: bool) -> Setting:
    """``--data``'s space, targets, data and schedule (the smoke test's tiny ones)."""
    epochs = dict(largest_epochs=1, kernel_epochs=1, depth_epochs=1, width_epochs=1) if smoke else None
    if dataset == "mnist":
        shrink = ShrinkConfig(resolutions=(24, 28), **(epochs or dict(largest_epochs=3, kernel_epochs=2, depth_epochs=2, width_epochs=2)))
        data = DataConfig(limit=128, eval_limit=128) if smoke else DataConfig()
        return Setting(dataset, "mnist-ofa", ("ort-cpu-1t", "ort-cpu-1t-b16"), data, shrink, data)
    try:
        root = data_folder("cifar10")
    except DatasetError as exc:
        raise SystemExit(f"--data cifar10: {exc}") from None
    data = DataConfig(dataset="cifar10", root=str(root), limit=128 if smoke else 5000, eval_limit=128 if smoke else 2000)
    shrink = ShrinkConfig(resolutions=(28, 32), **(epochs or dict(largest_epochs=8, kernel_epochs=4, depth_epochs=4, width_epochs=4)))
    return Setting(
        dataset,
        "cifar-ofa",
        ("ort-cpu-1t", "executorch-xnnpack-1t"),
        data,
        shrink,
        data if smoke else dataclasses.replace(data, eval_limit=None),
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", default="runs/bench/amortized")
    parser.add_argument("--rank-subnets", type=int, default=20)
    parser.add_argument(
        "--data",
        choices=("mnist", "cifar10"),
        default="mnist",
        help="mnist: the embedded subset; cifar10: the JPEG folders under $RAYNAS_DATA",
    )
    parser.add_argument("--smoke-test", action="store_true", help="tiny data and epochs: checks the plumbing in a few minutes")
    args = parser.parse_args()
    smoke = args.smoke_test
    out = Path(args.out).resolve()
    out.mkdir(parents=True, exist_ok=True)
    bench = setting(args.data, smoke)
    data, shrink, space, targets = bench.data, bench.shrink, bench.space, bench.targets
    evolution = EvolutionConfig(population=16, generations=3, recheck_top=2) if smoke else EvolutionConfig()
    cfg = OFAConfig(
        shrink=shrink,
        evolution=evolution,
        replicas=2,
        calibration_batches=2 if smoke else 4,
        eval_batches=2 if smoke else 11,
        predictor_samples=12 if smoke else 200,
    )
    search_cfg = SearchConfig(warmup_epochs=1 if smoke else 2, search_epochs=1 if smoke else 3, arch_lr=0.02)
    # smoke: uncalibrated tables (calibration is the latency benchmarks' subject; here its retries were the costliest phase)
    profile = (
        ProfileConfig(warmup=1, repeats=3, calibration_archs=0, settle_seconds=0)
        if smoke
        else ProfileConfig(warmup=10, repeats=100, calibration_archs=8, settle_seconds=10)
    )
    connect(None, 2, list(targets))
    rows, cost = [], {}

    def phase(name: str, threads: float, fn):
        start = time.perf_counter()
        value = fn()
        cost[name] = (time.perf_counter() - start) * threads
        rows.append((name, threads, cost[name]))
        return value

    tables = phase("profile latency tables (shared)", 1, fn=lambda: {t: profile_resolutions(t, space, shrink, profile) for t in targets})
    stats, state = phase(
        "OFA: train elastic supernet (once)",
        2,
        fn=lambda: run_elastic_training(
            train_elastic_supernet.options(num_cpus=2), out / "supernet", space=space, data=data, shrink=shrink, seed=0, threads=2
        ),
    )
    replicas, _weights = start_replicas(state, space, cfg, data=data, seed=0)
    speedup, throughput = replica_throughput(replicas, bench, 4 if smoke else 32)
    predictor, fit, _, _ = phase(
        "OFA: accuracy predictor (once)", 2, fn=lambda: collect_and_fit_predictor(ReplicaPool(replicas), space, cfg, seed=0)
    )
    log_predictor(predictor, fit, out)
    scenarios = scenario_list(tables, bench)
    found = phase("OFA: all evolutionary searches", 2, fn=lambda: run_searches(scenarios, replicas, predictor, tables, cfg, bench, out))
    marginal = float(np.mean([r.metrics["time_total_s"] for r in found]))
    pnas = proxyless_cost(tables[targets[1]][space], scenarios[len(FRACTIONS) + 1]["budget_ms"], bench, search_cfg)
    for replica in replicas:  # done with them: the rank check's fine-tunes take both cores
        ray.kill(replica)
    taus, pairs = rank_check(state, stats["num_classes"], bench, cfg, SubnetLatency(tables[targets[0]]), 3 if smoke else args.rank_subnets)
    report(rows, found, marginal, pnas, cost, fit, taus, pairs, throughput, speedup, bench)
    once = cost["OFA: train elastic supernet (once)"] + cost["OFA: accuracy predictor (once)"]
    saving = pnas["search"] - marginal
    print(
        json.dumps(
            {
                "marginal_cost_ratio": round(marginal / cost["OFA: train elastic supernet (once)"], 4),
                "break_even_scenarios": math.ceil((once - pnas["warmup"]) / saving) if saving > 0 else None,
                "replica_speedup_2v1": round(speedup, 3),
                "kendall_tau": _finite(taus["all"]),
                "kendall_tau_fast_half": _finite(taus["fast_half"]),
                "kendall_tau_slow_half": _finite(taus["slow_half"]),
                "predictor_rmse_heldout": round(fit["rmse_heldout"], 4),
                "predictor_rmse_mean_baseline": round(fit["rmse_heldout_mean_baseline"], 4),
                "rank_subnets": len(pairs),
                "dataset": bench.dataset,
                "scenarios": len(found),
                "smoke_test": smoke,
            }
        )
    )


def _finite(value: float) -> float | None:
    """Rounded for the JSON line; None where it is undefined (a tie makes Kendall tau NaN, which strict JSON lacks)."""
    return None if math.isnan(value) else round(value, 3)


def profile_resolutions(target: str, space: str, shrink: ShrinkConfig, profile: ProfileConfig) -> dict:
    """The target's table for the space and each elastic resolution, all in the space table's unit."""
    base = ray.get(on_target(profile_target, target).remote(target, space, 10, profile=profile, seed=0))
    others = [s for s in resolution_spaces(space, shrink) if s != space]  # one at a time: profiling tasks must not share the cores
    task = on_target(profile_target, target)
    return {space: base} | {s: ray.get(task.remote(target, s, 10, profile=profile, seed=0, yardstick_ms=base.yardstick_ms)) for s in others}


def replica_throughput(replicas: list, bench: Setting, n: int) -> tuple[float, dict[int, float]]:
    """Evaluations per second of 1 and of 2 replicas on the same subnets (after one warm call each)."""
    net, gen = (
        ElasticSupernet(get_space(bench.space), 10, min_depth=bench.shrink.min_depth, resolutions=bench.shrink.resolutions),
        torch.Generator().manual_seed(7),
    )
    archs = [
        net.sample(gen, kernels=(3, 5, 7), expansions=(3, 4, 6), depths=(2, 3, 4), resolutions=bench.shrink.resolutions) for _ in range(n)
    ]
    ray.get([r.evaluate.remote([archs[0].to_dict()]) for r in replicas])
    rates = {}
    for count in (1, 2, 1, 2):  # twice, interleaved; the better of each
        start = time.perf_counter()
        ReplicaPool(replicas[:count], chunk=2).evaluate(archs)
        rates[count] = max(rates.get(count, 0.0), n / (time.perf_counter() - start))
    return rates[2] / rates[1], rates


def log_predictor(predictor, fit: dict, out: Path) -> None:
    """The predictor and its held-out RMSE as an MLflow artifact: SQLite store and artifacts in the
    output folder, through the pipeline's tracker (plain ``mlflow`` put artifacts in ./mlruns)."""
    tracker = ExperimentTracker(default_tracking_uri(out), "raynas-amortized", out, run_name="accuracy-predictor")
    tracker.log_metrics(tracker.parent_id, fit)
    for path in sorted(predictor.save(out / "predictor", fit).iterdir()):
        tracker.log_file(tracker.parent_id, path, "predictor")
    tracker.finish()


def scenario_list(tables: dict, bench: Setting) -> list[dict]:
    """Budgets at FRACTIONS between the fastest and the slowest OFA subnet on each target."""
    macro, out = get_space(bench.space), []
    genes = SubnetGenes(macro, bench.shrink.min_depth, resolutions(macro, bench.shrink))
    for target in bench.targets:
        latency = SubnetLatency(tables[target])
        low, high = (latency(genes.architecture(genes.extreme(largest))) for largest in (False, True))
        out += [
            {"key": f"ofa:{target}@{low + f * (high - low):.3f}ms", "target": target, "budget_ms": low + f * (high - low), "seed": 0}
            for f in FRACTIONS
        ]
    return out


def run_searches(scenarios: list[dict], replicas: list, predictor, tables: dict, cfg: OFAConfig, bench: Setting, out: Path) -> list:
    """The pipeline's own evolution trials (checkpointed searcher, replicas re-check), one per scenario."""
    experiment = parse_config(
        {
            "name": "amortized",
            "space": bench.space,
            "strategy": "ofa",
            "targets": [{"name": t, "budgets_ms": [1.0]} for t in bench.targets],
            "data": dataclasses.asdict(bench.data),
            "ofa": dataclasses.asdict(cfg),
        }
    )
    jobs = {s["key"]: Job(s["key"], "ofa", s["target"], seed=0, budget_ms=s["budget_ms"]) for s in scenarios}
    shared = OFAShared({0: replicas}, {0: predictor_payload(predictor)}, tables)
    trainable = tune.with_resources(
        tune.with_parameters(searcher_trial, jobs=jobs, build=build_evolution, shared=shared, cfg=experiment), {"cpu": 1}
    )
    grid = tune.Tuner(
        trainable,
        param_space={"scenario": tune.grid_search([s["key"] for s in scenarios])},
        tune_config=tune.TuneConfig(reuse_actors=True),
        run_config=tune.RunConfig(name="evolution", storage_path=str(out / "tune"), verbose=0),
    ).fit()
    failed = [r for r in grid if r.error is not None]
    if failed:
        raise RuntimeError(f"{len(failed)} evolutionary search(es) failed: {failed[0].error}")
    return sorted(grid, key=lambda r: r.config["scenario"])


@ray.remote(num_cpus=1)
def _proxyless(lut, budget_ms: float, bench: Setting, cfg: SearchConfig) -> dict:
    """One ProxylessNAS search of the same space on one thread, as a pipeline trial runs it."""
    torch.set_num_threads(1)
    torch.manual_seed(0)
    splits = load_splits(bench.data)
    train, val, _ = splits.loaders(bench.data.batch_size, 0)
    supernet = Supernet(get_space(bench.space), splits.num_classes)
    start = time.perf_counter()
    warm_up(supernet, train, cfg, seed=0)
    warm = time.perf_counter() - start
    search = ProxylessSearch(supernet, lut, budget_ms, cfg=cfg, seed=0)
    for _ in range(cfg.search_epochs):
        metrics = search.epoch(train, val)
    return {"warmup": warm, "search": time.perf_counter() - start - warm, "arch": metrics["arch"]}


def proxyless_cost(lut, budget_ms: float, bench: Setting, cfg: SearchConfig) -> dict:
    return ray.get(_proxyless.remote(lut, budget_ms, bench, cfg))


def _supernet(state: dict, num_classes: int, bench: Setting) -> ElasticSupernet:
    """The elastic supernet of the bench's space with the trained weights."""
    net = ElasticSupernet(get_space(bench.space), num_classes, min_depth=bench.shrink.min_depth, resolutions=bench.shrink.resolutions)
    load_numpy_state(net, state)
    return net


@ray.remote(num_cpus=1)
def _shared_accuracy(state: dict, archs: list[dict], num_classes: int, bench: Setting) -> list[float]:
    """Shared-weight accuracy of subnets on the whole rank-check validation split (BatchNorm
    recalibrated on RANK_CALIBRATION training batches), on one thread."""
    torch.set_num_threads(1)
    net, (train, val, _) = _supernet(state, num_classes, bench), load_splits(bench.rank_data).loaders(bench.data.batch_size, 0)
    return SubnetScorer(net, train, val, calibration_batches=RANK_CALIBRATION, eval_batches=len(val)).evaluate(
        [Architecture.from_dict(a) for a in archs]
    )


@ray.remote(num_cpus=1)
def _fine_tune(state: dict, arch: dict, num_classes: int, bench: Setting, epochs: int) -> float:
    """Extract the subnet with its supernet weights, fine-tune briefly, return accuracy on the rank-check validation split."""
    torch.set_num_threads(1)
    torch.manual_seed(0)
    child = _supernet(state, num_classes, bench).extract(Architecture.from_dict(arch))
    train, val, _ = load_splits(bench.rank_data).loaders(bench.data.batch_size, 0)
    optimizer = sgd(child.parameters(), 0.01, momentum=0.9, weight_decay=4e-5)
    for _ in range(epochs):
        train_epoch(child, train, optimizer, loss_fn=torch.nn.CrossEntropyLoss())
    return evaluate(child, val)


def rank_subnets(macro, min_depth: int, res: tuple[int, ...], latency: SubnetLatency, n: int) -> list[Architecture]:
    """``n`` distinct subnets from the fastest to the slowest, sorted by latency: genes scaled toward
    the largest choices by evenly spaced fractions. Uniform draws crowd the middle of the range,
    where subnets differ by less than a 2,000-image validation split can tell apart."""
    genes, rng, found = SubnetGenes(macro, min_depth, res), np.random.default_rng(11), {}
    for i in range(n):
        fraction = i / max(n - 1, 1)
        for _ in range(50):
            arch = genes.architecture(genes.scaled(fraction, rng))
            if arch not in found:
                found[arch] = None
                break
    return sorted(found, key=lambda a: (latency(a), a.arch_id))


def rank_check(
    state: dict, num_classes: int, bench: Setting, cfg: OFAConfig, latency: SubnetLatency, n: int
) -> tuple[dict[str, float], list]:
    """Kendall tau between shared-weight and briefly fine-tuned accuracy of ``n`` subnets over the
    latency range, and within its faster and its slower half (neighbours in latency are harder to order)."""
    macro = get_space(bench.space)
    archs = rank_subnets(macro, cfg.shrink.min_depth, resolutions(macro, cfg.shrink), latency, n)
    state_ref, dicts = ray.put(state), [a.to_dict() for a in archs]
    cut = len(dicts) // 2
    shared = sum(ray.get([_shared_accuracy.remote(state_ref, part, num_classes, bench) for part in (dicts[:cut], dicts[cut:])]), [])
    tuned = ray.get([_fine_tune.remote(state_ref, d, num_classes, bench, 1) for d in dicts])
    half = len(archs) // 2
    tau = lambda a, b: float(kendalltau(a, b).statistic)  # noqa: E731
    taus = {"all": tau(shared, tuned), "fast_half": tau(shared[:half], tuned[:half]), "slow_half": tau(shared[half:], tuned[half:])}
    return taus, list(zip(archs, shared, tuned))


def report(rows, found, marginal, pnas, cost, fit, taus, pairs, throughput, speedup, bench: Setting) -> None:
    supernet = cost["OFA: train elastic supernet (once)"]
    print(
        f"\nphase costs (CPU-seconds = threads x wall-clock), data {bench.dataset}, space {bench.space}, targets {', '.join(bench.targets)}"
    )
    print(f"{'phase':<40} {'threads':>7} {'cpu_s':>9}")
    for name, threads, cpu_s in rows:
        print(f"{name:<40} {threads:>7} {cpu_s:>9.1f}")
    print(f"{'ProxylessNAS: warm-up (per space)':<40} {1:>7} {pnas['warmup']:>9.1f}")
    print(f"{'ProxylessNAS: one search':<40} {1:>7} {pnas['search']:>9.1f}")
    print("\nper-scenario evolutionary searches (1 thread each; Tune time_total_s)")
    print(f"{'scenario':<34} {'cpu_s':>7} {'pred_ms':>8} {'pred_acc':>8} {'shared_acc':>10}  arch")
    for r in found:
        m = r.metrics
        print(
            f"{r.config['scenario']:<34} {m['time_total_s']:>7.1f} {m['predicted_ms']:>8.3f} {m['predicted_acc']:>8.3f} "
            f"{m['shared_acc']:>10.3f}  {m['space']} {m['arch']}"
        )
    print(
        f"\nmarginal cost per scenario {marginal:.1f} s = {marginal / supernet:.2%} of the supernet training ({supernet:.1f} s); "
        f"one ProxylessNAS search {pnas['search']:.1f} s (+ {pnas['warmup']:.1f} s warm-up per space)"
    )
    print(
        f"accuracy predictor: held-out RMSE {fit['rmse_heldout']:.4f} (predicting the mean: {fit['rmse_heldout_mean_baseline']:.4f}), "
        f"{fit['n_train']} train / {fit['n_heldout']} held out"
    )
    print(f"replicas: {throughput[1]:.2f} evaluations/s with 1, {throughput[2]:.2f} with 2 (x{speedup:.2f})")
    print(
        f"ranking: Kendall tau {taus['all']:.3f} between shared-weight and 1-epoch fine-tuned accuracy of {len(pairs)} subnets "
        "from the fastest to the slowest,"
    )
    print(
        f"  {taus['fast_half']:.3f} within the faster half and {taus['slow_half']:.3f} within the slower half "
        f"({'the whole validation split' if bench.rank_data.eval_limit is None else f'{bench.rank_data.eval_limit} validation images'})"
    )
    for arch, shared, tuned in pairs:
        print(f"  {arch.space:<14} {arch.to_string():<70} shared {shared:.3f}  fine-tuned {tuned:.3f}")


if __name__ == "__main__":
    main()
