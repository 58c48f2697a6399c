"""The one schema of the netx HDF5 files slssnn writes and reads.

Each layer type owns its key names, dtypes, shapes and ranges here; the
writer (:mod:`.netx_writer`) takes key names from this module and every
reader (:mod:`.netx_reader`) validates against it before anything is built.
An unknown layer type or key is an error, as is a value off Loihi's grid.

Layout (lava-dl netx, read by ``lava.lib.dl.netx.hdf5.Network``)::

    /layer/<i>/type            bytes: input | conv | flatten | dense | dense_rec
    /layer/<i>/shape           int64 (C, H, W) or (N,) (dense: any shape, size = prod(shape))
    /layer/<i>/weight          float32 integers in [-256, 254]; conv (O, I/groups, kH, kW[, 1]),
                               dense (N, inputs) or flat; dense_rec also weight_rec (N, N)
    /layer/<i>/bias            float32 integers (bias mantissa), per channel or neuron
    /layer/<i>/stride|padding|dilation   int64 (H, W) or scalar;  groups int64 scalar
    /layer/<i>/delay           dense only: steps in [0, 62]: scalar, (N,), (inputs,), (N, inputs)
    /layer/<i>/neuron/         optional on input (no group: no block, only the input shape)
                               and dense (no group: netx's default neuron, DEFAULT_NEURON)
        type=CUBA|LOIHI: iDecay, vDecay, vThMant [, refDelay, gradedSpike, messageBits]
        type=SDNN: [vThMant, activation=relu, sigma_output, messageBits]
        type=RF_PHASE|RF_IZHIKEVICH|ADRF_*: sinDecay, cosDecay, vThMant (complex dense only:
                               weight/real and weight/imag)
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
ANN_MACS_KEY = "ann_macs"
"""Metadata key: {layer name: multiply-accumulates of the source network's ANN twin per
inference}, for layers whose netx synapse is not what the twin runs (a folded NIR chain)."""
LAYER_GROUP = "layer"
SIMULATION_GROUP = "simulation"
"""lava-dl writes /simulation (Ts, tSample); allowed and ignored."""

# --- key names ----------------------------------------------------------------
TYPE, SHAPE, WEIGHT, BIAS, NEURON = "type", "shape", "weight", "bias", "neuron"
STRIDE, PADDING, DILATION, GROUPS = "stride", "padding", "dilation", "groups"
DELAY = "delay"
I_DECAY, V_DECAY, V_TH_MANT, REF_DELAY, GRADED = (
    "iDecay", "vDecay", "vThMant", "refDelay", "gradedSpike")

CUBA_TYPES = ("CUBA", "LOIHI")
"""netx builds both as Lava's LIF with the same parameters (hdf5.py line 144)."""
SDNN_TYPE = "SDNN"
"""netx builds Delta (input layer), Sigma (``sigma_output``) or SigmaDelta (hdf5.py line 164)."""
RF_TYPES = ("RF_PHASE", "RF_IZHIKEVICH", "ADRF_PHASE", "ADRF_IZHIKEVICH")
"""Resonate-and-fire types slayer writes; netx builds any type containing 'RF' (hdf5.py 190)."""
NEURON_TYPES = (*CUBA_TYPES, SDNN_TYPE, *RF_TYPES)
UNBUILDABLE_NEURONS = {
    "ALIF": "netx 0.6.0 has no ALIF neuron (get_neuron_params returns None, hdf5.py "
            "lines 144-206)",
}
"""Neuron types lava-dl writes that netx 0.6.0 cannot build: the reason, with its source."""

MESSAGE_BITS = "messageBits"
ACTIVATION, SIGMA_OUTPUT = "activation", "sigma_output"
SDNN_ACTIVATIONS = ("relu",)
"""netx never reads 'activation': SigmaDelta runs its default ReLU (lava/proc/sdn/process.py)."""
SDNN_MESSAGE_BITS = 16
"""netx's default messageBits of an SDNN neuron (hdf5.py line 170)."""

DEFAULT_NEURON = {"type": "CUBA", I_DECAY: 0, V_DECAY: 4096, V_TH_MANT: 1 << 18 - 1}
"""The neuron netx gives a dense layer without a neuron group (hdf5.py lines 348-357):
a non-leaky integrator of its input (``du = -1`` keeps the current, ``dv = 4096``
makes v the current) whose threshold ``1 << 18 - 1`` is Python's ``1 << 17``
(``<<`` binds looser than ``-``), above the largest 24-bit voltage ``<< 6``: it never fires."""


