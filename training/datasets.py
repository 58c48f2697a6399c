"""Datasets: the bundled scikit-learn digits, split once and the same everywhere.

Images are float tensors ``(N, C, H, W)`` in the dataset's own intensity units
(digits: integers 0..16); labels are int64 ``(N,)``. Nothing is downloaded.
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np
import torch

from slssnn.errors import SlssnnError

SPLIT_SEED = 0
TEST_FRACTION = 0.2


class Split(NamedTuple):
    """One split of a dataset: images ``(N, C, H, W)`` float32, labels ``(N,)`` int64."""

    images: torch.Tensor
    labels: torch.Tensor


class Dataset(NamedTuple):
    name: str
    train: Split
    test: Split
    class_names: list[str]
    input_shape: tuple[int, int, int]


def load_digits_dataset() -> Dataset:
    """scikit-learn's 8x8 digits (1,797 images), stratified split, seed 0, 20% test (360)."""
    from sklearn.datasets import load_digits
    from sklearn.model_selection import train_test_split

    digits = load_digits()
    images = digits.images.astype(np.float32)[:, None]  # (N, 1, 8, 8), values 0..16
    labels = digits.target.astype(np.int64)
    x_train, x_test, y_train, y_test = train_test_split(
        images, labels, test_size=TEST_FRACTION, random_state=SPLIT_SEED, stratify=labels
    )
    return Dataset(
        name="digits",
        train=Split(torch.from_numpy(x_train), torch.from_numpy(y_train)),
        test=Split(torch.from_numpy(x_test), torch.from_numpy(y_test)),
        class_names=[str(d) for d in range(10)],
        input_shape=(1, 8, 8),
    )


DATASETS = {"digits": load_digits_dataset}


def load_dataset(name: str) -> Dataset:
    """Load a dataset by name; an unknown name is a one-line error listing the known ones."""
    if name not in DATASETS:
        raise SlssnnError(f"unknown dataset {name!r}; known: {', '.join(sorted(DATASETS))}")
    return DATASETS[name]()
