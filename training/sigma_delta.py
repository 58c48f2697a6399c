"""Lava's fixed-point sigma-delta neurons (``Delta``, ``SigmaDelta``, ``Sigma``) as pure steps.

netx builds these three processes for an ``SDNN`` neuron group
(``lava/lib/dl/netx/hdf5.py:164-189``): ``Delta`` for the input layer,
``Sigma`` for a layer with ``sigma_output``, ``SigmaDelta`` elsewhere. Their
CPU models are ``PyDeltaModelFixed``, ``PySigmaDeltaModelFixed`` and
``PySigmaModelFixed`` (``lava/proc/sdn/models.py``, lava-nc 0.10.0).

All tensors hold integers in Lava's internal units, as ``torch.int32``: Lava
keeps every variable in an ``int32`` numpy array (the ``precision=24`` of the
``LavaPyType`` declarations is not enforced on the CPU), so each sum wraps at
32 bits (``wrap32``), and torch's int32 arithmetic wraps the same way; ``>>``
is numpy's arithmetic shift (it rounds toward minus infinity); ``abs32(x)`` is
numpy's int32 ``abs``, which leaves ``-2**31`` negative (torch's int32 ``abs``
does the same). With ``e = spike_exp + state_exp`` (netx: ``spike_exp = 6``,
``state_exp = 6``), the threshold and bias enter as ``vth << e`` and
``bias << e`` (``lava/proc/sdn/process.py:99, 179-180``).

``Delta`` (``models.py:223-231`` with ``delta_dynamics``, ``models.py:85-100``)::

    x[t]     = wrap32(a[t] << e)                       # no activation, no bias
    d[t]     = wrap32(x[t] - x[t-1] + r[t-1])
    q[t]     = d[t] if abs32(d[t]) >= (vth << e) else 0
    r[t]     = wrap32(d[t] - q[t])
    s[t]     = q[t] >> state_exp                       # the graded message sent

``SigmaDelta`` (``models.py:279-284`` with ``dynamics``, ``models.py:150-156``)::

    sigma[t] = wrap32(sigma[t-1] + a[t])               # a: the synapse's sum, no shift
    y[t]     = max(wrap32(sigma[t] + (bias << e)), 0)  # ReLU (netx never sets act_mode)
    d[t]     = wrap32(y[t] - y[t-1] + r[t-1])
    q[t], r[t], s[t] as for Delta

``Sigma`` (``models.py:52-57``)::

    sigma[t] = wrap32(sigma[t-1] + a[t]);  s[t] = sigma[t]

With ``cum_error`` (Lava's option; netx never sets it) the test reads
``err[t] = wrap32(err[t-1] + d[t])``, ``q[t] = d[t] if abs32(err[t]) >= (vth << e)``,
and ``err`` is zeroed where ``abs32(q[t]) > 0`` (``models.py:87-93``).

The low ``state_exp`` bits of a sent ``q`` are dropped by the shift and not
kept in the residue (``r = d - q``, not ``d - (s << state_exp)``).

Example::

    >>> import torch
    >>> p = DeltaParams(vth=1, spike_exp=0, state_exp=0)
    >>> state = DeltaState.zeros((1,))
    >>> out = []
    >>> for a in (3, 3, 4, 2):
    ...     s, state = delta_step(state, torch.tensor([a]), p)
    ...     out.append(int(s))
    >>> out          # the changes of the input: +3, 0, +1, -2
    [3, 0, 1, -2]
"""

from __future__ import annotations

import math
from typing import NamedTuple

import torch

from .fixed_point import NETX_SPIKE_EXP, SDNN_STATE_EXP
from .neuron import wrap_int32


class DeltaParams(NamedTuple):
    """A ``Delta`` layer (netx's SDNN input layer) in netx file units.

    ``vth`` is the file's ``vThMant`` (an int, or the float a file may hold:
    see :func:`scaled`); netx passes ``spike_exp`` from
    ``Network(spike_exp=...)`` and ``state_exp = 6``.
    """

    vth: int | float
    spike_exp: int = NETX_SPIKE_EXP
    state_exp: int = SDNN_STATE_EXP
    cum_error: bool = False


class SigmaDeltaParams(NamedTuple):
    """A ``SigmaDelta`` layer in netx file units.

    ``bias`` is netx's bias mantissa: the file's ``bias`` truncated toward zero
    to an integer (``NetDict``, ``lava/lib/dl/netx/utils.py:67-68``), an int or
    an int64 tensor that broadcasts against the layer's neurons (per channel:
    shape ``(C, 1, 1)``). ``relu``: Lava's ``ActivationMode.RELU``, the
    process's default (``process.py:126``), which netx never overrides; False
    is ``ActivationMode.UNIT`` (no clip at 0).
    """

    vth: int | float
    bias: torch.Tensor | int = 0
    spike_exp: int = NETX_SPIKE_EXP
    state_exp: int = SDNN_STATE_EXP
    cum_error: bool = False
    relu: bool = True


