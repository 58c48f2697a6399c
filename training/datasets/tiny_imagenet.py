"""Tiny-ImageNet-200 from its official folder layout, read with PIL.

``tiny-imagenet-200/``: ``wnids.txt`` (one WordNet id per line, the class
order), optional ``words.txt`` (``wnid<TAB>names``), ``train/<wnid>/images/*.JPEG``
(500 per class) and ``val/images/*.JPEG`` with ``val/val_annotations.txt``
(``file<TAB>wnid<TAB>x<TAB>y<TAB>w<TAB>h``). The test folder has no labels, so
the official validation set is our test split. Images are 64x64 RGB (the few
grayscale JPEGs are converted), uint8 (3, 64, 64).
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from slssnn.errors import SlssnnError

from .common import Dataset, find_root, require_files, to_split

EXPECTED = ("DIR/tiny-imagenet-200/ with wnids.txt, train/<wnid>/images/*.JPEG, val/images/*.JPEG "
            "and val/val_annotations.txt")
SIZE = 64


def _read_image(path: Path) -> np.ndarray:
    from PIL import Image, UnidentifiedImageError

    try:
        with Image.open(path) as img:
            rgb = np.asarray(img.convert("RGB"))
    except (OSError, UnidentifiedImageError, SyntaxError) as exc:
        raise SlssnnError(f"{path}: not a readable JPEG ({exc})".splitlines()[0]) from None
    if rgb.shape != (SIZE, SIZE, 3):
        raise SlssnnError(f"{path}: image is {rgb.shape[1]}x{rgb.shape[0]}, expected "
                          f"{SIZE}x{SIZE}")
    return rgb.transpose(2, 0, 1)  # (H, W, C) -> (C, H, W)


def _stack(paths: list[Path]) -> np.ndarray:
    out = np.empty((len(paths), 3, SIZE, SIZE), dtype=np.uint8)
    for i, path in enumerate(paths):
        out[i] = _read_image(path)
    return out


def _read_wnids(path: Path) -> list[str]:
    wnids = [line.strip() for line in path.read_text().splitlines() if line.strip()]
    if not wnids:
        raise SlssnnError(f"{path}: no class ids")
    if len(set(wnids)) != len(wnids):
        raise SlssnnError(f"{path}: duplicate class ids")
    return wnids


def _class_names(root: Path, wnids: list[str]) -> list[str]:
    words = root / "words.txt"
    if not words.is_file():
        return wnids
    table = dict(line.split("\t", 1) for line in words.read_text().splitlines() if "\t" in line)
    return [table.get(w, w).split(",")[0].strip() for w in wnids]


def _train_files(root: Path, wnids: list[str]) -> tuple[list[Path], list[int]]:
    paths, labels = [], []
    for label, wnid in enumerate(wnids):
        folder = root / "train" / wnid / "images"
        files = sorted(folder.glob("*.JPEG"))
        if not files:
            raise SlssnnError(f"dataset 'tiny-imagenet': no JPEG files in {folder} "
                              f"(expected {EXPECTED})")
        paths += files
        labels += [label] * len(files)
    return paths, labels


def _val_files(root: Path, annotations: Path, wnids: list[str]) -> tuple[list[Path], list[int]]:
    index = {w: i for i, w in enumerate(wnids)}
    paths, labels = [], []
    for number, line in enumerate(annotations.read_text().splitlines(), start=1):
        if not line.strip():
            continue
        fields = line.split("\t")
        if len(fields) < 2 or fields[1] not in index:
            raise SlssnnError(f"{annotations}: line {number}: expected 'file<TAB>wnid...' with a "
                              f"wnid from wnids.txt, got {line[:60]!r}")
        path = root / "val" / "images" / fields[0]
        if not path.is_file():
            raise SlssnnError(f"dataset 'tiny-imagenet': {annotations} line {number} names "
                              f"{path}, which is missing")
        paths.append(path)
        labels.append(index[fields[1]])
    if not paths:
        raise SlssnnError(f"{annotations}: no validation images listed")
    return paths, labels


def load_tiny_imagenet(data_dir: str | os.PathLike[str] | None) -> Dataset:
    """Tiny-ImageNet-200: train (500 per class) and the official val set as test split."""
    root = find_root("tiny-imagenet", data_dir, ["tiny-imagenet-200", ""], "wnids.txt", EXPECTED)
    wnids_path, annotations = require_files("tiny-imagenet", root,
                                            ["wnids.txt", "val/val_annotations.txt"], EXPECTED)
    wnids = _read_wnids(wnids_path)
    train_paths, train_labels = _train_files(root, wnids)
    val_paths, val_labels = _val_files(root, annotations, wnids)
    return Dataset(name="tiny-imagenet",
                   train=to_split(_stack(train_paths), np.array(train_labels)),
                   test=to_split(_stack(val_paths), np.array(val_labels)),
                   class_names=_class_names(root, wnids), input_shape=(3, SIZE, SIZE))
