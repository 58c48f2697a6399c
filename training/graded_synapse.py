"""What netx's Dense and Conv synapses deliver, for binary and for graded messages.

netx's ``Dense`` block (``lava/lib/dl/netx/blocks/process.py:141-162``)
builds Lava's ``Dense`` from the file's weights after
``optimize_weight_bits`` (``lava/lib/dl/netx/utils.py:80-158``), and Lava's
``PyDenseModelBitAcc`` (``lava/proc/dense/models.py:77-107``) clips and
truncates them again before use. :func:`netx_dense_weights` follows both and
returns the integers the model multiplies, ``W'``, and the shift ``k``
(``= -weight_exp``). Then, for the messages ``s`` of one step
(``num_message_bits > 0``: graded, ``= 0``: binary)::

    graded:  a = wrap32(W' . s) >> k        # numpy int32 dot: wraps at 32 bits
    binary:  a = wrap32((W' . s) >> k)      # int64 column sum, sent as int32

(``>>`` arithmetic, toward minus infinity; netx's ``k`` is never negative for
the weights it accepts without clipping). For file
weights in [-256, 254] ``W' = W << k`` exactly and ``a = W . s`` whenever the
product fits int32; the exception is a matrix whose largest weight is 0 and
that holds -256: Lava's ``determine_sign_mode`` then calls it inhibitory
(netx called it mixed) and clips -256 to -255 (``weightutils.py:36-41,
280-293``), which truncation may round further.

netx's ``Conv`` (``lava/proc/conv/models.py:34-51``, ``PyConvModelFixed``)
uses the file's weights as they are (no exponent, no clip) and sums with
scipy's ``convolve2d`` in float64 (``lava/proc/conv/utils.py:18``:
``TORCH_IS_AVAILABLE = False``), exact below ``2**53``; the float sum is cast
to int32 (``utils.py:218``) and wrapped to signed 24 bits
(``signed_clamp``)::

    a = wrap24(conv(s, W))      # for |conv(s, W)| < 2**31

Outside int32 the cast is undefined in C (x86 gives ``-2**31``), so
:func:`conv_sums` refuses such sums. The synapse delivers ``a`` one step
later (``a_buff``/``a_buf``), as for binary spikes.

Input layer: netx's ``create_input`` reads a ``weight`` and ``bias`` into
``transform = {'weight', 'bias'}`` (``hdf5.py:279-289``), and the ``Input``
block stores it (``blocks/process.py:99``) and never applies it; the
block's neuron receives its ``a_in`` unchanged.
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np
import torch
import torch.nn.functional as F

from .fixed_point import (
    CONV_ACCUM_BITS,
    INT32_BITS,
    SIGNED_WEIGHT_MAX,
    SYNAPSE_WEIGHT_BITS,
    UNSIGNED_WEIGHT_MAX,
    WEIGHT_RANGE,
)
from .neuron import wrap_int32
from .synapse import wrap_accum

FLOAT64_EXACT = 1 << 53
"""Integers and integer sums below ``2**53`` in magnitude are exact in float64."""
FLOAT32_EXACT = 1 << 24
"""... and below ``2**24`` in float32."""
SPLIT_BITS = 16
"""Messages too large for one exact float64 product are summed in two 16-bit halves."""


class DenseWeights(NamedTuple):
    """The weights Lava's fixed-point ``Dense`` multiplies, and its output shift.

    ``weight``: ``W'``, ``(N_out, N_in)`` integers held in a float64 tensor
    (on the device the sums run on); ``shift``: ``k = -weight_exp >= 0``
    (sums are shifted right by ``k``); ``l1``: the largest row sum of
    ``|W'|``, which bounds every partial sum.
    """

    weight: torch.Tensor
    shift: int
    l1: int

    @staticmethod
    def of(weight: np.ndarray, shift: int,
           device: torch.device | str | None = None) -> DenseWeights:
        """``W'`` given as integers (as Lava's model holds them) and its shift."""
        w = np.asarray(weight, dtype=np.int64)
        l1 = int(np.abs(w).sum(axis=1).max()) if w.size else 0
        return DenseWeights(torch.as_tensor(w, dtype=torch.float64, device=device), shift, l1)


def _netx_optimize(weight: np.ndarray) -> tuple[np.ndarray, int, int]:
    """netx's ``optimize_weight_bits`` (utils.py:101-158): ``(W', num_weight_bits, k)``.

    Refuses what netx would clip with a printed warning (a mixed-sign matrix
    beyond [-256, 254]) and what it cannot represent (an all-zero or
    excitatory matrix above 255, whose exponent would be ``inf`` or negative).
    """
    w = np.asarray(weight, dtype=np.int64)
    high, low = int(w.max()), int(w.min())
    if low < 0 < high and not (-WEIGHT_RANGE <= low and high <= WEIGHT_RANGE - 2):
        raise ValueError(f"weights in [{low}, {high}]: netx clips a mixed-sign matrix "
                         f"to [-256, 254]")
    if high < 0:  # inhibitory
        scale, signed = -WEIGHT_RANGE / low, 0
    elif low >= 0:  # excitatory
        if high == 0 or high > UNSIGNED_WEIGHT_MAX:
            raise ValueError(f"weights in [{low}, {high}]: netx cannot scale this matrix")
        scale, signed = UNSIGNED_WEIGHT_MAX / high, 0
    else:  # mixed
        scale = min(SIGNED_WEIGHT_MAX / high if high else np.inf,
                    -(SIGNED_WEIGHT_MAX + 1) / low)
        signed = 1
    shift = int(np.floor(np.log2(scale))) + signed
    if shift < 0:
        raise ValueError(f"weights in [{low}, {high}]: netx would shift them by {shift}")
    zeros = SYNAPSE_WEIGHT_BITS  # trailing zero bits shared by all weights, at most 8
    while zeros > 0 and np.any(w % (1 << zeros)):
        zeros -= 1
    num_weight_bits = SYNAPSE_WEIGHT_BITS - shift - (zeros - signed)
    return w << shift, num_weight_bits, shift


def netx_dense_weights(weight: np.ndarray,
                       device: torch.device | str | None = None) -> DenseWeights:
    """The integers netx's Dense block multiplies, from the file's integer weights.

    ``weight``: ``(N_out, N_in)``, the file's ``weight`` as netx reads it
    (``astype(int)``, utils.py:68). Follows ``optimize_weight_bits`` and the
    model's ``clip_weights(num_bits=8)`` and ``truncate_weights``
    (``weightutils.py:204-295``) with the sign mode ``determine_sign_mode``
    finds in the scaled matrix (netx's own sign mode is not passed on).
    """
    w, num_weight_bits, shift = _netx_optimize(weight)
    return _lava_dense(w, num_weight_bits, shift, device)


def netx_recurrent_weights(weight: np.ndarray, weight_rec: np.ndarray,
                           device: torch.device | str | None = None
                           ) -> tuple[DenseWeights, DenseWeights]:
    """:func:`netx_dense_weights` of a ``dense_rec`` layer's two matrices.

    netx optimizes ``hstack((weight, weight_rec))`` as one matrix and splits it
    (``hdf5.py:400-408``); ``RecurrentDense`` builds one Lava ``Dense`` of each
    part with the shared bit count (``blocks/process.py:245-262``), and each
    model clips and truncates its own part.
    """
    joined, num_weight_bits, shift = _netx_optimize(np.hstack((weight, weight_rec)))
    inputs = np.asarray(weight).shape[1]
    return (_lava_dense(joined[:, :inputs], num_weight_bits, shift, device),
            _lava_dense(joined[:, inputs:], num_weight_bits, shift, device))


def _lava_dense(w: np.ndarray, num_weight_bits: int, shift: int,
                device: torch.device | str | None) -> DenseWeights:
    """What Lava's ``PyDenseModelBitAcc`` makes of netx's scaled weights (clip, truncate)."""
    if w.min() >= 0:
        mixed, inhibitory = 0, 0
    elif w.max() <= 0:
        mixed, inhibitory = 0, 1
    else:
        mixed, inhibitory = 1, 0
    if inhibitory:
        w = -w
    w = np.clip(w, -WEIGHT_RANGE * mixed, UNSIGNED_WEIGHT_MAX)
    drop = SYNAPSE_WEIGHT_BITS - num_weight_bits + mixed
    if drop < 0:
        raise ValueError(f"netx gives {num_weight_bits} weight bits; Lava cannot truncate")
    w = (w >> drop) << drop
    return DenseWeights.of(-w if inhibitory else w, shift, device)


def _exact_product(x: torch.Tensor, apply, l1: int, peak: int | None = None) -> torch.Tensor:
    """``apply(x)`` (a linear map with integer weights of row sums ``<= l1``), exact in int64.

    Runs in float32 where ``max|x| * l1 < 2**24`` and in float64 where
    ``max|x| * l1 < 2**53`` (every partial sum exact, so the result holds
    integers and converts without rounding), else on the two 16-bit halves of
    ``x`` (``x = hi * 2**16 + lo``). ``apply`` casts its weights to the input's
    dtype. ``peak``: ``max|x|`` when the caller has it.
    """
    if peak is None:
        peak = int(x.abs().max()) if x.numel() else 0
    if peak * l1 >= FLOAT64_EXACT and (1 << SPLIT_BITS) * l1 >= FLOAT64_EXACT:
        raise ValueError(f"weight row sums up to {l1}: too large for exact float64 sums")
    if peak * l1 < FLOAT32_EXACT:  # every partial sum exact in float32 too: faster
        return apply(x.to(torch.float32)).to(torch.int64)
    if peak * l1 < FLOAT64_EXACT:
        return apply(x.to(torch.float64)).to(torch.int64)
    x = x.to(torch.int64)
    low = x & ((1 << SPLIT_BITS) - 1)
    high = x >> SPLIT_BITS
    return (_exact_product(high, apply, l1) << SPLIT_BITS) + _exact_product(low, apply, l1)


def dense_sums(messages: torch.Tensor, w: DenseWeights, graded: bool) -> torch.Tensor:
    """What netx's Dense delivers for one step's messages: int64 ``(B, N_out)``.

    ``messages``: ``(B, N_in)`` integers (0/1 when not ``graded``: the model
    reads a binary input as ``astype(bool)``, models.py:101). ``graded`` is
    the input's ``num_message_bits > 0``: netx passes the previous block's
    ``output_message_bits`` (``messageBits``; default 16 for SDNN, 0 for
    CUBA and RF, ``hdf5.py:141-203``).
    """
    weight = w.weight.to(messages.device)  # no copy when already there
    total = _exact_product(messages.to(torch.int64), lambda x: x @ weight.to(x.dtype).T, w.l1)
    if graded:
        total = wrap_int32(total)
    return wrap_int32(total >> w.shift)


class ConvWeights(NamedTuple):
    """A conv's file weights as the exact products take them, made once per layer:
    float32 and float64 copies and ``l1``, the largest sum of ``|w|`` over one output."""

    float32: torch.Tensor
    float64: torch.Tensor
    l1: int

    @staticmethod
    def of(weight: torch.Tensor | np.ndarray, device: torch.device | str | None = None
           ) -> ConvWeights:
        w = torch.as_tensor(weight, device=device)
        l1 = int(w.abs().flatten(1).sum(1).max()) if w.numel() else 0
        return ConvWeights(w.to(torch.float32), w.to(torch.float64), l1)


def conv_sums(messages: torch.Tensor, weight: torch.Tensor | ConvWeights,
              stride: tuple[int, int], padding: tuple[int, int], dilation: tuple[int, int],
              groups: int) -> torch.Tensor:
    """What netx's Conv delivers for one step's messages: ``wrap24(conv)``, int64.

    ``messages``: ``(B, C, H, W)`` integers; for a binary input
    (``num_message_bits = 0``) pass ``messages != 0``, as the model's
    ``astype(bool)`` does (models.py:42-43); ``weight``: the
    file's ``(O, C / groups, kH, kW)`` integers (PyTorch's layout, which the
    file holds), or their :class:`ConvWeights`. Raises ``ValueError`` where a
    sum leaves int32, where Lava's float-to-int32 cast is undefined.
    """
    w = weight if isinstance(weight, ConvWeights) else ConvWeights.of(weight, messages.device)
    peak = int(messages.abs().max()) if messages.numel() else 0
    total = _exact_product(messages, lambda x: F.conv2d(
        x, w.float32 if x.dtype == torch.float32 else w.float64, None, stride, padding,
        dilation, groups), w.l1, peak)
    bound = peak * w.l1  # |every sum| <= bound
    limit = 1 << (INT32_BITS - 1)
    if bound >= limit and total.numel() and not (-limit <= int(total.min())
                                                 and int(total.max()) < limit):
        raise ValueError("a conv sum leaves int32: Lava's float-to-int32 cast is undefined")
    if bound < 1 << (CONV_ACCUM_BITS - 1):
        return total  # the 24-bit wrap cannot act
    return wrap_accum(total)  # signed_clamp(x, CONV_ACCUM_BITS)
