"""Training throughput of raynas's phases against a bare PyTorch loop, side by side in one run.

On the device it finds (CUDA when torch sees one, else the CPU), at one batch size, in
interleaved rounds so that a busy machine slows every mode alike:
  (a) bare: a plain training loop of the standalone largest path (all k7e6) over batches already
      in memory on the device -- the floor no framework can beat;
  (b) retrain: raynas's ``train_epoch`` of the same network through its own data pipeline
      (``load_splits`` -> loaders on the device, augmentation included);
  (c) search: ProxylessNAS iterations through the pipeline (``ProxylessSearch.step``), each a
      weight step on a training batch and a two-path architecture step on a validation batch, in
      the worst case of the supernet_cost benchmark (the largest path active, the second largest
      the other path), so the work per image matches (a); also as the search runs (paths sampled
      from alpha, often smaller), reported beside it;
  (d) ofa: progressive-shrinking steps of the elastic supernet (sampled subnet plus distillation);
and the loader alone. Images/s count the images a mode trains on: the training batch, plus the
validation batch of a search iteration (both pass through the network). Peak memory
of a search iteration against a bare step is CUDA's peak allocation on a GPU, else the bytes
autograd saves for backward. Prints a table; the last line is one JSON object.

The results page goes to ``<out>/throughput/`` (pages.py: results.json, results.csv, README.md), ``--out``
being the repo's ``benchmarks/`` by default. A ``--smoke-test`` run writes no page unless ``--out`` is
given, so that a quick check never overwrites the real page.

    python experiments/bench/throughput.py [--data cifar10] [--batch 128] [--precision bf16] [--out DIR] [--smoke-test]

``--workers N`` measures data-parallel scaling instead: images/s of (b) retraining and (c) worst-case
search iterations with 1 and with N processes of one thread each (gloo; the process group Ray Train
makes for a ``ray.workers_per_trial: N`` trial), at the same global batch, and the scaling efficiency
(N-process rate over N x the 1-process rate). Page: ``<out>/throughput_workers/``.
"""

from __future__ import annotations

import argparse
import itertools
import json
import os
import statistics
import tempfile
import time
from pathlib import Path

import torch
import torch.distributed as dist
import torch.multiprocessing as mp
from pages import write_page  # this folder: the benchmark page writer
from supernet_cost import LARGEST, flat_table, worst_pairs  # this folder: the same unit table and worst-case paths
from torch import nn

from raynas.compute import Compute, ComputeConfig
from raynas.data.datasets import DataConfig, load_splits
from raynas.data.loading import endless
from raynas.data.sources import DatasetError, data_folder
from raynas.search.proxyless import ProxylessSearch, SearchConfig
from raynas.space.architecture import Architecture
from raynas.space.macro import get_space
from raynas.space.network import ChildNetwork
from raynas.supernet.elastic import ElasticSupernet
from raynas.supernet.memory import cuda_peak_bytes, saved_activation_bytes
from raynas.supernet.progressive import ShrinkConfig, phase_choices, shrinking_step
from raynas.supernet.supernet import Supernet
from raynas.training import sgd, train_epoch


def data_config(name: str, batch: int, limit: int | None) -> tuple[DataConfig, str]:
    """The benchmark's dataset and the space that fits it."""
    if name == "cifar10":
        try:
            root = data_folder("cifar10")
        except DatasetError as exc:
            raise SystemExit(f"--data cifar10: {exc}") from None
        return DataConfig(dataset="cifar10", root=str(root), batch_size=batch, limit=limit, eval_limit=2000), "cifar"
    return DataConfig(batch_size=batch, limit=limit), "mnist-small"


def largest(macro) -> Architecture:
    return Architecture(macro.name, (LARGEST,) * len(macro.layers()))


