"""A bit-exact, batched emulator of netx networks on Lava's fixed-point semantics.

It steps a validated :class:`NetxNetwork` in Lava's global time, for many
samples at once (PyTorch, CPU or CUDA), and gives the messages Lava gives
(docs/semantics.md has every rule with its source):

- every layer's neurons run their kind's pure step (:mod:`.layer_neurons`): a
  ``CUBA``/``LOIHI`` layer Lava's bit-accurate LIF (:func:`cuba_step`), an
  ``SDNN`` layer ``Delta``, ``SigmaDelta`` or ``Sigma``, an ``RF_*`` layer
  ``RF`` or ``RF_IZ`` fed by a complex dense's real and imaginary sums;
- every synapse (netx Dense, Conv) delivers at step ``t`` the dendritic sum of
  the messages it received at ``t - 1`` (Lava's ``a_buff``), as
  :mod:`slssnn.training.graded_synapse` computes it: Dense through netx's weight
  scaling and Lava's clip and truncation, Conv sums wrapped to signed 24 bits;
- a dense layer with ``delay`` (netx's DelayDense) delivers a message received
  at step ``t`` over a synapse of delay ``d`` at step ``t + 1 + d``;
- a ``dense_rec`` layer (netx's RecurrentDense) also receives, one step later,
  its own spikes through ``weight_rec``, summed into the same ``a_in``;
- netx's reset interval: LIF block ``i`` resets u and v at the start of every
  step ``t`` with ``t % interval == (reset_offset + 1 + i) % interval``
  (sigma-delta layers are not reset: netx warns and ignores it);
- the input: an ``input`` block's neurons receive the given values as their
  ``a_in`` in the same step; a network without an input block receives
  messages (graded values allowed) in its first synapse.

Binary spikes come back as int8 0/1, graded messages as int32, as Lava's
ports send them. What the file can hold but this emulator does not reproduce
exactly is refused with the layer named, never approximated.
"""

from __future__ import annotations

import numpy as np
import torch
from torch import nn

from slssnn.errors import SlssnnError
from slssnn.export.netx_reader import CubaNeuron, LayerSpec, NetxNetwork
from slssnn.training.graded_synapse import (
    ConvWeights,
    DenseWeights,
    conv_sums,
    dense_sums,
    netx_dense_weights,
    netx_recurrent_weights,
)
from slssnn.training.neuron import CubaState, cuba_step, run_cuba, run_cuba_constant
from slssnn.training.synapse import dendritic_sums, sum_bounds

from .layer_neurons import DEFAULT_SPIKE_EXP, kind_of

FLOAT32_EXACT = 1 << 24
"""Integers below 2**24 in magnitude are exact in float32, and so are their sums."""


def _float32_exact(spec: LayerSpec) -> bool:
    """Whether every dendritic sum of binary spikes through ``spec`` stays below 2**24
    (so that :func:`dendritic_sums` is exact on every path it may take)."""
    worst = np.abs(spec.weight).reshape(spec.weight.shape[0], -1).sum(axis=1).max()
    return bool(worst < FLOAT32_EXACT)


def _as_written(synapse: _Synapse) -> bool:
    """Whether Lava multiplies the file's weights as written (netx's scaling cancels)."""
    if synapse.spec.type == "conv":
        return True
    scaled = synapse.dense.weight.cpu().to(torch.int64)
    return torch.equal(scaled >> synapse.dense.shift << synapse.dense.shift, scaled) and \
        torch.equal(scaled >> synapse.dense.shift, torch.as_tensor(synapse.spec.weight))


