"""Read and validate a netx HDF5 file into the network's in-memory form (:mod:`.network`).

:func:`read_network` reads a file the way lava-dl 0.6.0's ``netx.hdf5.Network``
does (``lava/lib/dl/netx/hdf5.py``; each rule below names its lines) and
checks the whole file against :mod:`.schema` before returning anything: every
layer's type, keys, shapes, dtypes, value ranges, and the layer-to-layer shape
chain. A file that fails is refused with one ``SlssnnError`` naming the file,
the layer and the field; a layer type netx cannot build is refused with a hint
that ``num_layers`` can stop before it, as netx's own ``num_layers`` does.
"""

from __future__ import annotations

import json
import os
import warnings
from pathlib import Path
from typing import Any

import h5py
import numpy as np

from slssnn.errors import SlssnnError

from . import schema as S
from .network import (
    CubaNeuron,
    LayerSpec,
    NetxNetwork,
    Neuron,
    RfNeuron,
    SigmaDeltaNeuron,
)

__all__ = ["CubaNeuron", "LayerSpec", "NetxNetwork", "Neuron", "RfNeuron", "SigmaDeltaNeuron",
           "read_network"]


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
    if integer and value.size and np.abs(value).max() >= 2.0 ** 62:
        raise _Refuse(f"{where}: field '{key}' holds integers beyond the int64 range "
                      f"(found {np.abs(value).max():g})")
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


def _unknown_keys(node: h5py.Group, allowed: set[str], where: str, what: str) -> None:
    for key in node.keys():
        if key not in allowed:
            raise _Refuse(f"{where}: unknown field '{key}' for {what}; known: "
                          + ", ".join(sorted(allowed)))


def _neuron(group: h5py.Group, where: str, is_input: bool = False,
            default: dict[str, Any] | None = None) -> Neuron:
    """The layer's neuron group as netx's ``get_neuron_params`` reads it (hdf5.py 112-206).

    ``default``: the neuron a missing group stands for (a dense layer, hdf5.py
    348-357); without it a missing group is refused.
    """
    node = group.get(S.NEURON)
    if node is None and default is not None:
        return CubaNeuron(default[S.I_DECAY], default[S.V_DECAY], default[S.V_TH_MANT],
                          ref_delay=None, graded=None)
    if not isinstance(node, h5py.Group):
        raise _Refuse(f"{where}: field 'neuron' is missing or not a group")
    where = f"{where}/neuron"
    kind = _scalar_str(node.get(S.TYPE), f"{where}: field 'type'")
    if kind not in S.NEURON_KEYS:
        for name, reason in S.UNBUILDABLE_NEURONS.items():
            if name in kind:
                raise _Refuse(f"{where}: neuron type '{kind}' cannot run: {reason}")
        raise _Refuse(f"{where}: neuron type '{kind}' not supported; known: "
                      + ", ".join(S.NEURON_TYPES))
    required, optional = S.NEURON_KEYS[kind]
    _unknown_keys(node, set(required) | set(optional), where, f"a {kind} neuron")
    for key in required:
        if key not in node:
            raise _Refuse(f"{where}: field '{key}' is missing")
    values = {key: _scalar(node, key, where, rng=rng)
              for key, rng in (required | optional).items()
              if key in node and key != S.TYPE and rng is not None}
    graded = bool(_scalar(node, S.GRADED, where)) if S.GRADED in node else None
    if kind in S.CUBA_TYPES:
        return CubaNeuron(values[S.I_DECAY], values[S.V_DECAY], values[S.V_TH_MANT], kind,
                          values.get(S.MESSAGE_BITS, 0), values.get(S.REF_DELAY), graded)
    if kind in S.RF_TYPES:
        return RfNeuron(kind, values[S.SIN_DECAY], values[S.COS_DECAY], values[S.V_TH_MANT],
                        graded)
    activation = (_scalar_str(node[S.ACTIVATION], f"{where}: field '{S.ACTIVATION}'")
                  if S.ACTIVATION in node else S.SDNN_ACTIVATIONS[0])
    if activation not in S.SDNN_ACTIVATIONS:
        raise _Refuse(f"{where}: field '{S.ACTIVATION}' is '{activation}': netx never reads "
                      "it and runs every SigmaDelta layer with ReLU; only 'relu' matches")
    role = ("delta" if is_input else "sigma" if S.SIGMA_OUTPUT in node  # hdf5.py 170-186
            else "sigma_delta")
    if role != "sigma" and S.V_TH_MANT not in node:
        raise _Refuse(f"{where}: field '{S.V_TH_MANT}' is missing")
    return SigmaDeltaNeuron(values.get(S.V_TH_MANT, 0), role, activation,
                            values.get(S.MESSAGE_BITS, S.SDNN_MESSAGE_BITS))


