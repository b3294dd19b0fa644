"""Once-for-All (Cai et al., 2020) as a strategy: one elastic supernet per seed trained by progressive
shrinking, served from replicas, an accuracy predictor fitted on replica evaluations, then one
evolutionary search per (target, budget, seed); its random baseline scores uniform feasible subnets
on the same replicas with as many evaluations as the evolution spent, predictor samples included.
The algorithm: ``raynas/search/ofa.py`` and ``raynas/search/evolution.py``."""

from __future__ import annotations

import dataclasses
import tempfile
from dataclasses import dataclass
from typing import Any

import ray

from raynas.api import RANDOM_WS, Finalist, Job, LocalProblem, RunContext, RunInputs, Scenario, Strategy, scenario_of
from raynas.compute import CPU
from raynas.config import ExperimentConfig, check
from raynas.execution.ofa import run_elastic_training, train_elastic_data_parallel, train_elastic_supernet
from raynas.execution.replicas import ReplicaPool, start_replicas
from raynas.execution.runtime import cluster_cpus
from raynas.hardware.lut import LatencyTable
from raynas.hardware.models import LatencyModels
from raynas.search.evolution import EvolutionarySearch, RandomSubnetSearch, SubnetGenes, SubnetLatency
from raynas.search.ofa import PREDICTOR_SAMPLINGS, OFAConfig, collect_and_fit_predictor, predictor_payload, resolution_spaces, resolutions
from raynas.search.predictor import AccuracyPredictor, ArchEncoder
from raynas.space.architecture import Architecture
from raynas.space.macro import get_space
from raynas.supernet.elastic import ElasticSupernet, SubnetScorer
from raynas.supernet.progressive import train_progressive
from raynas.weights import load_numpy_state


@dataclass(frozen=True)
class OFAShared:
    """What every evolution and random-subnet trial reads: each seed's replicas and predictor, and each
    target's tables at every elastic resolution."""

    replicas: dict[int, list]  # seed -> SupernetReplica actor handles
    predictors: dict[int, dict]  # seed -> ``predictor_payload``
    tables: dict[str, dict[str, LatencyTable]]  # target -> space (one per resolution) -> table


