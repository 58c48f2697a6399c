"""Exact integer dendritic sums of a block's synapse for a batch of binary spikes.

The STCB forward needs, for every input step, the integer sum Lava's synapse
forms: ``a = f_int(s)`` with file weights ``w`` (even integers in
[-256, 254], see ``quantize.py``) and binary spikes ``s``, Conv sums wrapped
to signed 24 bits (``signed_clamp``). :func:`dendritic_sums` computes it in
one of three ways that give the same integers:

- int8 (CPU, ``groups = 1``, where :func:`int_mm_is_faster` measured int8 products
  faster than float32 ones, or the fan-in is too wide for float32 to be exact):
  ``w / 2`` fits int8 exactly, spikes are 0/1, so
  ``a = 2 * (s_int8 @ (w / 2)_int8)`` with int32 accumulation
  (``torch._int_mm``, VNNI where the CPU has it) is exact for any fan-in below
  ``2**23``; conv goes through an im2col of the channels-last spikes. The
  result keeps that layout (a permuted view of ``(N, H, W, O)`` memory).
  ``|a| <= 256 * fan_in`` for binary spikes, so the 24-bit wrap is the
  identity below a fan-in of ``2**15`` and is skipped there;
- table (CPU conv, ``groups = 1``, fan-in up to 10, e.g. a first conv on one
  channel): every window of spikes is a pattern of ``fan_in`` bits, numbered
  by a one-output conv with place values ``2**j``; its sum is that row of the
  table ``bits @ w`` of all ``2**fan_in`` patterns' sums (a row gather);
- float (elsewhere: CPUs without fast int8 products below a fan-in of
  :data:`FLOAT32_EXACT_FAN_IN`, fan-ins below 32, or
  weights off the grid): conv/linear in float32, rounded (every product is an
  integer and every partial sum of binary spikes stays below ``256 * fan_in``,
  exact below ``2**24``), kept as float32 integers when the wrap cannot act,
  else wrapped in int64.

Conv sums come back in channels-last memory (``(N, H, W, O)`` seen as
``(N, O, H, W)``): the neuron loop keeps that layout, so that the spikes feed
the next conv's im2col without a transpose.
"""

from __future__ import annotations

import functools
import time
from collections.abc import Callable

import torch
import torch.nn.functional as F
from torch import nn

from .fixed_point import CONV_ACCUM_BITS, WEIGHT_STEP

INT8_MAX = 127
WRAP_FREE_FAN_IN = (1 << (CONV_ACCUM_BITS - 1)) // ((INT8_MAX + 1) * WEIGHT_STEP)
"""Below this fan-in, ``|a| <= 256 * fan_in < 2**23``: Lava's 24-bit wrap never acts."""
INT8_MIN_FAN_IN = 32
"""Smaller fan-ins (a first conv on one channel) are faster through the float conv."""
FLOAT32_EXACT_FAN_IN = (1 << 24) // ((INT8_MAX + 1) * WEIGHT_STEP)
"""Below this fan-in every float32 partial sum of binary spikes times grid weights is an
integer below ``256 * fan_in <= 2**24``, so exact; from it on only int8 products are."""
TABLE_MAX_FAN_IN = 10
"""Up to this fan-in a conv's sums are looked up per window pattern (``2**fan_in`` rows)."""


def wrap_accum(x: torch.Tensor) -> torch.Tensor:
    """Lava's Conv ``signed_clamp(x, 24)``: a modular wrap to signed 24 bits (int64)."""
    half = 1 << (CONV_ACCUM_BITS - 1)
    return ((x.to(torch.int64) + half) & ((1 << CONV_ACCUM_BITS) - 1)) - half


@functools.cache
def _int_mm_available() -> bool:
    """Whether this torch has a working CPU ``torch._int_mm`` (a private op since torch 2.2)."""
    try:
        a = torch.ones((17, 9), dtype=torch.int8)
        return bool((torch._int_mm(a, torch.ones((9, 8), dtype=torch.int8)) == 9).all())
    except (AttributeError, RuntimeError, NotImplementedError):
        return False


def _best_seconds(run: Callable[[], object], repeats: int = 3) -> float:
    best = float("inf")
    for _ in range(repeats):
        started = time.perf_counter()
        run()
        best = min(best, time.perf_counter() - started)
    return best


@functools.cache
def int_mm_is_faster() -> bool:
    """Whether this CPU multiplies int8 faster than float32, measured once per process.

    ``torch._int_mm`` is fast where the CPU has int8 dot products (AVX512-VNNI,
    AMX) and 15-50x slower than float32 where it has only AVX2 (measured on this
    project's 2-core CI machine: 1.7 s against 65 ms for a first conv's im2col
    product). Both paths give the same integers, so the choice changes speed
    only. One product of a typical im2col shape ``(2048, 288) @ (288, 64)``,
    best of three, in each dtype (a few ms).
    """
    if not _int_mm_available():
        return False
    gen = torch.Generator().manual_seed(0)
    cols = (torch.rand((2048, 288), generator=gen) < 0.2).to(torch.int8)
    kernel = torch.randint(-127, 128, (288, 64), generator=gen, dtype=torch.int8)
    cols_f, kernel_f = cols.float(), kernel.float()
    return _best_seconds(lambda: torch._int_mm(cols, kernel)) \
        < _best_seconds(lambda: cols_f @ kernel_f)