def _plain_neuron(group: h5py.Group, where: str, is_input: bool = False) -> Neuron:
    """The neuron of an input or conv block, which connects to ``neuron.a_in``."""
    neuron = _neuron(group, where, is_input)
    if isinstance(neuron, RfNeuron):
        raise _Refuse(f"{where}/neuron: netx builds {neuron.kind} as {neuron.process}, which has "
                      "no 'a_in' port for an input or conv block (lava/proc/rf/process.py "
                      "74-75); only a complex dense layer feeds it")
    return neuron


def _shape(group: h5py.Group, where: str, sizes: tuple[int, ...] = (1, 3)) -> tuple[int, ...]:
    shape = _numbers(group, S.SHAPE, where, rng=S.Range(1, 1 << 24)).reshape(-1)
    if shape.size not in sizes:
        expect = " or ".join({1: "(N,)", 3: "(C, H, W)"}.get(n, f"{n} values") for n in sizes)
        raise _Refuse(f"{where}: field 'shape' must be {expect}, found {tuple(shape)}")
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
    if S.DELAY in group:  # hdf5.py 532-535: netx builds no delay for a conv layer
        warnings.warn(f"{where}: field 'delay' of a conv layer is ignored, as netx 0.6.0 "
                      "ignores it (lava/lib/dl/netx/hdf5.py create_conv)", stacklevel=2)
    return LayerSpec(index, "conv", shape, _plain_neuron(group, where), weight,
                     _bias(group, where, out_c), stride, padding, dilation, groups)


def _bias(group: h5py.Group, where: str, channels: int) -> np.ndarray | None:
    if S.BIAS not in group:
        return None
    bias = _numbers(group, S.BIAS, where, rng=S.BIAS_RANGE).reshape(-1)
    if bias.size not in (1, channels):
        raise _Refuse(f"{where}: field 'bias' has {bias.size} values for {channels} channels")
    return np.broadcast_to(bias, (channels,)).copy()


def _dense_weight(group: h5py.Group, key: str, where: str, outputs: int) -> np.ndarray:
    """A dense weight ``(N, inputs)``; a flat one is reshaped as netx does (hdf5.py 395-399)."""
    weight = _numbers(group, key, where, rng=S.WEIGHT_RANGE)
    if weight.ndim == 1 and weight.size % outputs == 0:
        weight = weight.reshape(outputs, -1)
    if weight.ndim != 2 or weight.shape[0] != outputs:
        raise _Refuse(f"{where}: field '{key}' must be ({outputs}, inputs), "
                      f"found {weight.shape}")
    return weight


