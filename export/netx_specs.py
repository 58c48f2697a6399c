"""Write a list of :class:`LayerSpec` blocks (file units) as a netx HDF5 file.

The counterpart of :func:`.netx_reader.read_network` for networks that do not
come from a trained :class:`SpikingNet` (e.g. converted from NIR): the same
key names (:mod:`.schema`), the same layout lava-dl's netx loads, written to a
temporary file, validated by our reader, then renamed into place.
"""

from __future__ import annotations

import json
import os
from typing import Any

import h5py
import numpy as np

from slssnn.atomic import atomic_path, writable_file

from . import schema as S
from .netx_reader import LayerSpec, NetxNetwork, read_network

DEFAULT_EXTRA = {"neuron_type": "CUBA", S.REF_DELAY: 1, S.GRADED: False}
"""What slssnn's writer puts in every neuron group when no source file says otherwise."""


def _put_type(group: h5py.Group, kind: str) -> None:
    group.create_dataset(S.TYPE, data=np.array([kind.encode("ascii")], dtype="S10"))


def _put_neuron(group: h5py.Group, spec: LayerSpec, extra: dict[str, Any]) -> None:
    neuron = group.create_group(S.NEURON)
    neuron.create_dataset(S.TYPE, data=np.bytes_(extra.get("neuron_type", "CUBA").encode()))
    for key, value in ((S.I_DECAY, spec.neuron.i_decay), (S.V_DECAY, spec.neuron.v_decay),
                       (S.V_TH_MANT, spec.neuron.threshold)):
        neuron.create_dataset(key, data=np.int64(value))
    if S.REF_DELAY in extra:
        neuron.create_dataset(S.REF_DELAY, data=np.int64(extra[S.REF_DELAY]))
    if S.GRADED in extra:
        neuron.create_dataset(S.GRADED, data=np.bool_(extra[S.GRADED]))


def _compact_delay(delay: np.ndarray) -> np.ndarray:
    """The smallest form netx expands back to ``delay`` (N, inputs): (N,), (inputs,) or full."""
    if np.all(delay == delay[:, :1]):
        return delay[:, 0]
    if np.all(delay == delay[:1, :]):
        return delay[0]
    return delay


def _write_block(group: h5py.Group, spec: LayerSpec, extra: dict[str, Any]) -> None:
    _put_type(group, spec.type)
    group.create_dataset(S.SHAPE, data=np.array(spec.shape, dtype=np.int64))
    if spec.type == "input":
        for key in (S.WEIGHT, S.BIAS):
            if "input_" + key in extra:
                group.create_dataset(key, data=np.asarray(extra["input_" + key], np.float32))
    else:
        group.create_dataset(S.WEIGHT, data=spec.weight.astype(np.float32))
        if spec.bias is not None:
            group.create_dataset(S.BIAS, data=spec.bias.astype(np.float32))
    if spec.type == "conv":
        for key, value in ((S.STRIDE, spec.stride), (S.PADDING, spec.padding),
                           (S.DILATION, spec.dilation)):
            group.create_dataset(key, data=np.array(value, dtype=np.int64))
        group.create_dataset(S.GROUPS, data=np.int64(spec.groups))
    if spec.type == "dense" and spec.delay is not None:
        group.create_dataset(S.DELAY, data=_compact_delay(spec.delay).astype(np.int64))
    _put_neuron(group, spec, extra)


def write_layers(path: str | os.PathLike[str], layers: list[LayerSpec],
                 metadata: dict[str, Any] | None = None,
                 extras: list[dict[str, Any]] | None = None) -> NetxNetwork:
    """Write ``layers`` (a flatten group before each ``flatten_before`` dense) to ``path``.

    ``extras[i]`` (per netx layer group, flatten groups included) may give the
    neuron ``neuron_type``, ``refDelay``, ``gradedSpike`` (each written only if
    given) and an input layer's ``input_weight``/``input_bias``; without
    ``extras``: :data:`DEFAULT_EXTRA`.
    Returns the validated file's contents.
    """
    path = writable_file(path)
    with atomic_path(path) as tmp:
        with h5py.File(tmp, "w") as handle:
            root = handle.create_group(S.LAYER_GROUP)
            index = 0
            for spec in layers:
                if spec.flatten_before:
                    _put_type(root.create_group(str(index)), "flatten")
                    index += 1
                extra = DEFAULT_EXTRA if extras is None or index >= len(extras) \
                    else extras[index]
                _write_block(root.create_group(str(index)), spec, extra)
                index += 1
            if metadata is not None:
                meta = handle.create_group(S.METADATA_GROUP)
                meta.attrs[S.VERSION_ATTR] = S.FORMAT_VERSION
                meta.attrs[S.METADATA_ATTR] = json.dumps(metadata)
        read_network(tmp)
    return read_network(path)
