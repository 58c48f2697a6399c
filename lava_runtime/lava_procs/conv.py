"""Lava's fixed-point Conv process model, with the convolution as one integer product per step.

Lava 0.10's ``PyConvModelFixed`` (lava/proc/conv/models.py:70-82, run_spk at
lines 34-50) computes its output with ``lava.proc.conv.utils.conv``, which
(torch being disabled inside Lava processes, utils.py:10-14) is
``conv_scipy`` (utils.py:221-296): one ``scipy.signal.convolve2d`` per
(output channel, input channel) pair, 4,096 calls per step for a 64 -> 64
conv, about a second per step for the 28x28 zoo network. This model keeps
everything of Lava's (ports, types, the one-step synaptic delay of
``a_buf``, the 24-bit ``signed_clamp``) and replaces only that loop by
:func:`conv_exact`: the same sums, in float64 over integer operands (exact:
every partial sum is far below 2**53), cast to the weight dtype as
``utils.conv`` does (utils.py:217). ``tests/test_lava_procs.py`` checks it
against ``conv_scipy`` bit for bit.
"""

from __future__ import annotations

import numpy as np
from lava.magma.core.decorator import implements, requires, tag
from lava.magma.core.resources import CPU
from lava.magma.core.sync.protocols.loihi_protocol import LoihiProtocol
from lava.proc.conv.models import PyConvModelFixed
from lava.proc.conv.process import Conv
from numpy.lib.stride_tricks import sliding_window_view


def conv_exact(input_: np.ndarray, weight: np.ndarray, kernel_size: tuple[int, int],
               stride: tuple[int, int], padding: tuple[int, int], dilation: tuple[int, int],
               groups: int) -> np.ndarray:
    """``lava.proc.conv.utils.conv_scipy``'s result, computed as one product per group.

    Lava's XY layout: ``input_`` ``(X, Y, C)``, ``weight`` ``(K, kx, ky, C / groups)``,
    output ``(X', Y', K)`` in ``weight.dtype``. conv_scipy convolves (flipped kernel)
    each padded input channel with the dilated kernel, mode 'valid', then keeps every
    stride-th row and column (utils.py:266-296).
    """
    out_channels, kx, ky, c_grp = weight.shape
    sx, sy = (int(v) for v in stride)
    px, py = (int(v) for v in padding)
    dx, dy = (int(v) for v in dilation)
    span_x, span_y = dx * (kx - 1) + 1, dy * (ky - 1) + 1
    padded = np.pad(input_.astype(np.float64), ((px, px), (py, py), (0, 0)))
    windows = sliding_window_view(padded, (span_x, span_y), axis=(0, 1))  # (X', Y', C, sx, sy)
    windows = windows[::sx, ::sy, :, ::dx, ::dy]  # (Xo, Yo, C, kx, ky)
    flipped = weight[:, ::-1, ::-1, :].astype(np.float64)  # convolution, not correlation
    k_grp = out_channels // groups
    out = np.empty(windows.shape[:2] + (out_channels,))
    for g in range(groups):
        part = windows[:, :, g * c_grp:(g + 1) * c_grp]  # (Xo, Yo, c, kx, ky)
        kernel = flipped[g * k_grp:(g + 1) * k_grp]  # (k, kx, ky, c)
        out[..., g * k_grp:(g + 1) * k_grp] = np.tensordot(part, kernel,
                                                           axes=([2, 3, 4], [3, 1, 2]))
    return out.astype(weight.dtype)


@implements(proc=Conv, protocol=LoihiProtocol)
@requires(CPU)
@tag("fixed_pt")
class PyConvModelFixedExact(PyConvModelFixed):
    """``PyConvModelFixed`` with :func:`conv_exact` in place of ``utils.conv``; selected with
    ``Loihi2SimCfg(exception_proc_model_map={Conv: PyConvModelFixedExact})``."""

    def run_spk(self) -> None:
        # lava/proc/conv/models.py:34-50, with conv_exact for utils.conv
        if self.a_buf is None:
            self.a_buf = np.zeros_like(self.a_out.shape)
        self.a_out.send(self.a_buf)
        if self.num_message_bits.item() > 0:
            s_in = self.s_in.recv()
        else:
            s_in = self.s_in.recv().astype(bool)
        a_out = conv_exact(s_in, self.weight, self.kernel_size, self.stride, self.padding,
                           self.dilation, self.groups[0])
        self.a_buf = self.clamp_precision(a_out)
