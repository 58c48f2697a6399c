"""Keep glibc's freed memory in the process (a training-speed setting, Linux/glibc only).

By default glibc serves blocks above a dynamic threshold with ``mmap`` and
trims the top of its heap: a training step that allocates and frees tensors of
megabytes then pays page faults on every step (several milliseconds per step
of the digits network on one CPU thread, growing over a run). :func:`keep_heap`
raises the ``mmap`` threshold to 32 MiB and keeps up to 1 GiB of freed heap
(``mallopt``); the setting is process-wide and changes no result. Elsewhere
(no glibc, e.g. macOS, Windows, musl) it does nothing.
"""

from __future__ import annotations

import ctypes
import sys

M_TRIM_THRESHOLD, M_TOP_PAD, M_MMAP_THRESHOLD = -1, -2, -3
SETTINGS = ((M_MMAP_THRESHOLD, 32 << 20), (M_TRIM_THRESHOLD, 1 << 30), (M_TOP_PAD, 64 << 20))
"""``mallopt`` options and values (bytes)."""


def keep_heap() -> str:
    """Apply :data:`SETTINGS` with glibc's ``mallopt``; say what was done (one line)."""
    if not sys.platform.startswith("linux"):
        return "default allocator (not Linux)"
    try:
        libc = ctypes.CDLL("libc.so.6")
        mallopt = libc.mallopt
    except (OSError, AttributeError):
        return "default allocator (no glibc)"
    ok = all(mallopt(option, value) == 1 for option, value in SETTINGS)
    return "glibc heap kept (mallopt)" if ok else "default allocator (mallopt refused)"
