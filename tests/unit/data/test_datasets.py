import numpy as np
import pytest

from raynas.data.datasets import DataConfig, DatasetError, load_splits


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
