"""Read and validate a netx HDF5 file into plain integer arrays.

:func:`read_network` checks the whole file against :mod:`.schema` before
returning anything: every layer's type, keys, shapes, dtypes, value ranges,
and the layer-to-layer shape chain. A file that fails is refused with one
``SlssnnError`` naming the file, the layer and the field.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import h5py
import numpy as np

from slssnn.errors import SlssnnError

from . import schema as S


@dataclass(frozen=True)
class NeuronSpec:
    """CUBA neuron parameters as netx reads them (file units)."""

    i_decay: int
    v_decay: int
    threshold: int


@dataclass
class LayerSpec:
    """One built block of a netx network (input, conv or dense), in file units.

    ``shape`` is (C, H, W) or (N,); ``weight`` int64, conv ``(O, I/groups, kH, kW)``
    or dense ``(N, inputs)``; ``bias`` int64 per channel/neuron or None;
    ``stride``/``padding``/``dilation`` are (H, W) pairs.
    """

    index: int
    type: str
    shape: tuple[int, ...]
    neuron: NeuronSpec
    weight: np.ndarray | None = None
    bias: np.ndarray | None = None
    stride: tuple[int, int] = (1, 1)
    padding: tuple[int, int] = (0, 0)
    dilation: tuple[int, int] = (1, 1)
    groups: int = 1
    flatten_before: bool = False
    delay: np.ndarray | None = None
    """Dense only: synaptic delays in steps, ``(N, inputs)`` (netx's DelayDense), or None."""

    @property
    def neurons(self) -> int:
        return int(np.prod(self.shape))

    @property
    def name(self) -> str:
        return f"{self.index}:{self.type}"


@dataclass
class NetxNetwork:
    """A validated netx network: its blocks in order and our metadata (or {})."""

    path: Path
    layers: list[LayerSpec]
    metadata: dict[str, Any] = field(default_factory=dict)

    @property
    def input_shape(self) -> tuple[int, ...]:
        """Shape of the network input: the input layer's, or the first block's inputs."""
        first = self.layers[0]
        if first.type == "input":
            return first.shape
        return (int(first.weight.shape[1]),)


class _Refuse(Exception):
    """Internal: a validation failure, turned into one SlssnnError with file context."""


def _scalar_str(ds: Any, where: str) -> str:
    if not isinstance(ds, h5py.Dataset):
        raise _Refuse(f"{where}: expected a dataset")
    value = ds[()]
    if isinstance(value, np.ndarray):
        if value.size != 1:
            raise _Refuse(f"{where}: expected one string, found shape {value.shape}")
        value = value.reshape(-1)[0]
    if isinstance(value, bytes | np.bytes_):
        try:
            return value.decode("ascii")
        except UnicodeDecodeError as exc:
            raise _Refuse(f"{where}: not an ASCII string") from exc
    raise _Refuse(f"{where}: expected a string, found {type(value).__name__}")


def _numbers(group: h5py.Group, key: str, where: str, integer: bool = True,
             rng: S.Range | None = None) -> np.ndarray:
    ds = group.get(key)
    if not isinstance(ds, h5py.Dataset):
        raise _Refuse(f"{where}: field '{key}' is missing or not a dataset")
    if ds.dtype.kind not in "biuf":
        raise _Refuse(f"{where}: field '{key}' has non-numeric dtype {ds.dtype}")
    try:
        value = np.asarray(ds[()], dtype=np.float64)
    except (OSError, ValueError) as exc:
        raise _Refuse(f"{where}: field '{key}' cannot be read ({exc})") from exc
    if not np.all(np.isfinite(value)):
        raise _Refuse(f"{where}: field '{key}' holds NaN or infinite values")
    if integer and not np.all(value == np.round(value)):
        raise _Refuse(f"{where}: field '{key}' must hold integers")
    if rng is not None and value.size and (value.min() < rng.low or value.max() > rng.high):
        raise _Refuse(f"{where}: field '{key}' outside [{rng.low:g}, {rng.high:g}] "
                      f"(found {value.min():g}..{value.max():g})")
    return value.astype(np.int64) if integer else value


def _scalar(group: h5py.Group, key: str, where: str, rng: S.Range | None = None) -> int:
    """A 0-d integer field (netx passes these to Lava as they are: a (1,) array breaks it)."""
    value = _numbers(group, key, where, rng=rng)
    if value.ndim != 0:
        raise _Refuse(f"{where}: field '{key}' must be a scalar, found shape {value.shape}")
    return int(value)


def _pair(group: h5py.Group, key: str, where: str) -> tuple[int, int]:
    value = _numbers(group, key, where, rng=S.GEOMETRY_RANGE)
    if value.ndim == 0:
        return int(value), int(value)
    if value.shape != (2,):
        raise _Refuse(f"{where}: field '{key}' must be a scalar or (H, W), found shape "
                      f"{value.shape}")
    return int(value[0]), int(value[1])


def _neuron(group: h5py.Group, where: str) -> NeuronSpec:
    node = group.get(S.NEURON)
    if not isinstance(node, h5py.Group):
        raise _Refuse(f"{where}: field 'neuron' is missing or not a group")
    where = f"{where}/neuron"
    for key in node.keys():
        if key not in S.NEURON_REQUIRED and key not in S.NEURON_OPTIONAL:
            raise _Refuse(f"{where}: unknown field '{key}'")
    kind = _scalar_str(node.get(S.TYPE), f"{where}: field 'type'")
    if kind not in S.NEURON_TYPES:
        raise _Refuse(f"{where}: neuron type '{kind}' not supported; known: "
                      + ", ".join(S.NEURON_TYPES))
    values = {}
    for key, rng in S.NEURON_REQUIRED.items():
        if key != S.TYPE:
            values[key] = _scalar(node, key, where, rng=rng)
    for key, rng in S.NEURON_OPTIONAL.items():
        if key in node and rng is not None:
            _numbers(node, key, where, rng=rng)
    return NeuronSpec(values[S.I_DECAY], values[S.V_DECAY], values[S.V_TH_MANT])


def _shape(group: h5py.Group, where: str) -> tuple[int, ...]:
    shape = _numbers(group, S.SHAPE, where, rng=S.Range(1, 1 << 24)).reshape(-1)
    if shape.size not in (1, 3):
        raise _Refuse(f"{where}: field 'shape' must be (C, H, W) or (N,), found {tuple(shape)}")
    return tuple(int(s) for s in shape)


def _conv_out(size: int, kernel: int, stride: int, pad: int, dil: int) -> int:
    return (size + 2 * pad - dil * (kernel - 1) - 1) // stride + 1


def _read_conv(group: h5py.Group, where: str, index: int, prev: tuple[int, ...]) -> LayerSpec:
    if len(prev) != 3:
        raise _Refuse(f"{where}: conv needs a (C, H, W) input, previous layer gives {prev}")
    shape = _shape(group, where)
    if len(shape) != 3:
        raise _Refuse(f"{where}: field 'shape' of a conv layer must be (C, H, W)")
    weight = _numbers(group, S.WEIGHT, where, rng=S.WEIGHT_RANGE)
    if weight.ndim == 5 and weight.shape[-1] == 1:
        weight = weight[..., 0]  # lava-dl writes (O, I, kH, kW, 1)
    if weight.ndim != 4:
        raise _Refuse(f"{where}: field 'weight' must be (O, I/groups, kH, kW), "
                      f"found {weight.shape}")
    stride, padding = _pair(group, S.STRIDE, where), _pair(group, S.PADDING, where)
    dilation = _pair(group, S.DILATION, where)
    groups = _scalar(group, S.GROUPS, where, rng=S.Range(1, 1 << 16))
    if min(stride) < 1 or min(dilation) < 1:
        raise _Refuse(f"{where}: field 'stride'/'dilation' must be >= 1")
    out_c, in_per_group, kh, kw = weight.shape
    if in_per_group * groups != prev[0] or out_c % groups:
        raise _Refuse(f"{where}: field 'weight' {weight.shape} with groups={groups} does not "
                      f"fit {prev[0]} input channels")
    expected = (out_c,
                _conv_out(prev[1], kh, stride[0], padding[0], dilation[0]),
                _conv_out(prev[2], kw, stride[1], padding[1], dilation[1]))
    if shape != expected:
        raise _Refuse(f"{where}: field 'shape' is {shape}, but the conv of a {prev} input "
                      f"gives {expected}")
    return LayerSpec(index, "conv", shape, _neuron(group, where), weight,
                     _bias(group, where, out_c), stride, padding, dilation, groups)


def _bias(group: h5py.Group, where: str, channels: int) -> np.ndarray | None:
    if S.BIAS not in group:
        return None
    bias = _numbers(group, S.BIAS, where, rng=S.BIAS_RANGE).reshape(-1)
    if bias.size not in (1, channels):
        raise _Refuse(f"{where}: field 'bias' has {bias.size} values for {channels} channels")
    return np.broadcast_to(bias, (channels,)).copy()


def _read_dense(group: h5py.Group, where: str, index: int,
                prev: tuple[int, ...] | None, flatten: bool) -> LayerSpec:
    shape = _shape(group, where)
    if len(shape) != 1:
        raise _Refuse(f"{where}: field 'shape' of a dense layer must be (N,)")
    weight = _numbers(group, S.WEIGHT, where, rng=S.WEIGHT_RANGE)
    if weight.ndim != 2 or weight.shape[0] != shape[0]:
        raise _Refuse(f"{where}: field 'weight' must be ({shape[0]}, inputs), "
                      f"found {weight.shape}")
    if prev is not None:
        if len(prev) == 3 and not flatten:
            raise _Refuse(f"{where}: dense after a (C, H, W) layer needs a 'flatten' layer")
        if weight.shape[1] != int(np.prod(prev)):
            raise _Refuse(f"{where}: field 'weight' takes {weight.shape[1]} inputs, previous "
                          f"layer gives {int(np.prod(prev))}")
    return LayerSpec(index, "dense", shape, _neuron(group, where), weight,
                     _bias(group, where, shape[0]), flatten_before=flatten,
                     delay=_delay(group, where, weight.shape))


def _delay(group: h5py.Group, where: str, weight_shape: tuple[int, int]) -> np.ndarray | None:
    """netx's expansion of a dense layer's delay to one per synapse ``(N, inputs)``."""
    if S.DELAY not in group:
        return None
    delay = _numbers(group, S.DELAY, where, rng=S.DELAY_RANGE)
    outputs, inputs = weight_shape
    if delay.ndim == 0:
        return np.full(weight_shape, int(delay.reshape(-1)[0]), dtype=np.int64)
    if delay.ndim == 1 and delay.size == outputs:
        return np.repeat(delay.reshape(-1, 1), inputs, axis=1)
    if delay.ndim == 1 and delay.size == inputs:
        return np.repeat(delay.reshape(1, -1), outputs, axis=0)
    if delay.shape == weight_shape:
        return delay
    raise _Refuse(f"{where}: field 'delay' of shape {delay.shape} does not fit weight "
                  f"{weight_shape}")


def _read_layers(root: h5py.Group, where_file: str) -> list[LayerSpec]:
    layers_group = root.get(S.LAYER_GROUP)
    if not isinstance(layers_group, h5py.Group) or len(layers_group) == 0:
        raise _Refuse("group 'layer' is missing or empty")
    names = sorted(layers_group.keys(), key=lambda k: (not k.isdigit(), int(k) if k.isdigit()
                                                       else 0))
    if names != [str(i) for i in range(len(names))]:
        raise _Refuse(f"group 'layer' must hold layers 0..{len(names) - 1}, found {names}")
    layers: list[LayerSpec] = []
    prev: tuple[int, ...] | None = None
    flatten = False
    for i in range(len(names)):
        group = layers_group[str(i)]
        where = f"layer {i}"
        if not isinstance(group, h5py.Group):
            raise _Refuse(f"{where}: not a group")
        kind = _scalar_str(group.get(S.TYPE), f"{where}: field 'type'")
        if kind not in S.LAYER_KEYS:
            raise _Refuse(f"{where}: unknown layer type '{kind}'; known: "
                          + ", ".join(S.LAYER_TYPES))
        required, optional = S.LAYER_KEYS[kind]
        for key in group.keys():
            if key not in required and key not in optional:
                raise _Refuse(f"{where}: unknown field '{key}' for a {kind} layer")
        for key in sorted(required - set(group.keys())):
            raise _Refuse(f"{where}: field '{key}' is missing")
        if kind == "input":
            if layers:
                raise _Refuse(f"{where}: an input layer must come first")
            shape = _shape(group, where)
            layers.append(LayerSpec(i, "input", shape, _neuron(group, where)))
            prev = shape
        elif kind == "flatten":
            if prev is None or flatten:
                raise _Refuse(f"{where}: flatten must follow a layer and precede a dense layer")
            flatten = True
            continue
        elif kind == "conv":
            if prev is None:
                raise _Refuse(f"{where}: a conv first layer needs an input layer before it")
            layers.append(_read_conv(group, where, i, prev))
        else:
            layers.append(_read_dense(group, where, i, prev, flatten))
        prev, flatten = layers[-1].shape, False
    if flatten:
        raise _Refuse("the last layer is a flatten layer")
    return layers


def _read_metadata(root: h5py.File) -> dict[str, Any]:
    node = root.get(S.METADATA_GROUP)
    if node is None:
        return {}
    where = f"group '{S.METADATA_GROUP}'"
    version = node.attrs.get(S.VERSION_ATTR)
    version = version.item() if isinstance(version, np.generic) else version
    if version != S.FORMAT_VERSION:
        raise _Refuse(f"{where}: attribute '{S.VERSION_ATTR}' is {version!r}; this slssnn "
                      f"reads version {S.FORMAT_VERSION}")
    try:
        metadata = json.loads(node.attrs[S.METADATA_ATTR])
    except (KeyError, TypeError, ValueError) as exc:
        raise _Refuse(f"{where}: attribute '{S.METADATA_ATTR}' is missing or not JSON") from exc
    if not isinstance(metadata, dict):
        raise _Refuse(f"{where}: attribute '{S.METADATA_ATTR}' must be a JSON object")
    return metadata


def read_network(path: str | os.PathLike[str]) -> NetxNetwork:
    """Read and validate a netx HDF5 file; raise ``SlssnnError`` naming file, layer and field."""
    path = Path(path)
    if not path.exists():
        raise SlssnnError(f"network {path}: no such file")
    if not path.is_file():
        raise SlssnnError(f"network {path}: not a regular file")
    try:
        with h5py.File(path, "r") as root:
            for key in root.keys():
                if key not in (S.LAYER_GROUP, S.METADATA_GROUP, S.SIMULATION_GROUP):
                    raise _Refuse(f"unknown top-level group '{key}'")
            layers = _read_layers(root, str(path))
            metadata = _read_metadata(root)
    except _Refuse as exc:
        raise SlssnnError(f"network {path}: {exc}") from None
    except (OSError, KeyError, ValueError, TypeError, RuntimeError) as exc:
        reason = str(exc).splitlines()[0] if str(exc) else exc.__class__.__name__
        raise SlssnnError(f"network {path}: not a readable netx HDF5 file ({reason})") from None
    return NetxNetwork(path, layers, metadata)