def _half_weight_int8(weight: torch.Tensor) -> torch.Tensor | None:
    """``weight / 2`` as int8 when that is exact (even integers in [-256, 254]), else None."""
    half = weight.detach() / WEIGHT_STEP
    half8 = half.to(torch.int8)
    return half8 if torch.equal(half8.to(half.dtype), half) else None


def _conv_int8(spikes: torch.Tensor, w8: torch.Tensor, conv: nn.Conv2d) -> torch.Tensor:
    """Dendritic sums of a conv, int32 ``(N, O, OH, OW)`` (channels-last memory)."""
    n, c, h, w = spikes.shape
    out_c, _, kh, kw = w8.shape
    (ph, pw), (sh, sw), (dh, dw) = conv.padding, conv.stride, conv.dilation
    padded = spikes.new_zeros((n, h + 2 * ph, w + 2 * pw, c), dtype=torch.int8)
    padded[:, ph:ph + h, pw:pw + w].copy_(spikes.permute(0, 2, 3, 1))  # (N, H', W', C)
    oh = (h + 2 * ph - dh * (kh - 1) - 1) // sh + 1
    ow = (w + 2 * pw - dw * (kw - 1) - 1) // sw + 1
    s_n, s_h, s_w, s_c = padded.stride()
    windows = padded.as_strided((n, oh, ow, kh, kw, c),
                                (s_n, s_h * sh, s_w * sw, s_h * dh, s_w * dw, s_c))
    cols = windows.reshape(n * oh * ow, kh * kw * c)  # (N*OH*OW, K) im2col
    kernel = w8.permute(0, 2, 3, 1).reshape(out_c, kh * kw * c).t()  # (K, O)
    sums = torch._int_mm(cols, kernel).mul_(WEIGHT_STEP)  # (N*OH*OW, O)
    return sums.view(n, oh, ow, out_c).permute(0, 3, 1, 2)  # (N, O, OH, OW)


def one_channel_last_strides(shape: torch.Size) -> tuple[int, int, int, int]:
    """Channels-last strides of a contiguous ``(N, C, H, W)`` tensor with ``C = 1``."""
    _, _, h, w = shape
    return (h * w, 1, w, 1)


def _int8_path(spikes: torch.Tensor, synapse: nn.Conv2d | nn.Linear) -> bool:
    if spikes.device.type != "cpu" or not _int_mm_available():
        return False
    fan_in = synapse.weight[0].numel()
    if fan_in < INT8_MIN_FAN_IN:
        return False
    if fan_in < FLOAT32_EXACT_FAN_IN and not int_mm_is_faster():
        return False  # float32 is exact here, and faster
    if isinstance(synapse, nn.Linear):
        return True
    return (synapse.groups == 1 and synapse.padding_mode == "zeros"
            and not isinstance(synapse.padding, str))


@functools.cache
def _window_patterns(fan_in: int, dtype: torch.dtype, device: torch.device
                     ) -> tuple[torch.Tensor, torch.Tensor]:
    """``(bits, powers)``: every 0/1 window pattern ``(2**fan_in, fan_in)`` (row ``i`` holds
    the bits of ``i``) and the place values ``2**j`` of its ``fan_in`` spikes."""
    place = torch.arange(fan_in, device=device)
    codes = torch.arange(1 << fan_in, device=device)
    bits = ((codes.unsqueeze(1) >> place) & 1).to(dtype)
    return bits, torch.ldexp(torch.ones(fan_in, dtype=dtype, device=device), place)


def _table_path(spikes: torch.Tensor, weight: torch.Tensor, synapse: nn.Conv2d | nn.Linear
                ) -> bool:
    return (isinstance(synapse, nn.Conv2d) and spikes.device.type == "cpu"
            and spikes.dtype == weight.dtype == torch.float32
            and weight[0].numel() <= TABLE_MAX_FAN_IN and synapse.groups == 1
            and synapse.padding_mode == "zeros" and not isinstance(synapse.padding, str))


