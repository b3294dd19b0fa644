"""Memory and time of a search step versus training one compact network (ProxylessNAS's claim).

In one run, for one space and batch, measured side by side in interleaved rounds:
  (a) the supernet in ``two`` mode, worst case: a weight step on the largest path, and an
      architecture step where in every layer the largest op is the active path and the second
      largest the other sampled path; one search iteration is one of each, so the headline time
      is their mean and the headline memory their maximum;
  (b) a training step of the standalone network of the largest single path (all k7e6);
  (c) an architecture step in ``full`` mode (every path with its graph), for 4, 6 and 7 candidates;
  (d) (a) on the weight-entangled supernet (``supernet.sharing: entangled``: every candidate slices
      the layer's largest MBConv, through OFA's kernel transforms).
Memory is CUDA's peak allocation on a GPU, else the bytes autograd saves for backward (a tracked
allocation measure). Prints a table; the last line is one JSON object with the headline ratios.

    python experiments/bench/supernet_cost.py [--space cifar] [--batch 32] [--smoke-test] [--page DIR]

Writes its page to benchmarks/supernet_cost/ (pages.py; none in --smoke-test unless --page is given).
"""

from __future__ import annotations

import argparse
import json
import statistics
import time

import torch
from pages import add_page_argument, page_root, write_page  # this folder: the benchmark page writer
from torch import nn

from raynas.compute import Compute
from raynas.hardware.lut import LatencyTable
from raynas.search.proxyless import ProxylessSearch, SearchConfig
from raynas.space.architecture import Architecture
from raynas.space.macro import get_space
from raynas.space.network import ChildNetwork
from raynas.space.ops import SKIP
from raynas.supernet.memory import cuda_peak_bytes, saved_activation_bytes
from raynas.supernet.supernet import Supernet
from raynas.training import sgd

TITLE = "Supernet cost: a search step against training one network"
NOTES = (
    "One search iteration of ProxylessNAS (two-path binarized gates, worst case: the largest op active) and of the "
    "weight-entangled supernet, against a training step of the standalone largest network, measured side by side "
    "in interleaved rounds; ratios are against row b. The goal for the entangled supernet: memory <= 1.3x, time <= 1.5x."
)
CANDIDATE_SETS = {4: ("k3e3", "k5e3", "k7e3", "k7e6"), 6: ("k3e3", "k3e6", "k5e3", "k5e6", "k7e3", "k7e6")}
LARGEST, SECOND = "k7e6", "k5e6"


def flat_table(macro) -> LatencyTable:
    """Unit latencies: the benchmark measures training cost, the table only feeds the loss."""
    entries = {(s.key, op): 1.0 for s in macro.layers() for op in s.choices if op != SKIP}
    return LatencyTable("bench", macro.name, macro.space_hash(), 1, entries, {"stem": 1.0})


def search_for(macro, classes: int, ops, mode: str, device, *, sharing: str = "separate") -> ProxylessSearch:
    supernet = Supernet(macro, classes, ops, sharing=sharing).to(device)
    table = flat_table(macro)
    budget = 0.8 * table.latency_range(macro)[1]
    return ProxylessSearch(supernet, table, budget, cfg=SearchConfig(binarization=mode), seed=0, compute=Compute(device))


def worst_pairs(search: ProxylessSearch) -> list[tuple[int, int]]:
    return [(layer.choices.index(LARGEST), layer.choices.index(SECOND)) for layer in search.supernet.layers]


def standalone_step(macro, classes: int, device):
    net = ChildNetwork(Architecture(macro.name, (LARGEST,) * len(macro.layers())), classes).to(device).train()
    opt, ce = sgd(net.parameters(), 0.01, momentum=0.9, weight_decay=0.0), nn.CrossEntropyLoss()

    def step(x, y):
        opt.zero_grad(set_to_none=True)
        ce(net(x), y).backward()
        opt.step()

    return step