class _Synapse:
    """What one block's synapse delivers for one step's messages (netx Dense or Conv).

    ``graded``: the block's input has ``num_message_bits > 0`` (netx passes the
    previous block's ``output_message_bits``); a binary input is read as
    ``messages != 0`` (the models' ``astype(bool)``).
    """

    def __init__(self, spec: LayerSpec, weight: np.ndarray, graded: bool,
                 device: torch.device, dense: DenseWeights | None = None) -> None:
        self.spec, self.graded = spec, graded
        if spec.type == "conv":
            self.weight = ConvWeights.of(weight, device)
        else:
            self.dense = dense if dense is not None else _dense_weights(spec, weight, device)

    def __call__(self, messages: torch.Tensor) -> torch.Tensor:
        x = messages if self.graded else (messages != 0).to(torch.int8)
        try:
            if self.spec.type == "conv":
                s = self.spec
                return conv_sums(x, self.weight, s.stride, s.padding, s.dilation, s.groups)
            return dense_sums(x.flatten(1), self.dense, self.graded)  # (B, N)
        except ValueError as exc:
            raise SlssnnError(f"layer {self.spec.index} ({self.spec.type}): {exc}") from None


def _dense_weights(spec: LayerSpec, weight: np.ndarray, device: torch.device) -> DenseWeights:
    try:
        return netx_dense_weights(weight, device)
    except ValueError as exc:
        raise SlssnnError(f"layer {spec.index} ({spec.type}): field 'weight': {exc}") from None


def _masked(w: DenseWeights, mask: torch.Tensor) -> DenseWeights:
    """``w`` with the synapses outside ``mask`` set to 0 (one delay's share of a DelayDense)."""
    return DenseWeights(torch.where(mask, w.weight, torch.zeros_like(w.weight)), w.shift, w.l1)


