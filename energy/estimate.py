"""Counts per inference, and the energy a device model gives them, per layer and in total.

With ``S`` samples and ``T`` timesteps, a layer's counts per inference are

.. math::

    N_{spikes} = spikes / S, \\quad N_{synops} = synops / S, \\quad
    N_{updates} = neuron\\_updates / S, \\quad N_{macs} = ann\\_macs

(``ann_macs`` is already per inference), its firing rate is
``spikes / (neurons * T * S)`` (spikes per neuron per timestep), and a formula's energy is
``sum over terms of N_count * value_pj`` picojoules per inference (``x 1e-12`` for joules).
"""

from __future__ import annotations

from typing import Any

from .devices import COUNTS, DeviceModel, Formula
from .runfile import validate_run

PJ_PER_J = 1e12


def per_inference_counts(run: dict[str, Any]) -> dict[str, Any]:
    """Per-layer and total counts per inference of a run dict, with per-layer firing rates.

    Returns ``{"layers": [{"name", "type", "shape", "neurons", "firing_rate", "spikes",
    "synops", "neuron_updates", "ann_macs"}, ...], "total": {count: value}}``; counts are
    per inference, ``firing_rate`` is spikes per neuron per timestep (None for 0 neurons).
    """
    validate_run(run)
    samples, timesteps = run["samples"], run["timesteps"]
    layers = []
    for layer in run["layers"]:
        slots = layer["neurons"] * timesteps * samples
        entry = {"name": layer["name"], "type": layer["type"], "shape": layer.get("shape"),
                 "neurons": layer["neurons"],
                 "firing_rate": layer["spikes"] / slots if slots else None}
        for count in COUNTS:
            per_run = layer[count]
            entry[count] = float(per_run) if count == "ann_macs" else per_run / samples
        layers.append(entry)
    total = {count: sum(layer[count] for layer in layers) for count in COUNTS}
    return {"layers": layers, "total": total}


def estimate(run: dict[str, Any], model: DeviceModel) -> dict[str, Any]:
    """Energy per inference of ``run`` under ``model``, for each of its formulas.

    Returns ``{"model": name, "formulas": {key: {"label", "pj", "j", "terms", "layers"}}}``
    where ``pj``/``j`` are the total picojoules/joules per inference, ``terms`` lists each
    term (count name, per-inference count, constant name, ``value_pj``, ``pj``, ``j``), and
    ``layers`` gives each layer's ``pj``, ``j``, ``share`` (of the total; None if it is 0)
    and its terms.
    """
    counts = per_inference_counts(run)
    return {"model": model.name,
            "formulas": {key: _formula_energy(counts, model, formula)
                         for key, formula in model.formulas.items()}}


def _formula_energy(counts: dict[str, Any], model: DeviceModel,
                    formula: Formula) -> dict[str, Any]:
    total_terms = _terms(counts["total"], model, formula)
    total_pj = sum(t["pj"] for t in total_terms)
    layers = []
    for layer in counts["layers"]:
        terms = _terms(layer, model, formula)
        pj = sum(t["pj"] for t in terms)
        layers.append({"name": layer["name"], "pj": pj, "j": pj / PJ_PER_J,
                       "share": pj / total_pj if total_pj else None, "terms": terms})
    return {"label": formula.label, "pj": total_pj, "j": total_pj / PJ_PER_J,
            "terms": total_terms, "layers": layers}


def _terms(counts: dict[str, float], model: DeviceModel, formula: Formula) -> list[dict]:
    out = []
    for term in formula.terms:
        value_pj = model.constants[term.constant].value_pj
        pj = counts[term.count] * value_pj
        out.append({"count": term.count, "per_inference": counts[term.count],
                    "constant": term.constant, "value_pj": value_pj,
                    "pj": pj, "j": pj / PJ_PER_J})
    return out