def _read_dense(group: h5py.Group, where: str, index: int, kind: str,
                prev: tuple[int, ...] | None, flatten: bool, first: bool) -> LayerSpec:
    """A dense or dense_rec layer; its size is ``prod(shape)`` (hdf5.py line 346).

    A ``first`` block reads the network input as given: no flatten is needed
    (netx connects nothing before it, hdf5.py line 662)."""
    shape = (int(np.prod(_shape(group, where, sizes=(1, 2, 3)))),)
    complex_weight = isinstance(group.get(S.WEIGHT), h5py.Group)
    if complex_weight:  # netx's ComplexDense (hdf5.py 362-390)
        _unknown_keys(group[S.WEIGHT], {S.REAL, S.IMAG}, f"{where}/weight", "complex weights")
        weight = _dense_weight(group, f"{S.WEIGHT}/{S.REAL}", where, shape[0])
        weight_imag = _dense_weight(group, f"{S.WEIGHT}/{S.IMAG}", where, shape[0])
        if weight_imag.shape != weight.shape:
            raise _Refuse(f"{where}: field 'weight/imag' {weight_imag.shape} differs from "
                          f"'weight/real' {weight.shape}")
    else:
        weight, weight_imag = _dense_weight(group, S.WEIGHT, where, shape[0]), None
    if prev is not None:
        if len(prev) == 3 and not (flatten or first):
            raise _Refuse(f"{where}: dense after a (C, H, W) layer needs a 'flatten' layer")
        if weight.shape[1] != int(np.prod(prev)):
            raise _Refuse(f"{where}: field 'weight' takes {weight.shape[1]} inputs, previous "
                          f"layer gives {int(np.prod(prev))}")
    weight_rec = None
    if kind == "dense_rec":  # hdf5.py 391-408, blocks/process.py RecurrentDense
        weight_rec = _dense_weight(group, S.WEIGHT_REC, where, shape[0])
        if weight_rec.shape != (shape[0], shape[0]):
            raise _Refuse(f"{where}: field '{S.WEIGHT_REC}' must be {(shape[0], shape[0])}, "
                          f"found {weight_rec.shape}")
    neuron = _neuron(group, where, default=None if complex_weight else S.DEFAULT_NEURON)
    is_rf = isinstance(neuron, RfNeuron)
    if complex_weight != is_rf or (complex_weight and weight_rec is not None):
        raise _Refuse(f"{where}: netx builds resonate-and-fire neurons only behind a complex "
                      "dense layer ('weight/real', 'weight/imag'; hdf5.py 362-390, "
                      "blocks/process.py ComplexDense) and a complex dense only into them")
    if complex_weight:
        for key in (S.BIAS, S.DELAY):  # ComplexDense takes neither (hdf5.py 377-390)
            if key in group:
                warnings.warn(f"{where}: field '{key}' of a complex dense layer is ignored, as "
                              "netx 0.6.0's ComplexDense ignores it", stacklevel=2)
        return LayerSpec(index, kind, shape, neuron, weight, flatten_before=flatten,
                         weight_imag=weight_imag)
    return LayerSpec(index, kind, shape, neuron, weight, _bias(group, where, shape[0]),
                     flatten_before=flatten, delay=_delay(group, where, weight.shape),
                     weight_rec=weight_rec)


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


def _layer_count(layers_group: h5py.Group, num_layers: int | None) -> int:
    names = sorted(layers_group.keys(), key=lambda k: (not k.isdigit(), int(k) if k.isdigit()
                                                       else 0))
    if names != [str(i) for i in range(len(names))]:
        raise _Refuse(f"group 'layer' must hold layers 0..{len(names) - 1}, found {names}")
    if num_layers is None:
        return len(names)
    if num_layers < 1:
        raise _Refuse(f"num_layers must be >= 1, got {num_layers}")
    return min(len(names), num_layers)  # hdf5.py 574-576


