"""The one netx HDF5 writer: the in-memory form (:mod:`.network`) to a file.

:func:`write_network` writes any list of :class:`LayerSpec` blocks (ours,
lava-dl's read back, or converted from NIR); :func:`export_network` writes a
trained model through :func:`model_layers`, whose integers come from
:meth:`STCB.quantized` (the function training used), so the file holds
exactly the network that was evaluated. The live model is never changed.
Every file is written to a temporary path, read back and validated by
:func:`read_network`, and only then renamed into place.
"""

from __future__ import annotations

import copy
import json
import os
from typing import Any

import h5py
import numpy as np
import torch

from slssnn.atomic import atomic_path, writable_file
from slssnn.training.models import SpikingNet

from . import schema as S
from .network import CubaNeuron, LayerSpec, NetxNetwork, Neuron, RfNeuron, SigmaDeltaNeuron
from .netx_reader import read_network


def _put_type(group: h5py.Group, kind: str) -> None:
    group.create_dataset(S.TYPE, data=np.array([kind.encode("ascii")], dtype="S10"))


def _put_neuron(group: h5py.Group, neuron: Neuron) -> None:
    node = group.create_group(S.NEURON)
    if isinstance(neuron, SigmaDeltaNeuron):
        node.create_dataset(S.TYPE, data=np.bytes_(S.SDNN_TYPE.encode("ascii")))
        node.create_dataset(S.ACTIVATION, data=np.bytes_(neuron.activation.encode("ascii")))
        node.create_dataset(S.V_TH_MANT, data=np.int64(neuron.threshold))
        if neuron.role == "sigma":
            node.create_dataset(S.SIGMA_OUTPUT, data=np.bool_(True))
        if neuron.message_bits != S.SDNN_MESSAGE_BITS:
            node.create_dataset(S.MESSAGE_BITS, data=np.int64(neuron.message_bits))
        return
    node.create_dataset(S.TYPE, data=np.bytes_(neuron.kind.encode("ascii")))
    if isinstance(neuron, RfNeuron):
        for key, value in ((S.SIN_DECAY, neuron.sin_decay), (S.COS_DECAY, neuron.cos_decay),
                           (S.V_TH_MANT, neuron.threshold)):
            node.create_dataset(key, data=np.int64(value))
        if neuron.graded is not None:
            node.create_dataset(S.GRADED, data=np.bool_(neuron.graded))
        return
    for key, value in ((S.I_DECAY, neuron.i_decay), (S.V_DECAY, neuron.v_decay),
                       (S.V_TH_MANT, neuron.threshold)):
        node.create_dataset(key, data=np.int64(value))
    if neuron.ref_delay is not None:
        node.create_dataset(S.REF_DELAY, data=np.int64(neuron.ref_delay))
    if neuron.graded is not None:
        node.create_dataset(S.GRADED, data=np.bool_(neuron.graded))
    if neuron.message_bits:
        node.create_dataset(S.MESSAGE_BITS, data=np.int64(neuron.message_bits))


def _compact_delay(delay: np.ndarray) -> np.ndarray:
    """The smallest form netx expands back to ``delay`` (N, inputs): (N,), (inputs,) or full."""
    if np.all(delay == delay[:, :1]):
        return delay[:, 0]
    if np.all(delay == delay[:1, :]):
        return delay[0]
    return delay


def _put_block(group: h5py.Group, spec: LayerSpec) -> None:
    _put_type(group, spec.type)
    group.create_dataset(S.SHAPE, data=np.array(spec.shape, dtype=np.int64))
    for key, value in spec.input_transform.items():
        group.create_dataset(key, data=np.asarray(value, dtype=np.float32))
    if spec.weight_imag is not None:
        group.create_dataset(f"{S.WEIGHT}/{S.REAL}", data=spec.weight.astype(np.float32))
        group.create_dataset(f"{S.WEIGHT}/{S.IMAG}", data=spec.weight_imag.astype(np.float32))
    elif spec.weight is not None:
        group.create_dataset(S.WEIGHT, data=spec.weight.astype(np.float32))
    if spec.weight_rec is not None:
        group.create_dataset(S.WEIGHT_REC, data=spec.weight_rec.astype(np.float32))
    if spec.bias is not None:
        group.create_dataset(S.BIAS, data=spec.bias.astype(np.float32))
    if spec.type == "conv":
        for key, value in ((S.STRIDE, spec.stride), (S.PADDING, spec.padding),
                           (S.DILATION, spec.dilation)):
            group.create_dataset(key, data=np.array(value, dtype=np.int64))
        group.create_dataset(S.GROUPS, data=np.int64(spec.groups))
    if spec.delay is not None:
        group.create_dataset(S.DELAY, data=_compact_delay(spec.delay).astype(np.int64))
    _put_neuron(group, spec.neuron)


