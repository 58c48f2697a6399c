"""Loihi fixed-point arithmetic, defined once.

Every bit width, shift, offset and range of the integer neuron and synapse
semantics lives here; the neuron step (``neuron.py``), the quantizer
(``quantize.py``), the HDF5 schema and the Lava runner read these names and
never repeat the numbers.

The semantics are those of Lava's ``PyLifModelBitAcc`` (lava-nc 0.10.0,
``lava/proc/lif/models.py``) for a netx ``CUBA`` neuron built by
``lava/lib/dl/netx/hdf5.py``:

- netx passes ``du = iDecay - 1`` and Lava adds ``ds_offset = 1``, so the
  current decays by ``iDecay / 4096`` per step; the voltage by
  ``vDecay / 4096`` (``dm_offset = 0``);
- synaptic input and threshold are left-shifted by 6 bits (``act_shift``,
  ``vth_shift``); bias is ``bias_mant << bias_exp`` with netx's
  ``bias_exp = 6``;
- ``u`` wraps and ``v`` saturates at 24 bits; the spike test is ``v > vth``.
"""

from __future__ import annotations

# --- state registers -------------------------------------------------------
STATE_BITS = 24
"""Width of the current ``u`` and voltage ``v`` registers (bits)."""
STATE_LIMIT = 1 << (STATE_BITS - 1)
"""``2**23``: ``u`` wraps modulo ``2 * STATE_LIMIT``; ``|v| <= STATE_LIMIT - 1``."""

# --- decays -----------------------------------------------------------------
DECAY_SHIFT = 12
"""Decays are fractions of ``DECAY_UNITY = 2**12``."""
DECAY_UNITY = 1 << DECAY_SHIFT
"""4096: ``iDecay = 4096`` empties the current every step; ``vDecay = 0`` keeps v."""

# --- shifts that MSB-align integers with the 24-bit state --------------------
ACTIVATION_SHIFT = 6
"""Synaptic input ``a_in`` enters the current as ``a_in << 6``."""
THRESHOLD_SHIFT = 6
"""The threshold mantissa ``vThMant`` is compared as ``vThMant << 6``."""
BIAS_EXP = 6
"""netx builds every CUBA neuron with ``bias_exp = 6``: bias enters as ``bias << 6``."""

# --- parameter ranges (Lava's LavaPyType precisions) --------------------------
THRESHOLD_MAX = (1 << 17) - 1
"""``vth`` is an unsigned 17-bit integer in Lava's bit-accurate LIF."""
BIAS_MIN, BIAS_MAX = -(1 << 12), (1 << 12) - 1
"""``bias_mant`` is a signed 13-bit integer."""
DECAY_MIN, DECAY_MAX = 0, DECAY_UNITY
"""``iDecay`` and ``vDecay`` in 1/4096 units; ``iDecay = 0`` would need du = -1."""
I_DECAY_MIN = 1
"""netx writes ``du = iDecay - 1`` into a 12-bit unsigned field: iDecay >= 1."""

# --- weights ------------------------------------------------------------------
WEIGHT_MANTISSA_BITS = 8
"""Signed 8-bit mantissa ``m`` in [-128, 127]."""
WEIGHT_STEP = 2
"""lava-dl writes ``weight * 64`` with 8-bit precision: even integers, step 2."""
WEIGHT_MIN = -(1 << (WEIGHT_MANTISSA_BITS - 1)) * WEIGHT_STEP
"""-256: the most negative file weight."""
WEIGHT_MAX = ((1 << (WEIGHT_MANTISSA_BITS - 1)) - 1) * WEIGHT_STEP
"""254: the most positive file weight."""

CONV_ACCUM_BITS = 24
"""Lava's fixed-point Conv clamps its dendritic sum to a signed 24-bit value."""

INT32_BITS = 32
"""Lava holds u, v and a_in in int32 numpy arrays: intermediate sums wrap there."""

# --- sigma-delta neurons (lava/proc/sdn, netx SDNN) ---------------------------
SDNN_STATE_EXP = 6
"""netx builds every ``Delta`` and ``SigmaDelta`` with ``state_exp = 6`` (hdf5.py:176, 187)."""
NETX_SPIKE_EXP = 6
"""netx's default ``spike_exp`` (``Network(spike_exp=6)``, hdf5.py:72): a graded message
carries ``2**spike_exp`` times the value it encodes."""
SDNN_MESSAGE_BITS = 16
"""netx's default ``num_message_bits`` of an SDNN layer without ``messageBits`` (hdf5.py:169)."""

# --- netx's Dense weight mapping (lava/lib/dl/netx/utils.py, lava/utils/weightutils.py) ---
SYNAPSE_WEIGHT_BITS = 8
"""Lava's Dense clips its scaled weights to 8 bits (plus sign) and truncates to
``num_weight_bits`` of them (``clip_weights(num_bits=8)``, ``truncate_weights``)."""
SIGNED_WEIGHT_MAX = (1 << (SYNAPSE_WEIGHT_BITS - 1)) - 1
"""127: netx scales a mixed-sign matrix so that its largest weight fits ``127 * 2**k``."""
UNSIGNED_WEIGHT_MAX = (1 << SYNAPSE_WEIGHT_BITS) - 1
"""255: the largest magnitude of a one-signed scaled weight."""
WEIGHT_RANGE = 1 << SYNAPSE_WEIGHT_BITS
"""256: scaled weights lie in [-256, 255] (mixed) after Lava's clip."""

# --- resonate-and-fire neurons (lava/proc/rf, lava/proc/rf_iz) -----------------
RF_STATE_EXP = 6
"""netx builds ``RF``/``RF_IZ`` with ``state_exp = 6``: input and threshold are scaled by 64."""
RF_DECAY_BITS = 12
"""netx builds ``RF``/``RF_IZ`` with ``decay_bits = 12``: decays are in 1/4096."""
RF_STATE_BITS = 24
"""Real and imaginary parts are clipped to ``+-(2**23 - 1)`` (2 x the 12-bit decay precision)."""

# --- host-side input ------------------------------------------------------------
INPUT_CURRENT_MAX = (1 << 15) - 1
"""Input currents fed to the input layer must fit the int16 ``a_in`` port."""


def check_range(name: str, value: int, low: int, high: int) -> int:
    """Return ``value`` if ``low <= value <= high``, else raise ``ValueError`` naming it."""
    if not low <= int(value) <= high:
        raise ValueError(f"{name}={value} is outside the Loihi range [{low}, {high}]")
    return int(value)
