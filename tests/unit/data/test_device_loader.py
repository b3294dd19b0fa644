"""Batches served from uint8 tensors: normalization fused in, crop-with-padding and flip on the device."""

from __future__ import annotations

import torch

from raynas.data.device_loader import DeviceLoader, TensorImages, random_crop_flip


def _split(n: int = 10, c: int = 3, size: int = 8) -> TensorImages:
    images = torch.randint(0, 256, (n, c, size, size), dtype=torch.uint8)
    return TensorImages(images, torch.arange(n) % 3, torch.arange(n))


def test_batches_are_normalized_and_cover_every_image_once_per_pass():
    split = _split()
    mean, std = (0.5, 0.4, 0.3), (0.2, 0.25, 0.3)
    loader = DeviceLoader(split, 4, device=torch.device("cpu"), mean=mean, std=std, shuffle=False, drop_last=False)
    xs, ys = zip(*loader)
    assert len(loader) == 3 and [len(y) for y in ys] == [4, 4, 2]
    expected = (split.images.float() / 255 - torch.tensor(mean).view(1, 3, 1, 1)) / torch.tensor(std).view(1, 3, 1, 1)
    assert torch.allclose(torch.cat(xs), expected, atol=1e-5)
    shuffled = DeviceLoader(split, 4, device=torch.device("cpu"), mean=mean, std=std, shuffle=True, drop_last=True, seed=1)
    first, second = [torch.cat([y for _, y in shuffled]) for _ in range(2)]
    assert len(shuffled) == 2 and len(first) == 8 and not torch.equal(first, second)  # reshuffled every pass


def test_a_seed_gives_the_same_batches():
    split = _split()

    def run():
        loader = DeviceLoader(
            split, 4, device=torch.device("cpu"), mean=(0.0,) * 3, std=(1.0,) * 3, shuffle=True, drop_last=True, augment="crop-flip", seed=3
        )
        return [x for x, _ in loader]

    assert all(torch.equal(a, b) for a, b in zip(run(), run()))


def test_each_crop_is_a_window_of_the_padded_image_possibly_mirrored():
    images = torch.randint(1, 256, (64, 2, 6, 6), dtype=torch.uint8)
    out = random_crop_flip(images, 2, torch.Generator().manual_seed(0))
    padded = torch.nn.functional.pad(images, (2, 2, 2, 2))
    flips = 0
    for img, crop in zip(padded, out):
        windows = [img[:, r : r + 6, c : c + 6] for r in range(5) for c in range(5)]
        plain = any(torch.equal(crop, w) for w in windows)
        mirrored = any(torch.equal(crop, w.flip(-1)) for w in windows)
        assert plain or mirrored
        flips += mirrored and not plain
    assert 16 < flips < 48  # about half are mirrored
    assert (out == 0).any()  # some crops reach into the zero padding