class Modes:
    """Each mode runs ``n`` training steps when called; all share the data, device and numerics."""

    def __init__(self, splits, compute: Compute, batch: int, space: str) -> None:
        self.compute, self.macro, self.batch = compute, get_space(space), batch
        self.train, self.val, _ = splits.loaders(batch, 0, compute.device)
        self.stream, self.val_stream = endless(self.train), endless(self.val)
        self.cached = [compute.batch(x.clone(), y.clone()) for x, y in itertools.islice(endless(self.train), 8)]
        self.bare_net, self.bare_opt = self._net()
        self.retrain_net, self.retrain_opt = self._net()
        self.search = self._search(splits.num_classes)
        self.ofa = self._ofa(splits.num_classes)

    def _net(self):
        net = self.compute.module(ChildNetwork(largest(self.macro), 10)).train()
        return net, sgd(net.parameters(), 0.01, momentum=0.9, weight_decay=4e-5)

    def _search(self, classes: int) -> ProxylessSearch:
        supernet = self.compute.module(Supernet(self.macro, classes))
        table = flat_table(self.macro)
        return ProxylessSearch(supernet, table, 0.8 * table.latency_range(self.macro)[1], cfg=SearchConfig(), seed=0, compute=self.compute)

    def _ofa(self, classes: int):
        net = self.compute.module(ElasticSupernet(self.macro, classes))
        teacher = self.compute.module(net.extract(net.largest())).eval()
        optimizer = sgd(net.parameters(), 0.01, momentum=0.9, weight_decay=4e-5)
        return net, teacher, optimizer, phase_choices(net, "width"), torch.Generator().manual_seed(0)

    def bare(self, n: int) -> None:
        ce = nn.CrossEntropyLoss()
        for i in range(n):
            x, y = self.cached[i % len(self.cached)]
            self.bare_opt.zero_grad(set_to_none=True)
            with self.compute.autocast():
                loss = ce(self.bare_net(x), y)
            self.compute.step(loss, self.bare_opt)

    def retrain(self, n: int) -> None:
        train_epoch(
            self.retrain_net, itertools.islice(self.stream, n), self.retrain_opt, loss_fn=nn.CrossEntropyLoss(), compute=self.compute
        )

    def search_iterations(self, n: int) -> None:
        """Worst case: largest path in the weight step, (largest, second largest) in the architecture step."""
        arch, pairs = largest(self.macro), worst_pairs(self.search)
        for x, y in itertools.islice(self.stream, n):
            self.search.step(*self.compute.batch(x, y), self.val_stream, arch=arch, pairs=pairs)

    def sampled_search_iterations(self, n: int) -> None:
        for x, y in itertools.islice(self.stream, n):
            self.search.step(*self.compute.batch(x, y), self.val_stream)

    def ofa_steps(self, n: int) -> None:
        net, teacher, opt, choices, gen = self.ofa
        net.train()
        for x, y in itertools.islice(self.stream, n):
            shrinking_step(
                net,
                *self.compute.batch(x, y),
                gen=gen,
                choices=choices,
                teacher=teacher,
                cfg=ShrinkConfig(),
                optimizer=opt,
                compute=self.compute,
            )

    def loader(self, n: int) -> None:
        for x, _ in itertools.islice(self.stream, n):
            x.sum()  # touch the batch, as training would


def timed(fn, n: int, compute: Compute) -> float:
    compute.synchronize()
    start = time.perf_counter()
    fn(n)
    compute.synchronize()
    return time.perf_counter() - start


def measure(modes: Modes, steps: int, rounds: int) -> dict[str, float]:
    """Median images/s of each mode over interleaved rounds (one warm-up round first)."""
    fns = {
        "bare": modes.bare,
        "retrain": modes.retrain,
        "search": modes.search_iterations,
        "search_sampled": modes.sampled_search_iterations,
        "ofa": modes.ofa_steps,
        "loader": modes.loader,
    }
    images_per_step = {"search": 2, "search_sampled": 2}  # a training and a validation batch
    rates = {k: [] for k in fns}
    for r in range(rounds + 1):
        for name, fn in fns.items():
            n = steps * (10 if name == "loader" else 1)
            seconds = timed(fn, n, modes.compute)
            if r:
                rates[name].append(n * modes.batch * images_per_step.get(name, 1) / seconds)
    return {k: statistics.median(v) for k, v in rates.items()}


