"""Fold a chain of linear NIR nodes between two neuron layers into one netx synapse.

Between two neuron nodes a NIR graph may hold any chain of linear nodes:
``Conv2d``, ``SumPool2d``, ``AvgPool2d``, ``Flatten``, ``Affine``, ``Linear``
and ``Scale``. netx (0.6.0) loads one synapse per block, a conv or a dense
(after a flatten), and no pooling (``hdf5.py`` raises NotImplementedError on
``pool`` and ``average``). Linear maps compose, so the chain is one synapse:

- **spatial chain** (convolutions, pools, per-channel scales, ending in a
  spatial node): every node is a convolution with a full channel kernel ``K``
  (O, I, kH, kW), stride ``s``, padding ``p`` (a pool is the depthwise kernel
  of ones, or of ``1/(kH kW)`` for AvgPool2d; a dilated kernel is written out
  with its zeros; a group conv is block-diagonal). Two convolutions A then B
  are, per axis, the convolution with kernel
  ``C[o, i, s_A v + u] = sum_m B[o, m, v] A[m, i, u]`` (size
  ``s_A (k_B - 1) + k_A``), stride ``s_A s_B`` and padding ``p_A + s_A p_B``,
  and bias ``b_B + sum_{m, v} B[o, m, v] b_A[m]``. This is exact in real
  numbers wherever B reads outputs of A; where B's zero padding stands for
  outputs of A that would read real input rows (a pool that drops a remainder
  row) or a bias of A, the composed conv differs, and the fold is refused;
- **dense chain** (anything, then ``Flatten``, then ``Affine``/``Linear``/
  ``Scale``): the chain is the affine map ``y = M x + b``; ``b`` is the chain
  applied to zero, column ``j`` of ``M`` the chain applied to the unit input
  ``e_j`` minus ``b``: pooling before a flatten ends up in the dense weights.

Every fold is checked against the nodes applied one after the other (float64,
random inputs and zero): a linear map that agrees on random inputs is the
same map. The result is a float synapse; :mod:`.nir_import` folds the neuron
gain in and quantizes it to Loihi's grid like any other synapse.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F

from slssnn.errors import SlssnnError

LINEAR_NODES = ("Conv2d", "SumPool2d", "AvgPool2d", "Flatten", "Affine", "Linear", "Scale")
"""NIR node types that fold into one synapse (everything linear between two neuron nodes)."""
SPATIAL_NODES = ("Conv2d", "SumPool2d", "AvgPool2d")
DENSE_NODES = ("Affine", "Linear")
FOLD_TOLERANCE = 1e-9
"""Relative float64 error below which the folded synapse counts as the chain itself."""
FOLD_PROBES = 3
"""Random inputs the fold is checked on (besides zero)."""
MAX_FAN_IN = 1 << 15
"""Largest fan-in of a folded synapse: 2**15 binary inputs x 254 stays inside the signed
24-bit dendritic sum that Lava's Conv wraps (``lava/proc/conv/models.py``)."""


def _kind(node: Any) -> str:
    return type(node).__name__


def _where(names: list[str]) -> str:
    return "NIR nodes " + " -> ".join(f"'{n}'" for n in names)


def pair(value: Any, what: str, where: str) -> tuple[int, int]:
    """An (H, W) pair of integers from an int or a pair."""
    arr = np.asarray(value).reshape(-1)
    if arr.size == 1:
        arr = np.repeat(arr, 2)
    if arr.size != 2 or not np.all(arr == np.round(arr)):
        raise SlssnnError(f"{where}: {what} must be an integer or an (H, W) pair, got "
                          f"{value!r}")
    return int(arr[0]), int(arr[1])


