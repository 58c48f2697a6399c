"""A user's own data: four arrays, in memory or in an ``.npz`` file (``--data FILE.npz``).

The arrays are ``x_train``, ``y_train``, ``x_test`` and ``y_test``:

- images: uint8 ``(N, H, W)`` (one channel) or ``(N, C, H, W)``, pixels 0..255;
- event frames: ``(N, T, C, H, W)``, 0/1 (uint8 or bool; any integer or float dtype
  holding only 0 and 1 is taken too; C = 2 for ON/OFF polarity), already binned
  into the model's T steps, one frame per step;
- labels: integers ``(N,)``, 0 .. classes - 1.

Every problem is one line naming the key: a missing or unknown key, a wrong
dtype or number of axes, train and test samples of different shapes, a
label count that differs from the sample count, a negative label, event
frames other than 0/1 or a T other than the model's.
"""

from __future__ import annotations

import os
import zipfile
from collections.abc import Mapping
from pathlib import Path

import numpy as np

from slssnn.errors import SlssnnError

from .common import EVENTS, IMAGE, Dataset, to_split

KEYS = ("x_train", "y_train", "x_test", "y_test")
DATA_FILE_SUFFIX = ".npz"


def is_data_file(name: str | os.PathLike[str]) -> bool:
    """Whether a dataset name is the path of a user's ``.npz`` file (not a registered name)."""
    return str(name).lower().endswith(DATA_FILE_SUFFIX)


def load_npz(path: str | os.PathLike[str], timesteps: int | None = None) -> Dataset:
    """Read ``path`` (``np.savez`` of the four arrays) as a :class:`Dataset` named ``path``.

    ``timesteps``: the model's T; event frames must have exactly T frames per
    sample (None: take T from the file). Object arrays (pickles) are refused.
    """
    path = Path(path)
    if not path.is_file():
        raise SlssnnError(f"data file {path}: no such file")
    if not zipfile.is_zipfile(path):
        raise SlssnnError(f"data file {path}: not an .npz file (not a zip archive; write it "
                          "with np.savez)")
    arrays: dict[str, np.ndarray] = {}
    key = ""
    try:
        with np.load(path, allow_pickle=False) as archive:
            for key in archive.files:
                arrays[key] = archive[key]
    except ValueError as exc:  # an object array (np.load will not unpickle) or a bad header
        raise SlssnnError(f"data file {path}: key {key!r}: not a plain numeric array "
                          f"({exc})") from None
    except (OSError, zipfile.BadZipFile, EOFError) as exc:
        raise SlssnnError(f"data file {path}: key {key!r}: unreadable "
                          f"({exc.__class__.__name__}: {exc})") from None
    try:
        return dataset_from_arrays(arrays, name=str(path), timesteps=timesteps)
    except SlssnnError as exc:
        raise SlssnnError(f"data file {exc}") from None


def dataset_from_arrays(arrays: Mapping[str, np.ndarray], name: str = "arrays",
                        timesteps: int | None = None) -> Dataset:
    """Check the four arrays (module docstring) and wrap them as a :class:`Dataset`.

    Classes are ``0 .. max label``. Errors are one line starting with ``name``
    and naming the key.
    """
    missing = [k for k in KEYS if k not in arrays]
    if missing:
        raise SlssnnError(f"{name}: missing key {missing[0]!r} (needs {', '.join(KEYS)})")
    unknown = sorted(set(arrays) - set(KEYS))
    if unknown:
        raise SlssnnError(f"{name}: unknown key {unknown[0]!r}; known: {', '.join(KEYS)}")
    x = {k: np.asarray(arrays[k]) for k in ("x_train", "x_test")}
    kind = _check_samples(name, "x_train", x["x_train"], timesteps)
    if _check_samples(name, "x_test", x["x_test"], timesteps) != kind \
            or x["x_test"].shape[1:] != x["x_train"].shape[1:]:
        raise SlssnnError(f"{name}: key 'x_test' holds samples of shape {x['x_test'].shape[1:]}, "
                          f"'x_train' of shape {x['x_train'].shape[1:]}")
    labels = {k: _check_labels(name, k, np.asarray(arrays[k]), len(x["x" + k[1:]]))
              for k in ("y_train", "y_test")}
    classes = max(int(y.max()) for y in labels.values()) + 1
    images = {k: v[:, None] if v.ndim == 3 else v for k, v in x.items()}  # (N, C, H, W)
    if kind == EVENTS:
        images = {k: v.astype(np.uint8) for k, v in images.items()}
    shape = images["x_train"].shape[-3:]
    return Dataset(name=name, train=to_split(images["x_train"], labels["y_train"]),
                   test=to_split(images["x_test"], labels["y_test"]),
                   class_names=[str(c) for c in range(classes)],
                   input_shape=(int(shape[0]), int(shape[1]), int(shape[2])), kind=kind)


def _check_samples(name: str, key: str, x: np.ndarray, timesteps: int | None) -> str:
    """The kind of ``x`` (IMAGE or EVENTS), or a one-line error naming ``key``."""
    where = f"{name}: key {key!r}"
    if x.ndim not in (3, 4, 5):
        raise SlssnnError(f"{where} has shape {x.shape}: expected images (N, H, W) or "
                          "(N, C, H, W), or event frames (N, T, C, H, W)")
    if len(x) == 0 or 0 in x.shape:
        raise SlssnnError(f"{where} has shape {x.shape}: no samples")
    if x.ndim < 5:
        if x.dtype != np.uint8:
            raise SlssnnError(f"{where}: images must be uint8 (pixels 0..255), got {x.dtype}")
        return IMAGE
    if x.dtype.kind not in "biuf":
        raise SlssnnError(f"{where}: event frames must be numbers 0/1 (uint8, bool, any "
                          f"integer or float), got {x.dtype}")
    bad = x[(x != 0) & (x != 1)]
    if bad.size:
        raise SlssnnError(f"{where}: event frames must be 0/1, found {bad.flat[0].item()!r} "
                          "(one spike per pixel, polarity and frame)")
    if timesteps is not None and x.shape[1] != timesteps:
        raise SlssnnError(f"{where} has {x.shape[1]} event frames per sample (axis 1), the "
                          f"model runs T={timesteps} steps: bin the events into {timesteps}")
    return EVENTS


def _check_labels(name: str, key: str, y: np.ndarray, samples: int) -> np.ndarray:
    where = f"{name}: key {key!r}"
    if y.ndim != 1 or y.dtype.kind not in "iu":
        raise SlssnnError(f"{where}: labels must be integers of shape (N,), got {y.dtype} "
                          f"{y.shape}")
    if len(y) != samples:
        raise SlssnnError(f"{where} has {len(y)} labels for {samples} samples in "
                          f"'x{key[1:]}'")
    if y.min() < 0:
        raise SlssnnError(f"{where}: label {int(y.min())} is negative (labels are 0 .. "
                          "classes - 1)")
    return y.astype(np.int64)