def measure(steps: dict, x, y, device, warmup: int, repeats: int) -> dict[str, tuple[int, float]]:
    """Peak/saved bytes (max over repeats) and median step seconds, interleaved across steps."""
    sync = (lambda: torch.cuda.synchronize(device)) if device.type == "cuda" else (lambda: None)
    mem = {k: 0 for k in steps}
    times = {k: [] for k in steps}
    for name, step in steps.items():
        for _ in range(warmup):
            step(x, y)
    for _ in range(repeats):
        for name, step in steps.items():
            run = lambda: step(x, y)  # noqa: E731
            mem[name] = max(mem[name], cuda_peak_bytes(run, device) if device.type == "cuda" else saved_activation_bytes(run))
            sync()
            start = time.perf_counter()
            run()
            sync()
            times[name].append(time.perf_counter() - start)
    return {k: (mem[k], statistics.median(times[k])) for k in steps}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--space", default="cifar")
    parser.add_argument("--batch", type=int, default=32)
    parser.add_argument("--repeats", type=int, default=7)
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--smoke-test", action="store_true", help="tiny space and batch, 2 repeats")
    add_page_argument(parser)
    args = parser.parse_args()
    if args.smoke_test:
        args.space, args.batch, args.repeats = "mnist-small", 8, 2
    device, macro, classes = torch.device(args.device), get_space(args.space), 10
    torch.manual_seed(0)
    x = torch.randn(args.batch, macro.in_channels, macro.input_size, macro.input_size, device=device)
    y = torch.randint(0, classes, (args.batch,), device=device)
    two = search_for(macro, classes, None, "two", device)
    entangled = search_for(macro, classes, None, "two", device, sharing="entangled")
    pairs = worst_pairs(two)
    largest = Architecture(macro.name, (LARGEST,) * len(macro.layers()))
    steps = {
        "b: standalone largest path": standalone_step(macro, classes, device),
        "a: two-path weight step": lambda x, y: two.weight_step(x, y, largest),
        "a: two-path architecture step": lambda x, y: two.arch_step(x, y, pairs),
        "d: entangled weight step": lambda x, y: entangled.weight_step(x, y, largest),
        "d: entangled architecture step": lambda x, y: entangled.arch_step(x, y, pairs),
    }
    for n, ops in ((4, CANDIDATE_SETS[4]), (6, CANDIDATE_SETS[6]), (7, None)):
        full = search_for(macro, classes, ops, "full", device)
        steps[f"c: supernet full, {n} candidates"] = full.arch_step
    results = measure(steps, x, y, device=device, warmup=1, repeats=args.repeats)
    report(results, args, device, macro)


def report(results: dict, args, device, macro) -> None:
    base_mem, base_time = results["b: standalone largest path"]
    kind = "CUDA peak allocated" if device.type == "cuda" else "bytes saved for backward"
    print(f"space {macro.name} ({len(macro.layers())} searchable layers), batch {args.batch}, device {device}, memory = {kind}")
    print(f"{'step':34s} {'memory MiB':>10s} {'time ms':>9s} {'mem / b':>8s} {'time / b':>9s}")
    for name, (mem, sec) in results.items():
        print(f"{name:34s} {mem / 2**20:10.2f} {sec * 1e3:9.2f} {mem / base_mem:8.2f} {sec / base_time:9.2f}")
    two = [results["a: two-path weight step"], results["a: two-path architecture step"]]
    two_mem, two_time = max(m for m, _ in two), statistics.mean(t for _, t in two)
    full_mem = results["c: supernet full, 7 candidates"][0]
    tied = [results["d: entangled weight step"], results["d: entangled architecture step"]]
    tied_mem, tied_time = max(m for m, _ in tied), statistics.mean(t for _, t in tied)
    headline = {
                "memory_ratio_two": round(two_mem / base_mem, 3),
                "time_ratio_two": round(two_time / base_time, 3),
                "memory_ratio_full": round(full_mem / base_mem, 3),
                "memory_ratio_entangled": round(tied_mem / base_mem, 3),
                "time_ratio_entangled": round(tied_time / base_time, 3),
                "memory_ratio_full_by_candidates": {
                    n: round(results[f"c: supernet full, {n} candidates"][0] / base_mem, 3) for n in (4, 6, 7)
                },
                "candidates": 7,
                "device": str(device) if device.type == "cpu" else torch.cuda.get_device_name(device),
                "memory_measure": kind,
                "space": macro.name,
                "batch": args.batch,
                "repeats": args.repeats,
    }  # fmt: skip
    root = page_root(args.page, args.smoke_test)
    if root is not None:
        rows = [
            {"step": name, "memory_mib": round(mem / 2**20, 3), "time_ms": round(sec * 1e3, 3),
             "memory_ratio": round(mem / base_mem, 3), "time_ratio": round(sec / base_time, 3)}
            for name, (mem, sec) in results.items()
        ]  # fmt: skip
        folder = write_page("supernet_cost", summary=headline, rows=rows, title=TITLE, notes=NOTES, root=root)
        print(f"page: {folder / 'README.md'}")
    print(json.dumps(headline))


if __name__ == "__main__":
    main()
