"""MNIST and Fashion-MNIST from their four official IDX files (gzip), parsed with gzip + numpy.

IDX layout (LeCun's MNIST page; Fashion-MNIST uses it unchanged): two zero
bytes, a type byte (0x08 = unsigned byte), the number of dimensions, then one
big-endian uint32 per dimension and the data, row-major. Images are
``idx3`` (N, 28, 28), labels ``idx1`` (N,).
"""

from __future__ import annotations

import gzip
import os
import zlib
from pathlib import Path

import numpy as np

from slssnn.errors import SlssnnError

from .common import Dataset, check_labels, find_root, require_files, to_split

FILES = {
    "train_images": "train-images-idx3-ubyte.gz",
    "train_labels": "train-labels-idx1-ubyte.gz",
    "test_images": "t10k-images-idx3-ubyte.gz",
    "test_labels": "t10k-labels-idx1-ubyte.gz",
}
EXPECTED = ", ".join(FILES.values()) + " (in DIR, DIR/fashion-mnist or DIR/FashionMNIST/raw)"
MNIST_EXPECTED = ", ".join(FILES.values()) + " (in DIR, DIR/mnist or DIR/MNIST/raw)"
CLASS_NAMES = ["T-shirt/top", "Trouser", "Pullover", "Dress", "Coat", "Sandal", "Shirt",
               "Sneaker", "Bag", "Ankle boot"]
UBYTE = 0x08
HEADER = 4
"""Bytes before the dimensions: 0, 0, type, ndim."""


def _gunzip(path: Path) -> bytes:
    """The decompressed bytes; a damaged archive names the file and the byte offset reached."""
    out = bytearray()
    try:
        with gzip.open(path, "rb") as f:
            while chunk := f.read(1 << 20):
                out += chunk
    except (OSError, EOFError, zlib.error) as exc:
        raise SlssnnError(f"{path}: corrupt gzip archive at decompressed byte offset {len(out)} "
                          f"({exc})") from None
    return bytes(out)


def read_idx(path: str | os.PathLike[str], ndim: int) -> np.ndarray:
    """Read one gzip-compressed IDX file of unsigned bytes with ``ndim`` dimensions."""
    path = Path(path)
    raw = _gunzip(path)
    if len(raw) < HEADER:
        raise SlssnnError(f"{path}: truncated IDX header at byte offset {len(raw)}")
    if raw[0] != 0 or raw[1] != 0:
        raise SlssnnError(f"{path}: not an IDX file (byte offset 0: magic must start with 0x0000)")
    if raw[2] != UBYTE:
        raise SlssnnError(f"{path}: IDX type 0x{raw[2]:02x} at byte offset 2 (expected 0x08, "
                          "unsigned byte)")
    if raw[3] != ndim:
        raise SlssnnError(f"{path}: IDX has {raw[3]} dimensions at byte offset 3 "
                          f"(expected {ndim})")
    start = HEADER + 4 * ndim
    if len(raw) < start:
        raise SlssnnError(f"{path}: truncated IDX dimensions at byte offset {len(raw)}")
    dims = tuple(int(d) for d in np.frombuffer(raw, ">u4", count=ndim, offset=HEADER))
    size = int(np.prod(dims))
    if len(raw) != start + size:
        raise SlssnnError(f"{path}: IDX data ends at byte offset {len(raw)}, expected "
                          f"{start + size} for dimensions {dims}")
    return np.frombuffer(raw, np.uint8, count=size, offset=start).reshape(dims)


def _read_pair(images_path: Path, labels_path: Path) -> tuple[np.ndarray, np.ndarray]:
    images = read_idx(images_path, 3)
    labels = read_idx(labels_path, 1).astype(np.int64)
    if images.shape[1:] != (28, 28):
        raise SlssnnError(f"{images_path}: images are {images.shape[1]}x{images.shape[2]}, "
                          "expected 28x28")
    if len(images) != len(labels):
        raise SlssnnError(f"{labels_path}: {len(labels)} labels for {len(images)} images "
                          f"in {images_path.name}")
    check_labels(labels_path, labels, 10)
    return images[:, None], labels  # (N, 1, 28, 28) uint8


def load_idx_dataset(name: str, data_dir: str | os.PathLike[str] | None,
                     folders: list[str], expected: str, class_names: list[str]) -> Dataset:
    """The official train / t10k IDX pair of files under ``data_dir/<one of folders>``:
    uint8 images (1, 28, 28) (MNIST and Fashion-MNIST: 60,000 / 10,000)."""
    root = find_root(name, data_dir, folders, FILES["train_images"], expected)
    paths = dict(zip(FILES, require_files(name, root, list(FILES.values()), expected),
                     strict=True))
    train = to_split(*_read_pair(paths["train_images"], paths["train_labels"]))
    test = to_split(*_read_pair(paths["test_images"], paths["test_labels"]))
    return Dataset(name=name, train=train, test=test, class_names=class_names,
                   input_shape=(1, 28, 28))


def load_fashion_mnist(data_dir: str | os.PathLike[str] | None) -> Dataset:
    """Fashion-MNIST: the official 60,000 / 10,000 split, uint8 images (1, 28, 28)."""
    return load_idx_dataset("fashion-mnist", data_dir, ["", "fashion-mnist", "FashionMNIST/raw"],
                            EXPECTED, CLASS_NAMES)