def _conv_table(spikes: torch.Tensor, weight: torch.Tensor, conv: nn.Conv2d) -> torch.Tensor:
    """Dendritic sums of a conv of small fan-in, float32 ``(N, O, OH, OW)`` (channels-last memory).

    Each window of binary spikes is a pattern ``p`` of ``fan_in`` bits; its sum
    is row ``p`` of the table ``bits @ w`` (every pattern's sum, integers of at
    most ``fan_in * 256``, exact in float32). The pattern numbers come from one
    one-output conv with place values ``2**j`` (integers below ``2**fan_in``,
    exact), the sums from one row gather.
    """
    out_c = weight.shape[0]
    bits, powers = _window_patterns(weight[0].numel(), weight.dtype, weight.device)
    table = (bits @ weight.detach().reshape(out_c, -1).t()).round_()  # (2**fan_in, O)
    codes = F.conv2d(spikes, powers.view(1, *weight.shape[1:]), None, conv.stride,
                     conv.padding, conv.dilation)  # (N, 1, OH, OW)
    n, _, oh, ow = codes.shape
    sums = table.index_select(0, codes.view(-1).to(torch.int64))  # (N*OH*OW, O)
    return sums.view(n, oh, ow, out_c).permute(0, 3, 1, 2)


def dendritic_sums(spikes: torch.Tensor, weight: torch.Tensor,
                   synapse: nn.Conv2d | nn.Linear, on_grid: bool = False) -> torch.Tensor:
    """Lava's integer dendritic sums of ``synapse`` with file weights ``weight``.

    Args:
        spikes: binary (0/1) spikes, float, ``(N, *in_shape)``.
        weight: integer-valued float weights in file units, the synapse's shape.
        synapse: the ``nn.Conv2d`` (geometry) or ``nn.Linear`` they belong to.
        on_grid: the caller guarantees even integer weights in [-256, 254]
            (``quantize_block``'s): ``weight / 2`` is taken as int8 unchecked.
    Returns:
        integer sums ``(N, *out_shape)``, Conv sums wrapped to signed 24 bits as
        Lava does: int32 (int8 path), int64 (wrapped), or float32 holding the
        integers (float path, ``|a| <= 256 * fan_in < 2**23``).
    """
    is_conv = isinstance(synapse, nn.Conv2d)
    w8 = None
    if _int8_path(spikes, synapse):
        w8 = (weight.detach() / WEIGHT_STEP).to(torch.int8) if on_grid \
            else _half_weight_int8(weight)
    if w8 is not None:
        if is_conv:
            sums = _conv_int8(spikes, w8, synapse)
        else:
            sums = torch._int_mm(spikes.to(torch.int8), w8.t()).mul_(WEIGHT_STEP)
        fan_in = weight[0].numel()
        return sums if not is_conv or fan_in < WRAP_FREE_FAN_IN else wrap_accum(sums)
    if _table_path(spikes, weight, synapse):
        return _conv_table(spikes, weight, synapse)  # fan-in below WRAP_FREE_FAN_IN: no wrap
    if is_conv:
        c = synapse
        if spikes.shape[1] == 1 and spikes.is_contiguous() and weight.is_contiguous():
            # one channel: the same memory seen with channels-last strides, so that
            # the conv writes channels-last sums itself (no copy after it)
            spikes = spikes.as_strided(spikes.shape, one_channel_last_strides(spikes.shape))
            weight = weight.as_strided(weight.shape, one_channel_last_strides(weight.shape))
        sums = F.conv2d(spikes, weight, None, c.stride, c.padding, c.dilation, c.groups)
        sums = sums.contiguous(memory_format=torch.channels_last)  # as the int8 path
    else:
        sums = F.linear(spikes, weight)
    sums = sums.round_()
    if is_conv and weight[0].numel() >= WRAP_FREE_FAN_IN:
        return wrap_accum(sums)
    return sums if sums.dtype == torch.float32 else sums.to(torch.int64)


def sums_unwrapped(synapse: nn.Conv2d | nn.Linear) -> bool:
    """Whether :func:`dendritic_sums` of ``synapse`` are the plain sums (no 24-bit wrap).

    A dense synapse is never wrapped; a conv only from a fan-in of
    ``WRAP_FREE_FAN_IN`` on. Then the sums over T of the per-step sums are
    ``f_int`` of the spike counts (``f`` is linear).
    """
    return not isinstance(synapse, nn.Conv2d) or synapse.weight[0].numel() < WRAP_FREE_FAN_IN


def sum_bounds(weight: torch.Tensor) -> tuple[int, int]:
    """``(low, high)`` of any dendritic sum of binary spikes through ``weight``.

    Per output neuron the sum lies between the sum of its negative and the sum
    of its positive weights (the Conv wrap cannot act below
    ``WRAP_FREE_FAN_IN``, and a wrapped sum stays within 24 bits).
    """
    flat = weight.detach().flatten(1)  # (out, fan_in)
    low = int(flat.clamp(max=0).sum(1).min())
    high = int(flat.clamp(min=0).sum(1).max())
    if weight.dim() > 2 and flat.shape[1] >= WRAP_FREE_FAN_IN:
        half = 1 << (CONV_ACCUM_BITS - 1)
        return -half, half - 1
    return low, high