class OnceForAll(Strategy):
    name = "ofa"
    label = "Once-for-All"
    section = "ofa"
    config_type = OFAConfig
    style = ("tab:green", "D")
    phases = ("evolution", "random-ws")
    smoke = {
        "shrink": {"min_depth": 1, "largest_epochs": 1, "kernel_epochs": 1, "depth_epochs": 1, "width_epochs": 1},
        "evolution": {"population": 8, "generations": 2, "recheck_top": 2},
        "calibration_batches": 1,
        "eval_batches": 1,
        "predictor_samples": 12,
    }

    def validate(self, s: OFAConfig, cfg: ExperimentConfig) -> None:
        check(all(8 < r <= 1024 for r in s.shrink.resolutions), "ofa.shrink.resolutions", "input sizes must lie in (8, 1024]")
        check(s.predictor_sampling in PREDICTOR_SAMPLINGS, "ofa.predictor_sampling", f"must be one of {', '.join(PREDICTOR_SAMPLINGS)}")
        e = s.evolution
        check(
            0 < e.parent_fraction < 1 and e.mutation_prob <= 1 and e.mutation_share <= 1,
            "ofa.evolution",
            "parent_fraction in (0, 1), mutation_prob and mutation_share in (0, 1]",
        )

    def gpu_requests(self, cfg: ExperimentConfig) -> dict[str, float]:
        return {"ofa.replica_gpus": cfg.ofa.replica_gpus}

    def held_cpus(self, cfg: ExperimentConfig) -> dict[str, float]:
        """Every seed's replicas live from the predictor to the end of the searches."""
        return {"ofa.replica_cpus": cfg.evaluation.seeds * cfg.ofa.replicas * cfg.ofa.replica_cpus}

    def latency_spaces(self, cfg: ExperimentConfig) -> list[str]:
        """Every elastic input resolution of the space needs its own table on every target."""
        return [space for space in resolution_spaces(cfg.space, cfg.ofa.shrink) if space != cfg.space]

    def budget_ranges(self, cfg: ExperimentConfig, latency: LatencyModels) -> dict[str, tuple[float, float]]:
        """Fastest to slowest subnet per target (shallowest stages and smallest resolution included)."""
        macro, shrink = get_space(cfg.space), cfg.ofa.shrink
        genes = SubnetGenes(macro, shrink.min_depth, resolutions(macro, shrink))
        return {target: SubnetLatency(by_space).extremes(genes) for target, by_space in tables_of(cfg, latency).items()}

    def prepare(self, ctx: RunContext, run: RunInputs, seeds: list[int]) -> None:
        ctx.log(f"[raynas] Once-for-All: training {len(seeds)} elastic supernet(s) by progressive shrinking")
        with ctx.phase("supernet"):
            states = {seed: train_elastic(ctx, run, seed) for seed in seeds}
        with ctx.phase("predictor"):
            started = {seed: replicas(run.cfg, seed, state) for seed, state in states.items()}
            self.weight_refs = {seed: ref for seed, (_, ref) in started.items()}  # the driver owns the weights while replicas live
            pools = {seed: pool for seed, (pool, _) in started.items()}
            tables = tables_of(run.cfg, run.latency)
            latencies = [SubnetLatency(by_space) for by_space in tables.values()]
            predictors = {seed: fit_predictor(ctx, run, seed=seed, pool=pools[seed], latencies=latencies) for seed in seeds}
        self.shared = OFAShared(pools, predictors, tables)

    def search(self, ctx: RunContext, run: RunInputs, scenarios: list[Scenario]) -> list[Finalist]:
        jobs = [Job.of(s, self.name) for s in scenarios]
        found = finalists(jobs, ctx.run_trials("evolution", jobs, build_evolution, shared=self.shared), finetune=run.cfg.ofa.finetune)
        samples = run.cfg.ofa.predictor_samples  # what the predictor stood on: the evolution's cost too
        return [dataclasses.replace(f, evaluations=(f.evaluations or 0) + samples) for f in found]

    def random_baseline(self, ctx: RunContext, run: RunInputs, found: list[Finalist]) -> list[Finalist]:
        jobs = [Job.of(scenario_of(f), RANDOM_WS, budget_evaluations=f.evaluations) for f in found]
        return finalists(jobs, ctx.run_trials("random-ws", jobs, build_random, shared=self.shared), finetune=run.cfg.ofa.finetune)

    def release(self) -> None:
        for replica in (r for pool in self.shared.replicas.values() for r in pool) if self.shared else ():
            ray.kill(replica)  # their CPU (and GPU) shares go back to retraining; Tune may still hold their handles

    def local_search(self, problem: LocalProblem, seed: int) -> EvolutionarySearch:
        """Progressive shrinking, predictor samples and the evolution here, at the space's own resolution
        (``problem.lut`` is the one table)."""
        cfg, compute, macro = problem.config, problem.compute or CPU, get_space(problem.space)
        cfg = dataclasses.replace(cfg, shrink=dataclasses.replace(cfg.shrink, resolutions=()))
        net = compute.module(
            ElasticSupernet(macro, problem.num_classes, min_depth=cfg.shrink.min_depth, resolutions=resolutions(macro, cfg.shrink))
        )
        with tempfile.TemporaryDirectory(prefix="raynas-ofa-") as phases:
            train_progressive(net, problem.train, cfg.shrink, seed=seed, checkpoint_dir=phases, compute=compute)
        scorer = SubnetScorer(
            net, problem.train, problem.val, calibration_batches=cfg.calibration_batches, eval_batches=cfg.eval_batches, compute=compute
        )
        latency = SubnetLatency({problem.space: problem.lut})
        predictor, *_ = collect_and_fit_predictor(scorer, problem.space, cfg, seed=seed, latencies=[latency])
        genes = SubnetGenes(macro, cfg.shrink.min_depth, resolutions(macro, cfg.shrink))
        return EvolutionarySearch(
            genes,
            latency,
            predictor,
            budget_ms=problem.budget_ms,
            cfg=cfg.evolution,
            seed=seed,
            evaluate=scorer.evaluate,
        )

    def retrain_payload(self) -> Any:
        return {seed: [ref] for seed, ref in getattr(self, "weight_refs", {}).items()}

    @staticmethod
    def initial_model(finalist: Finalist, payload: Any, *, cfg: ExperimentConfig, num_classes: int):
        """Fine-tuning (``ofa.finetune``): the subnet with its weights from that seed's elastic supernet."""
        macro = get_space(cfg.space)
        net = ElasticSupernet(macro, num_classes, min_depth=cfg.ofa.shrink.min_depth, resolutions=resolutions(macro, cfg.ofa.shrink))
        load_numpy_state(net, ray.get(payload[finalist.init_seed][0]))
        return net.extract(finalist.arch)