class Emulator:
    """Batched emulation of one netx network.

    Args:
        net: a network read by :func:`slssnn.export.netx_reader.read_network`.
        reset_interval, reset_offset: as netx's ``Network`` arguments (None: no reset).
        device: torch device for the state and the synapses.
        spike_exp: as netx's ``Network`` argument: the fraction bits of graded
            sigma-delta messages (default 6).
        input_graded: whether a first synapse (no input block) receives graded
            messages (netx's ``input_message_bits > 0``).
    """

    def __init__(self, net: NetxNetwork, reset_interval: int | None = None,
                 reset_offset: int = 0, device: str | torch.device = "cpu",
                 spike_exp: int = DEFAULT_SPIKE_EXP, input_graded: bool = False) -> None:
        self.net = net
        self.device = torch.device(device)
        self.reset_interval = reset_interval
        self.spike_exp = spike_exp
        layers = net.layers
        # graded[i]: block i's synapse reads graded messages (netx: the previous block's
        # output_message_bits > 0, hdf5.py lines 598-676)
        self.graded = [(input_graded if i == 0 else layers[i - 1].neuron.message_bits > 0)
                       for i in range(len(layers))]
        self.reset_phase = [None if reset_interval is None or not kind_of(s.neuron).resets
                            else (reset_offset + 1 + i) % reset_interval
                            for i, s in enumerate(layers)]
        self.synapses = [None if s.type == "input" else self._synapse(s, g)
                         for s, g in zip(layers, self.graded, strict=True)]
        self.params = [self._params(s) for s in layers]
        self.delayed = [None if s.delay is None else self._delay_weights(s, syn)
                        for s, syn in zip(layers, self.synapses, strict=True)]

    def _synapse(self, spec: LayerSpec, graded: bool) -> tuple[_Synapse, _Synapse | None]:
        """The block's feed-forward synapse and, for ``dense_rec``, its recurrent one
        (for a complex dense: its real and its imaginary synapse).

        netx scales ``weight`` and ``weight_rec`` together (``hdf5.py`` lines 400-408)
        and gives both synapses the block's input message bits (``blocks/process.py``
        ``RecurrentDense``); each Lava Dense then clips and truncates its own matrix.
        """
        if spec.weight_imag is not None:  # ComplexDense: one Dense per part
            return (_Synapse(spec, spec.weight, graded, self.device),
                    _Synapse(spec, spec.weight_imag, graded, self.device))
        if spec.weight_rec is None:
            return _Synapse(spec, spec.weight, graded, self.device), None
        try:
            forward, recurrent = netx_recurrent_weights(spec.weight, spec.weight_rec,
                                                        self.device)
        except ValueError as exc:
            raise SlssnnError(f"layer {spec.index} (dense_rec): field 'weight'/'weight_rec': "
                              f"{exc}") from None
        return (_Synapse(spec, spec.weight, graded, self.device, forward),
                _Synapse(spec, spec.weight_rec, graded, self.device, recurrent))

    @staticmethod
    def _delay_weights(spec: LayerSpec, synapses: tuple[_Synapse, _Synapse | None]
                       ) -> torch.Tensor | list[tuple[int, _Synapse]]:
        """Per-output (axonal) delays: the slot index ``d * N + n`` of every output ``n``
        in a flattened ``(D, N)`` buffer; otherwise ``[(d, synapse of the delay-d share)]``."""
        synapse = synapses[0]
        device = synapse.dense.weight.device
        delay = torch.as_tensor(spec.delay, device=device)
        if bool((delay == delay[:, :1]).all()):
            outputs = delay.shape[0]
            return delay[:, 0] * outputs + torch.arange(outputs, device=device)
        return [(int(d), _Synapse(spec, spec.weight, synapse.graded, device,
                                  _masked(synapse.dense, delay == d)))
                for d in torch.unique(delay).tolist()]

    def _bias(self, spec: LayerSpec, bias: np.ndarray | torch.Tensor | None
              ) -> torch.Tensor | int:
        if bias is None:
            return 0
        bias = torch.as_tensor(bias, dtype=torch.int64, device=self.device)
        return bias.view(-1, 1, 1) if len(spec.shape) == 3 and bias.dim() == 1 else bias

    def _params(self, spec: LayerSpec, bias: torch.Tensor | None = None):
        bias = self._bias(spec, spec.bias if bias is None else bias)
        return kind_of(spec.neuron).params(spec.neuron, bias, self.spike_exp)

    def _zeros(self, spec: LayerSpec, batch: int):
        return kind_of(spec.neuron).zeros(spec.neuron, (batch, *spec.shape), self.device)

    def run(self, inputs: torch.Tensor, steps: int,
            input_bias: torch.Tensor | None = None) -> list[torch.Tensor]:
        """Run ``steps`` steps from rest.

        Args:
            inputs: ``(B, steps, *input_shape)`` integers: values into an input
                block's ``a_in``, else messages into the first synapse;
                input_shape is (C, H, W) or (n,) (slssnn order, not Lava's).
            steps: number of global steps.
            input_bias: bias mantissa of the input block's neurons, broadcastable
                to ``(B, *shape)`` (how lava-dl's tinynet test drives its input).
        Returns:
            per block, what its ``out`` port sent ``(B, steps, *shape)``: int8
            spikes (LIF) or int32 graded messages (sigma-delta).
        """
        layers = self.net.layers
        inputs = torch.as_tensor(inputs, dtype=torch.int64, device=self.device)
        batch = inputs.shape[0]
        params = list(self.params)
        if input_bias is not None:
            if layers[0].type != "input":
                raise SlssnnError("input_bias needs an input layer first")
            params[0] = self._params(layers[0], torch.as_tensor(
                input_bias, dtype=torch.int64, device=self.device))
        states = [self._zeros(s, batch) for s in layers]
        # buffers[i][:, k]: what block i's synapse delivers k+1 steps from now
        buffers = [torch.zeros((batch, 1 + (0 if s.delay is None else int(s.delay.max())),
                                *s.shape), dtype=torch.int64, device=self.device)
                   for s in layers]
        recurrent = [torch.zeros((batch, *s.shape), dtype=torch.int64, device=self.device)
                     if s.weight_rec is not None else 0 for s in layers]
        buffers_imag = [torch.zeros((batch, 1, *s.shape), dtype=torch.int64, device=self.device)
                        if s.weight_imag is not None else None for s in layers]
        out = [torch.empty((batch, steps, *s.shape), device=self.device,  # every step written
                           dtype=kind_of(s.neuron).out_dtype) for s in layers]
        for t in range(1, steps + 1):
            x_t = inputs[:, t - 1] if t - 1 < inputs.shape[1] else torch.zeros_like(inputs[:, 0])
            sent = []
            for i, spec in enumerate(layers):
                if self.reset_phase[i] is not None and t % self.reset_interval == \
                        self.reset_phase[i]:
                    states[i] = self._zeros(spec, batch)
                if spec.type == "input":
                    a_in = x_t
                elif spec.weight_imag is not None:  # complex dense: (real, imaginary) sums
                    a_in = (buffers[i][:, 0], buffers_imag[i][:, 0])
                else:
                    a_in = buffers[i][:, 0] + recurrent[i]
                s, states[i] = kind_of(spec.neuron).step(spec.neuron, states[i], a_in,
                                                         params[i])
                sent.append(s)
                out[i][:, t - 1] = s.to(out[i].dtype)
            for i, spec in enumerate(layers):
                if spec.type == "input":
                    continue
                source = x_t if i == 0 else sent[i - 1]
                forward, backward = self.synapses[i]
                delayed = self.delayed[i]
                if buffers[i].shape[1] > 1:  # a delay line: shift it by one step
                    buffers[i] = torch.roll(buffers[i], -1, dims=1)
                    buffers[i][:, -1] = 0
                elif delayed is not None:  # all delays 0: the sums add onto a fresh slot
                    buffers[i].zero_()
                if delayed is None:
                    buffers[i][:, 0] = forward(source).view(batch, *spec.shape)
                elif isinstance(delayed, torch.Tensor):  # per-output delays: one product
                    buffers[i].view(batch, -1).index_add_(1, delayed, forward(source))
                else:
                    for d, synapse in delayed:
                        buffers[i][:, d] += synapse(source)
                if spec.weight_rec is not None:
                    recurrent[i] = backward(sent[i])
                elif spec.weight_imag is not None:
                    buffers_imag[i][:, 0] = backward(source)
        return out


