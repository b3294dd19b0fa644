"""Images held as uint8 tensors on the training device, augmented and normalized there.

For datasets that fit in memory (MNIST, Fashion-MNIST, CIFAR-10, small ImageFolders): no per-image
Python work, no decoding and no host-to-device copy per step. A batch is one gather from the
stored images; random crop with padding and horizontal flip are one more gather (a flip reverses
the column indices), and normalization is fused into the uint8 -> float conversion. Random draws
come from a seeded CPU generator, so a seed gives the same batches on every device.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F

AUGMENTATIONS = ("none", "crop-flip")


@dataclass
class TensorImages:
    """A split as uint8 images (N x C x H x W) and int64 labels; ``indices`` name the source images."""

    images: torch.Tensor
    labels: torch.Tensor
    indices: torch.Tensor

    def __len__(self) -> int:
        return len(self.labels)

    def __getitem__(self, i: int) -> tuple[torch.Tensor, torch.Tensor]:
        """One raw image scaled to [0, 1] (for inspection; loaders normalize whole batches)."""
        return self.images[i].float() / 255.0, self.labels[i]


def random_crop_flip(x: torch.Tensor, pad: int, generator: torch.Generator) -> torch.Tensor:
    """Per image: a random ``H x W`` crop of the zero-padded image, mirrored with probability 1/2."""
    b, c, h, w = x.shape
    padded = F.pad(x, (pad, pad, pad, pad))
    offsets = torch.randint(0, 2 * pad + 1, (2, b), generator=generator).to(x.device, non_blocking=True)
    flip = (torch.rand(b, generator=generator) < 0.5).to(x.device, non_blocking=True)
    rows = offsets[0, :, None] + torch.arange(h, device=x.device)
    cols = offsets[1, :, None] + torch.arange(w, device=x.device)
    cols = torch.where(flip[:, None], cols.flip(1), cols)
    batch = torch.arange(b, device=x.device)[:, None, None, None]
    channel = torch.arange(c, device=x.device)[None, :, None, None]
    return padded[batch, channel, rows[:, None, :, None], cols[:, None, None, :]]


class DeviceLoader:
    """A DataLoader-like iterable over a ``TensorImages`` split moved once to ``device``."""

    def __init__(
        self,
        split: TensorImages,
        batch_size: int,
        *,
        device: torch.device,
        mean: tuple[float, ...],
        std: tuple[float, ...],
        shuffle: bool,
        drop_last: bool,
        augment: str = "none",
        seed: int = 0,
    ) -> None:
        if augment not in AUGMENTATIONS:
            raise ValueError(f"unknown augmentation {augment!r}; valid: {', '.join(AUGMENTATIONS)}")
        self.images, self.labels = split.images.to(device), split.labels.to(device)
        self.dataset, self.batch_size, self.shuffle, self.drop_last, self.augment = split, batch_size, shuffle, drop_last, augment
        self.generator = torch.Generator().manual_seed(seed)
        std_t = torch.tensor(std, dtype=torch.float32, device=device).view(1, -1, 1, 1)
        self.scale = 1.0 / (255.0 * std_t)
        self.shift = torch.tensor(mean, dtype=torch.float32, device=device).view(1, -1, 1, 1) / std_t
        self.pad = max(1, self.images.shape[-1] // 8)

    def __len__(self) -> int:
        n = len(self.labels)
        return n // self.batch_size if self.drop_last else -(-n // self.batch_size)

    def __iter__(self):
        n = len(self.labels)
        order = torch.randperm(n, generator=self.generator) if self.shuffle else torch.arange(n)
        order = order.to(self.images.device, non_blocking=True)
        for i in range(len(self)):
            idx = order[i * self.batch_size : (i + 1) * self.batch_size]
            x = self.images[idx]
            if self.augment == "crop-flip":
                x = random_crop_flip(x, self.pad, self.generator)
            yield torch.addcmul(-self.shift, x.float(), self.scale), self.labels[idx]
