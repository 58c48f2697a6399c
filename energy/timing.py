"""Time per step and latency per inference of a planned network, from a run's activity.

Loihi's cores run a step in parallel and then synchronise (a mesh-wide barrier), so a step
takes as long as its slowest core plus the barrier. A core's time per step, from its share of
its layer's activity per step (the run's per-inference counts / T, spread evenly over the
layer's neurons; ``share = neurons in the fullest core / neurons of the layer``):

.. math::

    t_{core} = share \\cdot (N_{synops} \\, t_{syn} + N_{spikes} \\, d \\, t_{msg})
               + n_{core} \\, t_{upd} \\quad \\text{[ns per step]}

with ``d`` the next-layer cores one spike is sent to (:mod:`.plan`), and

.. math::

    t_{step} = \\max_{cores} t_{core} + t_{barrier}, \\quad
    latency = (T + L - 1) \\, t_{step}, \\quad inferences/s = 1 / (T \\, t_{step})

where ``L`` is the number of layers: in netx every synapse delivers one step later, so layer
``i`` (input layer = 0) lags the input by ``i`` steps (``lava_runtime/lava_runner.py``) and
the last layer's window ends ``L - 1`` steps after the input's (the pipeline fill).
Back-to-back samples overlap in the pipeline (netx's ``reset_interval``), so the throughput
is one inference per ``T`` steps.
"""

from __future__ import annotations

from typing import Any

from slssnn.errors import SlssnnError

from .chips import TIMES_NS, Chip
from .estimate import per_inference_counts

NS = 1e-9

LEAVES_OUT = (
    "every step of an inference, the pipeline fill included, is timed as a step of "
    "back-to-back samples with every layer busy: one inference alone may finish sooner",
    "activity is the run's average per step, spread evenly over each layer's cores: steps "
    "with bursts of spikes, and cores with more active neurons, take longer",
    "every neuron update is timed as active (8.4 ns on Loihi; inactive: 5.3 ns)",
    "the per-operation times are pre-silicon simulations (Davies et al. 2018, Table 2, "
    "0.75 V); the synaptic-op time is the published maximum",
    "spike routing is one within-tile message time per (spike, destination core): tile "
    "hops (4.1 / 6.5 ns), congestion in the network-on-chip and chip-to-chip links are not "
    "modelled",
    "the barrier is the single-chip upper figure; synchronising several chips takes "
    "microseconds (Frady et al. 2020: 14.3-16.2 us on 256-768 chips) and is not included",
    "host input and output (input currents, reading the output spikes) and the embedded x86 "
    "cores are not included",
)


def estimate_timing(plan: dict[str, Any], run: dict[str, Any], chip: Chip) -> dict[str, Any]:
    """The timing of ``plan`` (from :func:`.plan.plan_network`) with ``run``'s activity.

    Returns ``{"estimated": False, "reason": ...}`` when it cannot be estimated (a time or
    a core count that is not public, or a network that cannot be placed), else
    ``estimated: True`` with ``time_per_step_s``, ``latency_s``, ``inferences_per_s``,
    ``steps_per_inference``, ``slowest`` (layer and its core's seconds per step),
    ``layers`` (each layer's fullest core: synaptic, message, update and total seconds per
    step), ``times_ns`` (the constants used, with sources) and ``leaves_out``.
    """
    missing = [key for key in TIMES_NS if not chip.times_ns[key].public]
    if missing:
        return {"estimated": False, "chip": chip.name,
                "reason": f"{chip.name}: per-operation times not public "
                          f"({', '.join(missing)})"}
    if not plan["placeable"]:
        return {"estimated": False, "chip": chip.name,
                "reason": "the network cannot be placed: " + "; ".join(plan["problems"])}
    if plan["total_cores"] is None:
        return {"estimated": False, "chip": chip.name,
                "reason": f"{chip.name}: cores per layer cannot be computed (per-core limits "
                          "not public)"}
    counts = per_inference_counts(run)["layers"]
    _check_same_network(plan, counts, run)
    t = {key: chip.times_ns[key].value for key in TIMES_NS}
    steps = run["timesteps"]
    layers = [_core_time(layer, count, steps, t) for layer, count in
              zip(plan["layers"], counts, strict=True)]
    slowest = max(layers, key=lambda x: x["core_s"])
    step_s = slowest["core_s"] + t["barrier_sync"] * NS
    fill = len(plan["layers"]) - 1
    return {"estimated": True, "chip": chip.name, "timesteps": steps, "pipeline_fill_steps": fill,
            "steps_per_inference": steps + fill, "time_per_step_s": step_s,
            "barrier_s": t["barrier_sync"] * NS,
            "slowest": {"layer": slowest["name"], "core_s": slowest["core_s"]},
            "latency_s": (steps + fill) * step_s, "inferences_per_s": 1.0 / (steps * step_s),
            "layers": layers,
            "times_ns": {k: {"value": v.value, "source": v.source}
                         for k, v in chip.times_ns.items()},
            "leaves_out": list(LEAVES_OUT)}


def _check_same_network(plan: dict[str, Any], counts: list[dict[str, Any]],
                        run: dict[str, Any]) -> None:
    names = [(x["name"], x["neurons"]) for x in plan["layers"]]
    ran = [(x["name"], x["neurons"]) for x in counts]
    if names != ran:
        raise SlssnnError(f"run of {run['network']} does not match network {plan['network']}: "
                          f"layers {ran} vs {names}")


def _core_time(layer: dict[str, Any], count: dict[str, Any], steps: int,
               t: dict[str, float]) -> dict[str, Any]:
    """Seconds per step of the layer's fullest core."""
    n_core = layer["per_core"]["neurons"]
    share = n_core / layer["neurons"]
    synaptic = share * count["synops"] / steps * t["synaptic_op"]
    messages = share * count["spikes"] / steps * layer["dest_cores"] * t["spike_message"]
    updates = n_core * t["neuron_update"]
    return {"name": layer["name"], "neurons_in_core": n_core, "synaptic_s": synaptic * NS,
            "message_s": messages * NS, "update_s": updates * NS,
            "core_s": (synaptic + messages + updates) * NS}
