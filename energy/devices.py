"""Device energy models: per-operation energies (pJ) and the formulas that use them, as data.

A device model is a JSON file (``energy/devices/*.json`` for the built-ins)::

    {"format": "slssnn-energy-device", "version": 1,
     "name": "loihi", "description": "...",
     "constants": {"synaptic_op": {"value_pj": 23.6, "source": "Davies et al. ..."}, ...},
     "formulas": {"snn": {"label": "SNN",
                          "terms": [{"count": "synops", "constant": "synaptic_op"}, ...]},
                  "ann": {...}}}

A formula's energy per inference is a sum of terms, each ``count per inference x value_pj``:

.. math::

    E_f = \\sum_{(c, k) \\in f} N_c \\cdot e_k \\quad \\text{[pJ per inference]}

``snn`` formulas charge the spiking network's counts (``synops``, ``neuron_updates``,
``spikes``); ``ann`` formulas charge its ANN twin's (``ann_macs``). A constant that no term
uses is kept for reference (e.g. Loihi's inactive-neuron and tile-hop energies). Every
constant carries its source; a file without one is refused.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from slssnn.jsonfile import read_json

from .fields import Fail, check_header, failer, number, obj, string

DEVICE_FORMAT = "slssnn-energy-device"
DEVICE_VERSION = 1
BUILTIN_DIR = Path(__file__).parent / "devices"
BUILTIN_NAMES = ("loihi", "loihi-keras-spiking", "horowitz45nm")

# formula key -> (default label, the counts its terms may use)
NETWORK_COUNTS: dict[str, tuple[str, tuple[str, ...]]] = {
    "snn": ("SNN", ("synops", "neuron_updates", "spikes")),
    "ann": ("ANN twin", ("ann_macs",)),
}
COUNTS = ("synops", "neuron_updates", "spikes", "ann_macs")

_TOP_KEYS = {"format", "version", "name", "description", "constants", "formulas"}


@dataclass(frozen=True)
class Constant:
    """One per-operation energy: ``value_pj`` picojoules per operation, and where it is from."""

    value_pj: float
    source: str


@dataclass(frozen=True)
class Term:
    """One formula term: charge each ``count`` (per inference) with ``constant``'s energy."""

    count: str
    constant: str


@dataclass(frozen=True)
class Formula:
    """A sum of terms; ``label`` names it in reports (e.g. ``"SNN (AC)"``)."""

    label: str
    terms: tuple[Term, ...]


@dataclass(frozen=True)
class DeviceModel:
    """A validated device model; ``origin`` is the file it came from."""

    name: str
    description: str
    constants: dict[str, Constant]
    formulas: dict[str, Formula]
    origin: str

    def to_dict(self) -> dict[str, Any]:
        """The model in its file form (what the report stores beside the estimate)."""
        return {
            "format": DEVICE_FORMAT,
            "version": DEVICE_VERSION,
            "name": self.name,
            "description": self.description,
            "constants": {k: {"value_pj": c.value_pj, "source": c.source}
                          for k, c in self.constants.items()},
            "formulas": {k: {"label": f.label,
                             "terms": [{"count": t.count, "constant": t.constant}
                                       for t in f.terms]}
                         for k, f in self.formulas.items()},
        }


def load_device_model(path: str | os.PathLike[str]) -> DeviceModel:
    """Read and validate the device model JSON at ``path``; raise SlssnnError naming the field."""
    path = Path(path)
    data = read_json(path, "device model")
    return device_model_from_dict(data, str(path))


def builtin_models() -> dict[str, DeviceModel]:
    """The built-in models by name: ``loihi``, ``loihi-keras-spiking``, ``horowitz45nm``.

    There is no ``loihi2`` model: Loihi 2 has no public per-operation energy table.
    """
    return {name: load_device_model(BUILTIN_DIR / f"{name}.json") for name in BUILTIN_NAMES}


def device_model_from_dict(data: Any, origin: str) -> DeviceModel:
    """Validate ``data`` (a parsed device file) and build the model; errors name ``origin``."""
    fail = failer("device model", origin)
    check_header(data, fail, _TOP_KEYS, DEVICE_FORMAT, DEVICE_VERSION)
    name = string(data["name"], "name", fail)
    description = string(data["description"], "description", fail)
    constants = _constants(data["constants"], fail)
    formulas = _formulas(data["formulas"], constants, fail)
    return DeviceModel(name, description, constants, formulas, origin)


def _constants(value: Any, fail: Fail) -> dict[str, Constant]:
    if not isinstance(value, dict) or not value:
        fail("constants", "must be a non-empty JSON object")
    constants = {}
    for key, entry in value.items():
        field = f"constants.{key}"
        entry = obj(entry, field, fail, {"value_pj", "source"})
        pj = number(entry["value_pj"], f"{field}.value_pj", fail, "pJ")
        constants[key] = Constant(pj, string(entry["source"], f"{field}.source", fail))
    return constants


def _formulas(value: Any, constants: dict[str, Constant], fail) -> dict[str, Formula]:
    if not isinstance(value, dict) or not value:
        fail("formulas", "must be a non-empty JSON object")
    formulas = {}
    for key, entry in value.items():
        if key not in NETWORK_COUNTS:
            fail(f"formulas.{key}", f"is an unknown network; known: {', '.join(NETWORK_COUNTS)}")
        default_label, allowed = NETWORK_COUNTS[key]
        if isinstance(entry, dict) and "label" not in entry:
            entry = {**entry, "label": default_label}
        entry = obj(entry, f"formulas.{key}", fail, {"label", "terms"})
        label = string(entry["label"], f"formulas.{key}.label", fail)
        terms = entry["terms"]
        if not isinstance(terms, list) or not terms:
            fail(f"formulas.{key}.terms", "must be a non-empty list")
        formulas[key] = Formula(label, tuple(
            _term(t, f"formulas.{key}.terms[{i}]", allowed, constants, fail)
            for i, t in enumerate(terms)))
    return formulas


def _term(value: Any, field: str, allowed: tuple[str, ...], constants: dict[str, Constant],
          fail) -> Term:
    value = obj(value, field, fail, {"count", "constant"})
    count, constant = value["count"], value["constant"]
    if not isinstance(count, str) or count not in COUNTS:
        fail(f"{field}.count", f"is an unknown count {count!r}; known: {', '.join(COUNTS)}")
    if count not in allowed:
        fail(f"{field}.count", f"is {count!r}, not a count of this network; "
                               f"known: {', '.join(allowed)}")
    if not isinstance(constant, str) or constant not in constants:
        fail(f"{field}.constant", f"is an unknown constant {constant!r}; "
                                  f"known: {', '.join(constants)}")
    return Term(count, constant)