def _zeros(shape: tuple[int, ...], device: torch.device | str | None) -> torch.Tensor:
    return torch.zeros(shape, dtype=torch.int32, device=device)


def _int32(x: torch.Tensor) -> torch.Tensor:
    """``x`` as int32, wrapped to 32 bits as Lava's int32 ``Var`` stores it."""
    return x if x.dtype == torch.int32 else x.to(torch.int32)


class DeltaState(NamedTuple):
    """Last activation ``act``, ``residue`` and cumulative ``error`` (int32)."""

    act: torch.Tensor
    residue: torch.Tensor
    error: torch.Tensor

    @staticmethod
    def zeros(shape: tuple[int, ...], device: torch.device | str | None = None) -> DeltaState:
        """Lava's initial state: every variable 0 (``process.py:105-108``)."""
        return DeltaState(_zeros(shape, device), _zeros(shape, device), _zeros(shape, device))


class SigmaDeltaState(NamedTuple):
    """``sigma`` (the accumulated input) and the Delta state of a ``SigmaDelta`` layer."""

    sigma: torch.Tensor
    act: torch.Tensor
    residue: torch.Tensor
    error: torch.Tensor

    @staticmethod
    def zeros(shape: tuple[int, ...],
              device: torch.device | str | None = None) -> SigmaDeltaState:
        """Lava's initial state: every variable 0 (``process.py:186-189``)."""
        return SigmaDeltaState(*(_zeros(shape, device) for _ in range(4)))


def scaled(value: torch.Tensor | int | float, exponent: int,
           device: torch.device | str | None = None) -> torch.Tensor:
    """``wrap32(value << exponent)``: a threshold or bias in Lava's internal units (int32).

    The process multiplies by ``1 << (spike_exp + state_exp)`` and the model
    stores the product in an int32 ``Var`` (``process.py:99, 179-180``); a
    float ``vThMant`` (as a file may store it) is multiplied first and then
    truncated toward zero by that store.
    """
    if isinstance(value, float):
        wide = torch.tensor(math.trunc(value * (1 << exponent)), device=device)
    else:
        wide = torch.as_tensor(value, dtype=torch.int64, device=device) << exponent
    return _int32(wrap_int32(wide))


def _encode(delta: torch.Tensor, error: torch.Tensor, vth: torch.Tensor,
            cum_error: bool) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """``delta_dynamics`` (models.py:85-100): the sent ``q``, the new residue and error.

    int32 in, int32 out: every sum wraps at 32 bits as in Lava's int32 arrays.
    """
    if cum_error:
        error = error + delta
        q = torch.where(error.abs() >= vth, delta, 0)
        error = torch.where(q.abs() > 0, 0, error)
    else:
        q = torch.where(delta.abs() >= vth, delta, 0)
    return q, delta - q, error


def delta_step(state: DeltaState, a_in: torch.Tensor,
               p: DeltaParams) -> tuple[torch.Tensor, DeltaState]:
    """Advance a ``Delta`` layer by one step; return ``(messages, new_state)``.

    ``a_in``: the integers the layer's ``a_in`` port receives this step
    (netx's input layer: the user's input, held in an int32 channel), shaped
    like the state. State and messages are int32 (0 means no message).
    """
    e = p.spike_exp + p.state_exp
    x = _int32(a_in) << e
    delta = x - state.act + state.residue
    q, residue, error = _encode(delta, state.error, scaled(p.vth, e, x.device), p.cum_error)
    return q >> p.state_exp, DeltaState(x, residue, error)


def sigma_delta_step(state: SigmaDeltaState, a_in: torch.Tensor,
                     p: SigmaDeltaParams) -> tuple[torch.Tensor, SigmaDeltaState]:
    """Advance a ``SigmaDelta`` layer by one step; return ``(messages, new_state)``.

    ``a_in``: the dendritic sums its synapse delivers this step (wrapped to int32
    as Lava's port holds them), shaped like the state. State and messages are
    int32 (0 means no message).
    """
    e = p.spike_exp + p.state_exp
    sigma = state.sigma + _int32(a_in)
    act = sigma + scaled(p.bias, e, sigma.device)
    if p.relu:
        act = act.clamp_(min=0)
    delta = act - state.act + state.residue
    q, residue, error = _encode(delta, state.error, scaled(p.vth, e, sigma.device), p.cum_error)
    return q >> p.state_exp, SigmaDeltaState(sigma, act, residue, error)


def sigma_step(sigma: torch.Tensor, a_in: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Advance a ``Sigma`` layer (netx's ``sigma_output``) by one step: ``(output, new_sigma)``.

    The state is ``sigma`` alone (int32; Lava starts it at 0); the output is the
    new ``sigma`` itself, sent every step.
    """
    sigma = _int32(sigma) + _int32(a_in)
    return sigma, sigma
