"""CIFAR-10 and CIFAR-100 from the official "python version" pickles.

``cifar-10-batches-py/``: ``data_batch_1`` .. ``data_batch_5``, ``test_batch``
(dicts with ``b'data'``: uint8 (N, 3072), rows R, G, B planes of 32x32, and
``b'labels'``), ``batches.meta`` (``b'label_names'``).
``cifar-100-python/``: ``train``, ``test`` (``b'fine_labels'``), ``meta``
(``b'fine_label_names'``). The pickles are read with an unpickler that only
builds numpy arrays, lists, dicts and bytes: nothing else is executed.
"""

from __future__ import annotations

import os
import pickle
from pathlib import Path
from typing import Any

import numpy as np

from slssnn.errors import SlssnnError

from .common import Dataset, check_labels, find_root, require_files, to_split

_ALLOWED = {
    ("numpy.core.multiarray", "_reconstruct"), ("numpy._core.multiarray", "_reconstruct"),
    ("numpy.core.numeric", "_frombuffer"), ("numpy._core.numeric", "_frombuffer"),
    ("numpy", "ndarray"), ("numpy", "dtype"), ("_codecs", "encode"),
}


class _ArrayUnpickler(pickle.Unpickler):
    def find_class(self, module: str, name: str) -> Any:
        if (module, name) not in _ALLOWED:
            raise pickle.UnpicklingError(f"refusing to load {module}.{name}")
        return super().find_class(module, name)


def read_pickle(path: Path) -> dict[bytes, Any]:
    """One CIFAR pickle as a dict; a damaged file names the file and the byte offset."""
    with open(path, "rb") as f:
        try:
            obj = _ArrayUnpickler(f, encoding="bytes").load()
        except Exception as exc:  # pickle raises many types on damaged input
            raise SlssnnError(f"{path}: corrupt pickle at byte offset {f.tell()} "
                              f"({exc.__class__.__name__}: {exc})".splitlines()[0]) from None
    if not isinstance(obj, dict):
        raise SlssnnError(f"{path}: not a CIFAR batch (a {type(obj).__name__}, expected a dict)")
    return obj


def _field(path: Path, batch: dict[bytes, Any], key: bytes) -> Any:
    if key not in batch:
        raise SlssnnError(f"{path}: field {key!r} missing (has {sorted(batch)})")
    return batch[key]


def _read_batches(paths: list[Path], label_key: bytes, num_classes: int
                  ) -> tuple[np.ndarray, np.ndarray]:
    images, labels = [], []
    for path in paths:
        batch = read_pickle(path)
        data = np.asarray(_field(path, batch, b"data"))
        y = np.asarray(_field(path, batch, label_key), dtype=np.int64)
        if data.dtype != np.uint8 or data.ndim != 2 or data.shape[1] != 3 * 32 * 32:
            raise SlssnnError(f"{path}: field b'data' is {data.dtype} {data.shape}, expected "
                              "uint8 (N, 3072)")
        if len(y) != len(data):
            raise SlssnnError(f"{path}: {len(y)} labels in {label_key!r} for {len(data)} images")
        check_labels(path, y, num_classes)
        images.append(data.reshape(-1, 3, 32, 32))  # (N, C, H, W)
        labels.append(y)
    return np.concatenate(images), np.concatenate(labels)


def _names(path: Path, key: bytes, count: int) -> list[str]:
    names = [n.decode() if isinstance(n, bytes) else str(n)
             for n in _field(path, read_pickle(path), key)]
    if len(names) != count:
        raise SlssnnError(f"{path}: {len(names)} names in {key!r}, expected {count}")
    return names


CIFAR10_FILES = [f"data_batch_{i}" for i in range(1, 6)] + ["test_batch", "batches.meta"]
CIFAR10_EXPECTED = "DIR/cifar-10-batches-py/ with data_batch_1..5, test_batch, batches.meta"
CIFAR100_FILES = ["train", "test", "meta"]
CIFAR100_EXPECTED = "DIR/cifar-100-python/ with train, test, meta"


def load_cifar10(data_dir: str | os.PathLike[str] | None) -> Dataset:
    """CIFAR-10: the official 50,000 / 10,000 split, uint8 images (3, 32, 32)."""
    root = find_root("cifar10", data_dir, ["cifar-10-batches-py", ""], "batches.meta",
                     CIFAR10_EXPECTED)
    paths = require_files("cifar10", root, CIFAR10_FILES, CIFAR10_EXPECTED)
    names = _names(paths[-1], b"label_names", 10)
    train = to_split(*_read_batches(paths[:5], b"labels", 10))
    test = to_split(*_read_batches(paths[5:6], b"labels", 10))
    return Dataset(name="cifar10", train=train, test=test, class_names=names,
                   input_shape=(3, 32, 32))


def load_cifar100(data_dir: str | os.PathLike[str] | None) -> Dataset:
    """CIFAR-100 (fine labels): the official 50,000 / 10,000 split, uint8 images (3, 32, 32)."""
    root = find_root("cifar100", data_dir, ["cifar-100-python", ""], "meta", CIFAR100_EXPECTED)
    train_path, test_path, meta_path = require_files("cifar100", root, CIFAR100_FILES,
                                                     CIFAR100_EXPECTED)
    names = _names(meta_path, b"fine_label_names", 100)
    train = to_split(*_read_batches([train_path], b"fine_labels", 100))
    test = to_split(*_read_batches([test_path], b"fine_labels", 100))
    return Dataset(name="cifar100", train=train, test=test, class_names=names,
                   input_shape=(3, 32, 32))
