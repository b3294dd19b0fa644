"""Datasets: the embedded default and real ones read from disk, with seeded splits."""

from raynas.data.datasets import DATASETS, DataConfig, DatasetError, Splits, load_splits

__all__ = ["DATASETS", "DataConfig", "DatasetError", "Splits", "load_splits"]