@dataclass(frozen=True)
class Range:
    """Closed integer range ``[low, high]`` a field must lie in."""

    low: float
    high: float


CUBA_REQUIRED = {TYPE: None, I_DECAY: Range(DECAY_MIN, DECAY_MAX),
                 V_DECAY: Range(DECAY_MIN, DECAY_MAX), V_TH_MANT: Range(0, THRESHOLD_MAX + 1)}
CUBA_OPTIONAL = {REF_DELAY: Range(0, 1 << 16), GRADED: None, MESSAGE_BITS: Range(0, 32),
                 # written by lava-dl's slayer, not read by netx
                 "scaleRho": None, "tauRho": None, "theta": None, "wgtExp": None}
SDNN_REQUIRED = {TYPE: None}
SDNN_OPTIONAL = {V_TH_MANT: Range(0, THRESHOLD_MAX), ACTIVATION: None, SIGMA_OUTPUT: None,
                 MESSAGE_BITS: Range(0, 32)}
SIN_DECAY, COS_DECAY = "sinDecay", "cosDecay"
RF_REQUIRED = {TYPE: None, SIN_DECAY: Range(-DECAY_MAX, DECAY_MAX),
               COS_DECAY: Range(-DECAY_MAX, DECAY_MAX), V_TH_MANT: Range(0, THRESHOLD_MAX)}
RF_OPTIONAL = {GRADED: None, MESSAGE_BITS: None,
               # ADRF's adaptive threshold and refractory: written by slayer, not read by netx
               "thDecay": None, "refDecay": None, "vThStep": None}
NEURON_KEYS = {"CUBA": (CUBA_REQUIRED, CUBA_OPTIONAL), "LOIHI": (CUBA_REQUIRED, CUBA_OPTIONAL),
               SDNN_TYPE: (SDNN_REQUIRED, SDNN_OPTIONAL),
               **{kind: (RF_REQUIRED, RF_OPTIONAL) for kind in RF_TYPES}}
"""Per neuron type: (required fields with ranges, optional fields with ranges)."""

WEIGHT_RANGE = Range(WEIGHT_MIN, WEIGHT_MAX)
BIAS_RANGE = Range(BIAS_MIN, BIAS_MAX)
GEOMETRY_RANGE = Range(0, 255)
DELAY_RANGE = Range(0, 62)
"""netx builds DelayDense with max_delay 62 (and would clamp larger delays: we refuse them)."""

WEIGHT_REC = "weight_rec"
REAL, IMAG = "real", "imag"
"""A complex dense's ``weight`` group holds ``weight/real`` and ``weight/imag`` (hdf5.py 362)."""
SLAYER_GEOMETRY = {"inChannels", "outChannels", "kernelSize", "inFeatures", "outFeatures"}
"""Written by lava-dl's slayer for reference; netx does not read them."""

LAYER_KEYS: dict[str, tuple[set[str], set[str]]] = {
    # type: (required keys, optional keys), as netx's create_* functions read them
    "input": ({TYPE, SHAPE}, {NEURON, WEIGHT, BIAS}),
    "conv": ({TYPE, SHAPE, WEIGHT, NEURON, STRIDE, PADDING, DILATION, GROUPS},
             {BIAS, DELAY} | SLAYER_GEOMETRY),
    "flatten": ({TYPE}, {SHAPE}),
    "dense": ({TYPE, SHAPE, WEIGHT}, {NEURON, BIAS, DELAY} | SLAYER_GEOMETRY),
    "dense_rec": ({TYPE, SHAPE, WEIGHT, WEIGHT_REC}, {NEURON, BIAS} | SLAYER_GEOMETRY),
}
LAYER_TYPES = tuple(LAYER_KEYS)
UNBUILDABLE_LAYERS = ("pool", "convT", "unpool", "average", "concat", "dense_comp")
"""Layer types netx 0.6.0 refuses (NotImplementedError, hdf5.py lines 622-683; 'dense_comp'
calls a create_complex_dense that does not exist)."""
