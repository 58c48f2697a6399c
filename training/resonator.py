"""Lava's fixed-point resonate-and-fire neurons (``RF``, ``RF_IZ``) as pure steps.

netx builds them for a neuron type containing ``"RF"`` (``RF_PHASE`` and
``ADRF_PHASE`` give ``RF``, other types such as ``RF_IZHIKEVICH`` give
``RF_IZ``; ``lava/lib/dl/netx/hdf5.py:190-203``), behind a ``dense`` layer
that holds ``weight/real`` and ``weight/imag`` (netx's ``ComplexDense``,
``hdf5.py:362-390``: two Dense synapses, one into each input port). Their CPU
models are ``PyRFModelFixed`` (``lava/proc/rf/models.py:122-145``) and
``PyRF_IZModelFixed`` (``lava/proc/rf_iz/models.py:34-58``), lava-nc 0.10.0.

With netx's ``state_exp = 6`` and ``decay_bits = 12``, integer decays ``sin``
and ``cos`` (:func:`rf_params_from_file`), threshold ``vth`` (internal units),
``>>`` on magnitudes (``sign(x) * (|x| >> 12)``, rounding toward zero,
``models.py:113-115``) and ``clip24`` to ``[-(2**23 - 1), 2**23 - 1]``
(``models.py:104-111``), one step for the input sums ``(ar, ai)`` is::

    re[t] = clip24( (cos*re[t-1]) >> 12 - (sin*im[t-1]) >> 12 + wrap32(ar[t] << 6) )
    im[t] = clip24( (sin*re[t-1]) >> 12 + (cos*im[t-1]) >> 12 + wrap32(ai[t] << 6) )

``RF`` (``rf/models.py:142-143``)::

    s[t] = re[t] >= vth  and  im[t] >= 0  and  im[t-1] < 0

``RF_IZ`` (``rf_iz/models.py:55-57``)::

    s[t] = im[t] >= vth;  where s[t]: re[t] = 0, im[t] = vth - 1

The products are formed in int64 (the state is read as ``np.int64``); the
spikes are 0/1 (sent as int32).

Example::

    >>> import torch
    >>> p = RFParams(sin_decay=0, cos_decay=4096, vth=64)
    >>> s, state = rf_iz_step(RFState.zeros((1,)), (torch.tensor([0]), torch.tensor([1])), p)
    >>> int(s), int(state.imag)     # im = 1 << 6 = 64 >= vth: spike, im reset to vth - 1
    (1, 63)
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np
import torch

from .fixed_point import DECAY_SHIFT, RF_DECAY_BITS, RF_STATE_BITS, RF_STATE_EXP
from .neuron import wrap_int32

RF_LIMIT = (1 << (RF_STATE_BITS - 1)) - 1
"""``2**23 - 1``: the largest magnitude of a real or imaginary part."""


class RFParams(NamedTuple):
    """An RF layer in Lava's internal units: decays in ``1/2**decay_bits``, ``vth`` scaled by 64."""

    sin_decay: int
    cos_decay: int
    vth: int
    state_exp: int = RF_STATE_EXP
    decay_bits: int = RF_DECAY_BITS


class RFState(NamedTuple):
    """Real and imaginary parts (int64 tensors, within ``+-(2**23 - 1)``)."""

    real: torch.Tensor
    imag: torch.Tensor

    @staticmethod
    def zeros(shape: tuple[int, ...], device: torch.device | str | None = None) -> RFState:
        """Lava's initial state: ``real = imag = 0`` (``rf/process.py:77-78``)."""
        zero = torch.zeros(shape, dtype=torch.int64, device=device)
        return RFState(zero, zero.clone())


