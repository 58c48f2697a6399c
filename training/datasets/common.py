"""What every dataset loader shares: the split types, the split rule, folder checks.

Images are tensors ``(N, C, H, W)`` in the dataset's own intensity units
(digits: float 0..16; Fashion-MNIST, CIFAR, Tiny-ImageNet: uint8 0..255);
event datasets hold spike frames ``(N, T, 2, H, W)`` uint8 0/1 (channel 0 = ON,
1 = OFF polarity), already binned into the model's T steps. Labels are int64
``(N,)``.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import NamedTuple

import numpy as np
import torch

from slssnn.errors import SlssnnError

SPLIT_SEED = 0
TEST_FRACTION = 0.2
VALIDATION_FRACTION = 0.1
"""Share of the training split held out for validation (recipe choices), stratified, seed 0."""

IMAGE = "image"
"""Dataset kind: one static image per sample, presented as current on each of the T steps."""
EVENTS = "events"
"""Dataset kind: T binary spike frames per sample, one per step (2 polarity channels)."""


class Split(NamedTuple):
    """One split: ``images`` ``(N, C, H, W)`` or event frames ``(N, T, 2, H, W)``; labels int64."""

    images: torch.Tensor
    labels: torch.Tensor


class Dataset(NamedTuple):
    """A loaded dataset. ``input_shape`` is (C, H, W) of one step's input."""

    name: str
    train: Split
    test: Split
    class_names: list[str]
    input_shape: tuple[int, int, int]
    kind: str = IMAGE


def stratified_split(images: np.ndarray, labels: np.ndarray,
                     test_fraction: float = TEST_FRACTION) -> tuple[Split, Split]:
    """Split once, stratified by label, seed :data:`SPLIT_SEED` (the same everywhere)."""
    from sklearn.model_selection import train_test_split

    x_train, x_test, y_train, y_test = train_test_split(
        images, labels, test_size=test_fraction, random_state=SPLIT_SEED, stratify=labels)
    return to_split(x_train, y_train), to_split(x_test, y_test)


def validation_split(train: Split, fraction: float = VALIDATION_FRACTION) -> tuple[Split, Split]:
    """``train`` -> (the rest, validation): a stratified ``fraction`` of it, seed
    :data:`SPLIT_SEED`. Recipe choices are made on the validation part, never on the test split.
    """
    from sklearn.model_selection import train_test_split

    index = np.arange(len(train.labels))
    keep, held = train_test_split(index, test_size=fraction, random_state=SPLIT_SEED,
                                  stratify=train.labels.numpy())
    keep, held = torch.from_numpy(np.sort(keep)), torch.from_numpy(np.sort(held))
    return (Split(train.images[keep], train.labels[keep]),
            Split(train.images[held], train.labels[held]))


def to_split(images: np.ndarray, labels: np.ndarray) -> Split:
    """Numpy arrays -> a :class:`Split` (labels as int64)."""
    return Split(torch.from_numpy(np.array(images, copy=True, order="C")),
                 torch.from_numpy(np.asarray(labels, dtype=np.int64)))


def find_root(dataset: str, data_dir: str | os.PathLike[str] | None,
              candidates: list[str], marker: str, expected: str) -> Path:
    """The folder holding ``dataset``'s files: the first of ``data_dir/<candidate>``
    that contains ``marker`` (candidate ``""`` is ``data_dir`` itself).

    Raises a one-line error naming the files expected when none does.
    """
    if data_dir is None:
        raise SlssnnError(f"dataset {dataset!r} is read from local files: pass --data-dir DIR "
                          f"with {expected}")
    base = Path(data_dir)
    if not base.is_dir():
        raise SlssnnError(f"dataset {dataset!r}: --data-dir {base} is not a folder "
                          f"(expected {expected})")
    for sub in candidates:
        root = base / sub if sub else base
        if (root / marker).exists():
            return root
    raise SlssnnError(f"dataset {dataset!r}: {marker} not found under {base} "
                      f"(expected {expected})")


def require_files(dataset: str, root: Path, names: list[str], expected: str) -> list[Path]:
    """Paths of ``names`` in ``root``; a missing one is a one-line error naming the expected."""
    paths = [root / n for n in names]
    missing = [p.name for p in paths if not p.is_file()]
    if missing:
        raise SlssnnError(f"dataset {dataset!r}: incomplete folder {root}: missing "
                          f"{', '.join(missing)} (expected {expected})")
    return paths


def check_labels(path: Path, labels: np.ndarray, num_classes: int) -> None:
    """Refuse labels outside ``0..num_classes-1``, naming the file and the first bad index."""
    bad = np.flatnonzero((labels < 0) | (labels >= num_classes))
    if len(bad):
        raise SlssnnError(f"{path}: label {int(labels[bad[0]])} at index {int(bad[0])} is outside "
                          f"0..{num_classes - 1}")
