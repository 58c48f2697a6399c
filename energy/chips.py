"""Chip files: a neuromorphic chip's published limits and per-operation times, each with its source.

A chip file is JSON (``energy/chips/*.json`` for the built-ins ``loihi`` and ``loihi2``)::

    {"format": "slssnn-chip", "version": 1, "name": "loihi", "description": "...",
     "limits": {"neurons_per_core": {"value": 1024, "source": "Davies et al. ..."}, ...},
     "times_ns": {"synaptic_op": {"value": 3.5, "source": "..."}, ...}}

Every key of :data:`LIMITS` and :data:`TIMES_NS` must be present, each with a ``source``.
A ``value`` of ``null`` means *not public*: the planner then says the limit is not public
and does not check it (it never guesses one). Limits are counts > 0 (bits for the memory
and weight fields); times are nanoseconds >= 0. Validated like the device models
(:mod:`.devices`): a missing, unknown or negative field is refused with one line naming the
file and the field.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from slssnn.errors import SlssnnError
from slssnn.jsonfile import read_json

from .fields import Fail, check_header, failer, number, obj, string

CHIP_FORMAT = "slssnn-chip"
CHIP_VERSION = 1
BUILTIN_DIR = Path(__file__).parent / "chips"
BUILTIN_NAMES = ("loihi", "loihi2")

LIMITS: dict[str, str] = {
    "cores_per_chip": "cores",
    "neurons_per_core": "neurons (compartments)",
    "fan_in_axons_per_core": "input axons (distribution lists)",
    "fan_out_axons_per_core": "output axons (core-to-core edges)",
    "synaptic_memory_bits_per_core": "bits",
    "max_weight_bits": "bits",
    "max_delay_bits": "bits",
    "neurons_per_chip": "neurons",
    "synapses_per_chip": "synapses",
}
"""Limit key -> its unit."""

TIMES_NS: dict[str, str] = {
    "synaptic_op": "one synaptic operation (one spike delivered to one target neuron)",
    "neuron_update": "one neuron's update in one step",
    "spike_message": "one spike message from a core to one destination core",
    "barrier_sync": "the barrier synchronisation that ends every step",
}
"""Time key -> what it times (nanoseconds per event)."""

_TOP_KEYS = {"format", "version", "name", "description", "limits", "times_ns"}


@dataclass(frozen=True)
class Value:
    """One published constant: ``value`` (None: not public) and where it is from."""

    value: float | None
    source: str

    @property
    def public(self) -> bool:
        return self.value is not None


@dataclass(frozen=True)
class Chip:
    """A validated chip file; ``origin`` is the file it came from."""

    name: str
    description: str
    limits: dict[str, Value]
    times_ns: dict[str, Value]
    origin: str

    def limit(self, key: str) -> float | None:
        """The limit's value, or None when it is not public."""
        return self.limits[key].value

    def to_dict(self) -> dict[str, Any]:
        """The chip in its file form (what a plan stores beside its figures)."""
        def section(values: dict[str, Value]) -> dict[str, Any]:
            return {k: {"value": v.value, "source": v.source} for k, v in values.items()}
        return {"format": CHIP_FORMAT, "version": CHIP_VERSION, "name": self.name,
                "description": self.description, "limits": section(self.limits),
                "times_ns": section(self.times_ns)}


def load_chip(name_or_path: str | os.PathLike[str]) -> Chip:
    """A built-in chip by name (``loihi``, ``loihi2``) or the chip file at a path."""
    if str(name_or_path) in BUILTIN_NAMES:
        name_or_path = BUILTIN_DIR / f"{name_or_path}.json"
    path = Path(name_or_path)
    if not path.exists() and path.suffix != ".json":
        raise SlssnnError(f"unknown chip {str(name_or_path)!r}; built-in: "
                          f"{', '.join(BUILTIN_NAMES)}, or a chip file (.json)")
    return chip_from_dict(read_json(path, "chip file"), str(path))


def chip_from_dict(data: Any, origin: str) -> Chip:
    """Validate ``data`` (a parsed chip file) and build the chip; errors name ``origin``."""
    fail = failer("chip file", origin)
    check_header(data, fail, _TOP_KEYS, CHIP_FORMAT, CHIP_VERSION)
    limits = _values(data["limits"], "limits", LIMITS, fail, positive=True)
    times = _values(data["times_ns"], "times_ns", dict.fromkeys(TIMES_NS, "ns"), fail,
                    positive=False)
    return Chip(string(data["name"], "name", fail),
                string(data["description"], "description", fail), limits, times, origin)


def _values(value: Any, field: str, units: dict[str, str], fail: Fail,
            positive: bool) -> dict[str, Value]:
    section = obj(value, field, fail, set(units))
    values = {}
    for key, unit in units.items():
        where = f"{field}.{key}"
        entry = obj(section[key], where, fail, {"value", "source"})
        raw = entry["value"]
        amount = None if raw is None else number(raw, f"{where}.value", fail, unit, positive)
        values[key] = Value(amount, string(entry["source"], f"{where}.source", fail))
    return values
