"""The one CUBA neuron step: Lava's fixed-point LIF, as a pure function.

:func:`cuba_step` is the definition: the emulator's step-by-step run
(:class:`slssnn.lava_runtime.emulator.Emulator`) and :func:`run_cuba_steps`
call it. The fast paths of :func:`run_cuba`, which training's forward and the
emulator's dataset windows use, do not call it: they run the same arithmetic
without the wraps and clips that a bound proves idle (:func:`if_in_range`,
:func:`decays_in_range`), and ``tests/test_fast_paths.py`` checks them against
:func:`run_cuba_steps` spike for spike.

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

import functools
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
    wrapped = x + half  # one new tensor, then in place: remainder(x + half, 2**32) - half
    return wrapped.bitwise_and_((1 << INT32_BITS) - 1).sub_(half)


def decay(x: torch.Tensor, decay_4096: int) -> torch.Tensor:
    """``sign(x) * ((|x| * (4096 - decay)) >> 12)``: Lava's decay, rounding toward zero.

    ``decay = 0`` returns ``x`` itself and ``decay = 4096`` zeros (what the
    formula gives), without computing them.
    """
    if decay_4096 == 0:
        return x
    if decay_4096 == DECAY_UNITY:
        return torch.zeros_like(x)
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


IF_EXACT_LIMIT = (STATE_LIMIT - 1) >> ACTIVATION_SHIFT
"""``2**17 - 1``: the largest ``|v| / 64`` that neither saturates ``v`` nor wraps ``u``."""


def _if_range(a_in: torch.Tensor, p: CubaParams, bounds: tuple[int, int] | None) -> int:
    """0: not plain IF on ``a_in``; 1: exact without a floor; 2: exact with the floor.

    See :func:`if_in_range`.
    """
    threshold = int(p.threshold)
    if (p.i_decay != DECAY_UNITY or p.v_decay != 0 or not 0 <= threshold <= IF_EXACT_LIMIT
            or not ACTIVATION_SHIFT == BIAS_EXP == THRESHOLD_SHIFT or a_in.numel() == 0):
        return 0
    bias = torch.as_tensor(p.bias, device=a_in.device)
    b_low, b_high = (int(x) for x in torch.aminmax(bias)) if bias.numel() else (0, 0)
    steps = a_in.shape[0]

    def no_floor(low: int, high: int) -> bool:
        return max(-low, high) <= IF_EXACT_LIMIT and max(-b_low, b_high) <= IF_EXACT_LIMIT \
            and steps * max(-(low + b_low), 0) <= IF_EXACT_LIMIT

    if bounds is not None and no_floor(*bounds):
        return 1
    low, high = (int(x) for x in torch.aminmax(a_in))
    if max(-low, high) > IF_EXACT_LIMIT or max(-b_low, b_high) > IF_EXACT_LIMIT:
        return 0  # u could wrap
    return 1 if no_floor(low, high) else 2


def if_in_range(a_in: torch.Tensor, p: CubaParams,
                bounds: tuple[int, int] | None = None) -> bool:
    """Whether :func:`run_cuba` may run ``a_in`` as plain integrate-and-fire in float32.

    Needs ``i_decay = 4096``, ``v_decay = 0``, ``0 <= vThMant <= 2**17 - 1``
    and ``|a|, |bias| <= 2**17 - 1``. From rest, the current is then
    ``u = a << 6`` (its decay term is zero and neither wrap can act) and
    ``decay(v, 0) = v``, so ``v`` only accumulates ``(a + bias) << 6``, is
    clipped to ``+-(2**23 - 1)`` and resets to 0 above ``vth << 6``; the int32
    sum ``v + u + (bias << 6)`` stays far from ``2**31``. The clip at the top
    never changes a spike: ``vth << 6 < 2**23 - 1``, so a clipped voltage
    still fires and resets to 0, as the unclipped one would. With
    ``v' = v / 64`` (activation, bias and threshold share the shift 6) a step
    is ``v' = max(v' + a + bias, -(2**23 - 1) / 64); s = v' > vThMant;
    v' = 0 where s``: multiples of 1/64 below ``2**18``, exact in float32.
    The floor is left out where it provably never acts (``T`` times the most
    negative ``a + bias`` within ``2**17 - 1``).

    ``bounds``: ``(low, high)`` that the caller guarantees for ``a_in`` (e.g.
    from the weights, :func:`slssnn.training.synapse.sum_bounds`); tried first,
    before the exact range of ``a_in`` is measured.
    """
    return _if_range(a_in, p, bounds) > 0


def _run_if(a_in: torch.Tensor, p: CubaParams, dtype: torch.dtype,
            floor: bool) -> torch.Tensor:
    """The integrate-and-fire case of :func:`run_cuba` (only where :func:`if_in_range`).

    It keeps ``w = -v'`` (the negated voltage in units of 64, a multiple of
    1/64), so that one ``threshold`` both tests and resets: ``v' <= vThMant``
    is ``w > -(vThMant + 1/128)``, and ``torch.threshold`` keeps ``w`` there and
    zeroes it elsewhere; with ``floor``, ``w`` is first clipped to
    ``(2**23 - 1) / 64``.
    """
    drive = a_in.to(torch.float32)  # keeps a channels-last layout
    if not (isinstance(p.bias, int) and p.bias == 0):
        drive = drive + torch.as_tensor(p.bias, dtype=torch.float32, device=a_in.device)
    cut = -(float(p.threshold) + 1 / 128)  # between v' = vThMant and the next 1/64 step
    lowest = (STATE_LIMIT - 1) / float(1 << ACTIVATION_SHIFT)  # -v' at Lava's floor
    w = torch.empty_like(drive[0])  # -v / 64 after the reset
    before_reset = torch.empty_like(drive)  # w of every step before the reset
    for t in range(drive.shape[0]):
        if t == 0:  # from rest: w = 0 - drive[0]
            torch.neg(drive[0], out=before_reset[0])
        else:
            torch.threshold(before_reset[t - 1], cut, 0.0, out=w)
            torch.sub(w, drive[t], out=before_reset[t])
        if floor:
            before_reset[t].clamp_(max=lowest)
    spikes = torch.lt(before_reset, cut, out=before_reset)  # v' > vThMant, as 0/1
    return spikes.to(dtype)


def decays_in_range(a_in: torch.Tensor, p: CubaParams) -> bool:
    """Whether no wrap or saturation of :func:`cuba_step` can act on ``a_in``, whatever the decays.

    From rest the decays only shrink magnitudes, so after ``t <= T`` steps
    ``|u| <= 64 * T * max|a|`` and ``|v| <= 64 * T * (T * max|a| + max|bias|)``.
    When ``T * (T * max|a| + max|bias|) <= 2**17 - 1`` both stay inside 24 bits
    (no wrap of ``u``, no saturation of ``v``, no int32 wrap), and a step is
    ``u = decay(u) + 64 a; v = decay(v) + u + 64 bias; s = v > 64 vThMant``,
    with ``decay(x) = trunc(x * (4096 - d) / 4096)``: exact in float64, whose
    53-bit mantissa holds every product below ``2**35``.
    """
    if a_in.numel() == 0 or not ACTIVATION_SHIFT == BIAS_EXP == THRESHOLD_SHIFT:
        return False
    low, high = (int(x) for x in torch.aminmax(a_in))
    bias = torch.as_tensor(p.bias)
    b_max = int(bias.abs().max()) if bias.numel() else 0
    steps = a_in.shape[0]
    return steps * (steps * max(-low, high) + b_max) <= IF_EXACT_LIMIT


def _run_decays(a_in: torch.Tensor, p: CubaParams, dtype: torch.dtype) -> torch.Tensor:
    """:func:`cuba_step`'s loop without its idle wraps (only where :func:`decays_in_range`)."""
    unit = float(1 << ACTIVATION_SHIFT)
    drive = a_in.to(torch.float64) * unit  # a << 6
    bias = torch.as_tensor(p.bias, dtype=torch.float64, device=a_in.device) * unit
    keep_u = (DECAY_UNITY - p.i_decay) / DECAY_UNITY  # exact: a multiple of 2**-12
    keep_v = (DECAY_UNITY - p.v_decay) / DECAY_UNITY
    threshold = float(int(p.threshold) << THRESHOLD_SHIFT)
    u = torch.zeros_like(drive[0])
    v = torch.zeros_like(drive[0])
    below = torch.empty_like(drive)  # 1.0 where v <= threshold (no spike)
    for t in range(drive.shape[0]):
        if keep_u:
            u = u.mul_(keep_u).trunc_().add_(drive[t])
        else:
            u = drive[t]
        if keep_v != 1.0:
            v.mul_(keep_v).trunc_()
        v.add_(u).add_(bias)
        torch.le(v, threshold, out=below[t])
        v.mul_(below[t])
    return torch.rsub(below, 1).to(dtype)


