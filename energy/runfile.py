"""Read and check the run JSON that ``slssnn run`` writes: the activity counts energy starts from.

Fields this stage needs (others, e.g. ``predictions`` or ``wall_seconds``, pass through)::

    backend     "lava" | "emulator" | "pytorch"   the engine that produced the counts
    network, dataset                               strings
    samples, timesteps                             integers > 0
    accuracy                                       number in [0, 1], or null (a run on an
                                                   input array without labels)
    layers[i]   name, type (strings); neurons, spikes, synops, neuron_updates, ann_macs
                (numbers >= 0); shape (optional list of integers)

``spikes``, ``synops`` and ``neuron_updates`` are totals over all ``samples``; ``ann_macs``
is per inference. An optional ``version`` (absent: 1) must be one this slssnn reads. A bad
field raises :class:`SlssnnError` naming the file and the field.

Records of one network from different engines must have identical counts:
:func:`check_identical` refuses any difference (a difference is a bug, not a tolerance).
"""

from __future__ import annotations

import math
import os
from pathlib import Path
from typing import Any

from slssnn.errors import SlssnnError
from slssnn.jsonfile import read_json

BACKENDS = ("lava", "emulator", "pytorch")
LAYER_COUNTS = ("neurons", "spikes", "synops", "neuron_updates", "ann_macs")
RUN_VERSIONS = (1,)


def load_run(path: str | os.PathLike[str]) -> dict[str, Any]:
    """Read the run JSON at ``path`` and check the fields energy uses; return it as a dict."""
    path = Path(path)
    run = read_json(path, "run")
    validate_run(run, str(path))
    return run


def validate_run(run: Any, origin: str = "run") -> None:
    """Raise SlssnnError (``"run ORIGIN: field 'F' ..."``) unless ``run`` has usable counts."""
    def fail(field: str, problem: str):
        raise SlssnnError(f"run {origin}: field '{field}' {problem}")

    if not isinstance(run, dict):
        raise SlssnnError(f"run {origin}: must be a JSON object")
    if run.get("version", 1) not in RUN_VERSIONS:
        fail("version", f"is {run['version']!r}: a run record of another slssnn version; "
                        f"this one reads {', '.join(map(str, RUN_VERSIONS))}")
    for key in ("backend", "network", "dataset", "samples", "timesteps", "accuracy", "layers"):
        if key not in run:
            fail(key, "is missing")
    if run["backend"] not in BACKENDS:
        fail("backend", f"is an unknown backend {run['backend']!r}; "
                        f"known: {', '.join(BACKENDS)}")
    for key in ("network", "dataset"):
        if not isinstance(run[key], str):
            fail(key, "must be a string")
    for key in ("samples", "timesteps"):
        if isinstance(run[key], bool) or not isinstance(run[key], int) or run[key] <= 0:
            fail(key, f"must be an integer > 0, not {run[key]!r}")
    if run["accuracy"] is not None and (not _number(run["accuracy"])
                                        or not 0 <= run["accuracy"] <= 1):
        fail("accuracy", f"must be a number in [0, 1] or null, not {run['accuracy']!r}")
    layers = run["layers"]
    if not isinstance(layers, list) or not layers:
        fail("layers", "must be a non-empty list")
    for i, layer in enumerate(layers):
        _check_layer(layer, f"layers[{i}]", fail)


def _check_layer(layer: Any, field: str, fail) -> None:
    if not isinstance(layer, dict):
        fail(field, "must be a JSON object")
    for key in ("name", "type", *LAYER_COUNTS):
        if key not in layer:
            fail(f"{field}.{key}", "is missing")
    for key in ("name", "type"):
        if not isinstance(layer[key], str):
            fail(f"{field}.{key}", "must be a string")
    for key in LAYER_COUNTS:
        if not _number(layer[key]):
            fail(f"{field}.{key}", f"must be a number, not {layer[key]!r}")
        if layer[key] < 0:
            fail(f"{field}.{key}", f"must not be negative ({layer[key]})")
    shape = layer.get("shape")
    if shape is not None and not (isinstance(shape, list)
                                  and all(isinstance(n, int) for n in shape)):
        fail(f"{field}.shape", f"must be a list of integers, not {shape!r}")


def _number(value: Any) -> bool:
    return (not isinstance(value, bool) and isinstance(value, int | float)
            and math.isfinite(value))


def check_identical(run: dict[str, Any], other: dict[str, Any], origin: str,
                    other_origin: str) -> None:
    """Raise SlssnnError unless ``other`` (another engine's record of the same network and
    samples) has exactly ``run``'s samples, timesteps and per-layer counts."""
    where = (f"runs {origin} ({run['backend']}) and {other_origin} ({other['backend']}) "
             "disagree")
    for key in ("dataset", "samples", "timesteps", "predictions"):
        if key == "predictions" and (key not in run or key not in other):
            continue
        if run[key] != other[key]:
            if key == "predictions":
                diff = sum(a != b for a, b in zip(run[key], other[key], strict=False))
                raise SlssnnError(f"{where}: field 'predictions' differs in {diff} samples")
            raise SlssnnError(f"{where}: field '{key}' {run[key]!r} vs {other[key]!r}")
    if len(run["layers"]) != len(other["layers"]):
        raise SlssnnError(f"{where}: {len(run['layers'])} layers vs {len(other['layers'])}")
    for i, (a, b) in enumerate(zip(run["layers"], other["layers"], strict=True)):
        for key in ("name", "type", *LAYER_COUNTS):
            if a[key] != b[key]:
                raise SlssnnError(f"{where}: field 'layers[{i}].{key}' ({a['name']}) "
                                  f"{a[key]!r} vs {b[key]!r}")
