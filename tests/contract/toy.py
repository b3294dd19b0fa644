"""A toy search problem with a known answer: a two-layer chain space (9 architectures), a synthetic
latency table, a learnable synthetic task, and every architecture's accuracy under a budget by enumeration."""

from __future__ import annotations

import functools
import itertools

import numpy as np
import torch
from torch.utils.data import DataLoader, TensorDataset

from raynas.hardware.lut import LatencyTable
from raynas.space.architecture import Architecture
from raynas.space.macro import SPACES, MacroConfig, Stage, register_space
from raynas.space.network import ChildNetwork
from raynas.space.ops import SKIP, parse_mbconv
from raynas.training import evaluate, sgd

TOY = MacroConfig(
    name="toy-contract",
    input_size=16,
    in_channels=1,
    stem_channels=8,
    stem_stride=2,
    stages=(Stage(8, 2, 1),),
    head_channels=32,
    kernels=(3, 5),
    expansions=(1, 3),
)
if TOY.name not in SPACES:
    register_space(TOY)
CLASSES = 4


def table() -> LatencyTable:
    """An op costs kernel * expansion * 0.01 ms; the stem and head 0.1 ms."""
    entries = {(s.key, op): 0.01 * np.prod(parse_mbconv(op)) for s in TOY.layers() for op in s.choices if op != SKIP}
    return LatencyTable("toy", TOY.name, TOY.space_hash(), 1, {k: float(v) for k, v in entries.items()}, {"stem": 0.1, "head": 0.1})


def loaders(seed: int = 0, n: int = 512) -> tuple[DataLoader, DataLoader]:
    """Class = which quadrant holds a bright blob, under noise: learnable, harder for small receptive fields."""
    gen = torch.Generator().manual_seed(1234)
    y = torch.randint(0, CLASSES, (2 * n,), generator=gen)
    x = 0.8 * torch.randn(2 * n, 1, 16, 16, generator=gen)
    for i, c in enumerate(y.tolist()):
        r, q = divmod(c, 2)
        x[i, 0, 8 * r + 2 : 8 * r + 6, 8 * q + 2 : 8 * q + 6] += 1.0
    train, val = TensorDataset(x[:n], y[:n]), TensorDataset(x[n:], y[n:])
    return (
        DataLoader(train, batch_size=32, shuffle=True, drop_last=True, generator=torch.Generator().manual_seed(seed)),
        DataLoader(val, batch_size=64, shuffle=True, generator=torch.Generator().manual_seed(seed + 1)),
    )


def architectures() -> list[Architecture]:
    return [Architecture(TOY.name, ops) for ops in itertools.product(*(s.choices for s in TOY.layers()))]


@functools.lru_cache(maxsize=4)
def ground_truth(budget_ms: float, steps: int = 200) -> dict[str, float]:
    """Validation accuracy of every architecture within ``budget_ms`` trained alone with one recipe (the
    answer key; a pick over the budget fails before its accuracy matters)."""
    out, trained = {}, {}
    for arch in (a for a in architectures() if table().predict(a, TOY) <= budget_ms + 1e-9):
        same = tuple(op for op in arch.ops if op != SKIP)  # skipped layers vanish: skip|k5e1 is k5e1|skip
        if same not in trained:
            trained[same] = train_alone(arch, steps)
        out[arch.to_string()] = trained[same]
    return out


def train_alone(arch: Architecture, steps: int) -> float:
    torch.manual_seed(0)
    train, val = loaders()
    net, batches = ChildNetwork(arch, CLASSES), itertools.cycle(train)
    opt = sgd(net.parameters(), 0.05, momentum=0.9, weight_decay=4e-5)
    net.train()
    for _ in range(steps):
        x, y = next(batches)
        loss = torch.nn.functional.cross_entropy(net(x), y)
        opt.zero_grad()
        loss.backward()
        opt.step()
    return evaluate(net, val)
