"""Each neuron kind of the in-memory form, mapped onto its pure step for the emulator.

One entry per kind in :data:`KINDS`: how the layer's parameters are built from
the file's integers, the state Lava starts from, one step, the dtype of what
its ``out`` port sends, and whether netx's reset interval applies. The steps
and their Lava sources live in :mod:`slssnn.training.neuron` (LIF),
:mod:`slssnn.training.sigma_delta` (Delta, SigmaDelta, Sigma) and
:mod:`slssnn.training.resonator` (RF, RF_IZ).

- ``CUBA``/``LOIHI``: Lava's LIF (``LIFReset`` with a reset interval); 0/1 spikes.
- ``SDNN``: ``Delta`` (input layer), ``SigmaDelta`` with ReLU, or ``Sigma``
  (``sigma_output``), with ``state_exp = 6`` and the network's ``spike_exp``
  (``lava/lib/dl/netx/hdf5.py`` lines 164-189); graded int32 messages; netx
  ignores a reset interval for them (with a warning).
- ``RF_*``: Lava's ``RF`` or ``RF_IZ`` behind a complex dense (two input sums);
  0/1 spikes; netx passes them no reset interval (hdf5.py lines 190-206).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import torch

from slssnn.export.network import CubaNeuron, Neuron, RfNeuron, SigmaDeltaNeuron
from slssnn.training.fixed_point import NETX_SPIKE_EXP
from slssnn.training.neuron import CubaParams, CubaState, cuba_step
from slssnn.training.resonator import RFState, rf_iz_step, rf_params_from_file, rf_step
from slssnn.training.sigma_delta import (
    DeltaParams,
    DeltaState,
    SigmaDeltaParams,
    SigmaDeltaState,
    delta_step,
    sigma_delta_step,
    sigma_step,
)

DEFAULT_SPIKE_EXP = NETX_SPIKE_EXP
"""netx's default ``spike_exp`` (``Network(spike_exp=6)``)."""


@dataclass(frozen=True)
class Kind:
    """How the emulator runs one neuron kind.

    ``params(neuron, bias, spike_exp)``, ``zeros(neuron, shape, device)``,
    ``step(neuron, state, a_in, params) -> (out, state)``; ``out_dtype`` of the
    messages sent; ``resets``: whether netx's reset interval applies.
    """

    params: Callable[[Any, torch.Tensor | int, int], Any]
    zeros: Callable[[Any, tuple[int, ...], torch.device | str | None], Any]
    step: Callable[[Any, Any, Any, Any], tuple[torch.Tensor, Any]]
    out_dtype: torch.dtype
    resets: bool


def _sd_params(n: SigmaDeltaNeuron, bias, spike_exp: int):
    if n.role == "delta":
        return DeltaParams(n.threshold, spike_exp)
    if n.role == "sigma_delta":
        return SigmaDeltaParams(n.threshold, bias, spike_exp)
    return None  # Sigma has no parameters


def _sd_zeros(n: SigmaDeltaNeuron, shape, device):
    if n.role == "delta":
        return DeltaState.zeros(shape, device)
    if n.role == "sigma_delta":
        return SigmaDeltaState.zeros(shape, device)
    return torch.zeros(shape, dtype=torch.int32, device=device)


def _sd_step(n: SigmaDeltaNeuron, state, a_in, p):
    if n.role == "delta":
        out, state = delta_step(state, a_in, p)
    elif n.role == "sigma_delta":
        out, state = sigma_delta_step(state, a_in, p)
    else:
        out, state = sigma_step(state, a_in)
    return out, state  # int32 messages


def _cuba_step(n: CubaNeuron, state, a_in, p):
    spikes, state = cuba_step(state, a_in, p)
    return spikes.to(torch.int8), state


def _rf_step(n: RfNeuron, state, a_in, p):
    spikes, state = (rf_step if n.process == "RF" else rf_iz_step)(state, a_in, p)
    return spikes.to(torch.int8), state


KINDS: dict[type, Kind] = {
    CubaNeuron: Kind(lambda n, bias, _: CubaParams(n.i_decay, n.v_decay, n.threshold, bias),
                     lambda n, shape, device: CubaState.zeros(shape, device),
                     _cuba_step, torch.int8, resets=True),
    SigmaDeltaNeuron: Kind(_sd_params, _sd_zeros, _sd_step, torch.int32, resets=False),
    RfNeuron: Kind(lambda n, bias, _: rf_params_from_file(n.sin_decay, n.cos_decay,
                                                          n.threshold),
                   lambda n, shape, device: RFState.zeros(shape, device),
                   _rf_step, torch.int8, resets=False),
}
"""Every neuron kind the emulator runs, by its in-memory class."""


def kind_of(neuron: Neuron) -> Kind:
    """The emulator's entry for ``neuron``'s kind."""
    return KINDS[type(neuron)]
