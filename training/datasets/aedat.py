"""jAER AER-DAT 2.0 files (the format CIFAR10-DVS is distributed in), read with numpy.

A file starts with ASCII header lines that begin with ``#`` (the first is
``#!AER-DAT2.0``), followed by 8-byte records: a big-endian uint32 address,
then a big-endian uint32 timestamp (microseconds). The meaning of the address
bits depends on the sensor; see :mod:`.dvs_cifar10` for the DVS128 layout.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import NamedTuple

import numpy as np

from slssnn.errors import SlssnnError

MAGIC = b"#!AER-DAT"
RECORD_BYTES = 8


class RawEvents(NamedTuple):
    """Raw records of one file: ``address`` and ``timestamp`` uint32 ``(N,)``; ``data_offset``
    is the byte offset of the first record."""

    address: np.ndarray
    timestamp: np.ndarray
    data_offset: int


def header_end(path: Path, raw: bytes) -> int:
    """Byte offset just past the ``#`` header lines; checks the AER-DAT 2.x magic."""
    if not raw.startswith(MAGIC):
        raise SlssnnError(f"{path}: not an AER-DAT file (byte offset 0: expected "
                          f"{MAGIC.decode()!r}, found {raw[:12]!r})")
    version = raw[len(MAGIC):len(MAGIC) + 2]
    if version != b"2.":
        raise SlssnnError(f"{path}: AER-DAT version {version!r} at byte offset {len(MAGIC)} "
                          "is not supported (expected 2.0)")
    pos = 0
    while raw[pos:pos + 1] == b"#":
        newline = raw.find(b"\n", pos)
        if newline < 0:
            raise SlssnnError(f"{path}: header line at byte offset {pos} never ends")
        try:
            raw[pos:newline].decode("ascii")
        except UnicodeDecodeError:
            break  # a record whose first byte happens to be '#': the data has started
        pos = newline + 1
    return pos


def read_aedat2(path: str | os.PathLike[str]) -> RawEvents:
    """All records of an AER-DAT 2.0 file; a damaged file names the file and the byte offset."""
    path = Path(path)
    try:
        raw = path.read_bytes()
    except OSError as exc:
        raise SlssnnError(f"{path}: cannot read ({exc.strerror})") from None
    start = header_end(path, raw)
    body = len(raw) - start
    if body % RECORD_BYTES:
        cut = start + body - body % RECORD_BYTES
        raise SlssnnError(f"{path}: truncated event record at byte offset {cut} "
                          f"({body % RECORD_BYTES} of {RECORD_BYTES} bytes)")
    if body == 0:
        raise SlssnnError(f"{path}: no events after the header (byte offset {start})")
    words = np.frombuffer(raw, dtype=">u4", offset=start).astype(np.uint32)
    return RawEvents(words[0::2], words[1::2], start)
