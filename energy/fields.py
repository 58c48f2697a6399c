"""Field checks shared by the data files of this stage (device models, chip files).

Each check raises :class:`SlssnnError` through a ``fail(field, problem)`` callable made by
:func:`failer`, so every refusal is one line naming the file and the field, e.g.
``chip file my.json: field 'limits.neurons_per_core.value' must not be negative (-1)``.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any, NoReturn

from slssnn.errors import SlssnnError

Fail = Callable[[str, str], NoReturn]


def failer(kind: str, origin: str) -> Fail:
    """A ``fail(field, problem)`` that raises ``SlssnnError("KIND ORIGIN: field 'F' PROBLEM")``."""
    def fail(field: str, problem: str) -> NoReturn:
        where = f"field '{field}' " if field else ""
        raise SlssnnError(f"{kind} {origin}: {where}{problem}")
    return fail


def check_header(data: Any, fail: Fail, keys: set[str], file_format: str, version: int) -> None:
    """``data`` is an object with exactly ``keys``, of ``file_format`` and ``version``."""
    if not isinstance(data, dict):
        fail("", "must be a JSON object")
    for key in sorted(keys - data.keys()):
        fail(key, "is missing")
    for key in sorted(data.keys() - keys):
        fail(key, f"is not a field of this file; known: {', '.join(sorted(keys))}")
    if data["format"] != file_format:
        fail("format", f"must be {file_format!r}, not {data['format']!r}")
    if data["version"] != version:
        fail("version", f"unsupported version {data['version']!r}; this slssnn reads {version}")


def string(value: Any, field: str, fail: Fail) -> str:
    """A non-empty string."""
    if not isinstance(value, str) or not value.strip():
        fail(field, "must be a non-empty string")
    return value


def obj(value: Any, field: str, fail: Fail, keys: set[str]) -> dict[str, Any]:
    """A JSON object with exactly ``keys``."""
    if not isinstance(value, dict):
        fail(field, "must be a JSON object")
    for key in sorted(keys - value.keys()):
        fail(f"{field}.{key}", "is missing")
    for key in sorted(value.keys() - keys):
        fail(f"{field}.{key}", f"is not allowed here; known: {', '.join(sorted(keys))}")
    return value


def number(value: Any, field: str, fail: Fail, unit: str, positive: bool = False) -> float:
    """A finite number >= 0 (> 0 with ``positive``); ``unit`` names it in the message."""
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        fail(field, f"must be a number of {unit}, not {value!r}")
    if value < 0:
        fail(field, f"must not be negative ({value} {unit})")
    if positive and value == 0:
        fail(field, f"must be > 0 {unit}")
    return float(value)