def tables_of(cfg: ExperimentConfig, latency: LatencyModels) -> dict[str, dict[str, LatencyTable]]:
    """Each target's table at every elastic resolution."""
    spaces = resolution_spaces(cfg.space, cfg.ofa.shrink)
    return {target: {space: latency.table(target, space) for space in spaces} for target in latency.targets}


def finalists(jobs: list[Job], results: dict[str, dict], *, finetune: bool) -> list[Finalist]:
    """Each job's pick; with ``finetune`` retrained from its seed's supernet weights."""
    picks = {j.key: results[j.key] for j in jobs}
    return [
        Finalist.found(
            j, Architecture.from_string(picks[j.key]["space"], picks[j.key]["arch"]), picks[j.key], init_seed=j.seed if finetune else None
        )
        for j in jobs
    ]


def train_elastic(ctx: RunContext, run: RunInputs, seed: int) -> dict:
    """Progressive shrinking on the largest node, the driver keeping each phase's checkpoint in the run
    directory as it comes; or on ``ray.workers_per_task`` data-parallel workers, whose Train run keeps
    them until the job ends and the driver copies them. Either way resumable whichever node trained."""
    cfg, directory = run.cfg, run.run_dir / "supernet" / f"ofa-s{seed}"
    if cfg.ray.workers_per_task > 1:
        stats, state = train_elastic_data_parallel(cfg, directory, seed=seed)
    else:
        cpus = cluster_cpus()
        task = train_elastic_supernet.options(num_cpus=cpus, num_gpus=cfg.ray.gpus_per_task)
        stats, state = run_elastic_training(
            task, directory, space=cfg.space, data=cfg.data, shrink=cfg.ofa.shrink, seed=seed, threads=cpus, compute_cfg=cfg.compute
        )
    ctx.log_metrics({f"ofa_{k}/s{seed}": v for k, v in stats.items()})
    return state


def replicas(cfg: ExperimentConfig, seed: int, state: dict) -> tuple[list, Any]:
    return start_replicas(state, cfg.space, cfg.ofa, data=cfg.data, seed=seed, compute_cfg=cfg.compute)


def fit_predictor(ctx: RunContext, run: RunInputs, *, seed: int, pool: list, latencies: list) -> dict:
    """Accuracy predictor from replica evaluations (stratified over the targets' ``latencies``); saved
    with its held-out RMSE and logged to MLflow."""
    predictor, report, _, _ = collect_and_fit_predictor(ReplicaPool(pool), run.cfg.space, run.cfg.ofa, seed=seed, latencies=latencies)
    directory = predictor.save(run.run_dir / "predictor" / f"s{seed}", report)
    ctx.log_metrics({f"predictor_{k}/s{seed}": float(v) for k, v in report.items()})
    for path in sorted(directory.iterdir()):
        ctx.add_artifact(path, folder=f"predictor/s{seed}")
    ctx.log(
        f"[raynas] accuracy predictor (seed {seed}): held-out RMSE {report['rmse_heldout']:.4f}, "
        f"predicting the mean {report['rmse_heldout_mean_baseline']:.4f}"
    )
    return predictor_payload(predictor)


def _subnets(job: Job, shared: OFAShared, cfg: ExperimentConfig) -> tuple[SubnetGenes, SubnetLatency, ReplicaPool]:
    macro = get_space(cfg.space)
    genes = SubnetGenes(macro, cfg.ofa.shrink.min_depth, resolutions(macro, cfg.ofa.shrink))
    return genes, SubnetLatency(shared.tables[job.target]), ReplicaPool(shared.replicas[job.seed])


def build_evolution(job: Job, shared: OFAShared, cfg: ExperimentConfig) -> EvolutionarySearch:
    """One evolutionary search on the seed's predictor; the seed's replicas re-check the top candidates."""
    genes, latency, pool = _subnets(job, shared, cfg)
    payload = shared.predictors[job.seed]
    model = AccuracyPredictor(ArchEncoder(**payload["encoder"]))
    load_numpy_state(model, payload["state"])
    return EvolutionarySearch(genes, latency, model, budget_ms=job.budget_ms, cfg=cfg.ofa.evolution, seed=job.seed, evaluate=pool.evaluate)


def build_random(job: Job, shared: OFAShared, cfg: ExperimentConfig) -> RandomSubnetSearch:
    genes, latency, pool = _subnets(job, shared, cfg)
    return RandomSubnetSearch(
        genes,
        latency,
        budget_ms=job.budget_ms,
        seed=job.seed,
        evaluate=pool.evaluate,
        evaluations=job.budget_evaluations,
        batch=4 * len(pool.replicas),
    )
