"""The one schema of the netx HDF5 files slssnn writes and reads.

Each layer type owns its key names, dtypes, shapes and ranges here; the
writer (:mod:`.netx_writer`) takes key names from this module and every
reader (:mod:`.netx_reader`) validates against it before anything is built.
An unknown layer type or key is an error, as is a value off Loihi's grid.

Layout (lava-dl netx, read by ``lava.lib.dl.netx.hdf5.Network``)::

    /layer/<i>/type            bytes: input | conv | flatten | dense
    /layer/<i>/shape           int64 (C, H, W) or (N,)
    /layer/<i>/weight          float32 integers in [-256, 254]; conv (O, I/groups, kH, kW[, 1])
    /layer/<i>/bias            float32 integers (bias mantissa), per channel or neuron
    /layer/<i>/stride|padding|dilation   int64 (H, W) or scalar;  groups int64 scalar
    /layer/<i>/delay           dense only: steps in [0, 62]: scalar, (N,), (inputs,), (N, inputs)
    /layer/<i>/neuron/{type=CUBA|LOIHI, iDecay, vDecay, vThMant, refDelay, gradedSpike}
    /slssnn  (attrs: format_version, metadata = JSON)   ours; netx does not read it
"""

from __future__ import annotations

from dataclasses import dataclass

from slssnn.training.fixed_point import (
    BIAS_MAX,
    BIAS_MIN,
    DECAY_MAX,
    DECAY_MIN,
    THRESHOLD_MAX,
    WEIGHT_MAX,
    WEIGHT_MIN,
)

FORMAT_VERSION = 1
"""Version of our metadata group; a reader refuses any other."""
METADATA_GROUP = "slssnn"
METADATA_ATTR = "metadata"
VERSION_ATTR = "format_version"
LAYER_GROUP = "layer"
SIMULATION_GROUP = "simulation"
"""lava-dl writes /simulation (Ts, tSample); allowed and ignored."""

# --- key names ----------------------------------------------------------------
TYPE, SHAPE, WEIGHT, BIAS, NEURON = "type", "shape", "weight", "bias", "neuron"
STRIDE, PADDING, DILATION, GROUPS = "stride", "padding", "dilation", "groups"
DELAY = "delay"
I_DECAY, V_DECAY, V_TH_MANT, REF_DELAY, GRADED = (
    "iDecay", "vDecay", "vThMant", "refDelay", "gradedSpike")

NEURON_TYPES = ("CUBA", "LOIHI")
"""netx builds both as Lava's LIF with the same parameters."""


@dataclass(frozen=True)
class Range:
    """Closed integer range ``[low, high]`` a field must lie in."""

    low: float
    high: float


NEURON_REQUIRED = {TYPE: None, I_DECAY: Range(DECAY_MIN, DECAY_MAX),
                   V_DECAY: Range(DECAY_MIN, DECAY_MAX), V_TH_MANT: Range(0, THRESHOLD_MAX)}
NEURON_OPTIONAL = {REF_DELAY: Range(0, 1 << 16), GRADED: None,
                   # written by lava-dl's slayer, not read by netx for CUBA neurons
                   "scaleRho": None, "tauRho": None, "theta": None, "wgtExp": Range(0, 0),
                   "messageBits": Range(0, 0)}

WEIGHT_RANGE = Range(WEIGHT_MIN, WEIGHT_MAX)
BIAS_RANGE = Range(BIAS_MIN, BIAS_MAX)
GEOMETRY_RANGE = Range(0, 255)
DELAY_RANGE = Range(0, 62)
"""netx builds DelayDense with max_delay 62 (and would clamp larger delays: we refuse them)."""

LAYER_KEYS: dict[str, tuple[set[str], set[str]]] = {
    # type: (required keys, optional keys)
    "input": ({TYPE, SHAPE, NEURON}, {WEIGHT, BIAS}),
    "conv": ({TYPE, SHAPE, WEIGHT, NEURON, STRIDE, PADDING, DILATION, GROUPS},
             {BIAS, "inChannels", "outChannels", "kernelSize"}),
    "flatten": ({TYPE}, {SHAPE}),
    "dense": ({TYPE, SHAPE, WEIGHT, NEURON}, {BIAS, DELAY, "inFeatures", "outFeatures"}),
}
LAYER_TYPES = tuple(LAYER_KEYS)
