"""A bit-exact, batched emulator of netx networks on Lava's fixed-point semantics.

It steps a validated :class:`NetxNetwork` in Lava's global time, for many
samples at once (PyTorch, CPU or CUDA), and gives the messages Lava gives
(docs/semantics.md has every rule with its source):

- a ``CUBA``/``LOIHI`` layer is Lava's bit-accurate LIF, stepped by
  :func:`slssnn.training.neuron.cuba_step`; an ``SDNN`` layer is Lava's
  ``Delta``, ``SigmaDelta`` or ``Sigma`` (:mod:`slssnn.training.sigma_delta`);
- every synapse (netx Dense, Conv) delivers at step ``t`` the dendritic sum of
  the messages it received at ``t - 1`` (Lava's ``a_buff``), Conv sums wrapped
  to signed 24 bits; weights are used as written (netx's weight-bit
  optimisation is exact for integers in [-256, 254], which the schema enforces);
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
import torch.nn.functional as F

from slssnn.errors import SlssnnError
from slssnn.export.netx_reader import CubaNeuron, LayerSpec, NetxNetwork, SigmaDeltaNeuron
from slssnn.training.neuron import CubaParams, CubaState, cuba_step, run_cuba
from slssnn.training.stcb import wrap_conv_accum

from . import sigma_delta_layer as sdl

FLOAT32_EXACT = 1 << 24
"""Integers below 2**24 in magnitude are exact in float32, and so are their sums."""
FLOAT64_EXACT = 1 << 53
"""Integers below 2**53 in magnitude are exact in float64, and so are their sums."""


def _synapse(spec: LayerSpec, messages: torch.Tensor, weight: torch.Tensor) -> torch.Tensor:
    """Dendritic sums of a block for a batch of input messages (int64 in, int64 out).

    ``weight`` is float32 or float64 chosen by :func:`_exact_dtype` so that
    every partial sum is an exact integer.
    """
    x = messages.to(weight.dtype)
    if spec.type == "conv":
        accum = F.conv2d(x, weight, None, spec.stride, spec.padding, spec.dilation, spec.groups)
        return wrap_conv_accum(accum.round().to(torch.int64))
    return (x.flatten(1) @ weight.T).round().to(torch.int64)  # (B, N)


def _exact_dtype(spec: LayerSpec, graded_input: bool) -> torch.dtype:
    """float32 where every dendritic sum of binary spikes stays below 2**24, else float64.

    A synapse that receives graded messages always sums in float64; the size
    of its sums is checked on the data (:func:`_check_graded_conv`).
    """
    if spec.weight is None:
        return torch.float32
    worst = np.abs(spec.weight).reshape(spec.weight.shape[0], -1).sum(axis=1).max()
    return torch.float64 if graded_input or worst >= FLOAT32_EXACT else torch.float32


def _check_graded_conv(spec: LayerSpec, messages: torch.Tensor, weight: torch.Tensor) -> None:
    """Refuse graded conv input whose sums Lava's float32 conv could round.

    Lava's Conv sums with ``torch.FloatTensor`` (``lava/proc/conv/utils.py``,
    ``conv``, line 197): exact only while every partial sum stays below 2**24.
    """
    bound = F.conv2d(messages.abs().to(torch.float64), weight.abs(), None, spec.stride,
                     spec.padding, spec.dilation, spec.groups)
    peak = float(bound.max()) if bound.numel() else 0.0
    if peak >= FLOAT32_EXACT:
        raise SlssnnError(f"layer {spec.index} (conv): graded input makes partial sums up to "
                          f"{peak:.0f} >= 2**24, where Lava's float32 conv rounds "
                          "(lava/proc/conv/utils.py); not emulated")


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
                 spike_exp: int = sdl.DEFAULT_SPIKE_EXP, input_graded: bool = False) -> None:
        self.net = net
        self.device = torch.device(device)
        self.reset_interval = reset_interval
        self.spike_exp = spike_exp
        layers = net.layers
        # graded[i]: whether block i's synapse receives graded messages
        self.graded = [(input_graded if i == 0 else layers[i - 1].is_sigma_delta)
                       for i in range(len(layers))]
        self.reset_phase = [None if reset_interval is None or s.is_sigma_delta
                            else (reset_offset + 1 + i) % reset_interval
                            for i, s in enumerate(layers)]
        self.weights = [None if s.weight is None else
                        torch.as_tensor(s.weight, dtype=_exact_dtype(s, g), device=self.device)
                        for s, g in zip(layers, self.graded, strict=True)]
        self.weights_rec = [None if s.weight_rec is None else
                            torch.as_tensor(s.weight_rec, dtype=_exact_dtype(s, s.is_sigma_delta),
                                            device=self.device)
                            for s in layers]
        self.params = [self._params(s) for s in layers]
        self.delayed = [None if s.delay is None else self._delay_weights(s, w)
                        for s, w in zip(layers, self.weights, strict=True)]

    @staticmethod
    def _delay_weights(spec: LayerSpec, weight: torch.Tensor
                       ) -> torch.Tensor | list[tuple[int, torch.Tensor]]:
        """Per-output (axonal) delays: the slot index ``d * N + n`` of every output ``n``
        in a flattened ``(D, N)`` buffer; otherwise ``[(d, W masked to delay d)]``."""
        delay = torch.as_tensor(spec.delay, device=weight.device)
        if bool((delay == delay[:, :1]).all()):
            outputs = delay.shape[0]
            return delay[:, 0] * outputs + torch.arange(outputs, device=weight.device)
        return [(int(d), torch.where(delay == d, weight, torch.zeros_like(weight)))
                for d in torch.unique(delay).tolist()]

    def _bias(self, spec: LayerSpec, bias: np.ndarray | torch.Tensor | None
              ) -> torch.Tensor | int:
        if bias is None:
            return 0
        bias = torch.as_tensor(bias, dtype=torch.int64, device=self.device)
        return bias.view(-1, 1, 1) if len(spec.shape) == 3 and bias.dim() == 1 else bias

    def _params(self, spec: LayerSpec, bias: torch.Tensor | None = None):
        bias = self._bias(spec, spec.bias if bias is None else bias)
        n = spec.neuron
        if isinstance(n, CubaNeuron):
            return CubaParams(n.i_decay, n.v_decay, n.threshold, bias)
        if isinstance(n, SigmaDeltaNeuron):
            return sdl.params(n, bias, self.spike_exp)
        raise SlssnnError(f"layer {spec.index}: neuron {type(n).__name__} is not emulated")

    def _zeros(self, spec: LayerSpec, batch: int):
        if isinstance(spec.neuron, CubaNeuron):
            return CubaState.zeros((batch, *spec.shape), self.device)
        return sdl.zeros(spec.neuron, (batch, *spec.shape), self.device)

    def _step(self, spec: LayerSpec, state, a_in: torch.Tensor, params
              ) -> tuple[torch.Tensor, object]:
        if isinstance(spec.neuron, CubaNeuron):
            spikes, state = cuba_step(state, a_in, params)
            return spikes.to(torch.int8), state
        return sdl.step(spec.neuron, state, a_in, params)

    def _sums(self, i: int, messages: torch.Tensor, weight: torch.Tensor) -> torch.Tensor:
        spec = self.net.layers[i]
        if self.graded[i] and spec.type == "conv":
            _check_graded_conv(spec, messages, weight)
        sums = _synapse(spec, messages, weight)
        return sums if spec.type == "conv" else sdl.dense_accum(sums)

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
                     for s in layers]
        out = [torch.zeros((batch, steps, *s.shape), device=self.device,
                           dtype=torch.int32 if s.is_sigma_delta else torch.int8)
               for s in layers]
        for t in range(1, steps + 1):
            x_t = inputs[:, t - 1] if t - 1 < inputs.shape[1] else torch.zeros_like(inputs[:, 0])
            sent = []
            for i, spec in enumerate(layers):
                if self.reset_phase[i] is not None and t % self.reset_interval == \
                        self.reset_phase[i]:
                    states[i] = self._zeros(spec, batch)
                a_in = x_t if spec.type == "input" else buffers[i][:, 0] + recurrent[i]
                s, states[i] = self._step(spec, states[i], a_in, params[i])
                sent.append(s)
                out[i][:, t - 1] = s.to(out[i].dtype)
            for i, spec in enumerate(layers):
                if spec.type == "input":
                    continue
                source = x_t if i == 0 else sent[i - 1].to(torch.int64)
                buffers[i] = torch.roll(buffers[i], -1, dims=1)
                buffers[i][:, -1] = 0
                delayed = self.delayed[i]
                if delayed is None:
                    buffers[i][:, 0] = self._sums(i, source, self.weights[i]).view(
                        batch, *spec.shape)
                elif isinstance(delayed, torch.Tensor):  # per-output delays: one product
                    sums = self._sums(i, source, self.weights[i])  # (B, N)
                    buffers[i].view(batch, -1).index_add_(1, delayed, sums)
                else:
                    for d, weight in delayed:
                        buffers[i][:, d] += self._sums(i, source, weight)
                if self.weights_rec[i] is not None:
                    recurrent[i] = sdl.dense_accum(
                        _synapse(spec, sent[i].to(torch.int64), self.weights_rec[i]))
        return out


def run_windows(net: NetxNetwork, currents: np.ndarray, timesteps: int,
                device: str | torch.device = "cpu", batch_size: int = 512,
                stepwise: bool = False) -> list[np.ndarray]:
    """Each sample's T-step window per block, as Lava's one long run produces it.

    ``currents``: ``(N, *input_shape)`` input currents, presented on steps 1..T
    of each sample (``stepwise``: ``(N, T, *input_shape)``, one current per
    step, e.g. event frames). In Lava (reset interval T) block ``i`` processes a sample
    in global steps ``1+i .. T+i`` from a fresh state, receiving the previous
    block's spikes of the same window step (see ``lava_runner``). So the
    windows are computed layer by layer: one batched synapse call over all T
    steps, then T neuron steps. Returns per block ``(N, T, *shape)`` int8,
    the same arrays as :func:`run_lava`.
    """
    layers = net.layers
    for spec in layers:
        for field, reason in (("delay", "delayed spikes cross sample windows"),
                              ("weight_rec", "recurrent spikes cross sample windows")):
            if getattr(spec, field) is not None:
                raise SlssnnError(f"network {net.path}: layer {spec.index}: field '{field}': "
                                  f"{reason}; use simulate()")
        if not isinstance(spec.neuron, CubaNeuron):
            raise SlssnnError(f"network {net.path}: layer {spec.index}: sigma-delta layers "
                              "are not reset between samples by netx; use simulate()")
    emulator = Emulator(net, device=device)
    parts: list[list[np.ndarray]] = []
    for start in range(0, currents.shape[0], batch_size):
        chunk = torch.as_tensor(currents[start:start + batch_size], dtype=torch.int64,
                                device=emulator.device)
        batch = chunk.shape[0]
        if stepwise:
            a_in = chunk.transpose(0, 1)  # (B, T, *in) -> (T, B, *in)
        else:
            a_in = chunk.unsqueeze(0).expand(timesteps, *chunk.shape)  # (T, B, *in)
        windows = []
        for i, spec in enumerate(layers):
            if spec.type != "input":
                flat = a_in.reshape(timesteps * batch, *a_in.shape[2:])  # (T*B, *in)
                a_in = _synapse(spec, flat, emulator.weights[i]).view(timesteps, batch,
                                                                     *spec.shape)
            a_in = run_cuba(a_in, emulator.params[i]).to(torch.int64)  # (T, B, *shape)
            windows.append(a_in.transpose(0, 1).to(torch.int8).cpu().numpy())
        parts.append(windows)
    return [np.concatenate(p) for p in zip(*parts, strict=True)]

