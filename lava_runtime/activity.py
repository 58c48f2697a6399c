"""Per-layer activity of a run: spikes, synaptic operations, neuron updates, ANN-twin MACs.

Definitions (the same for every engine):

- ``spikes``: spikes the layer's neurons emitted, summed over samples and steps;
- ``synops``: synaptic operations of the layer's incoming synapse: each
  message of the previous layer counts once per target neuron of this layer it
  reaches (dense: every output neuron; conv: every output channel of its group
  times every output position whose kernel window covers it, with padding,
  stride and dilation handled exactly); a complex dense (RF neurons) has two
  synapses per pair, a ``dense_rec`` layer adds each of its own messages times
  its N neurons. The input layer is driven by host currents and has 0 synops;
- a message is a spike of a LIF or RF layer, or a non-zero graded value of a
  sigma-delta layer (Loihi 2 sends no message for a zero delta; lava-dl counts
  sigma-delta activity the same way, ``slayer/utils/utils.py`` ``event_rate``):
  ``spikes`` counts messages, and ``graded`` marks layers whose messages carry
  a value; a ``Sigma`` output layer sends its running sum to the host every
  step and feeds no synapse: it counts 0 messages (docs/semantics.md,
  "Activity of graded messages");
- ``neuron_updates``: neurons x steps x samples;
- ``ann_macs``: multiply-accumulates of the layer in the ANN twin (same layer,
  ReLU instead of IF, one pass), per inference; where the network's metadata
  gives the source network's own count (``ann_macs``: a NIR chain of pools and
  convs folded into one larger kernel), that count.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch
import torch.nn.functional as F

from slssnn.errors import SlssnnError
from slssnn.export.netx_reader import CubaNeuron, LayerSpec
from slssnn.export.schema import ANN_MACS_KEY


def message_counts(messages: np.ndarray) -> np.ndarray:
    """Messages each neuron sent, summed over the two leading axes ``(B, steps, *shape)``.

    A message is a non-zero value on a block's ``out`` port: a spike of a LIF
    layer, a non-zero delta of a sigma-delta layer (Loihi 2 sends nothing for
    a zero delta). Returns int64 counts shaped like the layer.
    """
    return np.count_nonzero(messages, axis=(0, 1)).astype(np.int64)


def conv_fanout(spec: LayerSpec, in_shape: tuple[int, int, int]) -> np.ndarray:
    """Targets each input neuron of a conv layer reaches: int64 array ``in_shape`` (C, H, W)."""
    out_c, _, kh, kw = spec.weight.shape
    _, h_out, w_out = spec.shape
    ones_out = torch.ones(1, 1, h_out, w_out, dtype=torch.float64)
    kernel = torch.ones(1, 1, kh, kw, dtype=torch.float64)
    # unpadded transposed conv: entry j counts the windows covering padded position j
    covered = F.conv_transpose2d(ones_out, kernel, stride=spec.stride,
                                 dilation=spec.dilation)[0, 0]
    (pad_h, pad_w), (_, h_in, w_in) = spec.padding, in_shape
    covered = F.pad(covered, (0, max(0, pad_w + w_in - covered.shape[1]),
                              0, max(0, pad_h + h_in - covered.shape[0])))
    covered = covered[pad_h: pad_h + h_in, pad_w: pad_w + w_in]  # (H, W) real positions
    per_position = covered.round().to(torch.int64).numpy()  # (H, W)
    per_channel = out_c // spec.groups
    return np.broadcast_to(per_position * per_channel, in_shape).copy()


def fanout(spec: LayerSpec, in_shape: tuple[int, ...]) -> np.ndarray:
    """Targets of each input neuron of ``spec``'s synapse, shaped like its input."""
    if spec.type == "conv":
        return conv_fanout(spec, in_shape)
    return np.full(in_shape, spec.shape[0], dtype=np.int64)


def ann_macs(spec: LayerSpec) -> int:
    """Multiply-accumulates of this layer in the ANN twin, per inference."""
    if spec.type == "input":
        return 0
    if spec.type == "conv":
        _, in_per_group, kh, kw = spec.weight.shape
        return int(np.prod(spec.shape)) * in_per_group * kh * kw
    return int(spec.weight.shape[0] * spec.weight.shape[1])


def twin_macs(layers: list[LayerSpec], metadata: dict[str, Any]) -> list[int]:
    """ANN-twin multiply-accumulates per inference of each layer: the metadata's
    ``ann_macs`` entry where it names the layer, else :func:`ann_macs`."""
    given = metadata.get(ANN_MACS_KEY) or {}
    names = {spec.name for spec in layers}
    if not isinstance(given, dict) or any(
            name not in names or isinstance(v, bool) or not isinstance(v, int) or v < 0
            for name, v in given.items()):
        raise SlssnnError(f"network metadata '{ANN_MACS_KEY}': expected {{layer name: "
                          f"count >= 0}} for layers of this network, got {given!r}"[:300])
    return [given.get(spec.name, ann_macs(spec)) for spec in layers]


def layer_activity(layers: list[LayerSpec], spike_counts: list[np.ndarray],
                   timesteps: int, samples: int,
                   input_counts: np.ndarray | None = None,
                   metadata: dict[str, Any] | None = None) -> list[dict[str, Any]]:
    """Per-layer totals over a run.

    ``spike_counts[i]``: spikes of layer ``i`` per neuron, summed over samples
    and steps, shaped like the layer (C, H, W) or (N,). ``input_counts``: the
    input spikes per input neuron, for a network whose first block is a
    synapse (no input layer); they count towards that block's synops.
    ``metadata``: the network's, for its ANN-twin counts (:func:`twin_macs`).
    """
    macs = twin_macs(layers, metadata or {})
    records = []
    for i, (spec, counts) in enumerate(zip(layers, spike_counts, strict=True)):
        if getattr(spec.neuron, "role", None) == "sigma":  # a read-out of the running sum
            counts = np.zeros_like(np.asarray(counts))
        synops = 0
        prev = spike_counts[i - 1] if i > 0 else input_counts
        if spec.type != "input" and prev is not None:
            prev_counts = np.asarray(prev).astype(np.int64)
            if spec.type != "conv":
                prev_counts = prev_counts.reshape(-1)  # flatten: C, H, W order
            synops = int((prev_counts * fanout(spec, prev_counts.shape)).sum())
            if spec.weight_imag is not None:  # a complex dense: a real and an imaginary synapse
                synops *= 2
        if spec.weight_rec is not None:  # dense_rec: every spike also reaches all N neurons
            synops += int(np.asarray(counts).sum()) * spec.weight_rec.shape[0]
        records.append({
            "name": spec.name,
            "type": spec.type,
            "shape": list(spec.shape),
            "neurons": spec.neurons,
            "spikes": int(counts.sum()),
            "synops": synops,
            "neuron_updates": spec.neurons * timesteps * samples,
            "ann_macs": macs[i],
            "graded": spec.neuron.message_bits > 0 and not isinstance(spec.neuron, CubaNeuron),
        })
    return records