def run_cuba(a_in: torch.Tensor, p: CubaParams, dtype: torch.dtype = torch.bool,
             bounds: tuple[int, int] | None = None) -> torch.Tensor:
    """Run a CUBA layer from rest over the leading time axis.

    ``a_in``: integers (an integer dtype, or float holding integers), shape
    ``(T, *neurons)``. Returns the spikes, 0/1 in ``dtype`` (default bool), of
    the same shape (in the layout of ``a_in`` where the fast path runs). Each
    step is :func:`cuba_step`; where :func:`if_in_range` shows that no wrap or
    decay acts (IF neurons, the common case), the same arithmetic runs in
    float32 without them; where :func:`decays_in_range` proves that no
    wrap or saturation acts, in float64 with the decays.
    ``bounds``: as in :func:`if_in_range`.
    """
    mode = _if_range(a_in, p, bounds)
    if mode:
        return _run_if(a_in, p, dtype, floor=mode == 2)
    if decays_in_range(a_in, p):
        return _run_decays(a_in, p, dtype)
    return run_cuba_steps(a_in, p, dtype)


def run_cuba_steps(a_in: torch.Tensor, p: CubaParams,
                   dtype: torch.dtype = torch.bool) -> torch.Tensor:
    """The plain definition: a loop of :func:`cuba_step` in int64 from zero state.

    ``a_in``: integer input currents ``(T, *neurons)``; returns spikes ``(T, *neurons)``
    as ``dtype``. :func:`run_cuba` falls back to it where no exact fast path applies.
    """
    a_in = a_in.to(torch.int64)
    state = CubaState.zeros(tuple(a_in.shape[1:]), device=a_in.device)
    spikes = []
    for a_t in a_in:
        s_t, state = cuba_step(state, a_t, p)
        spikes.append(s_t)
    return torch.stack(spikes).to(dtype)  # (T, *neurons)