def _layer_type(group: h5py.Group, where: str) -> str:
    kind = _scalar_str(group.get(S.TYPE), f"{where}: field 'type'")
    if kind in S.UNBUILDABLE_LAYERS:
        index = int(where.split()[-1])
        raise _Refuse(f"{where}: netx 0.6.0 cannot build a '{kind}' layer (NotImplementedError "
                      f"in lava/lib/dl/netx/hdf5.py); num_layers={index} reads the layers "
                      "before it")
    if kind not in S.LAYER_KEYS:
        raise _Refuse(f"{where}: unknown layer type '{kind}'; known: "
                      + ", ".join(S.LAYER_TYPES))
    required, optional = S.LAYER_KEYS[kind]
    _unknown_keys(group, required | optional, where, f"a {kind} layer")
    for key in sorted(required - set(group.keys())):
        raise _Refuse(f"{where}: field '{key}' is missing")
    return kind


def _read_layers(root: h5py.Group, num_layers: int | None
                 ) -> tuple[list[LayerSpec], tuple[int, ...] | None]:
    """The blocks netx builds from the first ``num_layers`` layer groups, and the input shape
    an input layer without a neuron group declares (or None)."""
    layers_group = root.get(S.LAYER_GROUP)
    if not isinstance(layers_group, h5py.Group) or len(layers_group) == 0:
        raise _Refuse("group 'layer' is missing or empty")
    layers: list[LayerSpec] = []
    declared: tuple[int, ...] | None = None
    prev: tuple[int, ...] | None = None
    flatten = False
    for i in range(_layer_count(layers_group, num_layers)):
        group = layers_group[str(i)]
        where = f"layer {i}"
        if not isinstance(group, h5py.Group):
            raise _Refuse(f"{where}: not a group")
        kind = _layer_type(group, where)
        if kind == "input":
            if layers or prev is not None:
                raise _Refuse(f"{where}: an input layer must come first")
            prev = _shape(group, where)
            if S.NEURON not in group:  # hdf5.py 596-597: only the input shape, no block
                declared = prev
                continue
            layers.append(LayerSpec(i, "input", prev,
                                    _plain_neuron(group, where, is_input=True),
                                    input_transform=_input_transform(group, where)))
        elif kind == "flatten":  # netx only marks the next dense (hdf5.py 634-636)
            if flatten:
                raise _Refuse(f"{where}: two flatten layers in a row")
            flatten = True
            continue
        elif kind == "conv":
            if prev is None:
                raise _Refuse(f"{where}: a conv first layer needs an input layer before it "
                              "for its input shape")
            layers.append(_read_conv(group, where, i, prev))
        else:
            layers.append(_read_dense(group, where, i, kind, prev, flatten, first=not layers))
        prev, flatten = layers[-1].shape, False
    if flatten:
        raise _Refuse("the last layer is a flatten layer")
    if not layers:
        raise _Refuse("no layer that netx builds a block for")
    return layers, declared


def _input_transform(group: h5py.Group, where: str) -> dict[str, np.ndarray]:
    """An input layer's one-value 'weight'/'bias' (hdf5.py 279-289): stored, never applied."""
    transform = {}
    for key in (S.WEIGHT, S.BIAS):
        if key in group:
            value = _numbers(group, key, where, integer=False)
            if value.size != 1:
                raise _Refuse(f"{where}: field '{key}' of an input layer must be one value, "
                              f"found shape {value.shape}")
            transform[key] = value
    return transform


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


def read_network(path: str | os.PathLike[str], num_layers: int | None = None) -> NetxNetwork:
    """Read and validate a netx HDF5 file; raise ``SlssnnError`` naming file, layer and field.

    ``num_layers``: read only the first ``num_layers`` layer groups, as
    ``netx.hdf5.Network(num_layers=...)`` builds them (None: all).
    """
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
            layers, declared = _read_layers(root, num_layers)
            metadata = _read_metadata(root)
    except _Refuse as exc:
        raise SlssnnError(f"network {path}: {exc}") from None
    except (OSError, KeyError, ValueError, TypeError, RuntimeError) as exc:
        reason = str(exc).splitlines()[0] if str(exc) else exc.__class__.__name__
        raise SlssnnError(f"network {path}: not a readable netx HDF5 file ({reason})") from None
    return NetxNetwork(path, layers, metadata, declared, num_layers)
