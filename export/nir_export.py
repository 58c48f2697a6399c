"""netx network (ours or lava-dl's) -> NIR graph.

Every netx block becomes a NIR synapse node and a neuron node, in a chain::

    input -> [L0_current] [L0_neuron]          netx 'input' layer: currents into neurons
          -> L1_conv (Conv2d) -> L1_neuron     conv block
          -> L2_flatten (Flatten)              netx 'flatten' layer
          -> [L3_delay_in] -> L3_dense (Affine or Linear) -> [L3_delay_out] -> L3_neuron
          -> output

A ``dense_rec`` block is a dense block whose neuron node also has the loop
``L{i}_neuron -> L{i}_rec (Linear, weight_rec) -> L{i}_neuron``, the NIR paper's
``lif1.lif -> lif1.w_rec`` pattern that :mod:`.nir_import` maps back to dense_rec.

Weights, biases and thresholds are written as the file's integers (floats
holding integers: one unit = one weight integer = one ``vThMant`` step); the
decays as time constants (:mod:`.nir_map`), so :mod:`.nir_import` recovers
every integer exactly. A neuron layer is one IF, LIF or CubaLIF node
(``L{i}_neuron``), or, for a decaying current into a non-leaky voltage
(``iDecay < 4096``, ``vDecay = 0``), an LI node ``L{i}_current`` followed by
an IF node ``L{i}_neuron``. What NIR cannot express is refused with
``SlssnnError`` naming the layer: per-synapse dense delays (NIR's ``Delay``
delays a node's outputs, so only per-input and per-output delays map),
sigma-delta and RF layers, recurrent weights into an LI -> IF pair, and the
neurons listed in :func:`.nir_map.neuron_to_nir`.

What netx stores but does not run is carried in the graph's metadata (``netx``,
JSON): each layer's neuron ``type`` (CUBA or LOIHI), ``refDelay`` and
``gradedSpike``, and the input layer's host-side transform (``weight``,
``bias``). slayer's training-only neuron fields (``scaleRho``, ``tauRho``,
``theta``) and the redundant geometry fields (``inChannels``...) are not carried.
Our own metadata (T, input encoding, readout...) travels as ``slssnn`` (JSON).
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import numpy as np

from slssnn.atomic import atomic_path, writable_file
from slssnn.errors import SlssnnError

from . import schema as S
from .netx_reader import CubaNeuron, LayerSpec, NetxNetwork, read_network
from .nir_map import DEFAULT_DT, DT_KEY, neuron_to_nir

NETX_KEY = "netx"
"""Graph metadata key: JSON with what netx stores but NIR has no field for."""
SLSSNN_KEY = "slssnn"
"""Graph metadata key: our netx metadata group, as JSON."""
FORMAT_KEY = "slssnn_nir_format"
NIR_FORMAT = 1


def _layer_extras(net: NetxNetwork) -> list[dict[str, Any]]:
    """Per netx layer group (by file index): what NIR has no field for, from the network."""
    extras: list[dict[str, Any]] = [{} for _ in range(max(s.index for s in net.layers) + 1)]
    for spec in net.layers:
        n = spec.neuron
        entry = extras[spec.index]
        entry["neuron_type"] = n.kind
        for key, value in ((S.REF_DELAY, n.ref_delay), (S.GRADED, n.graded)):
            if value is not None:
                entry[key] = value
        for key, value in spec.input_transform.items():
            entry["input_" + key] = np.asarray(value).tolist()
    return extras


def _delays(spec: LayerSpec) -> tuple[np.ndarray | None, np.ndarray | None]:
    """(per-input, per-output) delays of a dense layer, or refuse per-synapse delays."""
    if spec.delay is None or not spec.delay.any():
        return None, None
    d = spec.delay  # (N, inputs)
    if np.all(d == d[:, :1]):
        return None, d[:, 0]
    if np.all(d == d[:1, :]):
        return d[0], None
    raise SlssnnError(f"layer {spec.index} (dense): per-synapse delays cannot be expressed in "
                      "NIR (its Delay node delays a node's outputs: only per-input or "
                      "per-output delays map)")


def _synapse(spec: LayerSpec, bias: np.ndarray | None, prev_hw: tuple[int, int] | None):
    import nir

    weight = spec.weight.astype(np.float64)
    if spec.type == "conv":
        b = np.zeros(weight.shape[0]) if bias is None else bias.astype(np.float64)
        return nir.Conv2d(input_shape=prev_hw, weight=weight, stride=spec.stride,
                          padding=spec.padding, dilation=spec.dilation, groups=spec.groups,
                          bias=b)
    if bias is None:
        return nir.Linear(weight=weight)
    return nir.Affine(weight=weight, bias=bias.astype(np.float64))


def network_to_nir(net: NetxNetwork, dt: float = DEFAULT_DT):  # -> nir.NIRGraph
    """The NIR graph of a validated netx network (see module doc); ``dt`` seconds per step."""
    import nir

    if not dt > 0:
        raise SlssnnError(f"dt must be > 0 seconds, got {dt}")
    shape = net.input_shape
    nodes: dict[str, Any] = {"input": nir.Input(input_type=np.array(shape))}
    chain = ["input"]
    loops: list[tuple[str, str]] = []  # dense_rec: neuron -> L{i}_rec -> neuron
    prev_shape = shape
    for spec in net.layers:
        where = f"network {net.path}: layer {spec.index} ({spec.type})"
        n = spec.neuron
        if not isinstance(n, CubaNeuron):
            raise SlssnnError(f"{where}: {type(n).__name__} neurons have no NIR form here; "
                              "only CUBA/LOIHI layers convert")
        if spec.type == "input":
            neurons, _ = neuron_to_nir(n.i_decay, n.v_decay, n.threshold, None, spec.shape, dt,
                                       where)
            for role, node in neurons:
                nodes[f"L{spec.index}_{role}"] = node
                chain.append(f"L{spec.index}_{role}")
            prev_shape = spec.shape
            continue
        if spec.flatten_before:
            name = f"L{spec.index - 1}_flatten"
            nodes[name] = nir.Flatten(input_type={"input": np.array(prev_shape)}, start_dim=0,
                                      end_dim=-1)
            chain.append(name)
        neurons, bias = neuron_to_nir(n.i_decay, n.v_decay, n.threshold, spec.bias, spec.shape,
                                      dt, where)
        per_input, per_output = _delays(spec) if spec.type == "dense" else (None, None)
        if per_input is not None:
            nodes[f"L{spec.index}_delay_in"] = nir.Delay(delay=per_input * dt)
            chain.append(f"L{spec.index}_delay_in")
        hw = tuple(prev_shape[1:]) if spec.type == "conv" else None
        nodes[f"L{spec.index}_{spec.type}"] = _synapse(spec, bias, hw)
        chain.append(f"L{spec.index}_{spec.type}")
        if per_output is not None:
            nodes[f"L{spec.index}_delay_out"] = nir.Delay(delay=per_output * dt)
            chain.append(f"L{spec.index}_delay_out")
        for role, node in neurons:
            nodes[f"L{spec.index}_{role}"] = node
            chain.append(f"L{spec.index}_{role}")
        if spec.weight_rec is not None:
            if len(neurons) != 1:  # the loop would have to enter the LI, past the neuron
                raise SlssnnError(f"{where}: recurrent weights into a decaying current before "
                                  "a non-leaky voltage (iDecay < 4096, vDecay = 0) have no NIR "
                                  "form: the loop would enter the LI, not the spiking node")
            rec = f"L{spec.index}_rec"
            nodes[rec] = nir.Linear(weight=spec.weight_rec.astype(np.float64))
            loops += [(chain[-1], rec), (rec, chain[-1])]
        prev_shape = spec.shape
    nodes["output"] = nir.Output(output_type=np.array(prev_shape))
    chain.append("output")
    metadata = {DT_KEY: float(dt), FORMAT_KEY: NIR_FORMAT,
                NETX_KEY: json.dumps(_layer_extras(net)),
                SLSSNN_KEY: json.dumps(net.metadata)}
    return nir.NIRGraph(nodes=nodes, edges=list(zip(chain[:-1], chain[1:], strict=True))
                        + loops, metadata=metadata)


def write_nir(graph, path: str | os.PathLike[str]) -> Path:
    """Write a NIR graph with ``nir.write``, atomically; read it back to check it loads."""
    import nir

    path = writable_file(path)
    with atomic_path(path) as tmp:
        nir.write(tmp, graph)
        nir.read(tmp)
    return path


def convert_netx_to_nir(net_path: str | os.PathLike[str], out: str | os.PathLike[str],
                        dt: float = DEFAULT_DT):  # -> nir.NIRGraph
    """Read and validate a netx file, write its NIR graph to ``out``; return the graph."""
    graph = network_to_nir(read_network(net_path), dt)
    write_nir(graph, out)
    return graph
