"""Write a trained network as a lava-dl netx HDF5 file.

The integers come from :meth:`STCB.quantized` (the function training used),
so the file holds exactly the network that was evaluated. The live model is
never changed. The file is written to a temporary path, read back and
validated by :func:`read_network`, and only then renamed into place.
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
from .netx_reader import NetxNetwork, read_network


def _put_type(group: h5py.Group, kind: str) -> None:
    group.create_dataset(S.TYPE, data=np.array([kind.encode("ascii")], dtype="S10"))


def _put_neuron(group: h5py.Group, i_decay: int, v_decay: int, threshold: int) -> None:
    neuron = group.create_group(S.NEURON)
    neuron.create_dataset(S.TYPE, data=np.bytes_(b"CUBA"))
    for key, value in ((S.I_DECAY, i_decay), (S.V_DECAY, v_decay), (S.V_TH_MANT, threshold),
                       (S.REF_DELAY, 1)):
        neuron.create_dataset(key, data=np.int64(value))
    neuron.create_dataset(S.GRADED, data=np.bool_(False))


def _to_int_array(x: torch.Tensor) -> np.ndarray:
    return x.detach().cpu().to(torch.float32).numpy()


def layer_shapes(model: SpikingNet) -> list[tuple[int, ...]]:
    """Output shape of every block, input layer first: (C, H, W) or (N,).

    Runs a copy in eval mode: a train-mode forward would update batch-norm
    running statistics, and export never changes the live model.
    """
    probe = copy.deepcopy(model).eval()
    with torch.no_grad():
        _, trace = probe(torch.zeros(1, *model.config.input_shape))
    return [tuple(t.shape[2:]) for t in trace]


def _write(handle: h5py.File, model: SpikingNet, metadata: dict[str, Any]) -> None:
    cfg = model.config
    shapes = layer_shapes(model)
    layers = handle.create_group(S.LAYER_GROUP)
    index = 0
    group = layers.create_group(str(index))
    _put_type(group, "input")
    group.create_dataset(S.SHAPE, data=np.array(cfg.input_shape, dtype=np.int64))
    _put_neuron(group, cfg.i_decay, cfg.v_decay, cfg.input_threshold)
    for block, flatten, shape in zip(model.blocks, model.flatten_before, shapes[1:], strict=True):
        if flatten:
            index += 1
            group = layers.create_group(str(index))
            _put_type(group, "flatten")
        index += 1
        group = layers.create_group(str(index))
        q = block.quantized()
        _put_type(group, "conv" if block.is_conv else "dense")
        group.create_dataset(S.SHAPE, data=np.array(shape, dtype=np.int64))
        group.create_dataset(S.WEIGHT, data=_to_int_array(q.weight))
        if q.bias is not None:
            group.create_dataset(S.BIAS, data=_to_int_array(q.bias))
        if block.is_conv:
            conv = block.synapse
            for key, value in ((S.STRIDE, conv.stride), (S.PADDING, conv.padding),
                               (S.DILATION, conv.dilation)):
                group.create_dataset(key, data=np.array(value, dtype=np.int64))
            group.create_dataset(S.GROUPS, data=np.int64(conv.groups))
        _put_neuron(group, block.neuron.i_decay, block.neuron.v_decay, int(q.threshold))
    meta = handle.create_group(S.METADATA_GROUP)
    meta.attrs[S.VERSION_ATTR] = S.FORMAT_VERSION
    meta.attrs[S.METADATA_ATTR] = json.dumps(metadata)


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
    """Our metadata group: T, input encoding, readout rule, classes, model config, clamp
    counts (:func:`export_clamps`), provenance."""
    cfg = model.config
    return {
        "clamps": export_clamps(model),
        "timesteps": cfg.timesteps,
        "input_encoding": _input_encoding(cfg),
        "readout": "argmax of output spike counts; ties go to the lowest class index",
        "dataset": cfg.name,
        "num_classes": cfg.num_classes,
        "model_config": cfg.to_dict(),
        "provenance": provenance,
    }


def export_network(model: SpikingNet, path: str | os.PathLike[str],
                   provenance: dict[str, Any] | None = None) -> NetxNetwork:
    """Write ``model`` to ``path`` as a netx HDF5 file; return the validated file's contents."""
    path = writable_file(path)
    metadata = network_metadata(model, provenance or {})
    with atomic_path(path) as tmp:
        with h5py.File(tmp, "w") as handle:
            _write(handle, model, metadata)
        read_network(tmp)  # refuse to publish a file our own reader would refuse
    return read_network(path)
