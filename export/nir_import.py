"""NIR graph -> netx network on Loihi's fixed-point grid, with a quantization report.

The graph must be a chain that netx can run::

    Input -> [neuron]                               becomes netx's 'input' layer
          -> { linear nodes -> neuron }             one netx block each
          -> Output

with neurons IF, LIF or CubaLIF (:mod:`.nir_map`), each optionally after an
``LI`` node: an LI immediately followed by a spiking node is one CUBA layer,
the LI being its decaying current (:func:`.nir_map.neuron_pair_from_nir`);
an LI followed by anything else is refused. The linear nodes in front of a
neuron are either one synapse as netx has it (``[Flatten] [Delay] Conv2d |
Affine | Linear [Delay]``; a Delay before an Affine delays its inputs, after
it its outputs: netx DelayDense, steps = delay / dt) or any chain of
``Conv2d``, ``SumPool2d``, ``AvgPool2d``, ``Flatten``, ``Affine``, ``Linear``,
``Scale``, which :func:`.nir_fold.fold_linear_chain` folds exactly into one
conv or dense. A neuron with its own ``Affine``/``Linear`` loop (``N -> R ->
N``, the NIR paper's ``lif1.lif -> lif1.w_rec -> lif1.lif``) becomes a netx
``dense_rec`` layer with ``weight_rec = R``: the loop carries the previous
step's spikes, which is what netx's RecurrentDense delivers (docs/nir.md).
A Conv2d straight after the Input gets a pass-through input layer (IF,
threshold 0: binary input spikes pass unchanged); an Affine/Linear straight
after the Input receives the input as (graded) spikes.

Per block the synapse and neuron fold into one integer layer: per-step gain
into the weights (feed-forward and recurrent alike), per-neuron thresholds
into the weights when they differ, ``v_leak`` into the neuron bias. If the
result is already on the Loihi grid (even integer weights in [-256, 254],
integer threshold and bias in range) it is written exactly; else it is
quantized with the function training uses
(:func:`slssnn.training.quantize.quantize_block`: per-layer scale 254 / max|w|,
``weight`` and ``weight_rec`` together) and the error is reported per layer.

A synaptic bias into a decaying current (CubaLIF with ``tau_syn > dt``, LI +
spiking node) is not a constant voltage bias, which is all a netx neuron has; it
is the input of a source that fires at every step. Into the first block (a flat
spike input) it becomes the weights of one more input channel, 1 at every step
(``input_encoding.bias_channel``, appended by :func:`slssnn.lava_runtime.
simulate.simulate`); into a later dense block, the weights from a clock neuron
appended to the dense layer before it (no input, ``bias = vThMant + 1``).

Refused, with the node named: loops other than a neuron's own Affine/Linear
(and recurrence on a conv or the input layer), nested graphs, folds that are
not exact or whose weights span more than 8 bits, non-zero ``v_reset`` or a
subtractive reset recorded in node metadata, decays that differ between
neurons of a layer, a bias filtered by a decaying current where no always-on
source can carry it (above), an LI not followed by a spiking node or followed
by a CubaLIF that filters again, delays on conv layers, inside a fold or off
the step grid, and any node type netx does not run.
"""

from __future__ import annotations

import dataclasses
import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch

from slssnn.errors import SlssnnError
from slssnn.training.fixed_point import (
    BIAS_MAX,
    BIAS_MIN,
    DECAY_UNITY,
    THRESHOLD_MAX,
    WEIGHT_MAX,
    WEIGHT_MIN,
    WEIGHT_STEP,
)
from slssnn.training.quantize import quantize_block

from . import schema as S
from .netx_reader import CubaNeuron, LayerSpec, NetxNetwork
from .netx_writer import write_network
from .nir_export import FORMAT_KEY, NETX_KEY, SLSSNN_KEY
from .nir_fold import LINEAR_NODES, chain_macs, conv_geometry, fold_linear_chain, folds_to_conv
from .nir_map import (
    DEFAULT_DT,
    DT_KEY,
    NEURON_NODES,
    NeuronFloat,
    neuron_from_nir,
    neuron_pair_from_nir,
)

SYNAPSE_NODES = ("Conv2d", "Affine", "Linear")
RECURRENT_NODES = ("Affine", "Linear")
"""A neuron's own recurrent synapse (netx dense_rec's ``weight_rec``)."""
EXACT_TOLERANCE = 1e-6
"""Relative distance to an integer below which a folded parameter counts as on the grid."""
INPUT_SCALE_BITS = 12
"""The input layer's scale is a power of two up to 2**12 (exact if one makes it integer)."""
INPUT_THRESHOLD_TARGET = 1 << 10
"""Else the scale that puts the input layer's threshold near 2**10."""
CURRENT_NODE = "LI"
"""A leaky integrator: mapped as the current of a CUBA layer when a spiking node follows it."""
LI_ALONE = ("a non-spiking leaky integrator: Loihi's CUBA neuron always fires (an LI maps "
            "only as the current of the spiking node right after it: IF, LIF or CubaLIF)")
REFUSED = {
    "Conv1d": "1-D convolution has no netx layer",
    "CubaLI": "a non-spiking leaky integrator: Loihi's CUBA neuron always fires",
    "I": "a non-spiking integrator: Loihi's CUBA neuron always fires",
    "Threshold": "a stateless threshold has no netx neuron",
    "NIRGraph": "a nested graph (snnTorch writes recurrent RLeaky/RSynaptic layers so); "
                "flatten it: a neuron with its own Affine/Linear loop maps to netx dense_rec",
}


