"""Sigma-delta layers for the emulator: Lava's fixed-point Delta, SigmaDelta and Sigma.

netx builds an ``SDNN`` input layer as ``Delta``, a layer with ``sigma_output``
as ``Sigma`` and every other ``SDNN`` layer as ``SigmaDelta`` with ReLU, each
with ``state_exp = 6`` and the network's ``spike_exp`` (``lava/lib/dl/netx/hdf5.py``
lines 164-189). The processes scale ``vth`` and ``bias`` by
``2**(spike_exp + state_exp)`` (``lava/proc/sdn/process.py``, ``Delta`` and
``SigmaDelta.__init__``); the fixed-point models (``lava/proc/sdn/models.py``,
``PyDeltaModelFixed``, ``PySigmaDeltaModelFixed``, ``PySigmaModelFixed``) hold
every state in int32 numpy arrays, so sums wrap at 32 bits. One step, with
``e = spike_exp + state_exp``::

    Delta:       x = a_in << e
    SigmaDelta:  sigma = sigma + a_in;   x = max(sigma + (bias << e), 0)
    both:        delta = x - act + residue
                 s = delta where |delta| >= (vth << e) else 0
                 residue = delta - s;   act = x;   out = s >> state_exp  (floor)
    Sigma:       sigma = sigma + a_in;   out = sigma

The synapses after a sigma-delta layer read its messages as graded values
(``num_message_bits > 0``): Dense sends ``weights.dot(s_in)`` as int32
(``lava/proc/dense/models.py``, ``AbstractPyDenseModelBitAcc.run_spk``).
"""

from __future__ import annotations

from typing import NamedTuple

import torch

from slssnn.export.network import SigmaDeltaNeuron
from slssnn.training.neuron import wrap_int32

STATE_EXP = 6
"""netx builds every sigma-delta neuron with ``state_exp = 6`` (hdf5.py lines 176, 186)."""
DEFAULT_SPIKE_EXP = 6
"""netx's default ``spike_exp`` (``Network(spike_exp=6)``)."""


class SigmaDeltaParams(NamedTuple):
    """Integer parameters of one sigma-delta layer, scaled as Lava's process scales them."""

    role: str
    vth: int
    bias: torch.Tensor | int
    shift: int


class SigmaDeltaState(NamedTuple):
    """``sigma``, ``act`` and ``residue`` (int64 tensors holding int32 values)."""

    sigma: torch.Tensor
    act: torch.Tensor
    residue: torch.Tensor


def params(neuron: SigmaDeltaNeuron, bias: torch.Tensor | int,
           spike_exp: int = DEFAULT_SPIKE_EXP) -> SigmaDeltaParams:
    """The layer's parameters for ``step``; ``bias`` is the file's bias mantissa."""
    shift = spike_exp + STATE_EXP
    return SigmaDeltaParams(neuron.role, neuron.threshold << shift,
                            wrap_int32(torch.as_tensor(bias, dtype=torch.int64) << shift), shift)


def zeros(neuron: SigmaDeltaNeuron, shape: tuple[int, ...],
          device: torch.device | str | None = None) -> SigmaDeltaState:
    """The state Lava starts from: every variable 0."""
    zero = torch.zeros(shape, dtype=torch.int64, device=device)
    return SigmaDeltaState(zero, zero.clone(), zero.clone())


def step(neuron: SigmaDeltaNeuron, state: SigmaDeltaState, a_in: torch.Tensor,
         p: SigmaDeltaParams) -> tuple[torch.Tensor, SigmaDeltaState]:
    """Advance a sigma-delta layer by one step; return ``(messages, new_state)`` (int64)."""
    sigma = state.sigma
    if p.role == "delta":
        x = wrap_int32(a_in << p.shift)
    else:
        sigma = wrap_int32(sigma + a_in)
        if p.role == "sigma":
            return sigma, SigmaDeltaState(sigma, state.act, state.residue)
        x = wrap_int32(sigma + p.bias).clamp_min(0)
    delta = wrap_int32(x - state.act + state.residue)
    s = torch.where(delta.abs() >= p.vth, delta, torch.zeros_like(delta))
    residue = delta - s
    return s >> STATE_EXP, SigmaDeltaState(sigma, x, residue)


def dense_accum(sums: torch.Tensor) -> torch.Tensor:
    """A Dense synapse's sums as its int32 ``a_out`` port sends them."""
    return wrap_int32(sums)