def write_network(path: str | os.PathLike[str], layers: list[LayerSpec],
                  metadata: dict[str, Any] | None = None,
                  declared_input: tuple[int, ...] | None = None) -> NetxNetwork:
    """Write ``layers`` (the in-memory form) to ``path`` as a netx HDF5 file.

    A flatten group goes before each ``flatten_before`` block; ``declared_input``
    writes a first input layer with only a shape (netx builds no block for it);
    ``metadata`` becomes our ``slssnn`` group (None: no group). The file is
    written to a temporary path, read back by :func:`read_network` and only
    then renamed into place. Returns the validated file's contents.
    """
    path = writable_file(path)
    with atomic_path(path) as tmp:
        with h5py.File(tmp, "w") as handle:
            root = handle.create_group(S.LAYER_GROUP)
            groups = 0
            if declared_input is not None:
                group = root.create_group(str(groups))
                _put_type(group, "input")
                group.create_dataset(S.SHAPE, data=np.array(declared_input, dtype=np.int64))
                groups += 1
            for spec in layers:
                if spec.flatten_before:
                    _put_type(root.create_group(str(groups)), "flatten")
                    groups += 1
                _put_block(root.create_group(str(groups)), spec)
                groups += 1
            if metadata is not None:
                meta = handle.create_group(S.METADATA_GROUP)
                meta.attrs[S.VERSION_ATTR] = S.FORMAT_VERSION
                meta.attrs[S.METADATA_ATTR] = json.dumps(metadata)
        read_network(tmp)  # refuse to publish a file our own reader would refuse
    return read_network(path)


def layer_shapes(model: SpikingNet) -> list[tuple[int, ...]]:
    """Output shape of every block, input layer first: (C, H, W) or (N,).

    Runs a copy in eval mode: a train-mode forward would update batch-norm
    running statistics, and export never changes the live model.
    """
    probe = copy.deepcopy(model).eval()
    with torch.no_grad():
        _, trace = probe(torch.zeros(1, *model.config.input_shape))
    return [tuple(t.shape[2:]) for t in trace]


def _ints(x: torch.Tensor) -> np.ndarray:
    return x.detach().cpu().to(torch.float64).numpy().round().astype(np.int64)


def model_layers(model: SpikingNet) -> list[LayerSpec]:
    """The in-memory netx form of a model: its quantized integers, exactly as evaluated.

    The integers come from :meth:`STCB.quantized`, the function training used.
    """
    cfg = model.config
    shapes = layer_shapes(model)
    layers = [LayerSpec(0, "input", shapes[0],
                        CubaNeuron(cfg.i_decay, cfg.v_decay, cfg.input_threshold))]
    for block, flatten, shape in zip(model.blocks, model.flatten_before, shapes[1:], strict=True):
        q = block.quantized()
        neuron = CubaNeuron(block.neuron.i_decay, block.neuron.v_decay, int(q.threshold))
        bias = None if q.bias is None else _ints(q.bias)
        if block.is_conv:
            conv = block.synapse
            layers.append(LayerSpec(len(layers), "conv", shape, neuron, _ints(q.weight), bias,
                                    tuple(conv.stride), tuple(conv.padding),
                                    tuple(conv.dilation), conv.groups))
        else:
            layers.append(LayerSpec(len(layers), "dense", shape, neuron, _ints(q.weight), bias,
                                    flatten_before=flatten))
    return layers


def _input_encoding(cfg: Any) -> dict[str, Any]:
    """How a sample becomes the input layer's ``a_in``: graded current or event frames."""
    if getattr(cfg, "input_kind", "current") == "events":
        return {"kind": "events", "scale": cfg.input_scale,
                "description": "frame t of a sample's T event frames, times scale, as a_in "
                               "of the input layer at step t"}
    return {"kind": "current", "scale": cfg.input_scale,
            "description": "round(pixel * scale) as a_in of the input layer, "
                           "on each of the T steps of a sample"}


def export_clamps(model: SpikingNet) -> list[dict[str, Any]]:
    """Per block (file layer index and name), how many values export's quantization clamped
    onto Loihi's range: ``bias`` (neurons) and ``threshold`` (0 or 1), counted by
    :func:`slssnn.training.quantize.quantize_block` where it clamps. The input layer's
    threshold is range-checked, never clamped; its currents depend on the data and are
    counted where the data is encoded (:func:`slssnn.training.models.encode_currents`,
    printed by ``slssnn run``)."""
    clamps, index = [], 0
    for block, flatten in zip(model.blocks, model.flatten_before, strict=True):
        index += 2 if flatten else 1
        q = block.quantized()
        kind = "conv" if block.is_conv else "dense"
        clamps.append({"layer": index, "name": f"{index}:{kind}",
                       "bias": int(q.bias_clamped), "threshold": int(q.threshold_clamped)})
    return clamps


def network_metadata(model: SpikingNet, provenance: dict[str, Any]) -> dict[str, Any]:
    """Our metadata group: T, input encoding, readout rule, the dataset trained on (the
    provenance's ``train_config["dataset"]``; the model's name when there is none), classes,
    model config, clamp counts (:func:`export_clamps`), provenance."""
    cfg = model.config
    return {
        "clamps": export_clamps(model),
        "timesteps": cfg.timesteps,
        "input_encoding": _input_encoding(cfg),
        "readout": "argmax of output spike counts; ties go to the lowest class index",
        "dataset": provenance.get("train_config", {}).get("dataset", cfg.name),
        "num_classes": cfg.num_classes,
        "model_config": cfg.to_dict(),
        "provenance": provenance,
    }


def export_network(model: SpikingNet, path: str | os.PathLike[str],
                   provenance: dict[str, Any] | None = None) -> NetxNetwork:
    """Write ``model`` to ``path`` as a netx HDF5 file; return the validated file's contents."""
    return write_network(path, model_layers(model), network_metadata(model, provenance or {}))
