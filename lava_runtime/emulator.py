"""A bit-exact, batched emulator of netx networks on Lava's fixed-point semantics.

It steps a validated :class:`NetxNetwork` in Lava's global time, for many
samples at once (PyTorch, CPU or CUDA), and gives the spikes Lava gives:

- every neuron is Lava's bit-accurate LIF, through the one step function
  :func:`slssnn.training.neuron.cuba_step`;
- every synapse (netx Dense, Conv) delivers at step ``t`` the dendritic sum of
  the spikes it received at ``t - 1`` (Lava's ``a_buff``), Conv sums wrapped to
  signed 24 bits; weights are used as written (netx's weight-bit optimisation
  is exact for integers in [-256, 254], which the schema enforces);
- a dense layer with ``delay`` (netx's DelayDense) delivers a spike received
  at step ``t`` over a synapse of delay ``d`` at step ``t + 1 + d``;
- netx's reset interval: block ``i`` resets u and v at the start of every step
  ``t`` with ``t % interval == (reset_offset + 1 + i) % interval``;
- the input: an ``input`` block's LIF receives the given current as its
  ``a_in`` in the same step; a network without an input block receives spikes
  (graded values allowed) in its first synapse.

Anything else (recurrence, pooling, other neuron types) is refused by the
schema before the emulator is built.
"""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F

from slssnn.errors import SlssnnError
from slssnn.export.netx_reader import LayerSpec, NetxNetwork
from slssnn.training.neuron import CubaParams, CubaState, cuba_step, run_cuba
from slssnn.training.stcb import wrap_conv_accum


def _synapse(spec: LayerSpec, spikes: torch.Tensor, weight: torch.Tensor) -> torch.Tensor:
    """Dendritic sums of a block for a batch of input spikes (int64 in, int64 out)."""
    x = spikes.to(weight.dtype)
    if spec.type == "conv":
        accum = F.conv2d(x, weight, None, spec.stride, spec.padding, spec.dilation, spec.groups)
        return wrap_conv_accum(accum.round().to(torch.int64))
    return (x.flatten(1) @ weight.T).round().to(torch.int64)  # (B, N)


FLOAT32_EXACT = 1 << 24
"""Integers below 2**24 in magnitude are exact in float32, and so are their sums."""


def _exact_dtype(spec: LayerSpec, first: bool) -> torch.dtype:
    """float32 where every dendritic sum of binary spikes stays below 2**24, else float64.

    A first synapse (no input layer) may receive graded spikes: always float64.
    """
    if spec.weight is None:
        return torch.float32
    worst = np.abs(spec.weight).reshape(spec.weight.shape[0], -1).sum(axis=1).max()
    return torch.float64 if first or worst >= FLOAT32_EXACT else torch.float32


class Emulator:
    """Batched emulation of one netx network.

    Args:
        net: a network read by :func:`slssnn.export.netx_reader.read_network`.
        reset_interval, reset_offset: as netx's ``Network`` arguments (None: no reset).
        device: torch device for the state and the synapses.
    """

    def __init__(self, net: NetxNetwork, reset_interval: int | None = None,
                 reset_offset: int = 0, device: str | torch.device = "cpu") -> None:
        self.net = net
        self.device = torch.device(device)
        self.reset_interval = reset_interval
        self.reset_phase = [None if reset_interval is None
                            else (reset_offset + 1 + i) % reset_interval
                            for i in range(len(net.layers))]
        self.weights = [None if s.weight is None else
                        torch.as_tensor(s.weight, dtype=_exact_dtype(s, i == 0),
                                        device=self.device)
                        for i, s in enumerate(net.layers)]
        self.params = [self._params(s) for s in net.layers]
        self.delayed = [None if s.delay is None else self._delay_weights(s, w)
                        for s, w in zip(net.layers, self.weights, strict=True)]

    @staticmethod
    def _delay_weights(spec: LayerSpec, weight: torch.Tensor) -> list[tuple[int, torch.Tensor]]:
        """``[(d, W masked to synapses of delay d)]`` for the delays present."""
        delay = torch.as_tensor(spec.delay, device=weight.device)
        return [(int(d), torch.where(delay == d, weight, torch.zeros_like(weight)))
                for d in torch.unique(delay).tolist()]

    def _params(self, spec: LayerSpec, bias: torch.Tensor | None = None) -> CubaParams:
        if bias is None and spec.bias is not None:
            bias = torch.as_tensor(spec.bias, dtype=torch.int64, device=self.device)
            if len(spec.shape) == 3:
                bias = bias.view(-1, 1, 1)
        return CubaParams(spec.neuron.i_decay, spec.neuron.v_decay, spec.neuron.threshold,
                          0 if bias is None else bias)

    def run(self, inputs: torch.Tensor, steps: int,
            input_bias: torch.Tensor | None = None) -> list[torch.Tensor]:
        """Run ``steps`` steps from rest.

        Args:
            inputs: ``(B, steps, *input_shape)`` integers: currents for an input
                block, else spikes for the first synapse; input_shape is
                (C, H, W) or (n,) (slssnn order, not Lava's).
            steps: number of global steps.
            input_bias: bias mantissa of the input block's neurons, broadcastable
                to ``(B, *shape)`` (how lava-dl's tinynet test drives its input).
        Returns:
            per block, its spikes ``(B, steps, *shape)`` as int8.
        """
        layers = self.net.layers
        inputs = torch.as_tensor(inputs, dtype=torch.int64, device=self.device)
        batch = inputs.shape[0]
        params = list(self.params)
        if input_bias is not None:
            if layers[0].type != "input":
                raise ValueError("input_bias needs an input layer first")
            params[0] = self._params(layers[0], torch.as_tensor(
                input_bias, dtype=torch.int64, device=self.device))
        states = [CubaState.zeros((batch, *s.shape), self.device) for s in layers]
        # buffers[i][:, k]: what block i's synapse delivers k+1 steps from now
        buffers = [torch.zeros((batch, 1 + (0 if s.delay is None else int(s.delay.max())),
                                *s.shape), dtype=torch.int64, device=self.device)
                   for s in layers]
        out = [torch.zeros((batch, steps, *s.shape), dtype=torch.int8, device=self.device)
               for s in layers]
        for t in range(1, steps + 1):
            x_t = inputs[:, t - 1] if t - 1 < inputs.shape[1] else torch.zeros_like(inputs[:, 0])
            spikes = []
            for i, spec in enumerate(layers):
                if self.reset_phase[i] is not None and t % self.reset_interval == \
                        self.reset_phase[i]:
                    states[i] = CubaState.zeros((batch, *spec.shape), self.device)
                a_in = x_t if spec.type == "input" else buffers[i][:, 0]
                s, states[i] = cuba_step(states[i], a_in, params[i])
                spikes.append(s)
                out[i][:, t - 1] = s.to(torch.int8)
            for i, spec in enumerate(layers):
                if spec.type == "input":
                    continue
                source = x_t if i == 0 else spikes[i - 1].to(torch.int64)
                buffers[i] = torch.roll(buffers[i], -1, dims=1)
                buffers[i][:, -1] = 0
                if self.delayed[i] is None:
                    buffers[i][:, 0] = _synapse(spec, source, self.weights[i]).view(
                        batch, *spec.shape)
                else:
                    for d, weight in self.delayed[i]:
                        buffers[i][:, d] += _synapse(spec, source, weight)
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
        if spec.delay is not None:
            raise SlssnnError(f"network {net.path}: layer {spec.index}: field 'delay': "
                              "delayed spikes cross sample windows; use simulate()")
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
