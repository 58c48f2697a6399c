"""The one in-memory form of a netx network: its blocks in order, in file units.

The reader (:mod:`.netx_reader`) builds it from a file the way lava-dl 0.6.0's
``netx.hdf5.Network`` reads that file; the writer (:mod:`.netx_writer`), the
NIR converters, the emulator and activity counting all take it. A neuron kind
is one dataclass here plus its entry in :data:`NEURON_KINDS`; the emulator
maps each kind to its step function.

Shapes are slssnn's order: (C, H, W) or (N,), where netx and Lava use
(W, H, C) (``hdf5.py`` reverses ``shape`` when it builds a block).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np


@dataclass(frozen=True)
class CubaNeuron:
    """A netx ``CUBA`` or ``LOIHI`` neuron group, built as Lava's ``LIF``.

    netx (``lava/lib/dl/netx/hdf5.py``, ``get_neuron_params``, lines 144-163)
    builds both types as ``LIF`` (``LIFReset`` with a reset interval) with
    ``vth = vThMant``, ``du = iDecay - 1``, ``dv = vDecay``, ``bias_exp = 6``
    and ``num_message_bits = messageBits`` (default 0). The block keeps the
    message bits as its ``output_message_bits`` (``blocks/process.py``,
    ``AbstractBlock``, lines 45-47): the next synapse then reads its input as
    graded values, which for Lava's binary LIF spikes sums the same weights.
    ``refDelay``, ``gradedSpike`` and slayer's ``scaleRho``, ``tauRho``,
    ``theta``, ``wgtExp`` are not read by netx; ``ref_delay`` and ``graded`` are
    kept only to write the file back as it was.
    """

    i_decay: int
    v_decay: int
    threshold: int
    kind: str = "CUBA"
    message_bits: int = 0
    ref_delay: int | None = 1
    graded: bool | None = False


SIGMA_DELTA_ROLES = ("delta", "sigma_delta", "sigma")


@dataclass(frozen=True)
class SigmaDeltaNeuron:
    """A netx ``SDNN`` neuron group: ``Delta``, ``SigmaDelta`` or ``Sigma``.

    netx (``hdf5.py``, ``get_neuron_params``, lines 164-189): the input layer
    becomes ``Delta(vth=vThMant, spike_exp, state_exp=6)``; a layer whose group
    has ``sigma_output`` becomes ``Sigma``; any other layer ``SigmaDelta(vth=vThMant,
    spike_exp, state_exp=6)`` with its default ReLU activation. ``messageBits``
    (default 16) becomes the block's ``output_message_bits``. netx does not read
    ``activation``: every SigmaDelta layer runs ReLU, so the reader accepts only
    ``relu``. ``role`` is one of :data:`SIGMA_DELTA_ROLES`.
    """

    threshold: int
    role: str
    activation: str = "relu"
    message_bits: int = 16


@dataclass(frozen=True)
class RfNeuron:
    """A netx resonate-and-fire group (``RF_PHASE``, ``RF_IZHIKEVICH``, ``ADRF_*``).

    netx (``hdf5.py``, ``get_neuron_params``, lines 190-206) builds Lava's ``RF``
    for a type containing ``PHASE`` and ``RF_IZ`` for the others, from
    ``sinDecay``, ``cosDecay`` and ``vThMant`` (through slayer's period and
    decay, :func:`slssnn.training.resonator.rf_params_from_file`), with
    ``state_exp = 6``, ``decay_bits = 12``, no bias, no reset and binary
    output (``message_bits`` 0). Such a neuron only runs behind a complex
    ``dense`` layer (``weight/real``, ``weight/imag``: netx's ``ComplexDense``).
    ADRF's adaptive fields are not read by netx.
    """

    kind: str
    sin_decay: int
    cos_decay: int
    threshold: int
    graded: bool | None = None
    message_bits: int = 0

    @property
    def process(self) -> str:
        """The Lava process netx builds: ``RF`` or ``RF_IZ`` (hdf5.py line 194)."""
        return "RF" if "PHASE" in self.kind else "RF_IZ"


Neuron = CubaNeuron | SigmaDeltaNeuron | RfNeuron
"""Every neuron kind a layer can hold."""


@dataclass
class LayerSpec:
    """One built block of a netx network (input, conv, dense or dense_rec), in file units.

    ``shape`` is (C, H, W) or (N,); ``weight`` int64, conv ``(O, I/groups, kH, kW)``
    or dense ``(N, inputs)`` (the real part of a complex dense); ``weight_imag``:
    the imaginary part ``(N, inputs)`` of a complex dense (netx's ``ComplexDense``,
    RF neurons), else None; ``weight_rec`` (dense_rec only) int64 ``(N, N)``:
    the layer's own spikes back onto itself; ``bias`` int64 per channel/neuron or
    None; ``stride``/``padding``/``dilation`` are (H, W) pairs; ``delay`` (dense
    only): steps per synapse ``(N, inputs)``. ``input_transform``: an input
    layer's ``weight``/``bias`` fields, which netx stores on the block but
    never applies (``blocks/process.py``, ``Input``); kept to write them back.
    """

    index: int
    type: str
    shape: tuple[int, ...]
    neuron: Neuron
    weight: np.ndarray | None = None
    bias: np.ndarray | None = None
    stride: tuple[int, int] = (1, 1)
    padding: tuple[int, int] = (0, 0)
    dilation: tuple[int, int] = (1, 1)
    groups: int = 1
    flatten_before: bool = False
    delay: np.ndarray | None = None
    weight_rec: np.ndarray | None = None
    weight_imag: np.ndarray | None = None
    input_transform: dict[str, np.ndarray] = field(default_factory=dict)

    @property
    def neurons(self) -> int:
        return int(np.prod(self.shape))

    @property
    def name(self) -> str:
        return f"{self.index}:{self.type}"

    @property
    def is_sigma_delta(self) -> bool:
        return isinstance(self.neuron, SigmaDeltaNeuron)


@dataclass
class NetxNetwork:
    """A validated netx network: its blocks in order and our metadata (or {}).

    ``declared_input``: the shape of an input layer without a neuron group, for
    which netx builds no block and only sets its ``input_shape`` (``hdf5.py``
    lines 596-597); None when the file has none. ``num_layers``: the netx
    ``num_layers`` the file was read with (None: all).
    """

    path: Path
    layers: list[LayerSpec]
    metadata: dict[str, Any] = field(default_factory=dict)
    declared_input: tuple[int, ...] | None = None
    num_layers: int | None = None

    @property
    def input_shape(self) -> tuple[int, ...]:
        """What the first block receives, (C, H, W) or (N,): an input layer's own shape,
        a conv's declared input shape, or a dense synapse's input count."""
        first = self.layers[0]
        if first.type == "input":
            return first.shape
        if first.type == "conv" and self.declared_input is not None:
            return self.declared_input
        return (int(first.weight.shape[1]),)

    @property
    def has_input_block(self) -> bool:
        """Whether the first block is an input layer (input enters its neurons' ``a_in``)."""
        return self.layers[0].type == "input"