@dataclass
class Conversion:
    """A converted network and one quantization record per netx block (see :func:`_quantize`)."""

    network: NetxNetwork
    report: list[dict[str, Any]] = field(default_factory=list)

    def format_report(self) -> str:
        """The per-layer report as a table (one line per block)."""
        lines = [f"{'layer':>5} {'nodes':24} {'exact':>5} {'scale':>10} {'w max err':>9} "
                 f"{'w rms rel':>9} {'vth':>7} {'vth rel err':>11} {'clipped w/b':>11} "
                 f"{'iDecay':>7} {'vDecay':>7}"]
        for r in self.report:
            lines.append(
                f"{r['layer']:>5} {','.join(r['nodes'])[:24]:24} "
                f"{'yes' if r['exact'] else 'no':>5} {r['scale']:>10.4g} "
                f"{r['weight_max_abs_error']:>9.3g} {r['weight_rms_rel_error']:>9.3g} "
                f"{r['threshold_int']:>7} {r['threshold_rel_error']:>11.3g} "
                f"{r['weights_clipped']:>5}/{r['bias_clipped']:<5} "
                f"{r['i_decay']:>7} {r['v_decay']:>7}")
        for r in self.report:
            if "current_bias" in r:
                lines.append(f"layer {r['layer']}: the bias its decaying current filters is "
                             f"weight column {r['current_bias']['column']}, from "
                             f"{r['current_bias']['from']}")
            if "clock_neuron" in r:
                lines.append(f"layer {r['layer']}: neuron {r['clock_neuron']} is a clock (bias "
                             "above threshold, no input): it fires at every step")
        return "\n".join(lines)


def _kind(node: Any) -> str:
    return type(node).__name__


def _refuse(name: str, node: Any, why: str) -> SlssnnError:
    return SlssnnError(f"NIR node '{name}' ({_kind(node)}): {why}")


def _recurrent_edges(graph: Any) -> dict[str, tuple[str, Any]]:
    """Self-recurrent synapses: ``{neuron: (synapse name, node)}``.

    The pattern is a neuron node ``N`` with edges ``N -> R`` and ``R -> N``,
    ``R`` an ``Affine`` or ``Linear`` with no other edge (the NIR paper's
    ``lif1.lif -> lif1.w_rec -> lif1.lif``): netx's ``dense_rec``.
    """
    nodes, found = graph.nodes, {}
    for a, b in graph.edges:
        if _kind(nodes.get(b)) not in RECURRENT_NODES or (b, a) not in graph.edges:
            continue
        touching = [e for e in graph.edges if b in e]
        if _kind(nodes.get(a)) in NEURON_NODES and len(touching) == 2:
            if a in found:
                raise _refuse(a, nodes[a], f"has two recurrent synapses ('{found[a][0]}', "
                              f"'{b}'); netx's dense_rec has one")
            found[a] = (b, nodes[b])
    return found


def _chain(graph: Any) -> tuple[list[tuple[str, Any]], dict[str, tuple[str, Any]]]:
    """The nodes from Input to Output in order, and the recurrent synapses per neuron.

    Refuses anything that is not one chain once the self-recurrent synapses
    (:func:`_recurrent_edges`) are set aside.
    """
    nodes, succ = graph.nodes, {}
    indegree = dict.fromkeys(nodes, 0)
    for name, node in nodes.items():
        if _kind(node) == "NIRGraph":
            raise _refuse(name, node, REFUSED["NIRGraph"])
    for a, b in graph.edges:
        for end in (a, b):
            if end not in nodes:
                raise SlssnnError(f"NIR graph: edge ({a!r}, {b!r}) names an unknown node "
                                  f"'{end}'")
    recurrent = _recurrent_edges(graph)
    skip = {r for r, _ in recurrent.values()}
    edges = [(a, b) for a, b in dict.fromkeys(graph.edges) if a not in skip and b not in skip]
    for a, b in edges:
        if a == b or a in _reachable(edges, b):
            raise SlssnnError(f"NIR graph: edge '{a}' -> '{b}' closes a loop that is not a "
                              "neuron's own recurrent Affine/Linear (neuron -> synapse -> the "
                              "same neuron, netx dense_rec); netx runs feed-forward chains")
        succ.setdefault(a, []).append(b)
        indegree[b] += 1
    starts = [n for n, v in nodes.items() if _kind(v) == "Input"]
    if len(starts) != 1:
        raise SlssnnError(f"NIR graph: needs exactly one Input node, found {len(starts)}")
    chain = [starts[0]]
    while succ.get(chain[-1]):
        nxt = succ[chain[-1]]
        if len(nxt) > 1:
            raise _refuse(chain[-1], nodes[chain[-1]],
                          f"feeds {len(nxt)} nodes ({', '.join(nxt)}); netx runs one chain")
        if indegree[nxt[0]] > 1:
            raise _refuse(nxt[0], nodes[nxt[0]], f"receives {indegree[nxt[0]]} inputs; netx "
                          "runs one chain")
        chain.append(nxt[0])
    if _kind(nodes[chain[-1]]) != "Output":
        raise _refuse(chain[-1], nodes[chain[-1]], "the chain from Input ends here, not in an "
                      "Output node")
    missing = sorted(set(nodes) - set(chain) - skip)
    if missing:
        raise SlssnnError(f"NIR graph: node(s) {', '.join(missing)} are not on the chain from "
                          "Input to Output")
    return [(n, nodes[n]) for n in chain], recurrent


