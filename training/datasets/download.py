"""``--download``: fetch a dataset's official files with torchvision, where it can.

torchvision is optional (PyPI's torchvision does not load beside the CPU
torch 2.13.0 of this project's environment); without it, or without network,
``--download`` fails with one line that says what to put under ``--data-dir``.
"""

from __future__ import annotations

import os
from pathlib import Path

from slssnn.errors import SlssnnError

_TORCHVISION = {"mnist": "MNIST", "fashion-mnist": "FashionMNIST", "cifar10": "CIFAR10",
                "cifar100": "CIFAR100"}


def download(name: str, data_dir: str | os.PathLike[str] | None, expected: str) -> None:
    """Download ``name``'s official files into ``data_dir`` (torchvision's layout)."""
    if name not in _TORCHVISION:
        raise SlssnnError(f"--download: torchvision has no downloader for {name!r}; put "
                          f"{expected} under --data-dir yourself")
    if data_dir is None:
        raise SlssnnError("--download needs --data-dir DIR to download into")
    try:
        import torchvision.datasets as tvd
    except Exception as exc:  # ImportError, or a torchvision built for another torch
        raise SlssnnError(f"--download needs torchvision, which cannot be imported here "
                          f"({exc.__class__.__name__}); put {expected} under --data-dir "
                          "instead") from None
    root = Path(data_dir)
    root.mkdir(parents=True, exist_ok=True)
    dataset = getattr(tvd, _TORCHVISION[name])
    try:
        for train in (True, False):
            dataset(str(root), train=train, download=True)
    except Exception as exc:  # urllib, http and checksum errors
        raise SlssnnError(f"--download {name}: failed ({exc.__class__.__name__}: {exc}); put "
                          f"{expected} under --data-dir instead".splitlines()[0]) from None
