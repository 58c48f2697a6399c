"""scikit-learn's bundled 8x8 digits: the embedded default (nothing to download)."""

from __future__ import annotations

import numpy as np

from .common import Dataset, stratified_split


def digits_arrays() -> tuple[np.ndarray, np.ndarray]:
    """All 1,797 images ``(N, 1, 8, 8)`` float32 (values 0..16) and labels int64."""
    from sklearn.datasets import load_digits

    digits = load_digits()
    images = digits.images.astype(np.float32)[:, None]  # (N, 1, 8, 8)
    return images, digits.target.astype(np.int64)


def load_digits_dataset() -> Dataset:
    """The digits, stratified split, seed 0, 20% test (360 images)."""
    train, test = stratified_split(*digits_arrays())
    return Dataset(name="digits", train=train, test=test,
                   class_names=[str(d) for d in range(10)], input_shape=(1, 8, 8))
