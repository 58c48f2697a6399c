"""STCB: spatio-temporal conversion block (synapse + integrate-and-fire layer).

An STCB replaces a ``conv -> ReLU`` or ``linear -> ReLU`` pair. Over a window
of T steps it applies the synapse ``f`` (no activation) to every input step
and feeds the integer current into a CUBA layer (:mod:`.neuron`)::

    a[t]   = f_int(s_in[t])                    (integer dendritic sum)
    s_out  = run_cuba(a, (iDecay, vDecay, vth, b_int))
    c      = sum_t s_out[t]                    spike counts in {0..T}

Backward (the spike-train level equivalent gradient, see docs/method.md):
because ``f`` is linear, ``sum_t f(s_in[t]) = f(c_in)``, and the block is
treated as ``c ~= clamp(A / theta, 0, T)`` with ``A = f(c_in) + T * b``.
The forward value is the true count; the gradient is that of the clamp,
through the input counts, never through time.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from .fixed_point import CONV_ACCUM_BITS, DECAY_UNITY
from .neuron import CubaParams, count_spikes, run_cuba
from .quantize import QuantizedBlock, quantize_block
from .synapse import dendritic_sums, one_channel_last_strides, sum_bounds, sums_unwrapped


@dataclass(frozen=True)
class NeuronConfig:
    """CUBA neuron constants of a block, in 1/4096 per step.

    ``i_decay = 4096`` makes the current equal to this step's input (no
    synaptic memory); ``v_decay = 0`` is a non-leaky integrate-and-fire
    neuron, ``v_decay > 0`` a leaky one.
    """

    i_decay: int = DECAY_UNITY
    v_decay: int = 0


def leaky_rate(drive: torch.Tensor, threshold: float | torch.Tensor,
               v_decay: int) -> torch.Tensor:
    """Steady-state spikes per step of a CUBA neuron under a constant drive (no rounding).

    ``drive`` is the current per step and ``threshold`` the threshold, in the
    same units; ``v_decay`` in 1/4096 per step. With ``d = v_decay / 4096``,
    the voltage from rest is ``v_k = drive * (1 - (1-d)**k) / d``; it first
    exceeds ``theta`` after ``k* = ln(drive / (drive - theta d)) / ln(1 / (1-d))``
    steps, and reset to zero repeats the cycle, so the rate is ``1 / k*``
    (0 when ``drive <= theta d``: the leak wins), clamped to [0, 1]. For
    ``v_decay = 0`` it is ``clamp(drive / theta, 0, 1)``. See docs/method.md.
    """
    if v_decay == 0:
        return (drive / threshold).clamp(0.0, 1.0)
    d = v_decay / DECAY_UNITY
    leak = threshold * d
    log_keep = math.inf if d >= 1.0 else -math.log1p(-d)
    above = drive > leak
    safe = torch.where(above, drive, leak * 2.0 + 1.0)
    steps_to_fire = torch.log(safe / (safe - leak)) / log_keep
    return torch.where(above, 1.0 / steps_to_fire, torch.zeros_like(safe)).clamp(0.0, 1.0)


def wrap_conv_accum(x: torch.Tensor) -> torch.Tensor:
    """Lava's Conv ``signed_clamp(x, 24)``: a modular wrap to signed 24 bits."""
    half = 1 << (CONV_ACCUM_BITS - 1)
    return torch.remainder(x + half, 1 << CONV_ACCUM_BITS) - half