def run_cuba_constant(current: torch.Tensor, steps: int, p: CubaParams,
                      dtype: torch.dtype = torch.bool) -> torch.Tensor:
    """:func:`run_cuba` of a current held over ``steps`` steps: spikes ``(T, *current.shape)``.

    ``current``: integers (int64, a_in units), one per neuron. The same as
    ``run_cuba(current.expand(steps, *current.shape), p, dtype)``: with one
    bias for all neurons (an int or a one-element tensor) a neuron's spike
    train depends only on its current, so where the currents take few values
    (images: ``0..16`` for the digits) the layer runs once on every integer
    from the least to the largest current and each neuron reads its train
    from that table.
    """
    held = current.unsqueeze(0).expand(steps, *current.shape)
    if current.numel() == 0 or torch.as_tensor(p.bias).numel() > 1:
        return run_cuba(held, p, dtype)
    low, high = (int(x) for x in torch.aminmax(current))
    if high - low + 1 > current.numel() // 2:
        return run_cuba(held, p, dtype)
    p = CubaParams(int(p.i_decay), int(p.v_decay), int(p.threshold), int(p.bias))
    table = _held_trains(low, high, steps, p, dtype, current.dtype, current.device)
    trains = table.index_select(1, (current.reshape(-1) - low).to(torch.int64))
    return trains.view(steps, *current.shape)


@functools.lru_cache(maxsize=64)
def _held_trains(low: int, high: int, steps: int, p: CubaParams, dtype: torch.dtype,
                 current_dtype: torch.dtype, device: torch.device) -> torch.Tensor:
    """Spike trains ``(T, high - low + 1)`` of the currents ``low..high`` held (read-only)."""
    levels = torch.arange(low, high + 1, dtype=current_dtype, device=device)
    return run_cuba(levels.unsqueeze(0).expand(steps, -1), p, dtype)


def count_spikes(spikes: torch.Tensor) -> torch.Tensor:
    """Spike counts ``spikes.sum(0)`` over the leading time axis, summed in memory order.

    Same values and shape as ``spikes.sum(0)``; for the channels-last spikes of
    the fast path it is several times faster (the reduction reads memory in
    order and the counts keep the spikes' layout).
    """
    order = sorted(range(1, spikes.dim()), key=lambda d: -spikes.stride(d))
    counts = spikes.permute(0, *order).sum(0)
    return counts.permute(*(order.index(d) for d in range(1, spikes.dim())))
