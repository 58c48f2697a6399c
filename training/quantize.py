"""Quantization of an STCB's float parameters onto Loihi's fixed-point grid.

One function, :func:`quantize_block`, maps float weights ``w``, bias ``b``
and threshold ``theta`` of a block to the integers that the netx file holds
and that Lava runs. An IF layer is invariant to scaling W, b and theta
together, so each block gets its own scale::

    scale  = 254 / max|w|                         (file units per float unit)
    w_int  = 2 * round(w * scale / 2)             even integers in [-254, 254]
    b_int  = clamp(round(b * scale), -4096, 4095) bias mantissa
    vth    = clamp(round(theta * scale), 1, 2**17 - 1)

The training forward uses these integers (so the trained network IS the
deployed network) and, for the backward pass, their float images
``w_int / scale`` (straight-through: the gradient reaches ``w`` unchanged).
Export calls the same function on the trained parameters.
"""

from __future__ import annotations

from typing import NamedTuple

import torch

from .fixed_point import BIAS_MAX, BIAS_MIN, THRESHOLD_MAX, WEIGHT_MAX, WEIGHT_STEP


class QuantizedBlock(NamedTuple):
    """Integer parameters of one block plus their straight-through float images.

    ``weight``, ``bias`` (or None) and ``threshold`` are integer-valued float
    tensors in file units; ``scale`` is file units per float unit;
    ``weight_ste``, ``bias_ste`` and ``threshold_ste`` equal ``int / scale``
    in value and carry the gradient of the float parameters.
    ``bias_clamped`` and ``threshold_clamped`` count (0-dim int64 tensors) the
    values the clamps above moved onto Loihi's range (export reports them;
    weights cannot leave [-254, 254] by construction).
    """

    weight: torch.Tensor
    bias: torch.Tensor | None
    threshold: torch.Tensor
    scale: torch.Tensor
    weight_ste: torch.Tensor
    bias_ste: torch.Tensor | None
    threshold_ste: torch.Tensor
    bias_clamped: torch.Tensor | None = None
    threshold_clamped: torch.Tensor | None = None


def quantize_block(
    weight: torch.Tensor, bias: torch.Tensor | None, threshold: torch.Tensor,
    max_scale: float | None = None,
) -> QuantizedBlock:
    """Quantize one block's float parameters to the Loihi grid (see module doc).

    ``max_scale`` caps the scale (file units per float unit) below ``254 / max|w|``,
    for a caller that needs the threshold (or bias) to stay under a bound.
    """
    with torch.no_grad():
        low, high = torch.aminmax(weight)  # max|w| = max(-low, high), without |w|
        scale = WEIGHT_MAX / torch.maximum(-low, high).clamp_min(1e-12)
        if max_scale is not None:
            scale = scale.clamp_max(max_scale)
        # round(w * scale / 2) * 2, with scale / 2 exact (a power-of-two scaling commutes
        # with rounding), in one product and in place
        w_int = torch.round_(weight * (scale / WEIGHT_STEP)).mul_(WEIGHT_STEP)
        th_raw = torch.round(threshold * scale)
        th_int = th_raw.clamp(1, THRESHOLD_MAX)
        b_raw = None if bias is None else torch.round(bias * scale)
        b_int = None if b_raw is None else b_raw.clamp(BIAS_MIN, BIAS_MAX)
        # straight-through images x + (x_int / scale - x): value x_int / scale (up to
        # rounding), gradient of x; the differences formed here, outside the graph
        w_step = torch.div(w_int, scale).sub_(weight)
        th_step = th_int / scale - threshold
        b_step = None if bias is None else b_int / scale - bias
    return QuantizedBlock(
        weight=w_int,
        bias=b_int,
        threshold=th_int,
        scale=scale,
        weight_ste=weight + w_step,
        bias_ste=None if bias is None else bias + b_step,
        threshold_ste=threshold + th_step,
        bias_clamped=torch.zeros((), dtype=torch.int64) if b_raw is None
        else (b_raw != b_int).sum(),
        threshold_clamped=(th_raw != th_int).sum(),
    )