def rf_params(period: float, alpha: float, vth: float, state_exp: int = RF_STATE_EXP,
              decay_bits: int = RF_DECAY_BITS) -> RFParams:
    """The integers Lava's ``RF`` process makes of its arguments (``rf/process.py:62-72``).

    ``sin = int32((1 - alpha) * sin(2 pi / period) * 2**decay_bits)`` (truncated
    toward zero), ``cos`` likewise, ``vth = int(vth * 2**state_exp)``; float64
    arithmetic in numpy, in Lava's order.
    """
    period = np.float64(period)
    with np.errstate(divide="ignore"):
        angle = np.pi * 2 * 1 / period
    sin_decay = (1 - alpha) * np.sin(angle)
    cos_decay = (1 - alpha) * np.cos(angle)
    if state_exp > 0:
        vth = int(vth * (1 << state_exp))
    if decay_bits > 0:
        sin_decay = np.int32(sin_decay * (1 << decay_bits))
        cos_decay = np.int32(cos_decay * (1 << decay_bits))
    return RFParams(int(sin_decay), int(cos_decay), int(vth), state_exp, decay_bits)


def rf_params_from_file(sin_decay: int, cos_decay: int, v_th_mant: int) -> RFParams:
    """What netx builds from a file's ``sinDecay``, ``cosDecay`` and ``vThMant``.

    netx turns the decays into a period and a decay with slayer's
    ``neuron_params`` (``lava/lib/dl/slayer/neuron/rf.py:42-50``) and the
    process turns them back (:func:`rf_params`): the round trip through
    floats can move a decay by one from the file's value.
    """
    unity = 1 << DECAY_SHIFT  # slayer's p_scale
    sin_f = np.int64(sin_decay) / unity
    cos_f = np.int64(cos_decay) / unity
    decay = 1 - np.sqrt(sin_f ** 2 + cos_f ** 2)
    frequency = np.arctan2(sin_f, cos_f) / 2 / np.pi
    with np.errstate(divide="ignore"):
        period = 1 / frequency
    return rf_params(period, decay, np.int64(v_th_mant))


def _scale(x: torch.Tensor, bits: int) -> torch.Tensor:
    """``sign(x) * (|x| >> bits)``: Lava's ``scale_volt``, rounding toward zero."""
    return torch.sign(x) * (x.abs() >> bits)


def _resonate(state: RFState, a_in: tuple[torch.Tensor, torch.Tensor],
              p: RFParams) -> tuple[torch.Tensor, torch.Tensor]:
    """The new real and imaginary parts (``resonator_dynamics`` and the clip)."""
    a_real = wrap_int32(a_in[0].to(torch.int64) << p.state_exp)
    a_imag = wrap_int32(a_in[1].to(torch.int64) << p.state_exp)
    real = (_scale(p.cos_decay * state.real, p.decay_bits)
            - _scale(p.sin_decay * state.imag, p.decay_bits) + a_real)
    imag = (_scale(p.sin_decay * state.real, p.decay_bits)
            + _scale(p.cos_decay * state.imag, p.decay_bits) + a_imag)
    return real.clamp(-RF_LIMIT, RF_LIMIT), imag.clamp(-RF_LIMIT, RF_LIMIT)


def rf_step(state: RFState, a_in: tuple[torch.Tensor, torch.Tensor],
            p: RFParams) -> tuple[torch.Tensor, RFState]:
    """Advance an ``RF`` layer by one step; return ``(spikes, new_state)``.

    ``a_in``: the real and imaginary dendritic sums of this step (integers
    shaped like the state). The spikes are a bool tensor: a phase crossing
    (``im`` turns non-negative) while ``re >= vth``.
    """
    real, imag = _resonate(state, a_in, p)
    spikes = (real >= p.vth) & (imag >= 0) & (state.imag < 0)
    return spikes, RFState(real, imag)


def rf_iz_step(state: RFState, a_in: tuple[torch.Tensor, torch.Tensor],
               p: RFParams) -> tuple[torch.Tensor, RFState]:
    """Advance an ``RF_IZ`` layer by one step; return ``(spikes, new_state)``.

    A spike where ``im >= vth``; there ``re`` resets to 0 and ``im`` to ``vth - 1``.
    """
    real, imag = _resonate(state, a_in, p)
    spikes = imag >= p.vth
    real = torch.where(spikes, torch.zeros_like(real), real)
    imag = torch.where(spikes, torch.full_like(imag, p.vth - 1), imag)
    return spikes, RFState(real, imag)
