"""Training speed in NHWC (channels_last) against NCHW, side by side in one run: why the CPU default is NHWC.

For MobileNetV2-style references of ``cifar-small`` at three widths, a kernel-7 architecture and the
ProxylessNAS supernet (a path sampled per step), times raynas's own training step
(``raynas.training.train_step`` through ``Compute``) in both memory formats, in interleaved rounds so
a busy machine slows both alike, on one thread as every Ray trial runs (``--threads``). Batches are
random CIFAR-shaped tensors: the layout's cost does not depend on the pixels. Prints images/s per
network and format and their ratio; the last line is one JSON object.

    python experiments/bench/memory_format.py [--device cuda] [--batch 64] [--smoke-test]
"""

from __future__ import annotations

import argparse
import json
import statistics
import time

import torch
from torch import nn

from raynas.compute import Compute, select_device
from raynas.space.architecture import Architecture
from raynas.space.macro import get_space
from raynas.space.network import ChildNetwork
from raynas.space.reference import mobilenet_v2_like
from raynas.supernet.supernet import Supernet
from raynas.training import sgd, train_step

SPACE = "cifar-small"
KERNEL_7 = "k7e3|k7e3|k3e3|k5e3|k5e3|k7e3|k7e3|k7e3"  # a ProxylessNAS pick for ort-cpu-1t in the CIFAR-10 sweep


def networks() -> dict[str, callable]:
    """Fresh networks by name (built anew for each format so neither shares the other's tensors)."""
    nets = {f"MobileNetV2-style x{w:g}": (lambda w=w: ChildNetwork(mobilenet_v2_like(SPACE, w), 10)) for w in (0.25, 0.5, 1.0)}
    nets["kernel-7 architecture"] = lambda: ChildNetwork(Architecture(SPACE, tuple(KERNEL_7.split("|"))), 10)
    nets["supernet, sampled path"] = lambda: Supernet(get_space(SPACE), 10)
    return nets


class Trainer:
    """One network in one memory format, ready to take training steps."""

    def __init__(self, make, compute: Compute, batch: int) -> None:
        self.model, self.compute = compute.module(make()), compute
        self.optimizer, self.loss_fn = sgd(self.model.parameters(), 0.05, momentum=0.9, weight_decay=4e-5), nn.CrossEntropyLoss()
        self.x, self.y = compute.batch(torch.randn(batch, 3, 32, 32), torch.randint(0, 10, (batch,)))
        self.generator = torch.Generator().manual_seed(0)
        self.model.train()

    def steps(self, n: int) -> float:
        """Seconds for ``n`` training steps."""
        self.compute.synchronize()
        start = time.perf_counter()
        for _ in range(n):
            if isinstance(self.model, Supernet):
                self.model.sample_single(self.generator, uniform=True)
            train_step(self.model, self.optimizer, self.loss_fn, x=self.x, y=self.y, compute=self.compute)
        self.compute.synchronize()
        return time.perf_counter() - start


def measure(device: torch.device, batch: int, steps: int, rounds: int) -> dict[str, dict[str, float]]:
    """Median images/s per network and format over interleaved rounds (one warm-up round first)."""
    out = {}
    for name, make in networks().items():
        trainers = {fmt: Trainer(make, Compute(device, channels_last=fmt == "nhwc"), batch) for fmt in ("nchw", "nhwc")}
        rates = {fmt: [] for fmt in trainers}
        for r in range(rounds + 1):
            for fmt, trainer in trainers.items():
                seconds = trainer.steps(steps)
                if r:
                    rates[fmt].append(steps * batch / seconds)
        out[name] = {fmt: statistics.median(v) for fmt, v in rates.items()}
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", default="auto", choices=("auto", "cpu", "cuda"))
    parser.add_argument("--batch", type=int, default=64)
    parser.add_argument("--threads", type=int, default=1, help="torch intra-op threads (Ray trials use ray.cpus_per_trial, 1 by default)")
    parser.add_argument("--steps", type=int, default=15, help="training steps per network, format and round")
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--smoke-test", action="store_true", help="2 steps x 1 round, batch 8")
    args = parser.parse_args()
    if args.smoke_test:
        args.batch, args.steps, args.rounds = 8, 2, 1
    torch.set_num_threads(args.threads)
    device = select_device(args.device)
    rates = measure(device, args.batch, steps=args.steps, rounds=args.rounds)
    where = torch.cuda.get_device_name(device) if device.type == "cuda" else f"cpu ({args.threads} thread{'s' * (args.threads > 1)})"
    print(f"{SPACE}, batch {args.batch}, {where}, fp32; {args.rounds} rounds x {args.steps} steps; training images/s")
    print(f"{'network':<28}{'NCHW':>10}{'NHWC':>10}{'NHWC/NCHW':>11}")
    ratios = {}
    for name, r in rates.items():
        ratios[name] = r["nhwc"] / r["nchw"]
        print(f"{name:<28}{r['nchw']:>10.1f}{r['nhwc']:>10.1f}{ratios[name]:>11.2f}")
    print(
        json.dumps(
            {
                "device": where,
                "batch": args.batch,
                "nhwc_vs_nchw": {k: round(v, 3) for k, v in ratios.items()},
                "min_ratio": round(min(ratios.values()), 3),
                "max_ratio": round(max(ratios.values()), 3),
                "smoke_test": args.smoke_test,
            }
        )
    )


if __name__ == "__main__":
    main()