def conv_geometry(node: Any, kernel: tuple[int, int], where: str
                  ) -> tuple[tuple[int, int], tuple[int, int], tuple[int, int]]:
    """(stride, padding, dilation) of a NIR Conv2d; 'same' only where it is symmetric."""
    stride = pair(node.stride, "stride", where)
    dilation = pair(node.dilation, "dilation", where)
    padding = node.padding
    if isinstance(padding, bytes | np.bytes_):
        padding = padding.decode()
    if isinstance(padding, str):
        if padding == "valid":
            return stride, (0, 0), dilation
        span = [d * (k - 1) for d, k in zip(dilation, kernel, strict=True)]
        if padding != "same" or stride != (1, 1) or any(s % 2 for s in span):
            raise SlssnnError(f"{where}: padding {padding!r} with stride {stride} and kernel "
                              f"{kernel} has no symmetric netx padding")
        return stride, (span[0] // 2, span[1] // 2), dilation
    return stride, pair(padding, "padding", where), dilation


@dataclass
class _Conv:
    """A convolution with a full channel kernel (O, I, kH, kW), no dilation, no groups."""

    kernel: np.ndarray
    stride: tuple[int, int]
    padding: tuple[int, int]
    bias: np.ndarray

    def then(self, b: _Conv) -> _Conv:
        """This convolution followed by ``b``, as one convolution (see the module doc)."""
        a = self
        o, i = b.kernel.shape[0], a.kernel.shape[1]
        k = tuple(a.stride[j] * (b.kernel.shape[2 + j] - 1) + a.kernel.shape[2 + j]
                  for j in range(2))
        out = np.zeros((o, i, *k))
        for vh in range(b.kernel.shape[2]):
            for vw in range(b.kernel.shape[3]):
                h0, w0 = a.stride[0] * vh, a.stride[1] * vw
                out[:, :, h0:h0 + a.kernel.shape[2], w0:w0 + a.kernel.shape[3]] += np.einsum(
                    "om,mihw->oihw", b.kernel[:, :, vh, vw], a.kernel)
        bias = b.bias + np.einsum("omhw,m->o", b.kernel, a.bias)
        return _Conv(out, (a.stride[0] * b.stride[0], a.stride[1] * b.stride[1]),
                     (a.padding[0] + a.stride[0] * b.padding[0],
                      a.padding[1] + a.stride[1] * b.padding[1]), bias)


def _full_conv(name: str, node: Any, channels: int) -> _Conv:
    """A spatial node as a :class:`_Conv` over ``channels`` input channels."""
    where = f"NIR node '{name}' ({_kind(node)})"
    if _kind(node) == "Conv2d":
        weight = np.asarray(node.weight, dtype=np.float64)
        groups = int(np.asarray(node.groups).reshape(-1)[0])
        if weight.ndim != 4 or weight.shape[1] * groups != channels:
            raise SlssnnError(f"{where}: weight {weight.shape} with groups {groups} does not "
                              f"fit {channels} input channels")
        stride, padding, dilation = conv_geometry(node, weight.shape[2:], where)
        o, per = weight.shape[:2]
        k = tuple(dilation[j] * (weight.shape[2 + j] - 1) + 1 for j in range(2))
        kernel = np.zeros((o, channels, *k))
        step = o // groups
        for oc in range(o):
            g = oc // step
            kernel[oc, g * per:(g + 1) * per, ::dilation[0], ::dilation[1]] = weight[oc]
        bias = getattr(node, "bias", None)
        bias = np.zeros(o) if bias is None else np.broadcast_to(
            np.asarray(bias, dtype=np.float64).reshape(-1), (o,)).copy()
        return _Conv(kernel, stride, padding, bias)
    size = pair(node.kernel_size, "kernel_size", where)
    stride = size if node.stride is None else pair(node.stride, "stride", where)  # torch's
    padding = (0, 0) if node.padding is None else pair(node.padding, "padding", where)
    value = 1.0 if _kind(node) == "SumPool2d" else 1.0 / (size[0] * size[1])
    kernel = np.zeros((channels, channels, *size))
    kernel[np.arange(channels), np.arange(channels)] = value
    return _Conv(kernel, stride, padding, np.zeros(channels))


def _scale_conv(name: str, node: Any, shape: tuple[int, ...]) -> _Conv:
    """A Scale on (C, H, W) as a depthwise 1x1 conv; refused where it varies over positions."""
    scale = np.broadcast_to(np.asarray(node.scale, dtype=np.float64), shape).reshape(
        shape[0], -1)
    if np.any(np.ptp(scale, axis=1) > FOLD_TOLERANCE * np.maximum(1.0, np.abs(scale).max())):
        raise SlssnnError(f"NIR node '{name}' (Scale): the scale differs between positions of "
                          "a channel, which no conv can fold (put a Flatten before it)")
    kernel = np.zeros((shape[0], shape[0], 1, 1))
    kernel[np.arange(shape[0]), np.arange(shape[0]), 0, 0] = scale[:, 0]
    return _Conv(kernel, (1, 1), (0, 0), np.zeros(shape[0]))


def _apply(name: str, node: Any, x: torch.Tensor) -> torch.Tensor:
    """One linear node on a batch ``(B, *shape)`` in float64, as NIR defines it."""
    kind = _kind(node)
    where = f"NIR node '{name}' ({kind})"
    if kind in SPATIAL_NODES:
        if x.dim() != 4:
            raise SlssnnError(f"{where}: needs a (C, H, W) input, got {tuple(x.shape[1:])}")
        if kind == "Conv2d":
            weight = torch.as_tensor(np.asarray(node.weight, dtype=np.float64))
            stride, padding, dilation = conv_geometry(node, tuple(weight.shape[2:]), where)
            groups = int(np.asarray(node.groups).reshape(-1)[0])
            if weight.dim() != 4 or weight.shape[1] * groups != x.shape[1]:
                raise SlssnnError(f"{where}: weight {tuple(weight.shape)} with groups {groups} "
                                  f"does not fit {x.shape[1]} input channels")
            bias = getattr(node, "bias", None)
            bias = None if bias is None else torch.as_tensor(
                np.broadcast_to(np.asarray(bias, dtype=np.float64).reshape(-1),
                                (weight.shape[0],)).copy())
            return F.conv2d(x, weight, bias, stride, padding, dilation, groups)
        conv = _full_conv(name, node, x.shape[1])
        return F.conv2d(x, torch.as_tensor(conv.kernel), None, conv.stride, conv.padding)
    if kind == "Flatten":
        return x.reshape(x.shape[0], -1)
    if kind == "Scale":
        scale = torch.as_tensor(np.asarray(node.scale, dtype=np.float64))
        try:
            return x * torch.broadcast_to(scale, x.shape[1:])
        except RuntimeError:
            raise SlssnnError(f"{where}: scale of shape {tuple(scale.shape)} does not fit "
                              f"{tuple(x.shape[1:])}") from None
    weight = torch.as_tensor(np.asarray(node.weight, dtype=np.float64))
    if x.dim() != 2 or weight.dim() != 2 or weight.shape[1] != x.shape[1]:
        raise SlssnnError(f"{where}: weight {tuple(weight.shape)} does not take the input "
                          f"{tuple(x.shape[1:])} (a dense node after a (C, H, W) layer needs a "
                          "Flatten before it)")
    y = x @ weight.T
    bias = getattr(node, "bias", None) if kind == "Affine" else None
    return y if bias is None else y + torch.as_tensor(np.asarray(bias, np.float64).reshape(-1))


def apply_chain(items: list[tuple[str, Any]], x: np.ndarray) -> np.ndarray:
    """The chain of linear nodes on a batch ``(B, *shape)`` (float64, node after node)."""
    y = torch.as_tensor(np.asarray(x, dtype=np.float64))
    for name, node in items:
        y = _apply(name, node, y)
    return y.numpy()


@dataclass
class FoldedSynapse:
    """One netx synapse in float: a conv or a dense (after a flatten when ``flatten``).

    ``weight``: conv ``(O, I/groups, kH, kW)``, dense ``(N, inputs)``; ``bias``:
    per output channel/neuron or None; ``shape``: the output, (C, H, W) or (N,).
    """

    kind: str
    weight: np.ndarray
    bias: np.ndarray | None
    shape: tuple[int, ...]
    nodes: list[str]
    flatten: bool = False
    geometry: dict[str, Any] = field(default_factory=dict)


def chain_macs(items: list[tuple[str, Any]], in_shape: tuple[int, ...]) -> int:
    """Multiply-accumulates of a chain of linear nodes, node by node, on one ``in_shape``
    input: what the source network's ANN twin runs (a fold's larger kernel would overstate it).

    A Conv2d costs output values x input channels per group x kH x kW, a pool output
    values x kH x kW (its sums, counted as accumulates), a Scale one per output value, a
    Linear or Affine its weight's size, a Flatten nothing.
    """
    x, total = np.zeros((1, *in_shape)), 0
    for name, node in items:
        y = apply_chain([(name, node)], x)
        kind = _kind(node)
        if kind == "Conv2d":
            total += y.size * int(np.prod(np.asarray(node.weight).shape[1:]))
        elif kind in SPATIAL_NODES:
            size = pair(node.kernel_size, "kernel_size", f"NIR node '{name}' ({kind})")
            total += y.size * size[0] * size[1]
        elif kind == "Scale":
            total += y.size
        elif kind in DENSE_NODES:
            total += int(np.asarray(node.weight).size)
        x = y
    return int(total)


def _groups(kernel: np.ndarray) -> int:
    """The largest group count whose off-diagonal channel blocks are all zero."""
    o, i = kernel.shape[:2]
    for g in sorted({d for d in range(1, min(o, i) + 1) if o % d == 0 and i % d == 0},
                    reverse=True):
        mask = np.kron(np.eye(g, dtype=bool), np.ones((o // g, i // g), dtype=bool))
        if not np.any(kernel[~mask]):
            return g
    return 1


def _close(a: np.ndarray, b: np.ndarray) -> bool:
    return a.shape == b.shape and bool(np.all(np.abs(a - b) <= FOLD_TOLERANCE * max(
        1.0, float(np.abs(b).max(initial=0.0)))))


def _check(items: list[tuple[str, Any]], in_shape: tuple[int, ...], folded: FoldedSynapse,
           run: Any) -> None:
    """Refuse unless the folded synapse equals the chain on zero and random inputs."""
    rng = np.random.default_rng(0)
    probes = np.concatenate([np.zeros((1, *in_shape)),
                             rng.normal(size=(FOLD_PROBES, *in_shape))])
    want, got = apply_chain(items, probes), run(probes)
    if not _close(got, want):
        names = [n for n, _ in items]
        raise SlssnnError(f"{_where(names)}: folding into one {folded.kind} is not exact here "
                          "(the next node's zero padding stands for rows a pool drops or for "
                          "a bias); netx runs one synapse per block")


def _fold_conv(items: list[tuple[str, Any]], in_shape: tuple[int, ...]) -> FoldedSynapse:
    names = [n for n, _ in items]
    shape, conv = in_shape, None
    for name, node in items:
        part = (_scale_conv(name, node, shape) if _kind(node) == "Scale"
                else _full_conv(name, node, shape[0]))
        conv = part if conv is None else conv.then(part)
        shape = apply_chain([(name, node)], np.zeros((1, *shape))).shape[1:]
    groups = _groups(conv.kernel)
    o, i = conv.kernel.shape[:2]
    per_o, per_i = o // groups, i // groups
    weight = np.stack([conv.kernel[oc, (oc // per_o) * per_i:(oc // per_o + 1) * per_i]
                       for oc in range(o)])
    bias = conv.bias if np.any(conv.bias != 0) else None
    geometry = {"stride": conv.stride, "padding": conv.padding, "dilation": (1, 1),
                "groups": groups}
    folded = FoldedSynapse("conv", weight, bias, tuple(shape), names, geometry=geometry)

    def run(x: np.ndarray) -> np.ndarray:
        b = None if bias is None else torch.as_tensor(bias)
        return F.conv2d(torch.as_tensor(x), torch.as_tensor(weight), b, conv.stride,
                        conv.padding, 1, groups).numpy()

    _check(items, in_shape, folded, run)
    return folded


def _fold_dense(items: list[tuple[str, Any]], in_shape: tuple[int, ...]) -> FoldedSynapse:
    names = [n for n, _ in items]
    inputs = int(np.prod(in_shape))
    basis = np.concatenate([np.zeros((1, inputs)), np.eye(inputs)]).reshape(-1, *in_shape)
    out = apply_chain(items, basis)
    if out.ndim != 2:
        raise SlssnnError(f"{_where(names)}: a chain ending in a dense node must give a flat "
                          f"output, got {out.shape[1:]}")
    bias = out[0]
    weight = (out[1:] - bias).T.copy()
    folded = FoldedSynapse("dense", weight, bias if np.any(bias != 0) else None,
                           (weight.shape[0],), names, flatten=len(in_shape) != 1)
    _check(items, in_shape, folded,
           lambda x: x.reshape(x.shape[0], -1) @ weight.T + bias)
    return folded


def folds_to_conv(kinds: list[str], in_shape: tuple[int, ...]) -> bool:
    """Whether a chain of these node types on ``in_shape`` folds into a conv (else a dense)."""
    return len(in_shape) == 3 and all(k in SPATIAL_NODES + ("Scale",) for k in kinds)


def fold_linear_chain(items: list[tuple[str, Any]], in_shape: tuple[int, ...]
                      ) -> FoldedSynapse:
    """The one netx synapse that a chain of linear NIR nodes is, on input ``in_shape``.

    Spatial chains (conv, pools, per-channel scales) become one conv, chains
    with a Flatten or a dense node one dense. Raises ``SlssnnError`` naming
    the nodes where the fold is not exact or too large for netx/Loihi.
    """
    names = [n for n, _ in items]
    kinds = [_kind(node) for _, node in items]
    for name, node in items:
        if _kind(node) not in LINEAR_NODES:
            raise SlssnnError(f"NIR node '{name}' ({_kind(node)}): not a linear node "
                              f"({', '.join(LINEAR_NODES)})")
    folded = (_fold_conv(items, in_shape) if folds_to_conv(kinds, in_shape)
              else _fold_dense(items, in_shape))
    fan_in = int(np.prod(folded.weight.shape[1:]))
    if fan_in > MAX_FAN_IN:
        raise SlssnnError(f"{_where(names)}: the folded {folded.kind} has a fan-in of {fan_in} "
                          f"per neuron (kernel {folded.weight.shape[1:]}); above {MAX_FAN_IN} "
                          "the 24-bit dendritic sum can wrap on Loihi")
    return folded