def _geometry(spec: LayerSpec, weight: torch.Tensor) -> nn.Conv2d | nn.Linear:
    """A torch module with the block's geometry and file weights, for :func:`dendritic_sums`."""
    if spec.type == "conv":
        out_c, in_per_group, kh, kw = spec.weight.shape
        module = nn.Conv2d(in_per_group * spec.groups, out_c, (kh, kw), spec.stride,
                           spec.padding, spec.dilation, spec.groups, bias=False)
    else:
        module = nn.Linear(spec.weight.shape[1], spec.weight.shape[0], bias=False)
    module.weight.data = weight
    return module.requires_grad_(False)


def run_windows(net: NetxNetwork, currents: np.ndarray, timesteps: int,
                device: str | torch.device = "cpu", batch_size: int = 512,
                stepwise: bool = False, voltages: list[np.ndarray] | None = None,
                input_graded: bool = False) -> list[np.ndarray]:
    """Each sample's T-step window per block, as Lava's one long run produces it.

    ``currents``: ``(N, *input_shape)`` input currents, presented on steps 1..T
    of each sample (``stepwise``: ``(N, T, *input_shape)``, one current per
    step, e.g. event frames). In Lava (reset interval T) block ``i`` processes a sample
    in global steps ``1+i .. T+i`` from a fresh state, receiving the previous
    block's spikes of the same window step (see ``lava_runner``). So the
    windows are computed layer by layer: one batched synapse call over all T
    steps, then T neuron steps, through the training forward's exact fast
    paths (:func:`dendritic_sums`, :func:`run_cuba`, :func:`run_cuba_constant`),
    which the tests check against :class:`Emulator`'s step by step run and
    Lava. Returns per block ``(N, T, *shape)`` int8, the same arrays as
    :func:`run_lava`. ``voltages``: a list that receives the output layer's ``v`` at
    the last step of each sample's window, int64 ``(N, *shape)`` in Lava's internal
    units (the voltage readout), by :func:`cuba_step` over the layer's window.
    A network without an input layer receives ``currents`` as messages into its first
    synapse (Lava's windows start one step later there; the run is the same):
    binary spikes, or with ``input_graded`` graded values, which netx's Dense and Conv
    deliver as :class:`_Synapse` computes them.
    """
    layers = net.layers
    for spec in layers:
        for field, reason in (("delay", "delayed spikes cross sample windows"),
                              ("weight_rec", "recurrent spikes cross sample windows")):
            if getattr(spec, field) is not None:
                raise SlssnnError(f"network {net.path}: layer {spec.index}: field '{field}': "
                                  f"{reason}; use simulate()")
        if not isinstance(spec.neuron, CubaNeuron):
            raise SlssnnError(f"network {net.path}: layer {spec.index}: only LIF layers are "
                              "reset between samples by netx; use simulate()")
    graded_first = input_graded and not net.has_input_block
    emulator = Emulator(net, device=device, input_graded=graded_first)
    for i, (spec, synapse) in enumerate(zip(layers, emulator.synapses, strict=True)):
        if i == 0 and graded_first:
            continue  # its sums go through _Synapse, exact in int64
        if synapse is not None and not (_float32_exact(spec) and _as_written(synapse[0])):
            raise SlssnnError(f"network {net.path}: layer {spec.index}: sums not exact from "
                              "the file's weights in float32; use simulate()")
    modules = [None if s.weight is None else _geometry(s, torch.as_tensor(
        s.weight, dtype=torch.float32, device=emulator.device)) for s in layers]
    parts: list[list[np.ndarray]] = []
    with torch.no_grad():
        for start in range(0, currents.shape[0], batch_size):
            chunk = torch.as_tensor(currents[start:start + batch_size], dtype=torch.int64,
                                    device=emulator.device)
            parts.append(_windows(layers, emulator.params, modules, chunk, timesteps,
                                  stepwise, voltages is not None,
                                  emulator.synapses[0][0] if graded_first else None))
    if voltages is not None:
        voltages.append(np.concatenate([p.pop() for p in parts]))
    return [np.concatenate(p) for p in zip(*parts, strict=True)]