class STCB(nn.Module):
    """A conv or dense synapse followed by a CUBA integrate-and-fire layer.

    Args:
        synapse: ``nn.Conv2d`` or ``nn.Linear`` (its bias, if any, becomes the
            neurons' bias).
        neuron: decay constants of the CUBA layer (IF: ``v_decay = 0``; leaky:
            ``v_decay > 0``; ``i_decay < 4096`` keeps synaptic current).
        threshold: initial float threshold (float units of the weights).
        train_threshold: learn the threshold (True) or keep it frozen.
        batch_norm: batch norm after the synapse in training, folded into the
            synapse's weight and a per-neuron bias before quantization (see
            :meth:`folded`), so that export writes a plain conv/dense + bias.
        clamp_slope: slope of the equivalent gradient outside ``[0, T]``
            (0: the plain clamp; ``s > 0``: silent and saturated neurons pass
            ``s`` times the in-range gradient, so a silent output class can
            learn to fire; docs/method.md, "Clamp slope").
    """

    def __init__(self, synapse: nn.Conv2d | nn.Linear, neuron: NeuronConfig,
                 threshold: float = 1.0, train_threshold: bool = True,
                 batch_norm: bool = False, clamp_slope: float = 0.0) -> None:
        super().__init__()
        if not isinstance(synapse, nn.Conv2d | nn.Linear):
            raise TypeError(f"STCB synapse must be Conv2d or Linear, got {type(synapse).__name__}")
        self.synapse = synapse
        self.neuron = neuron
        self.threshold = nn.Parameter(torch.tensor(float(threshold)),
                                      requires_grad=train_threshold)
        channels = synapse.out_channels if isinstance(synapse, nn.Conv2d) else synapse.out_features
        self.norm = nn.BatchNorm1d(channels) if batch_norm else None
        self.clamp_slope = float(clamp_slope)

    @property
    def is_conv(self) -> bool:
        return isinstance(self.synapse, nn.Conv2d)

    def folded(self, rates_in: torch.Tensor | None = None
               ) -> tuple[torch.Tensor, torch.Tensor | None]:
        """Float ``(weight, bias)`` of the synapse with batch norm folded in.

        Without batch norm: the synapse's own parameters. With it, the
        normalised current ``gamma * (f(x) + b - mu) / sigma + beta`` is the
        synapse with ``w' = w * gamma / sigma`` and
        ``b' = (b - mu) * gamma / sigma + beta`` (per output channel). ``mu``
        and ``sigma**2`` are the batch mean and variance of the mean current
        per step ``f(rates_in) + b`` (over batch and positions) when
        ``rates_in`` (input spikes per step, ``counts_in / T``, shape
        ``(B, *in_shape)``) is given in train mode, and the running statistics
        otherwise (also for a batch with one value per channel, such as a dense
        block's batch of 1); batch statistics also update the running ones.
        """
        weight, bias = self.synapse.weight, self.synapse.bias
        if self.norm is None:
            return weight, bias
        norm = self.norm
        current = None
        if self.training and rates_in is not None:
            current = self._apply_synapse(rates_in, weight, bias)  # (B, C[, H, W])
            if current.numel() == current.shape[1]:  # one value per channel: no statistics
                current = None
        if current is not None:
            dims = [0, *range(2, current.dim())]
            mean = current.mean(dims)
            var = current.var(dims, unbiased=False)
            with torch.no_grad():
                n = current.numel() // current.shape[1]
                norm.num_batches_tracked.add_(1)
                norm.running_mean.lerp_(mean.detach(), norm.momentum)
                norm.running_var.lerp_(var.detach() * n / max(n - 1, 1), norm.momentum)
        else:
            mean, var = norm.running_mean, norm.running_var
        gain = norm.weight / torch.sqrt(var + norm.eps)  # (C,)
        shape = (-1,) + (1,) * (weight.dim() - 1)
        base = mean if bias is None else mean - bias
        return weight * gain.view(shape), norm.bias - base * gain

    def quantized(self, rates_in: torch.Tensor | None = None) -> QuantizedBlock:
        """This block's parameters on the Loihi grid (what export writes).

        ``rates_in`` is only read by a batch-norm block in train mode (batch
        statistics, see :meth:`folded`); export calls this without it.
        """
        weight, bias = self.folded(rates_in)
        return quantize_block(weight, bias, self.threshold)

    def _apply_synapse(self, x: torch.Tensor, weight: torch.Tensor,
                       bias: torch.Tensor | None = None) -> torch.Tensor:
        if self.is_conv:
            c = self.synapse
            return F.conv2d(x, weight, bias, c.stride, c.padding, c.dilation, c.groups)
        return F.linear(x, weight, bias)

    def _bias_shape(self) -> tuple[int, ...]:
        return (-1, 1, 1) if self.is_conv else (-1,)

    def forward(self, spikes_in: torch.Tensor,
                counts_in: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Run the block.

        Args:
            spikes_in: binary spikes, float, shape ``(T, B, *in_shape)``.
            counts_in: input spike counts ``spikes_in.sum(0)`` carrying the
                gradient, shape ``(B, *in_shape)``.
        Returns:
            ``(spikes_out, counts_out)``: spikes ``(T, B, *out_shape)`` (float
            0/1, no gradient) and counts ``(B, *out_shape)`` whose value is the
            true spike count and whose gradient is the equivalent gradient.
        """
        steps, batch = spikes_in.shape[:2]
        q = self.quantized(counts_in / steps if self.norm is not None else None)
        with torch.no_grad():
            flat = spikes_in.flatten(0, 1)  # (T*B, *in_shape)
            accum = dendritic_sums(flat, q.weight, self.synapse, on_grid=True)  # exact
            accum = accum.unflatten(0, (steps, batch))  # (T, B, *out_shape)
            bias = 0 if q.bias is None else q.bias.to(torch.int64).view(self._bias_shape())
            params = CubaParams(self.neuron.i_decay, self.neuron.v_decay, int(q.threshold), bias)
            bounds = sum_bounds(q.weight)
            spikes_out = run_cuba(accum, params, dtype=spikes_in.dtype, bounds=bounds)
            counts = count_spikes(spikes_out)  # (B, *out_shape)
        if not torch.is_grad_enabled() or not any(
                t is not None and t.requires_grad
                for t in (counts_in, q.weight_ste, q.bias_ste, q.threshold_ste)):
            return spikes_out, counts
        if not sums_unwrapped(self.synapse):  # Lava's 24-bit wrap may have acted on accum
            return spikes_out, self._equivalent_counts(counts_in, q, counts, steps)
        with torch.no_grad():
            # A * scale = f_int(c_in) + T * b_int: the per-step integer sums summed over
            # T, so that the ANN-sized f(c_in) need not run again
            drive = self._drive(accum, q.bias, bounds)
            limit = steps * int(q.threshold)
            dtype = q.weight_ste.dtype
            ratio = drive.to(dtype) / q.threshold  # A / theta
            if self.clamp_slope:
                inside = (drive >= 0) & (drive <= limit)  # exact clamp test
                gain = torch.where(inside, 1.0, self.clamp_slope).to(dtype)
            else:  # the same test, 1.0 or 0.0 written as floats (several times faster than bool)
                gain = torch.ge(drive, 0, out=torch.empty_like(drive, dtype=dtype))
                gain.mul_(torch.le(drive, limit, out=torch.empty_like(gain)))
        out = _EquivalentGradient.apply(counts, counts_in, q.weight_ste, q.bias_ste,
                                        q.threshold_ste, gain, ratio, self, steps)
        return spikes_out, out

    def _drive(self, accum: torch.Tensor, bias: torch.Tensor | None,
               bounds: tuple[int, int]) -> torch.Tensor:
        """``sum_t accum[t] + T * bias`` (file units), exact, shape ``(B, *out_shape)``.

        ``accum``: the unwrapped integer sums ``(T, B, *out_shape)`` (int32, or
        float holding integers), each within ``bounds``. Summed step by step (a
        reduction over the leading axis is several times slower here) in int32
        or float32 where the total provably fits (below ``2**31`` / ``2**24``),
        else in int64 / float64.
        """
        steps = accum.shape[0]
        peak = steps * (max(-bounds[0], bounds[1])
                        + (0 if bias is None else int(bias.abs().max())))
        if accum.is_floating_point():
            dtype = torch.float32 if accum.dtype == torch.float32 and peak < 1 << 24 \
                else torch.float64
        else:
            dtype = torch.int32 if accum.dtype == torch.int32 and peak < 1 << 31 \
                else torch.int64
        drive = accum[0].to(dtype, copy=True)
        for a_t in accum[1:]:
            drive += a_t
        if bias is not None:
            drive += (steps * bias).to(dtype).view(self._bias_shape())
        return drive

    def _equivalent_counts(self, counts_in: torch.Tensor, q: QuantizedBlock,
                           counts: torch.Tensor, steps: int) -> torch.Tensor:
        """The definition: value ``counts``, gradient of ``clamp(f(c_in) + T b) / theta``.

        The float aggregate ``f(c_in)`` through ``weight_ste`` and autograd; the
        forward uses it where Lava's 24-bit wrap may have acted on the per-step
        sums, and the tests check :class:`_EquivalentGradient` against it.
        """
        aggregate = self._apply_synapse(counts_in, q.weight_ste)
        if q.bias_ste is not None:
            aggregate = aggregate + steps * q.bias_ste.view(self._bias_shape())
        ratio = aggregate / q.threshold_ste
        surrogate = torch.clamp(ratio, 0.0, float(steps))
        if self.clamp_slope:  # leaky clamp: gradient clamp_slope / theta outside [0, T]
            surrogate = surrogate + self.clamp_slope * (ratio - surrogate)
        return surrogate + (counts - surrogate).detach()


class _EquivalentGradient(torch.autograd.Function):
    """Output counts with the equivalent gradient, from precomputed ``A / theta``.

    Forward returns ``counts`` (the true spike counts). Backward is that of
    ``clamp(A / theta, 0, T)`` (slope ``clamp_slope`` outside) with
    ``A = f(c_in; W) + T * b`` (:meth:`STCB._equivalent_counts`): for the
    upstream gradient ``g``, ``gain`` (1 inside the clamp, ``clamp_slope``
    outside) and ``ratio = A / theta`` saved from the forward,
    ``dA = g * gain / theta``, ``dtheta = -sum(g * gain * ratio) / theta``,
    ``dW, dc_in`` from ``f``'s own backward (conv or linear) and
    ``db = T * sum(dA)`` over batch and positions.
    """

    @staticmethod
    def forward(ctx, counts, counts_in, weight, bias, threshold, gain, ratio, block, steps):
        ctx.save_for_backward(counts_in, weight, threshold, gain, ratio)
        ctx.block, ctx.steps = block, steps
        return counts

    @staticmethod
    def backward(ctx, grad):
        counts_in, weight, threshold, gain, ratio = ctx.saved_tensors
        block: STCB = ctx.block
        _, need_in, need_w, need_b, need_th = ctx.needs_input_grad[:5]
        scaled = grad * gain  # d loss / d ratio
        grad_a = scaled / threshold  # d loss / d A
        grad_in = grad_w = grad_b = grad_th = None
        if need_th:
            grad_th = -(scaled * ratio).sum() / threshold
        if need_b:
            dims = [0, *range(2, grad_a.dim())]
            grad_b = grad_a.sum(dims) * ctx.steps
        if block.is_conv and (need_in or need_w):
            c = block.synapse
            if counts_in.shape[1] == 1 and counts_in.is_contiguous():
                # one channel: seen channels-last like grad_a (mkldnn's fast layout)
                counts_in = counts_in.as_strided(counts_in.shape,
                                                 one_channel_last_strides(counts_in.shape))
            grad_in, grad_w, _ = torch.ops.aten.convolution_backward(
                grad_a, counts_in, weight, None, c.stride, c.padding, c.dilation, False,
                [0, 0], c.groups, [need_in, need_w, False])
        else:
            if need_in:
                grad_in = grad_a @ weight
            if need_w:
                grad_w = grad_a.t() @ counts_in
        return None, grad_in, grad_w, grad_b, grad_th, None, None, None, None
