"""The one CUBA neuron step: Lava's fixed-point LIF, as a pure function.

Training's forward, the emulator and the tests call :func:`cuba_step`; every
time loop calls it and never copies its equations.

All tensors hold integers (``torch.int64``) in Lava's internal units, i.e.
already multiplied by ``2**6`` where Lava shifts. One step, for synaptic input
``a`` (the dendritic sum, an integer), reads (``>>`` rounds toward zero on the
magnitude, as Lava does with ``sign(x) * (|x| >> 12)``)::

    u[t] = wrap24( (u[t-1] * (4096 - iDecay)) >> 12  +  (a[t] << 6) )
    v[t] = sat24 ( (v[t-1] * (4096 - vDecay)) >> 12  +  u[t]  +  (bias << 6) )
    s[t] = v[t] > (vThMant << 6)
    v[t] = 0 where s[t]

``wrap24`` subtracts (adds) ``2**24`` once when ``u`` leaves (2**23 - 1, -2**23];
``sat24`` clips to [-(2**23 - 1), 2**23 - 1]; sums that Lava forms in int32
wrap at 32 bits here too.

Example::

    >>> import torch
    >>> p = CubaParams(i_decay=4096, v_decay=0, threshold=10, bias=0)
    >>> state = CubaState.zeros((1,))
    >>> spikes = []
    >>> for a in (6, 6, 6):
    ...     s, state = cuba_step(state, torch.tensor([a]), p)
    ...     spikes.append(int(s))
    >>> spikes     # v: 6, 12 > 10 -> spike and reset, 6
    [0, 1, 0]
"""

from __future__ import annotations

from typing import NamedTuple

import torch

from .fixed_point import (
    ACTIVATION_SHIFT,
    BIAS_EXP,
    DECAY_SHIFT,
    DECAY_UNITY,
    INT32_BITS,
    STATE_LIMIT,
    THRESHOLD_SHIFT,
)


class CubaParams(NamedTuple):
    """Parameters of a CUBA neuron layer, in netx file units.

    ``i_decay`` and ``v_decay`` are in 1/4096 per step; ``threshold`` is
    ``vThMant``; ``bias`` is the bias mantissa (an int or an int64 tensor that
    broadcasts against the layer's neurons).
    """

    i_decay: int
    v_decay: int
    threshold: int
    bias: torch.Tensor | int = 0


class CubaState(NamedTuple):
    """Current ``u`` and voltage ``v`` (int64 tensors in Lava's internal units)."""

    u: torch.Tensor
    v: torch.Tensor

    @staticmethod
    def zeros(shape: tuple[int, ...], device: torch.device | str | None = None) -> CubaState:
        """The state Lava starts from and resets to: ``u = v = 0``."""
        zero = torch.zeros(shape, dtype=torch.int64, device=device)
        return CubaState(zero, zero.clone())


def wrap_int32(x: torch.Tensor) -> torch.Tensor:
    """Two's-complement wrap of an int64 tensor to the int32 range."""
    half = 1 << (INT32_BITS - 1)
    return torch.remainder(x + half, 1 << INT32_BITS) - half


def decay(x: torch.Tensor, decay_4096: int) -> torch.Tensor:
    """``sign(x) * ((|x| * (4096 - decay)) >> 12)``: Lava's decay, rounding toward zero."""
    product = x * (DECAY_UNITY - decay_4096)
    return torch.sign(product) * (product.abs() >> DECAY_SHIFT)


def cuba_step(
    state: CubaState, a_in: torch.Tensor, p: CubaParams
) -> tuple[torch.Tensor, CubaState]:
    """Advance a CUBA layer by one step; return ``(spikes, new_state)``.

    ``a_in`` is the integer dendritic input of this step, shaped like the
    state; the returned spikes are a bool tensor of that shape.
    """
    u = wrap_int32(decay(state.u, p.i_decay) + wrap_int32(a_in << ACTIVATION_SHIFT))
    u = torch.where(u > STATE_LIMIT, u - 2 * STATE_LIMIT, u)
    u = torch.where(u <= -STATE_LIMIT, u + 2 * STATE_LIMIT, u)
    bias = torch.as_tensor(p.bias, dtype=torch.int64, device=u.device) << BIAS_EXP
    v = wrap_int32(decay(state.v, p.v_decay) + u + bias)
    v = v.clamp(-(STATE_LIMIT - 1), STATE_LIMIT - 1)
    spikes = v > (int(p.threshold) << THRESHOLD_SHIFT)
    v = torch.where(spikes, torch.zeros_like(v), v)
    return spikes, CubaState(u, v)


def run_cuba(a_in: torch.Tensor, p: CubaParams) -> torch.Tensor:
    """Run a CUBA layer from rest over the leading time axis.

    ``a_in``: int64, shape ``(T, *neurons)``. Returns bool spikes of the same shape.
    """
    state = CubaState.zeros(tuple(a_in.shape[1:]), device=a_in.device)
    spikes = []
    for a_t in a_in:
        s_t, state = cuba_step(state, a_t, p)
        spikes.append(s_t)
    return torch.stack(spikes)  # (T, *neurons)