def peak_memory(modes: Modes) -> tuple[int, int, str]:
    """Memory of one bare step and one search iteration (largest path active in both)."""
    x, y = modes.cached[0]
    search, arch = modes.search, largest(modes.macro)
    pairs = worst_pairs(search)

    def search_step() -> None:
        search.weight_step(x, y, arch)
        search.arch_step(x, y, pairs)

    if modes.compute.device.type == "cuda":
        return (
            cuda_peak_bytes(lambda: modes.bare(1), modes.compute.device),
            cuda_peak_bytes(search_step, modes.compute.device),
            "CUDA peak allocated",
        )
    return (
        saved_activation_bytes(lambda: modes.bare(1)),
        max(saved_activation_bytes(lambda: search.weight_step(x, y, arch)), saved_activation_bytes(lambda: search.arch_step(x, y, pairs))),
        "bytes saved for backward",
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", choices=("mnist", "cifar10"), default="mnist")
    parser.add_argument("--batch", type=int, default=None, help="default 64 on the CPU, 256 on CUDA")
    parser.add_argument("--device", default="auto", choices=("auto", "cpu", "cuda"))
    parser.add_argument("--precision", default="fp32", choices=("fp32", "bf16", "fp16"))
    parser.add_argument(
        "--channels-last",
        action=argparse.BooleanOptionalAction,
        default=None,
        help="NHWC models and batches (default: raynas's, on for the CPU)",
    )
    parser.add_argument("--steps", type=int, default=20, help="training steps per mode and round")
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument(
        "--out", type=Path, default=None, help="page under OUT/throughput (default: the repo's benchmarks/; no page in --smoke-test)"
    )
    parser.add_argument("--smoke-test", action="store_true", help="2 steps x 2 rounds, batch 16")
    parser.add_argument("--workers", type=int, default=1, help="above 1: data-parallel scaling of 1 against N processes (CPU, gloo)")
    args = parser.parse_args()
    if args.smoke_test:
        args.steps, args.rounds, args.batch = 2, 2, args.batch or 16
    if args.workers > 1:
        scaling(args)
        return
    compute = Compute.from_config(ComputeConfig(device=args.device, precision=args.precision, channels_last=args.channels_last))
    batch = args.batch or (256 if compute.device.type == "cuda" else 64)
    data, space = data_config(args.data, batch, 2000 if args.smoke_test else None)
    torch.manual_seed(0)
    start = time.perf_counter()
    modes = Modes(load_splits(data), compute, batch, space)
    setup = time.perf_counter() - start
    rates = measure(modes, args.steps, args.rounds)
    bare_mem, search_mem, mem_kind = peak_memory(modes)
    report(rates, bare_mem, search_mem, mem_kind, args, compute, batch, space, setup)


LABELS = {
    "bare": "(a) bare loop, tensors on device",
    "retrain": "(b) raynas retraining",
    "search": "(c) search iteration, largest path",
    "search_sampled": "    search iteration, sampled paths",
    "ofa": "(d) OFA shrinking step",
    "loader": "loader alone",
}
NOTES = """Images/s of each mode at one batch size, medians over interleaved rounds (one warm-up round first):
(a) a bare PyTorch loop of the largest path over batches already on the device; (b) raynas's retraining through
its data pipeline; (c) ProxylessNAS search iterations (the training and the validation batch of each counted),
worst case (largest path) and as sampled; (d) OFA progressive-shrinking steps; and the loader alone.
``*_vs_bare`` are ratios to (a); ``peak_mem_ratio_two_path`` is a search iteration's peak memory over a bare step's."""


def report(rates, bare_mem, search_mem, mem_kind, args, compute, batch, space, setup) -> None:
    device = torch.cuda.get_device_name(compute.device) if compute.device.type == "cuda" else f"cpu ({torch.get_num_threads()} threads)"
    print(
        f"data {args.data}, space {space}, batch {batch}, device {device}, "
        f"{args.precision}{', channels_last' if compute.channels_last else ''}; "
        f"{args.rounds} rounds x {args.steps} steps; data loaded in {setup:.1f} s"
    )
    print(f"{'mode':38s} {'images/s':>10s} {'vs bare':>8s}")
    for name, label in LABELS.items():
        print(f"{label:38s} {rates[name]:10.1f} {rates[name] / rates['bare']:8.2f}")
    print("(c) counts the training and the validation batch of each iteration; (d) trains sampled subnets with distillation")
    print(f"memory ({mem_kind}): bare step {bare_mem / 2**20:.2f} MiB, two-path search iteration {search_mem / 2**20:.2f} MiB")
    headline = {
        "device": device,
        "retrain_vs_bare": round(rates["retrain"] / rates["bare"], 3),
        "search_vs_bare": round(rates["search"] / rates["bare"], 3),
        "search_sampled_vs_bare": round(rates["search_sampled"] / rates["bare"], 3),
        "ofa_vs_bare": round(rates["ofa"] / rates["bare"], 3),
        "loader_images_per_s": round(rates["loader"], 1),
        "loader_vs_retrain": round(rates["loader"] / rates["retrain"], 2),
        "peak_mem_ratio_two_path": round(search_mem / bare_mem, 3),
        "images_per_s": {k: round(v, 1) for k, v in rates.items()},
        "batch": batch,
        "data": args.data,
        "precision": args.precision,
        "space": space,
        "channels_last": compute.channels_last,
        "steps": args.steps,
        "rounds": args.rounds,
        "setup_s": round(setup, 1),
        "memory": {"kind": mem_kind, "bare_step_mib": round(bare_mem / 2**20, 2), "search_iteration_mib": round(search_mem / 2**20, 2)},
    }
    rows = [
        {"mode": name, "label": label.strip(), "images_per_s": round(rates[name], 1), "vs_bare": round(rates[name] / rates["bare"], 3)}
        for name, label in LABELS.items()
    ]
    if args.out is not None or not args.smoke_test:
        title = f"Training throughput against a bare PyTorch loop ({args.data}, batch {batch}, {device})"
        folder = write_page("throughput", summary=headline, rows=rows, title=title, notes=NOTES, root=args.out)
        print(f"page: {folder / 'README.md'}")
    print(json.dumps(headline))


def _scaling_worker(rank: int, world: int, init: str, out: str, setting: dict) -> None:
    """One process of a data-parallel group (one thread): images/s of retraining and of worst-case
    search iterations at the global batch, timed between barriers (the slowest rank sets the pace)."""
    torch.set_num_threads(1)
    if world > 1:
        dist.init_process_group("gloo", init_method=init, rank=rank, world_size=world)
    barrier = dist.barrier if world > 1 else (lambda: None)
    compute = Compute.from_config(ComputeConfig(device="cpu", batch_norm=setting["batch_norm"]))  # joins the group (raynas/parallel.py)
    torch.manual_seed(0)
    data, _ = data_config(setting["data"], setting["batch"], setting["limit"])
    modes = Modes(load_splits(data), compute, setting["batch"], setting["space"])
    rates = {}
    for name, run, images in (("retrain", modes.retrain, 1), ("search", modes.search_iterations, 2)):
        run(2)  # warm-up
        times = []
        for _ in range(setting["rounds"]):
            barrier()
            start = time.perf_counter()
            run(setting["steps"])
            barrier()
            times.append(time.perf_counter() - start)
        rates[name] = images * setting["batch"] * setting["steps"] / statistics.median(times)
    if rank == 0:
        Path(out).write_text(json.dumps(rates))
    if world > 1:
        dist.destroy_process_group()


def _group_rates(world: int, setting: dict) -> dict[str, float]:
    with tempfile.TemporaryDirectory() as tmp:
        out = os.path.join(tmp, "rates.json")
        mp.spawn(_scaling_worker, args=(world, f"file://{os.path.join(tmp, 'rendezvous')}", out, setting), nprocs=world, join=True)
        return json.loads(Path(out).read_text())


MODES = (("retrain", "(b) retraining"), ("search", "(c) search iteration, largest path"))


def scaling(args) -> None:
    """1 process against ``args.workers`` with global and with local BatchNorm, in the order
    1, N global, N local, N local, N global, 1 (a drifting machine hits every setting alike)."""
    batch = args.batch or 64
    _, space = data_config(args.data, batch, None)
    setting = {"data": args.data, "batch": batch, "space": space, "steps": args.steps, "rounds": args.rounds}
    setting["limit"] = 2000 if args.smoke_test else None
    n = args.workers
    order = [(1, "global"), (n, "global"), (n, "local"), (n, "local"), (n, "global"), (1, "global")]
    runs: dict[tuple[int, str], list[dict]] = {}
    for world, bn in order:
        runs.setdefault((world, bn), []).append(_group_rates(world, setting | {"batch_norm": bn}))
    rates = {key: {m: statistics.mean(r[m] for r in rs) for m, _ in MODES} for key, rs in runs.items()}
    single = rates[(1, "global")]
    efficiency = {bn: {m: rates[(n, bn)][m] / (n * single[m]) for m, _ in MODES} for bn in ("global", "local")}
    print(f"data {args.data}, space {space}, global batch {batch}, CPU, one thread per process; {args.rounds} rounds x {args.steps} steps")
    print(f"{'mode':34s} {'1 process':>10s} {f'{n}, global BN':>14s} {'eff.':>6s} {f'{n}, local BN':>14s} {'eff.':>6s}")
    for m, label in MODES:
        g, loc = rates[(n, "global")][m], rates[(n, "local")][m]
        print(f"{label:34s} {single[m]:10.1f} {g:14.1f} {efficiency['global'][m]:6.2f} {loc:14.1f} {efficiency['local'][m]:6.2f}")
    headline = {
        "workers": n,
        "scaling_efficiency": round(efficiency["global"]["search"], 3),
        "scaling_efficiency_retrain": round(efficiency["global"]["retrain"], 3),
        "scaling_efficiency_local_bn": round(efficiency["local"]["search"], 3),
        "scaling_efficiency_retrain_local_bn": round(efficiency["local"]["retrain"], 3),
        "images_per_s": {f"{w} {bn}": {m: round(v, 1) for m, v in r.items()} for (w, bn), r in rates.items()},
        "cpus": os.cpu_count(),
    } | {k: setting[k] for k in ("data", "batch", "space", "steps", "rounds")}
    if args.out is not None or not args.smoke_test:
        rows = [{"mode": m, "workers": w, "batch_norm": bn, "images_per_s": round(r[m], 1)} for (w, bn), r in rates.items() for m in r]
        title = f"Data-parallel scaling, {n} workers ({args.data}, global batch {batch}, CPU)"
        folder = write_page("throughput_workers", summary=headline, rows=rows, title=title, notes=SCALING_NOTES, root=args.out)
        print(f"page: {folder / 'README.md'}")
    print(json.dumps(headline))


SCALING_NOTES = (
    "Images/s at one global batch with 1 and N processes of one thread each (gloo, as a ray.workers_per_trial: N trial), "
    "timed between barriers; efficiency = N-process rate / (N x 1-process rate). `scaling_efficiency` is the default "
    "(compute.batch_norm: global, N workers compute what one computes: one collective per BatchNorm forward and one backward); "
    "`*_local_bn` is compute.batch_norm: local (each worker's own statistics, as plain DDP). Runs in the order 1, N global, "
    "N local, N local, N global, 1; rates are means of the two runs."
)

if __name__ == "__main__":
    main()