def _final_voltage(a_in: torch.Tensor, p) -> np.ndarray:
    """``v`` after the last of the steps ``a_in`` ``(T, B, *shape)`` (integers), from rest:
    the plain :func:`cuba_step` loop, int64 ``(B, *shape)``."""
    a_in = a_in.to(torch.int64)
    state = CubaState.zeros(tuple(a_in.shape[1:]), device=a_in.device)
    for a_t in a_in:
        _, state = cuba_step(state, a_t, p)
    return state.v.cpu().numpy()


def _windows(layers: list[LayerSpec], params: list, modules: list, chunk: torch.Tensor,
             timesteps: int, stepwise: bool, voltage: bool = False,
             graded_first: _Synapse | None = None) -> list[np.ndarray]:
    """Every block's spikes ``(B, T, *shape)`` int8 for one batch of samples; with
    ``voltage``, then the output layer's final ``v`` ``(B, *shape)``; ``graded_first``:
    the first synapse, for graded messages into it."""
    spikes = None  # (T, B, *shape) float 0/1
    windows = []
    # what the first block receives on each step, (T, B, *in): (B, T, *in) or held (B, *in)
    accum = chunk.transpose(0, 1) if stepwise else chunk.unsqueeze(0).expand(
        timesteps, *chunk.shape)
    for spec, p, module in zip(layers, params, modules, strict=True):
        if spec.type == "input":
            if stepwise:
                spikes = run_cuba(accum, p, torch.float32)
            else:
                spikes = run_cuba_constant(chunk, timesteps, p, torch.float32)
        else:
            if spikes is None:  # a first synapse: the given values are its input spikes
                spikes = accum.float()
            steps, batch = spikes.shape[:2]
            flat = spikes.flatten(0, 1)  # (T*B, *in)
            if graded_first is not None and spec is layers[0]:
                accum = graded_first(flat.to(torch.int64)).unflatten(0, (steps, batch))
                spikes = run_cuba(accum, p, torch.float32)
            else:
                if spec.type != "conv":
                    flat = flat.flatten(1)
                accum = dendritic_sums(flat, module.weight, module).unflatten(0, (steps, batch))
                spikes = run_cuba(accum, p, torch.float32, bounds=sum_bounds(module.weight))
        windows.append(spikes.transpose(0, 1).to(torch.int8).cpu().numpy())
    if voltage:
        windows.append(_final_voltage(accum, params[-1]))
    return windows