def _reachable(edges: list[tuple[str, str]], start: str) -> set[str]:
    """Nodes reachable from ``start`` along ``edges`` (``start`` itself only through a loop)."""
    seen: set[str] = set()
    todo = [start]
    while todo:
        here = todo.pop()
        for a, b in edges:
            if a == here and b not in seen:
                seen.add(b)
                todo.append(b)
    return seen


def _conv_geometry(name: str, node: Any, kernel: tuple[int, int]):
    return conv_geometry(node, kernel, f"NIR node '{name}' ({_kind(node)})")


def _conv_out(size: int, k: int, s: int, p: int, d: int) -> int:
    return (size + 2 * p - d * (k - 1) - 1) // s + 1


def _per_output(values: np.ndarray, shape: tuple[int, ...], what: str, name: str,
                node: Any) -> np.ndarray:
    """Per output channel (conv) or neuron (dense) values of a layer-shaped array."""
    try:
        full = np.broadcast_to(np.asarray(values, dtype=np.float64), shape)
    except ValueError:
        raise _refuse(name, node, f"{what} of shape {np.shape(values)} does not fit the "
                      f"layer's {shape}") from None
    flat = full.reshape(shape[0], -1)
    spread = np.ptp(flat, axis=1) if flat.shape[1] > 1 else np.zeros(shape[0])
    if np.any(spread > EXACT_TOLERANCE * np.maximum(1.0, np.abs(flat).max(axis=1))):
        raise _refuse(name, node, f"{what} differs between positions of a channel; a conv "
                      "layer shares its parameters across positions")
    return flat[:, 0].copy()


def _near_int(x: np.ndarray) -> bool:
    x = np.asarray(x, dtype=np.float64)
    return bool(np.all(np.abs(x - np.round(x)) <= EXACT_TOLERANCE * np.maximum(1.0, np.abs(x))))


def _on_grid(weight: np.ndarray, bias: np.ndarray | None, threshold: float) -> bool:
    w = np.round(weight)
    ok = (_near_int(weight) and np.all(w % WEIGHT_STEP == 0) and w.min(initial=0) >= WEIGHT_MIN
          and w.max(initial=0) <= WEIGHT_MAX and _near_int(threshold)
          and 0 <= round(threshold) <= THRESHOLD_MAX)
    if bias is not None:
        b = np.round(bias)
        ok = ok and _near_int(bias) and b.min() >= BIAS_MIN and b.max() <= BIAS_MAX
    return bool(ok)


def _quantize(weight: np.ndarray, bias: np.ndarray | None, threshold: float,
              threshold_max: int = THRESHOLD_MAX
              ) -> tuple[np.ndarray, np.ndarray | None, int, dict[str, Any]]:
    """Integer weight, bias, threshold of a folded layer, and its quantization record.

    ``threshold_max``: the largest integer threshold allowed (a layer that hosts a
    clock neuron needs ``vThMant < 4095``, its bias); the scale is capped to meet it.
    """
    if _on_grid(weight, bias, threshold) and round(threshold) <= threshold_max:
        w, b, th, scale = np.round(weight), None if bias is None else np.round(bias), \
            int(round(threshold)), 1.0
    else:
        cap = threshold_max / threshold if threshold * WEIGHT_MAX > threshold_max * np.abs(
            weight).max(initial=0.0) else None
        q = quantize_block(torch.from_numpy(weight), None if bias is None else
                           torch.from_numpy(bias), torch.tensor(float(threshold)), cap)
        w, th, scale = q.weight.numpy(), int(q.threshold), float(q.scale)
        b = None if q.bias is None else q.bias.numpy()
    scaled = weight * scale
    err = w - scaled
    rms = float(np.sqrt(np.mean(scaled ** 2))) or 1.0
    record = {
        "exact": scale == 1.0 and _on_grid(weight, bias, threshold),
        "scale": scale,
        "weight_max_abs_error": float(np.abs(err).max(initial=0.0)),
        "weight_rms_rel_error": float(np.sqrt(np.mean(err ** 2)) / rms),
        "weights_clipped": int(np.sum((scaled < WEIGHT_MIN - 1) | (scaled > WEIGHT_MAX + 1))),
        "bias_clipped": 0 if bias is None else int(np.sum(
            (bias * scale < BIAS_MIN - 0.5) | (bias * scale > BIAS_MAX + 0.5))),
        "bias_max_abs_error": 0.0 if bias is None else float(np.abs(b - bias * scale).max()),
        "threshold": float(threshold * scale),
        "threshold_int": th,
        "threshold_rel_error": float(abs(th - threshold * scale) / max(threshold * scale,
                                                                        1e-12)),
    }
    return w.astype(np.int64), None if b is None else b.astype(np.int64), th, record


def _delay_steps(name: str, node: Any, dt: float) -> np.ndarray:
    steps = np.asarray(node.delay, dtype=np.float64) / dt
    if not _near_int(steps) or steps.min(initial=0) < S.DELAY_RANGE.low \
            or steps.max(initial=0) > S.DELAY_RANGE.high:
        raise _refuse(name, node, f"delays must be whole steps of dt={dt:g} s in "
                      f"[{S.DELAY_RANGE.low:g}, {S.DELAY_RANGE.high:g}] (netx DelayDense)")
    return np.round(steps).astype(np.int64).reshape(-1)


