"""Map a netx network onto a chip's cores, from the chip's published limits (:mod:`.chips`).

Each layer's neurons are split into equal tiles, one tile per core: a dense layer (or a layer
without synapses, like the input layer) into runs of ``n`` neurons, a conv layer into boxes
of ``c`` channels x ``h`` rows x ``w`` columns of its output. A tile must fit all four
per-core limits of Davies et al. 2018 (p. 89), each counted exactly for the tile that needs
the most:

- **neurons**: ``n`` (``c*h*w``) <= neurons per core;
- **fan-in axons**: the distinct source neurons that reach the tile (one distribution list
  per source neuron): a dense layer's every input; a conv tile's input box, i.e. the input
  channels of the groups it spans x the input rows x the input columns its kernels read;
- **fan-out axons**: one per (neuron of the tile, core of the next layer it reaches): a dense
  next layer's every core, a conv next layer's tiles whose windows read the neuron;
- **synaptic memory**: ``n x F x b`` bits, ``F`` a neuron's synapses (dense: its inputs;
  conv: its kernel window ``in_channels/groups x kH x kW``), ``b`` the bits of one synapse
  at the layer's weight precision (plus its delay bits, if any).

``b`` is the precision the layer's integer weights need: the always-zero low bits dropped
(a power-of-two step), then the fewest bits that hold the quotients, two's complement if any
weight is negative (lava-dl's even weights in [-256, 254] need 8). The planner takes the tile
that needs the fewest cores, counting with its own the cores its tiling forces on the
previous layer (whose neurons each need one fan-out axon per core of this layer they reach:
a one-layer look-ahead; ties: the lowest peak use of any limit); the constraint with the
highest use in that tile is the one that **binds**. Layers are planned from the last to the
first, as each layer's fan-out depends on the next layer's tiles.

A limit the chip file marks as not public is not checked (the plan lists it); without any
per-core limit (Loihi 2) only the chip-level limits are applied: chips = the most that
neurons per chip and synapses per chip each demand.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np

from slssnn.errors import SlssnnError

from .chips import Chip

LEAVES_OUT = (
    "each source neuron takes one axon per destination core, and each conv connection its own "
    "synapse (discrete axons, no weight sharing): Loihi's population axons and shared "
    "convolutional weights can need less",
    "synaptic memory counts weight (and delay) bits only: synapse-list headers, index bits of "
    "sparse formats and 64-bit word alignment (Davies et al. 2018, p. 89) are not counted",
    "a neuron's synapses are its whole kernel window, also at the padded border",
    "layers are placed one at a time, the last first, each with the fewest cores (counting "
    "the cores its tiling forces on the previous layer's fan-out): not a search over the "
    "whole network; no layer shares a core with another",
)
"""What the mapping leaves out (printed with every plan)."""

CORE_LIMITS = {"neurons": "neurons_per_core", "fan-in": "fan_in_axons_per_core",
               "fan-out": "fan_out_axons_per_core",
               "synaptic memory": "synaptic_memory_bits_per_core"}
"""Constraint name (as the plan prints it) -> chip limit key."""


@dataclass(frozen=True)
class Geometry:
    """What the mapping needs of one layer: its output, its synapses, its input box rules."""

    name: str
    type: str
    shape: tuple[int, ...]  # (C, H, W) or (N,)
    fan_in: int  # synapses per neuron (the largest)
    synapses: int  # synapses of the layer (exact, padding excluded)
    bits: int  # bits per synapse (weight precision + delay bits); 0 without synapses
    weight_bits: int
    delay_bits: int
    conv: dict[str, Any] | None  # kernel, stride, padding, dilation, groups, in_shape

    @property
    def neurons(self) -> int:
        return int(np.prod(self.shape))


def weight_bits(weight: np.ndarray) -> int:
    """Bits one synapse of ``weight`` (integers) needs: power-of-two step dropped, two's
    complement if any weight is negative; 1 for an all-zero weight.

    >>> weight_bits(np.array([-256, 254, 2]))  # lava-dl's 8-bit grid, step 2
    8
    >>> weight_bits(np.array([0, 3]))
    2
    """
    nonzero = np.asarray(weight, dtype=np.int64).ravel()
    nonzero = nonzero[nonzero != 0]
    if nonzero.size == 0:
        return 1
    gcd = int(np.gcd.reduce(np.abs(nonzero)))
    q = nonzero // (gcd & -gcd)  # the lowest set bit of the gcd is the step
    top, bottom = int(q.max()), int(q.min())
    if bottom < 0:
        return max(max(top, 0).bit_length(), (-bottom - 1).bit_length()) + 1
    return max(top.bit_length(), 1)


def layer_geometry(spec: Any, in_shape: tuple[int, ...] | None) -> Geometry:
    """The :class:`Geometry` of a netx reader ``LayerSpec`` whose input is ``in_shape``.

    Layers are read generically: no ``weight`` -> no synapses; a 2-D weight ``(N, inputs)``
    -> dense-like (``dense_rec`` adds its ``N`` recurrent inputs, a complex dense counts a
    real and an imaginary synapse per pair); a 4-D weight ``(O, I/groups, kH, kW)`` -> conv.
    """
    shape = tuple(int(s) for s in spec.shape)
    weight = getattr(spec, "weight", None)
    if weight is None:
        return Geometry(spec.name, spec.type, shape, 0, 0, 0, 0, 0, None)
    wbits = weight_bits(weight)
    delay = getattr(spec, "delay", None)
    dbits = int(np.max(delay)).bit_length() if delay is not None and np.size(delay) else 0
    if weight.ndim == 2:
        neurons = int(np.prod(shape))
        fan_in = int(weight.shape[1])
        if getattr(spec, "weight_rec", None) is not None:  # dense_rec: its own N outputs too
            fan_in += int(spec.weight_rec.shape[1])
        if getattr(spec, "weight_imag", None) is not None:  # complex: a real and an imag synapse
            fan_in *= 2
        return Geometry(spec.name, spec.type, shape, fan_in, neurons * fan_in, wbits + dbits,
                        wbits, dbits, None)
    if weight.ndim != 4 or in_shape is None or len(in_shape) != 3 or len(shape) != 3:
        raise SlssnnError(f"layer {spec.name}: cannot plan a weight of shape {weight.shape} "
                          f"from input {in_shape} to output {shape}")
    out_c, in_per_group, kh, kw = (int(x) for x in weight.shape)
    conv = {"kernel": (kh, kw), "stride": tuple(spec.stride), "padding": tuple(spec.padding),
            "dilation": tuple(spec.dilation), "groups": int(spec.groups),
            "in_shape": tuple(int(x) for x in in_shape), "in_per_group": in_per_group}
    rows = [len(p) for p in _reads(shape[1], in_shape[1], kh, conv["stride"][0],
                                   conv["padding"][0], conv["dilation"][0])]
    cols = [len(p) for p in _reads(shape[2], in_shape[2], kw, conv["stride"][1],
                                   conv["padding"][1], conv["dilation"][1])]
    synapses = out_c * in_per_group * sum(rows) * sum(cols)
    return Geometry(spec.name, spec.type, shape, in_per_group * kh * kw, synapses,
                    wbits + dbits, wbits, dbits, conv)


def _reads(out_size: int, in_size: int, k: int, s: int, p: int, d: int) -> list[np.ndarray]:
    """For each output position, the input positions its kernel window reads (padding out)."""
    taps = np.arange(k) * d
    return [pos[(pos >= 0) & (pos < in_size)] for pos in (o * s - p + taps
                                                          for o in range(out_size))]


def _box_inputs(out_size: int, in_size: int, k: int, s: int, p: int, d: int) -> np.ndarray:
    """``[t-1]`` = the most distinct input positions any tile of ``t`` outputs reads."""
    reads = _reads(out_size, in_size, k, s, p, d)
    best = np.zeros(out_size, dtype=np.int64)
    for t in range(1, out_size + 1):
        best[t - 1] = max(len(np.unique(np.concatenate(reads[a:a + t])))
                          for a in range(0, out_size, t))
    return best


def _tiles_reached(out_size: int, in_size: int, k: int, s: int, p: int, d: int) -> np.ndarray:
    """``[t-1]`` = the most tiles of ``t`` outputs that read one input position."""
    best = np.zeros(out_size, dtype=np.int64)
    reads = _reads(out_size, in_size, k, s, p, d)
    outs = np.concatenate([np.full(len(r), o) for o, r in enumerate(reads)])
    ins = np.concatenate(reads)
    for t in range(1, out_size + 1):
        pairs = np.unique(ins * out_size + outs // t)
        best[t - 1] = np.bincount(pairs // out_size).max() if pairs.size else 0
    return best


def _channel_groups(channels: int, groups: int) -> np.ndarray:
    """``[c-1]`` = the most groups a tile of ``c`` consecutive output channels spans."""
    per_group = channels // groups
    best = np.zeros(channels, dtype=np.int64)
    for c in range(1, channels + 1):
        best[c - 1] = max((min(a + c, channels) - 1) // per_group - a // per_group + 1
                          for a in range(0, channels, c))
    return best


def _channel_tiles_reached(channels: int, groups: int) -> np.ndarray:
    """``[c-1]`` = the most output-channel tiles of ``c`` that one input channel reaches."""
    per_group = channels // groups
    best = np.zeros(channels, dtype=np.int64)
    for c in range(1, channels + 1):
        best[c - 1] = max((g * per_group + per_group - 1) // c - (g * per_group) // c + 1
                          for g in range(groups))
    return best


@dataclass(frozen=True)
class _Candidates:
    """Every tile of a layer as flat arrays: its extent, cores, and per-core needs."""

    tile: np.ndarray  # (K, D) tile extents, D = 1 or 3
    cores: np.ndarray  # (K,)
    needs: dict[str, np.ndarray]  # constraint -> (K,) need per core
    reached: np.ndarray  # (K,) cores of this layer one source neuron reaches


def _candidates(geo: Geometry, dest_cores: int) -> _Candidates:
    if geo.conv is None:
        n = np.arange(1, geo.neurons + 1, dtype=np.int64)
        cores = -(-geo.neurons // n)
        return _Candidates(n[:, None], cores, {
            "neurons": n, "fan-in": np.full_like(n, geo.fan_in),
            "fan-out": n * dest_cores, "synaptic memory": n * geo.fan_in * geo.bits},
            cores if geo.fan_in else np.zeros_like(n))
    conv, (out_c, out_h, out_w) = geo.conv, geo.shape
    (kh, kw), (sh, sw), (ph, pw), (dh, dw) = (conv[k] for k in ("kernel", "stride", "padding",
                                                               "dilation"))
    in_h, in_w = conv["in_shape"][1:]
    chans = _channel_groups(out_c, conv["groups"]) * conv["in_per_group"]
    rows = _box_inputs(out_h, in_h, kh, sh, ph, dh)
    cols = _box_inputs(out_w, in_w, kw, sw, pw, dw)
    c, h, w = np.meshgrid(np.arange(1, out_c + 1), np.arange(1, out_h + 1),
                          np.arange(1, out_w + 1), indexing="ij")
    c, h, w = c.ravel(), h.ravel(), w.ravel()  # (K,) every (c, h, w) tile
    neurons = c * h * w
    cores = -(-out_c // c) * -(-out_h // h) * -(-out_w // w)
    reached = (_channel_tiles_reached(out_c, conv["groups"])[c - 1]
               * _tiles_reached(out_h, in_h, kh, sh, ph, dh)[h - 1]
               * _tiles_reached(out_w, in_w, kw, sw, pw, dw)[w - 1])
    return _Candidates(np.stack([c, h, w], 1), cores, {
        "neurons": neurons, "fan-in": chans[c - 1] * rows[h - 1] * cols[w - 1],
        "fan-out": neurons * dest_cores, "synaptic memory": neurons * geo.fan_in * geo.bits},
        reached)


def plan_network(net: Any, chip: Chip) -> dict[str, Any]:
    """The placement of ``net`` (a netx reader ``NetxNetwork``) on ``chip``.

    Returns a JSON-able dict: ``chip``, ``network``, ``layers`` (per layer: ``name``,
    ``type``, ``neurons``, ``fan_in``, ``synapses``, ``bits_per_synapse``, ``cores`` (None
    when not computable), ``tile``, ``per_core`` (the needs of the fullest core),
    ``limits_used`` (need / limit), ``binding``, ``dest_cores`` (next-layer cores one of its
    neurons reaches), ``problem`` (why it cannot be placed, or None)), ``total_cores``,
    ``chips``, ``chips_binding``, ``placeable``, ``problems`` and ``not_checked`` (limits
    that are not public).
    """
    geos, prev = [], None
    for spec in net.layers:
        geos.append(layer_geometry(spec, prev))
        prev = tuple(int(s) for s in spec.shape)
    limits = {name: chip.limit(key) for name, key in CORE_LIMITS.items()}
    public = {name: value for name, value in limits.items() if value is not None}
    layers: list[dict[str, Any]] = []
    dest = 0  # cores of the next layer one neuron of this layer reaches
    for i in reversed(range(len(geos))):
        prev = geos[i - 1] if i > 0 else None
        layer = _plan_layer(geos[i], prev, chip, public, dest) if public \
            else _unplanned(geos[i])
        layers.insert(0, layer)
        dest = layer.pop("reached", 0)
    return _totals(net, chip, layers, limits)


def _unplanned(geo: Geometry) -> dict[str, Any]:
    return {**_describe(geo), "cores": None, "tile": None, "per_core": None,
            "limits_used": None, "binding": None, "dest_cores": None, "problem": None}


def _describe(geo: Geometry) -> dict[str, Any]:
    return {"name": geo.name, "type": geo.type, "shape": list(geo.shape),
            "neurons": geo.neurons, "fan_in": geo.fan_in, "synapses": geo.synapses,
            "bits_per_synapse": geo.bits, "weight_bits": geo.weight_bits,
            "delay_bits": geo.delay_bits}


def _prev_cores(prev: Geometry | None, reached: np.ndarray,
                public: dict[str, float]) -> np.ndarray:
    """A lower bound on the previous layer's cores when one of its neurons reaches
    ``reached`` cores of this layer: its neurons, synaptic memory and fan-out alone."""
    if prev is None:
        return np.zeros_like(reached)
    bound = np.zeros_like(reached)
    if "fan-out" in public:
        bound = -(-prev.neurons * reached // int(public["fan-out"]))
    fixed = [-(-prev.neurons // int(public["neurons"])) if "neurons" in public else 0]
    if "synaptic memory" in public:
        fixed.append(-(-prev.neurons * prev.fan_in * prev.bits
                       // int(public["synaptic memory"])))
    return np.maximum(bound, max(fixed))


def _plan_layer(geo: Geometry, prev: Geometry | None, chip: Chip, public: dict[str, float],
                dest: int) -> dict[str, Any]:
    out = {**_describe(geo), "dest_cores": dest}
    problem = _precision_problem(geo, chip)
    cand = _candidates(geo, dest)
    ok = np.ones(len(cand.cores), dtype=bool)
    use = np.zeros(len(cand.cores))
    for name, limit in public.items():
        ok &= cand.needs[name] <= limit
        use = np.maximum(use, cand.needs[name] / limit)
    if problem is None and not ok.any():
        problem = _why_not(geo, cand, public)
    if problem is not None:
        return {**out, "cores": None, "tile": None, "per_core": None, "limits_used": None,
                "binding": None, "problem": problem}
    index = np.flatnonzero(ok)
    cost = cand.cores[index] + _prev_cores(prev, cand.reached[index], public)
    best = index[np.lexsort((use[index], cost))[0]]
    per_core = {name: int(cand.needs[name][best]) for name in CORE_LIMITS}
    used = {name: per_core[name] / limit for name, limit in public.items()}
    return {**out, "cores": int(cand.cores[best]), "tile": [int(x) for x in cand.tile[best]],
            "per_core": per_core, "limits_used": used,
            "binding": max(used, key=lambda k: used[k]), "problem": None,
            "reached": int(cand.reached[best])}


def _precision_problem(geo: Geometry, chip: Chip) -> str | None:
    for bits, key, what in ((geo.weight_bits, "max_weight_bits", "weights"),
                            (geo.delay_bits, "max_delay_bits", "delays")):
        limit = chip.limit(key)
        if limit is not None and bits > limit:
            return (f"its {what} need {bits} bits; {chip.name} stores at most {limit:g} "
                    f"({chip.limits[key].source})")
    return None


def _why_not(geo: Geometry, cand: _Candidates, public: dict[str, float]) -> str:
    """Why even the smallest tile (one neuron) does not fit a core."""
    smallest = int(np.argmin(cand.needs["neurons"]))
    what = {"fan-in": "one neuron reads {need:,} source neurons (fan-in axons), beyond "
                      "a core's {limit:,.0f}",
            "synaptic memory": f"one neuron's {geo.fan_in:,} synapses x {geo.bits} bits = "
                               f"{{need:,}} bits, beyond a core's {{limit:,.0f}} bits of "
                               "synaptic memory",
            "fan-out": "one neuron reaches {need:,} cores of the next layer (fan-out axons), "
                       "beyond a core's {limit:,.0f}",
            "neurons": "{need} neurons beyond a core's {limit:,.0f}"}
    reasons = [what[name].format(need=int(cand.needs[name][smallest]), limit=limit)
               for name, limit in public.items() if cand.needs[name][smallest] > limit]
    return "; ".join(reasons)


def _totals(net: Any, chip: Chip, layers: list[dict[str, Any]],
            limits: dict[str, float | None]) -> dict[str, Any]:
    problems = [f"layer {x['name']}: {x['problem']}" for x in layers if x["problem"]]
    per_core = any(v is not None for v in limits.values())
    cores = sum(x["cores"] for x in layers) if per_core and not problems else None
    demands: dict[str, int] = {}
    if cores is not None and chip.limit("cores_per_chip") is not None:
        demands["cores"] = math.ceil(cores / chip.limit("cores_per_chip"))
    for key, what in (("neurons_per_chip", "neurons"), ("synapses_per_chip", "synapses")):
        if chip.limit(key) is not None:
            demands[what] = math.ceil(sum(x[what] for x in layers) / chip.limit(key))
    chips = max(demands.values()) if demands and not problems else None
    return {"chip": chip.name, "network": str(net.path), "layers": layers,
            "total_cores": cores, "chips": chips,
            "chips_binding": max(demands, key=lambda k: demands[k]) if chips else None,
            "chip_demands": demands, "placeable": not problems, "problems": problems,
            "not_checked": [key for key, value in chip.limits.items() if value.value is None],
            "leaves_out": list(LEAVES_OUT) if per_core else []}
