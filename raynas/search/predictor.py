"""Accuracy predictor (OFA): a small MLP from an architecture's encoding to shared-weight accuracy.

Encoding, per searchable layer: one-hot kernel and one-hot expansion (all zero when skipped),
then a one-hot input resolution. Trained on replica evaluations; its held-out RMSE is reported.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

import numpy as np
import torch
from torch import nn

from raynas.checkpoints import load_state_dict
from raynas.space.architecture import Architecture
from raynas.space.macro import MacroConfig, get_space
from raynas.space.ops import SKIP, parse_mbconv


@dataclass(frozen=True)
class ArchEncoder:
    """Fixed-length vectors for the subnets of one elastic space."""

    kernels: tuple[int, ...]
    expansions: tuple[int, ...]
    layers: int
    resolutions: tuple[int, ...]

    @classmethod
    def for_space(cls, macro: MacroConfig, resolutions: Sequence[int]) -> ArchEncoder:
        return cls(tuple(macro.kernels), tuple(macro.expansions), len(macro.layers()), tuple(sorted(resolutions)))

    @property
    def size(self) -> int:
        return self.layers * (len(self.kernels) + len(self.expansions)) + len(self.resolutions)

    def encode(self, arch: Architecture) -> np.ndarray:
        vec, width = np.zeros(self.size, dtype=np.float32), len(self.kernels) + len(self.expansions)
        for i, op in enumerate(arch.ops):
            if op != SKIP:
                kernel, expansion = parse_mbconv(op)
                vec[i * width + self.kernels.index(kernel)] = 1
                vec[i * width + len(self.kernels) + self.expansions.index(expansion)] = 1
        vec[self.layers * width + self.resolutions.index(get_space(arch.space).input_size)] = 1
        return vec

    def encode_many(self, archs: Sequence[Architecture]) -> torch.Tensor:
        return torch.from_numpy(np.stack([self.encode(a) for a in archs]))


class AccuracyPredictor(nn.Module):
    """MLP: encoding -> accuracy; ``fit`` trains it and reports train and held-out RMSE."""

    def __init__(self, encoder: ArchEncoder, hidden: int = 64) -> None:
        super().__init__()
        self.encoder = encoder
        self.mlp = nn.Sequential(nn.Linear(encoder.size, hidden), nn.ReLU(), nn.Linear(hidden, hidden), nn.ReLU(), nn.Linear(hidden, 1))
        self.register_buffer("offset", torch.zeros(()))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.mlp(x).squeeze(-1) + self.offset

    @torch.no_grad()
    def predict(self, archs: Sequence[Architecture]) -> np.ndarray:
        self.eval()
        return self(self.encoder.encode_many(archs)).numpy()

    def fit(
        self,
        archs: Sequence[Architecture],
        accuracies: Sequence[float],
        *,
        seed: int,
        holdout: float = 0.2,
        epochs: int = 300,
        lr: float = 3e-3,
    ) -> dict[str, float]:
        """Full-batch Adam on MSE over a random (1 - holdout) split; RMSE in accuracy points (0..1)."""
        if len(archs) < 5:
            raise ValueError(f"the accuracy predictor needs at least 5 evaluated architectures, got {len(archs)}")
        gen = torch.Generator().manual_seed(seed)
        torch.manual_seed(seed)
        x, y = self.encoder.encode_many(archs), torch.tensor(accuracies, dtype=torch.float32)
        order = torch.randperm(len(y), generator=gen)
        cut = max(1, int(round(len(y) * holdout)))
        test, train = order[:cut], order[cut:]
        self.offset.fill_(float(y[train].mean()))
        optimizer = torch.optim.Adam(self.mlp.parameters(), lr=lr, weight_decay=1e-4)
        self.train()
        for _ in range(epochs):
            optimizer.zero_grad(set_to_none=True)
            loss = ((self(x[train]) - y[train]) ** 2).mean()
            loss.backward()
            optimizer.step()
        with torch.no_grad():
            self.eval()

            def rmse(idx):
                return float(((self(x[idx]) - y[idx]) ** 2).mean().sqrt())

            baseline = float(((y[test] - y[train].mean()) ** 2).mean().sqrt())
            return {
                "rmse_train": rmse(train),
                "rmse_heldout": rmse(test),
                "rmse_heldout_mean_baseline": baseline,
                "n_train": len(train),
                "n_heldout": len(test),
            }

    def save(self, directory: str | Path, report: dict | None = None) -> Path:
        """``predictor.pt`` (state dict), ``predictor.json`` (encoder) and the fit report, safe to load anywhere."""
        directory = Path(directory)
        directory.mkdir(parents=True, exist_ok=True)
        torch.save(self.state_dict(), directory / "predictor.pt")
        (directory / "predictor.json").write_text(json.dumps(self.encoder.__dict__ | {"hidden": self.mlp[0].out_features}))
        if report is not None:
            (directory / "report.json").write_text(json.dumps(report, indent=2))
        return directory

    @classmethod
    def load(cls, directory: str | Path) -> AccuracyPredictor:
        directory = Path(directory)
        meta = json.loads((directory / "predictor.json").read_text())
        hidden = meta.pop("hidden")
        model = cls(ArchEncoder(**{k: tuple(v) if isinstance(v, list) else v for k, v in meta.items()}), hidden)
        model.load_state_dict(load_state_dict(directory / "predictor.pt"))
        return model