@dataclass
class _Neuron:
    """The NIR node(s) of one netx neuron layer: a spiking node, optionally after an LI."""

    spiking: tuple[str, Any]
    current: tuple[str, Any] | None = None

    @property
    def names(self) -> list[str]:
        return [p[0] for p in (self.current, self.spiking) if p]

    @property
    def filter(self) -> tuple[str, Any]:
        """The node whose current decays (the LI if there is one)."""
        return self.current or self.spiking

    def read(self, dt: float) -> NeuronFloat:
        if self.current is None:
            return neuron_from_nir(self.spiking[1], self.spiking[0], dt)
        return neuron_pair_from_nir(self.current[1], self.current[0], self.spiking[1],
                                    self.spiking[0], dt)


def _take_neuron(items: list[tuple[str, Any]], i: int) -> tuple[_Neuron | None, int]:
    """The neuron layer starting at ``items[i]`` (a spiking node, or LI + spiking node)."""
    if i < len(items) and _kind(items[i][1]) == CURRENT_NODE:
        if i + 1 < len(items) and _kind(items[i + 1][1]) in NEURON_NODES:
            return _Neuron(items[i + 1], items[i]), i + 2
        raise _refuse(*items[i], LI_ALONE)
    if i < len(items) and _kind(items[i][1]) in NEURON_NODES:
        return _Neuron(items[i]), i + 1
    return None, i


@dataclass
class _Block:
    """The NIR nodes that make one netx block.

    Either one ``synapse`` (optionally with ``flatten`` and delays), or a chain
    of ``linear`` nodes that :func:`.nir_fold.fold_linear_chain` folds into
    one; ``recurrent``: the neuron's own Affine/Linear loop (netx dense_rec).
    """

    synapse: tuple[str, Any] | None
    neuron: _Neuron
    flatten: bool = False
    delay_in: tuple[str, Any] | None = None
    delay_out: tuple[str, Any] | None = None
    linear: list[tuple[str, Any]] = field(default_factory=list)
    recurrent: tuple[str, Any] | None = None

    @property
    def synapse_nodes(self) -> list[tuple[str, Any]]:
        """The linear nodes in front of the neuron, in order (delays included)."""
        if self.linear:
            return list(self.linear)
        return [p for p in (self.delay_in, self.synapse, self.delay_out) if p]

    def is_conv(self, in_shape: tuple[int, ...]) -> bool:
        if self.linear:
            return folds_to_conv([_kind(n) for _, n in self.linear], in_shape)
        return _kind(self.synapse[1]) == "Conv2d"


SIMPLE_BLOCK = ("Flatten?", "Delay?", "synapse", "Delay?")
"""One synapse, as netx has it: ``[Flatten] [Delay] Conv2d|Affine|Linear [Delay]``."""


def _simple_block(between: list[tuple[str, Any]], neuron: _Neuron) -> _Block | None:
    """The block if ``between`` is one synapse with its flatten/delays, else None."""
    i, flatten, delay_in = 0, False, None
    if i < len(between) and _kind(between[i][1]) == "Flatten":
        flatten, i = True, i + 1
    if i < len(between) and _kind(between[i][1]) == "Delay":
        delay_in, i = between[i], i + 1
    if i >= len(between) or _kind(between[i][1]) not in SYNAPSE_NODES:
        return None
    synapse, i = between[i], i + 1
    delay_out = None
    if i < len(between) and _kind(between[i][1]) == "Delay":
        delay_out, i = between[i], i + 1
    if i != len(between):
        return None
    return _Block(synapse, neuron, flatten, delay_in, delay_out)


def _blocks(chain: list[tuple[str, Any]], recurrent: dict[str, tuple[str, Any]]
            ) -> tuple[_Neuron | None, list[_Block]]:
    """Split the chain into an optional input neuron layer and synapse+neuron blocks."""
    items = chain[1:-1]
    for name, node in items:
        if _kind(node) in REFUSED:
            raise _refuse(name, node, REFUSED[_kind(node)])
        if _kind(node) not in LINEAR_NODES + NEURON_NODES + (CURRENT_NODE, "Delay"):
            raise _refuse(name, node, "no netx equivalent; slssnn maps Conv2d, SumPool2d, "
                          "AvgPool2d, Flatten, Affine, Linear, Scale, Delay, IF, LIF, CubaLIF, "
                          "and LI before one of these neurons")
    first, i = _take_neuron(items, 0)
    if first is not None and first.spiking[0] in recurrent:
        raise _refuse(*first.spiking, "a recurrent neuron right after the Input: netx's input "
                      "layer has no synapse (put an Affine/Linear before it)")
    blocks = []
    while i < len(items):
        start = i
        while i < len(items) and _kind(items[i][1]) in LINEAR_NODES + ("Delay",):
            i += 1
        between = items[start:i]
        if not between:
            name, node = items[i]
            if _kind(node) == CURRENT_NODE:
                raise _refuse(name, node, LI_ALONE)
            raise _refuse(name, node, "expected a Conv2d, Affine or Linear here (netx blocks "
                          "are a synapse followed by neurons)")
        neuron, i = _take_neuron(items, i)
        if neuron is None:
            raise _refuse(*between[-1], "must be followed by a neuron node (IF, LIF or "
                          "CubaLIF, optionally after an LI): netx blocks end in neurons")
        block = _simple_block(between, neuron)
        if block is None:
            delays = [p for p in between if _kind(p[1]) == "Delay"]
            if delays:
                raise _refuse(*delays[0], "a delay inside a chain of linear nodes that folds "
                              "into one synapse (netx delays only a single dense synapse)")
            block = _Block(None, neuron, linear=between)
        block.recurrent = recurrent.get(neuron.spiking[0])
        if block.recurrent is not None and neuron.current is not None:
            raise _refuse(*block.recurrent, f"feeds '{neuron.spiking[0]}' past the current "
                          f"'{neuron.current[0]}' in front of it; on Loihi the recurrent sum "
                          "enters the current like the feed-forward one")
        blocks.append(block)
    return first, blocks


