"""CIFAR10-DVS (Li et al., Front. Neurosci. 2017) from its event files as distributed.

The figshare archives (``airplane.zip`` .. ``truck.zip``) extract to one folder
per class holding AER-DAT 2.0 files (``cifar10_<class>_<i>.aedat``) recorded
by a 128x128 DVS. Put the ten class folders in ``DIR`` or ``DIR/CIFAR10DVS``.

Address bits, as SpikingJelly decodes this dataset
(``spikingjelly/datasets/cifar10_dvs.py``, ``CIFAR10DVS.load_origin_data``:
``x_mask=0xfE, x_shift=1, y_mask=0x7f00, y_shift=8, polarity_mask=1``, then
``x = 127 - y_raw, y = 127 - x_raw, p = 1 - p_raw``, after skipping the ``#``
header lines and reading big-endian ``>u4`` address/timestamp pairs)::

    x_raw = (address & 0x00FE) >> 1      y_raw = (address & 0x7F00) >> 8
    p_raw =  address & 0x0001
    x = 127 - y_raw    y = 127 - x_raw   p = 1 - p_raw   (channel p of the frames)

Each recording is cut into T frames of equal event count, mapped from 128x128
onto :data:`FRAME_SIZE` x :data:`FRAME_SIZE` pixels by counting the events per
pooled pixel, and binarised (a pooled pixel spikes when its count is above
the mean of its frame and polarity). The dataset has no official split: the
last 10% of each class by file number are the test split.
"""

from __future__ import annotations

import os
import re
from pathlib import Path

import numpy as np

from slssnn.errors import SlssnnError

from .aedat import read_aedat2
from .common import EVENTS, Dataset, find_root, to_split
from .events import binarise_above_mean, bins_by_count, event_counts, pool_coordinates

CLASS_NAMES = ["airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship",
               "truck"]
SENSOR = 128
FRAME_SIZE = 48
TEST_FRACTION = 0.1
EXPECTED = ("DIR/<class>/*.aedat (or DIR/CIFAR10DVS/<class>/) for the classes "
            + ", ".join(CLASS_NAMES))


def decode_dvs128(address: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``(x, y, p)`` of CIFAR10-DVS addresses, SpikingJelly's orientation and polarity."""
    x_raw = (address & 0x00FE) >> 1
    y_raw = (address & 0x7F00) >> 8
    p_raw = address & 0x0001
    return ((SENSOR - 1) - y_raw).astype(np.int64), ((SENSOR - 1) - x_raw).astype(np.int64), \
        (1 - p_raw).astype(np.int64)


def event_frames(path: str | os.PathLike[str], timesteps: int,
                 size: int = FRAME_SIZE) -> np.ndarray:
    """One recording as binary frames, uint8 ``(T, 2, size, size)``."""
    raw = read_aedat2(path)
    x, y, p = decode_dvs128(raw.address)
    bins = bins_by_count(len(x), timesteps)
    counts = event_counts(bins, pool_coordinates(x, SENSOR, size),
                          pool_coordinates(y, SENSOR, size), p, timesteps, size, size)
    return binarise_above_mean(counts)


def _number(path: Path) -> tuple[int, str]:
    match = re.search(r"(\d+)$", path.stem)
    return (int(match.group(1)) if match else -1, path.name)


def class_files(root: Path) -> list[list[Path]]:
    """Per class, its ``.aedat`` files in file-number order; a missing class is an error."""
    files = []
    for name in CLASS_NAMES:
        folder = root / name
        found = sorted(folder.glob("*.aedat"), key=_number) if folder.is_dir() else []
        if not found:
            raise SlssnnError(f"dataset 'dvs-cifar10': no .aedat files in {folder} "
                              f"(expected {EXPECTED})")
        files.append(found)
    return files


def load_dvs_cifar10(data_dir: str | os.PathLike[str] | None, timesteps: int) -> Dataset:
    """CIFAR10-DVS as T binary frames ``(N, T, 2, 48, 48)``; last 10% per class for test."""
    root = find_root("dvs-cifar10", data_dir, ["", "CIFAR10DVS", "CIFAR10-DVS"], CLASS_NAMES[0],
                     EXPECTED)
    parts: dict[str, tuple[list[np.ndarray], list[int]]] = {"train": ([], []), "test": ([], [])}
    for label, paths in enumerate(class_files(root)):
        if len(paths) < 2:
            raise SlssnnError(f"dataset 'dvs-cifar10': {root / CLASS_NAMES[label]} holds "
                              f"{len(paths)} recording; a train/test split needs at least 2")
        n_test = max(1, round(len(paths) * TEST_FRACTION))
        for i, path in enumerate(paths):
            frames, labels = parts["test" if i >= len(paths) - n_test else "train"]
            frames.append(event_frames(path, timesteps))
            labels.append(label)
    train, test = (to_split(np.stack(parts[k][0]), np.array(parts[k][1])) for k in ("train",
                                                                                      "test"))
    return Dataset(name="dvs-cifar10", train=train, test=test, class_names=CLASS_NAMES,
                   input_shape=(2, FRAME_SIZE, FRAME_SIZE), kind=EVENTS)