def _input_layer(neuron: _Neuron, shape: tuple[int, ...], dt: float
                 ) -> tuple[LayerSpec, dict[str, Any], dict[str, Any]]:
    """netx input layer from the first neuron layer: (spec, report, input encoding).

    The host's currents enter the input layer's ``a_in``; its current ``u``
    may decay (netx's input layer is a full CUBA neuron), so a CubaLIF or an
    LI + spiking node is as exact here as an IF or LIF.
    """
    nf = neuron.read(dt)
    name, node = neuron.spiking
    if np.any(nf.leak_bias != 0):
        raise _refuse(name, node, "v_leak on the first neuron layer: netx's input layer has no "
                      "neuron bias")
    try:
        gain = np.broadcast_to(nf.gain, shape)
        ratio = np.broadcast_to(nf.threshold, shape) / gain
    except ValueError:
        raise _refuse(name, node, f"parameters of shape {nf.threshold.shape} do not fit the "
                      f"input {shape}") from None
    if not np.all(np.isfinite(ratio)) or np.ptp(ratio) > EXACT_TOLERANCE * np.abs(ratio).max():
        raise _refuse(name, node, "v_threshold / gain differs between input neurons; the "
                      "input layer has one threshold and one input scale")
    theta = float(ratio.reshape(-1)[0])
    scale = next((float(1 << k) for k in range(INPUT_SCALE_BITS + 1)
                  if _near_int(theta * (1 << k)) and theta * (1 << k) <= THRESHOLD_MAX),
                 INPUT_THRESHOLD_TARGET / max(theta, 1e-12))
    threshold = int(np.clip(round(theta * scale), 0, THRESHOLD_MAX))
    record = {"layer": 0, "nodes": neuron.names, "exact": _near_int(theta * scale),
              "scale": scale, "weight_max_abs_error": 0.0, "weight_rms_rel_error": 0.0,
              "weights_clipped": 0, "bias_clipped": 0, "bias_max_abs_error": 0.0,
              "threshold": theta * scale, "threshold_int": threshold,
              "threshold_rel_error": abs(threshold - theta * scale) / max(theta * scale, 1e-12)}
    encoding = {"kind": "current", "scale": scale,
                "description": "round(x * scale) as a_in of the input layer on each step, x "
                               "being the NIR graph's input"}
    spec = LayerSpec(0, "input", shape, CubaNeuron(nf.i_decay, nf.v_decay, threshold))
    return spec, record, encoding


def _passthrough_input(shape: tuple[int, ...]) -> tuple[LayerSpec, dict[str, Any]]:
    """An IF input layer with threshold 0: a binary input spike passes through unchanged."""
    spec = LayerSpec(0, "input", shape, CubaNeuron(DECAY_UNITY, 0, 0))
    encoding = {"kind": "spikes", "scale": 1.0,
                "description": "binary spikes (0/1) into a pass-through input layer (IF, "
                               "threshold 0) that netx needs before a first conv"}
    return spec, encoding


def _fold(block: _Block, nf: NeuronFloat, weight: np.ndarray, bias: np.ndarray | None,
          out_shape: tuple[int, ...]
          ) -> tuple[np.ndarray, np.ndarray | None, float, np.ndarray | None]:
    """Per-step gain into the weights, thresholds (if they differ) too, v_leak into bias.

    Returns ``(weight, voltage bias or None, threshold, current bias or None)``: a
    synaptic bias goes to the voltage bias when the neuron does not filter its input,
    else it stays a per-neuron input to the current (in weight units), which netx
    carries as the weight from an always-on source (:func:`graph_to_layers`).
    """
    name, node = block.neuron.spiking
    gain = _per_output(nf.gain, out_shape, "the input gain", name, node)
    theta = _per_output(nf.threshold, out_shape, "v_threshold", name, node)
    leak = _per_output(nf.leak_bias, out_shape, "v_leak", name, node)
    if not np.all(np.isfinite(gain)) or np.any(gain == 0):
        raise _refuse(name, node, "its input gain (r, w_in and time constants) is zero or not "
                      "finite")
    b = np.zeros(out_shape[0]) if bias is None else np.asarray(bias, np.float64).reshape(-1)
    filtered = nf.filters_input and bool(np.any(b != 0))
    expand = (-1,) + (1,) * (weight.ndim - 1)
    w = weight * gain.reshape(expand)
    current = gain * b if filtered else None
    total_bias = leak if filtered else gain * b + leak
    if np.ptp(theta) > EXACT_TOLERANCE * np.abs(theta).max():
        if np.any(theta <= 0):
            raise _refuse(name, node, "v_threshold differs between neurons and is not "
                          "positive everywhere; Loihi has one threshold per layer")
        w, total_bias, threshold = w / theta.reshape(expand), total_bias / theta, 1.0
        current = None if current is None else current / theta
    else:
        threshold = float(theta[0])
    if threshold < 0:
        raise _refuse(name, node, "v_threshold must be >= 0 on Loihi")
    return w, (total_bias if np.any(total_bias != 0) else None), threshold, current


def _current_bias_node(block: _Block, dt: float) -> tuple[str, Any] | None:
    """The node whose bias the block's neuron filters through its decaying current, if any."""
    if not block.neuron.read(dt).filters_input:
        return None
    nodes = block.synapse_nodes + ([block.recurrent] if block.recurrent else [])
    return next(((name, node) for name, node in nodes
                 if _kind(node) in ("Affine", "Conv2d")
                 and getattr(node, "bias", None) is not None
                 and np.any(np.asarray(node.bias) != 0)), None)


def _synapse_float(block: _Block, prev: tuple[int, ...]
                   ) -> tuple[str, np.ndarray, np.ndarray | None, tuple[int, ...], bool,
                              dict[str, Any], dict[str, Any] | None]:
    """(kind, float weight, bias, output shape, flatten, geometry, fold record) of a block."""
    if block.linear:
        folded = fold_linear_chain(block.linear, prev)
        fold = {"kinds": [_kind(n) for _, n in block.linear], "into": folded.kind,
                "weight_shape": list(folded.weight.shape),
                "ann_macs": chain_macs(block.linear, prev)}
        if folded.kind == "conv":
            fold.update({k: list(v) if isinstance(v, tuple) else v
                         for k, v in folded.geometry.items()})
        return (folded.kind, folded.weight, folded.bias, folded.shape, folded.flatten,
                folded.geometry, fold)
    name, node = block.synapse
    weight = np.asarray(node.weight, dtype=np.float64)
    bias = getattr(node, "bias", None)
    if _kind(node) == "Conv2d":
        if block.flatten or block.delay_in or block.delay_out:
            raise _refuse(name, node, "netx conv layers take no flatten before them and no "
                          "delays")
        if len(prev) != 3 or weight.ndim != 4:
            raise _refuse(name, node, f"needs a (C, H, W) input and (O, I, kH, kW) weights; "
                          f"got input {prev}, weight {weight.shape}")
        groups = int(np.asarray(node.groups).reshape(-1)[0])
        if weight.shape[1] * groups != prev[0]:
            raise _refuse(name, node, f"weight {weight.shape} with groups {groups} does not "
                          f"fit {prev[0]} input channels")
        stride, padding, dilation = _conv_geometry(name, node, weight.shape[2:])
        out = (weight.shape[0],) + tuple(
            _conv_out(prev[1 + j], weight.shape[2 + j], stride[j], padding[j], dilation[j])
            for j in range(2))
        return "conv", weight, bias, out, False, {"stride": stride, "padding": padding,
                                                  "dilation": dilation, "groups": groups}, None
    if len(prev) != 1 and not block.flatten:
        raise _refuse(name, node, f"a dense layer after a {prev} layer needs a Flatten "
                      "node before it")
    inputs = int(np.prod(prev))
    if weight.ndim != 2 or weight.shape[1] != inputs:
        raise _refuse(name, node, f"weight {weight.shape} does not take the {inputs} "
                      "inputs it receives")
    # a Flatten of an already flat input (netx -> NIR writes one for a first dense) is a no-op
    return "dense", weight, bias, (weight.shape[0],), block.flatten and len(prev) != 1, {}, None


def _recurrent_float(block: _Block, kind: str, out: tuple[int, ...]
                     ) -> tuple[np.ndarray, np.ndarray | None]:
    """The (N, N) float weights and bias of the block's recurrent Affine/Linear."""
    name, node = block.recurrent
    if kind != "dense" or block.delay_in or block.delay_out:
        raise _refuse(name, node, "a recurrent synapse on a conv layer or a delayed dense: "
                      "netx's dense_rec is a plain dense layer with weight_rec")
    w_rec = np.asarray(node.weight, dtype=np.float64)
    if w_rec.shape != (out[0], out[0]):
        raise _refuse(name, node, f"recurrent weight {w_rec.shape} does not map the "
                      f"{out[0]} neurons onto themselves")
    bias = getattr(node, "bias", None) if _kind(node) == "Affine" else None
    if bias is not None:
        bias = np.broadcast_to(np.asarray(bias, np.float64).reshape(-1), (out[0],))
    return w_rec, bias


def _check_delays(block: _Block, w_int: np.ndarray, dt: float) -> np.ndarray | None:
    if not (block.delay_in or block.delay_out):
        return None
    delay = np.zeros(w_int.shape, dtype=np.int64)
    if block.delay_in:
        steps = _delay_steps(*block.delay_in, dt)
        if steps.size != w_int.shape[1]:
            raise _refuse(*block.delay_in, f"{steps.size} delays for {w_int.shape[1]} inputs")
        delay += steps.reshape(1, -1)
    if block.delay_out:
        steps = _delay_steps(*block.delay_out, dt)
        if steps.size != w_int.shape[0]:
            raise _refuse(*block.delay_out, f"{steps.size} delays for {w_int.shape[0]} "
                          "outputs")
        delay += steps.reshape(-1, 1)
    if delay.max() > S.DELAY_RANGE.high:
        raise _refuse(*block.delay_out, "input and output delays add up to more than "
                      f"{S.DELAY_RANGE.high:g} steps")
    return delay


CLOCK_THRESHOLD_MAX = BIAS_MAX - 1
"""A clock neuron fires on its bias alone at every step: ``bias = vThMant + 1 <= 4095``."""


def _block_spec(index: int, block: _Block, prev: tuple[int, ...], dt: float,
                bias_source: str | None = None, clock_for: tuple[str, Any] | None = None
                ) -> tuple[LayerSpec, dict[str, Any]]:
    """The netx block (at ``index``, or ``index + 1`` after a flatten) and its record.

    ``bias_source``: the always-on input (the last one, after the ``prev`` inputs)
    that carries the bias this block's decaying current filters, as one more weight
    column; ``clock_for``: the next block's biased node, for which this block gets
    one more neuron, a clock that fires at every step (see :func:`graph_to_layers`).
    """
    kind, weight, bias, out, flatten, geometry, fold = _synapse_float(block, prev)
    index += int(flatten)
    inputs = int(np.prod(weight.shape[1:]))
    if block.recurrent is not None:
        w_rec, rec_bias = _recurrent_float(block, kind, out)
        weight = np.hstack([weight, w_rec])
        if rec_bias is not None:
            bias = rec_bias if bias is None else np.asarray(bias, np.float64).reshape(-1) \
                + rec_bias
    nf = block.neuron.read(dt)
    w, b, threshold, current = _fold(block, nf, weight, bias, out)
    if current is not None and bias_source is None:  # never drop it silently
        raise _refuse(*block.neuron.filter, "a bias into its decaying current that no "
                      "always-on source carries")
    if bias_source is not None:  # the filtered bias: a weight from the always-on input
        w = np.hstack([w[:, :inputs], (np.zeros(out[0]) if current is None else current)[:, None],
                       w[:, inputs:]])
    if clock_for is not None and kind != "dense":
        raise _refuse(*clock_for, f"a bias filtered by a decaying current after the conv layer "
                      f"'{block.neuron.spiking[0]}': netx carries it as a weight from a neuron "
                      "that fires at every step, which a conv layer cannot hold")
    w_int, b_int, th_int, record = _quantize(
        w, b, threshold, CLOCK_THRESHOLD_MAX if clock_for is not None else THRESHOLD_MAX)
    ff = inputs + int(bias_source is not None)
    names = [p[0] for p in block.synapse_nodes]
    if fold is not None:
        nir_cols = np.r_[0:inputs, ff:w.shape[1]] if w.ndim == 2 else slice(None)
        w_nir, w_int_nir = w.reshape(w.shape[0], -1), w_int.reshape(w.shape[0], -1)
        lost = np.flatnonzero(np.any(w_nir[:, nir_cols] != 0, axis=1)
                              & ~np.any(w_int_nir[:, nir_cols] != 0, axis=1))
        if lost.size:
            raise SlssnnError(f"NIR nodes {' -> '.join(names)}: the folded weights span more "
                              f"than Loihi's 8-bit weight range: {lost.size} neuron(s) of "
                              f"'{block.neuron.spiking[0]}' lose every input when rounded")
        record["fold"] = fold
    w_rec_int = None
    if block.recurrent is not None:
        w_int, w_rec_int = w_int[:, :ff], w_int[:, ff:]
        record["recurrent"] = block.recurrent[0]
    delay = _check_delays(block, w_int[:, :inputs] if ff > inputs else w_int, dt)
    if delay is not None and ff > inputs:  # a Delay after the Affine delays its bias too
        lag = (_delay_steps(*block.delay_out, dt).reshape(-1, 1) if block.delay_out
               else np.zeros((out[0], 1), np.int64))
        delay = np.hstack([delay, lag])
    if bias_source is not None:
        record["current_bias"] = {"from": bias_source, "column": inputs}
    if clock_for is not None:  # one more neuron: no input, bias above threshold
        clock = out[0]
        w_int = np.vstack([w_int, np.zeros((1, w_int.shape[1]), w_int.dtype)])
        b_int = np.append(np.zeros(clock, np.int64) if b_int is None else b_int, th_int + 1)
        if w_rec_int is not None:
            w_rec_int = np.pad(w_rec_int, ((0, 1), (0, 1)))
        if delay is not None:
            delay = np.vstack([delay, np.zeros((1, delay.shape[1]), delay.dtype)])
        out = (clock + 1,)
        record["clock_neuron"] = clock
    spec = LayerSpec(index, "dense_rec" if w_rec_int is not None else kind, out,
                     CubaNeuron(nf.i_decay, nf.v_decay, th_int), w_int, b_int,
                     flatten_before=flatten, delay=delay, weight_rec=w_rec_int, **geometry)
    nodes = names + ([block.recurrent[0]] if block.recurrent else []) + block.neuron.names
    record.update({"layer": index, "nodes": nodes, "i_decay": nf.i_decay,
                   "i_decay_float": nf.i_decay_float, "v_decay": nf.v_decay,
                   "v_decay_float": nf.v_decay_float})
    return spec, record


def _graph_dt(graph: Any, dt: float | None) -> float:
    if dt is not None:
        value = dt
    else:
        raw = (graph.metadata or {}).get(DT_KEY, DEFAULT_DT)
        value = float(np.asarray(raw).reshape(-1)[0])
    if not value > 0:
        raise SlssnnError(f"dt must be > 0 seconds, got {value}")
    return value


def _with_extras(layers: list[LayerSpec], extras: list[dict[str, Any]] | None
                 ) -> list[LayerSpec]:
    """Put back what a netx file held and NIR has no field for (per file layer index)."""
    if not extras:
        return layers
    out = []
    for spec in layers:
        extra = extras[spec.index] if spec.index < len(extras) else {}
        n = spec.neuron
        neuron = CubaNeuron(n.i_decay, n.v_decay, n.threshold,
                            extra.get("neuron_type", n.kind), n.message_bits,
                            extra.get(S.REF_DELAY), extra.get(S.GRADED))
        transform = {key: extra["input_" + key] for key in (S.WEIGHT, S.BIAS)
                     if "input_" + key in extra}
        out.append(dataclasses.replace(spec, neuron=neuron, input_transform=transform))
    return out


def _json_meta(graph: Any, key: str) -> Any:
    raw = (graph.metadata or {}).get(key)
    if raw is None:
        return None
    raw = raw.decode() if isinstance(raw, bytes | np.bytes_) else str(raw)
    try:
        return json.loads(raw)
    except ValueError:
        raise SlssnnError(f"NIR graph: metadata '{key}' is not JSON") from None


def graph_to_layers(graph: Any, dt: float | None = None
                    ) -> tuple[list[LayerSpec], list[dict[str, Any]], dict[str, Any] | None]:
    """(netx blocks, per-block quantization records, input encoding) of a NIR graph."""
    dt = _graph_dt(graph, dt)
    chain, recurrent = _chain(graph)
    shape = tuple(int(s) for s in np.asarray(chain[0][1].input_type["input"]).reshape(-1))
    if len(shape) in (2, 4) and shape[0] == 1:  # a leading batch axis of one (snnTorch)
        shape = shape[1:]
    first, blocks = _blocks(chain, recurrent)
    layers: list[LayerSpec] = []
    reports: list[dict[str, Any]] = []
    encoding = None
    if first is not None:
        spec, record, encoding = _input_layer(first, shape, dt)
        record.update({"i_decay": spec.neuron.i_decay, "v_decay": spec.neuron.v_decay})
        layers.append(spec)
        reports.append(record)
    elif blocks and blocks[0].is_conv(shape):
        spec, encoding = _passthrough_input(shape)
        layers.append(spec)
    if not blocks and first is None:
        raise SlssnnError("NIR graph: no neuron layer between Input and Output")
    biased = [_current_bias_node(block, dt) for block in blocks] + [None]
    if biased[0] is not None and (first is not None or len(shape) != 1):
        raise _refuse(*biased[0], f"a bias filtered by the decaying current of "
                      f"'{blocks[0].neuron.spiking[0]}', right after "
                      f"{'an input neuron layer' if first is not None else 'a (C, H, W) input'}"
                      ": netx carries it as a weight from an always-on input, which only a "
                      "flat spike input can have")
    prev, index = shape, len(layers)
    for k, block in enumerate(blocks):
        source = None
        if biased[k] is not None:  # after a flat input or a dense layer (else refused)
            source = (f"input channel {prev[0]}, 1 at every step" if k == 0 else
                      f"clock neuron {prev[0]} of layer {index - 1}")
        spec, record = _block_spec(index, block, prev, dt, source, biased[k + 1])
        layers.append(spec)
        reports.append(record)
        prev = (spec.shape[0] - 1,) if biased[k + 1] is not None else spec.shape
        index = spec.index + 1
    if biased[0] is not None:
        encoding = {"kind": "spikes", "scale": 1.0, "bias_channel": shape[0],
                    "description": f"spikes (0/1, or graded) into the first synapse; input "
                                   f"channel {shape[0]} is 1 at every step (slssnn appends "
                                   f"it): it carries the biases that '{biased[0][0]}' adds to "
                                   "a decaying current"}
    return layers, reports, encoding


def read_nir(path: str | os.PathLike[str]) -> Any:
    """``nir.read`` with one-line errors."""
    import nir

    path = Path(path)
    if not path.is_file():
        raise SlssnnError(f"NIR graph {path}: no such file")
    try:
        return nir.read(path)
    except Exception as exc:  # nir raises KeyError, OSError, ValueError... on foreign files
        reason = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise SlssnnError(f"NIR graph {path}: not a readable NIR file ({reason})") from None


def convert_nir_to_netx(graph: Any, out: str | os.PathLike[str], timesteps: int | None = None,
                        dt: float | None = None) -> Conversion:
    """Write the netx file of a NIR graph (a ``nir.NIRGraph`` or a path) to ``out``.

    ``timesteps``: T per sample, stored in our metadata (NIR has no T);
    ``dt``: seconds per step (default: the graph's ``dt`` metadata, else
    :data:`.nir_map.DEFAULT_DT`). Returns the written network and the
    per-layer quantization report.
    """
    if isinstance(graph, str | os.PathLike):
        source = str(graph)
        graph = read_nir(graph)
    else:
        source = "NIRGraph object"
    if timesteps is not None and timesteps < 1:
        raise SlssnnError(f"timesteps must be >= 1, got {timesteps}")
    layers, reports, encoding = graph_to_layers(graph, dt)
    metadata = _json_meta(graph, SLSSNN_KEY)
    from_slssnn = FORMAT_KEY in (graph.metadata or {})
    if from_slssnn:
        metadata = metadata or None  # a file without our metadata group stays without it
    else:
        metadata = {"source": f"NIR graph {source}", "dt": _graph_dt(graph, dt),
                    "readout": "argmax of output spike counts; ties go to the lowest class "
                               "index",
                    "nir_quantization": reports}
        if encoding is not None:
            metadata["input_encoding"] = encoding
    if timesteps is not None:
        metadata = {**(metadata or {}), "timesteps": int(timesteps)}
    names = {spec.index: spec.name for spec in layers}
    folded_macs = {names[record["layer"]]: record["fold"]["ann_macs"]
                   for record in reports if "fold" in record}
    if folded_macs:  # the twin runs the unfolded chain (lava_runtime/activity.py)
        metadata = {**(metadata or {}), S.ANN_MACS_KEY: folded_macs}
    network = write_network(out, _with_extras(layers, _json_meta(graph, NETX_KEY)), metadata)
    return Conversion(network, reports)
