"""``simulate``: one call that runs a netx file on the emulator or on Lava, same result.

Arrays at this interface use Lava's axis order (x, y, c) = (W, H, C), like
``netx.hdf5.Network`` ports, with time last and an optional leading batch axis.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch

from slssnn.errors import SlssnnError
from slssnn.export.netx_reader import NetxNetwork, read_network

from .activity import layer_activity, message_counts
from .layer_neurons import DEFAULT_SPIKE_EXP

SIM_BACKENDS = ("emulator", "lava")


@dataclass
class LayerResult:
    """One block's output: ``spikes`` shaped ``([B,] *out_shape_lava, steps)`` and its totals.

    ``spikes`` holds what the block's ``out`` port sent: 0/1 spikes (int8) for
    LIF layers, graded messages (int32, 0 where none was sent) for sigma-delta
    layers.
    """

    name: str
    spikes: np.ndarray
    totals: dict[str, Any] = field(default_factory=dict)


@dataclass
class SimResult:
    """Every block's output spikes and per-layer totals (spikes, synops, neuron_updates)."""

    backend: str
    steps: int
    layers: list[LayerResult]
    batched: bool = False


def _lava_to_ours(x: np.ndarray, batched: bool) -> np.ndarray:
    """([B,] *shape_lava, steps) -> (B, steps, *shape_ours); shape_lava (W,H,C) or (n,)."""
    x = x if batched else x[None]
    x = np.moveaxis(x, -1, 1)  # (B, steps, *shape_lava)
    return np.swapaxes(x, 2, 4) if x.ndim == 5 else x


def _ours_to_lava(x: np.ndarray, batched: bool) -> np.ndarray:
    """(B, steps, *shape_ours) -> ([B,] *shape_lava, steps)."""
    x = np.swapaxes(x, 2, 4) if x.ndim == 5 else x
    x = np.moveaxis(x, 1, -1)
    return x if batched else x[0]


MAX_OUTPUT_BYTES = 4 << 30
"""Largest spike record ``simulate`` builds in memory (int8, all layers); split bigger batches."""


def _check_input(net: NetxNetwork, name: str, value: np.ndarray, steps: int | None
                 ) -> bool:
    if value.dtype.kind not in "biuf" or (value.dtype.kind == "f" and not (
            np.all(np.isfinite(value)) and np.all(value == np.round(value)))):
        raise SlssnnError(f"network {net.path}: {name} must hold integers, got dtype "
                          f"{value.dtype}")
    shape = net.input_shape
    lava_shape = tuple(reversed(shape)) if len(shape) == 3 else shape
    expect = lava_shape + ((steps,) if steps is not None else ())
    if value.shape == expect:
        return False
    if value.shape[1:] == expect:
        return True
    raise SlssnnError(f"network {net.path}: {name} must be shaped {expect} (or with a leading "
                      f"batch axis), got {value.shape}")


def with_bias_channel(net: NetxNetwork, spikes: np.ndarray | None, steps: int
                      ) -> np.ndarray | None:
    """Spikes with the network's always-on input channel appended, where it has one.

    A NIR graph whose first synapse adds a bias to a decaying current is written
    with one more input, ``metadata["input_encoding"]["bias_channel"]`` (the last),
    that must be 1 at every step (docs/nir.md). Inputs of the graph's own shape
    ``([B,] n - 1, steps)`` get it appended; inputs that already hold it pass.
    """
    channel = (net.metadata.get("input_encoding") or {}).get("bias_channel")
    if channel is None or net.has_input_block or len(net.input_shape) != 1:
        return spikes
    if spikes is None:
        spikes = np.zeros((channel, steps), dtype=np.int64)
    spikes = np.asarray(spikes)
    if spikes.ndim not in (2, 3) or spikes.shape[-2] != channel:
        return spikes  # the file's own input shape, or a shape _check_input refuses
    ones = np.ones(spikes.shape[:-2] + (1, spikes.shape[-1]), dtype=spikes.dtype)
    return np.concatenate([spikes, ones], axis=-2)


def input_message_bits(net: NetxNetwork, spikes: np.ndarray) -> int:
    """Bits of the messages a network without an input layer receives in its first synapse
    (netx's ``input_message_bits``): 0 for binary spikes (0/1), else the largest value's
    bit length; 0 behind an input layer (its input is current). Negative values are
    refused (graded spikes are unsigned)."""
    if net.has_input_block:
        return 0  # currents into the input layer's neurons, not spikes
    if spikes.min() < 0:
        raise SlssnnError(f"network {net.path}: input spikes must be >= 0 (graded spikes are "
                          "unsigned)")
    peak = int(spikes.max()) if spikes.size else 0
    return 0 if peak <= 1 else peak.bit_length()


def simulate(net: str | os.PathLike[str], *, steps: int, spikes: np.ndarray | None = None,
             bias: np.ndarray | None = None, backend: str = "emulator",
             reset_interval: int | None = None, reset_offset: int = 0,
             timeout: float | None = None, num_layers: int | None = None,
             spike_exp: int = DEFAULT_SPIKE_EXP) -> SimResult:
    """Run a netx network for ``steps`` steps on ``backend`` ("emulator" or "lava").

    Args:
        net: path to a netx HDF5 file (validated first).
        steps: global time steps.
        spikes: input to the first block, Lava order ``net.inp.shape + (steps,)``
            or with a leading batch axis: currents into an input layer's neurons,
            else spikes (graded values allowed) into the first synapse.
        bias: values for the input layer's ``bias_mant`` (Lava order
            ``net.inp.shape``, or batched), as lava-dl's tinynet test drives it.
        reset_interval, reset_offset: as in ``netx.hdf5.Network``.
        timeout: seconds a Lava run may take (per sample); then it is stopped
            and cleaned up, and ``SlssnnError`` raised.
        num_layers, spike_exp: as in ``netx.hdf5.Network``: build only the first
            ``num_layers`` layer groups; fraction bits of sigma-delta messages.
    Returns:
        :class:`SimResult`, the layers' output messages in Lava order, time last.
    """
    if backend not in SIM_BACKENDS:
        raise SlssnnError(f"unknown backend {backend!r}; known: {', '.join(SIM_BACKENDS)}")
    if steps < 1:
        raise SlssnnError(f"steps must be >= 1, got {steps}")
    network = read_network(net, num_layers)
    spikes = with_bias_channel(network, spikes, steps)
    batched = False
    message_bits = 0
    if spikes is not None:
        spikes = np.asarray(spikes)
        batched = _check_input(network, "spikes", spikes, steps)
        message_bits = input_message_bits(network, spikes)
    if bias is not None:
        bias = np.asarray(bias)
        batched = _check_input(network, "bias", bias, None) or batched
    batch = (len(spikes) if spikes is not None else len(bias)) if batched else 1
    needed = batch * steps * sum(layer.neurons * (4 if layer.is_sigma_delta else 1)
                                 for layer in network.layers)
    if needed > MAX_OUTPUT_BYTES:
        raise SlssnnError(f"network {network.path}: {batch} samples x {steps} steps need "
                          f"{needed / 2**30:.1f} GiB of spike records; split the batch")
    if backend == "emulator":
        rasters = _emulate(network, steps, spikes, bias, batched, reset_interval, reset_offset,
                           message_bits, spike_exp)
    else:
        rasters = _lava(network, steps, spikes, bias, batched, reset_interval, reset_offset,
                        message_bits, timeout, spike_exp)
        rasters = [np.rint(r).astype(np.int32 if layer.is_sigma_delta else np.int8)
                   for r, layer in zip(rasters, network.layers, strict=True)]
    ours = [_lava_to_ours(r, batched) for r in rasters]  # (B, steps, *shape)
    input_counts = None
    if spikes is not None and not network.has_input_block:
        input_counts = message_counts(_lava_to_ours(spikes, batched))
    totals = layer_activity(network.layers, [message_counts(r) for r in ours], steps,
                            ours[0].shape[0], input_counts=input_counts,
                            metadata=network.metadata)
    return SimResult(backend, steps, [LayerResult(t["name"], r, t)
                                      for r, t in zip(rasters, totals, strict=True)], batched)


def _batch_of(network: NetxNetwork, steps: int, spikes, bias, batched: bool
              ) -> tuple[torch.Tensor, torch.Tensor | None]:
    shape = network.input_shape
    if spikes is None:
        size = 1 if not batched else len(bias)
        inputs = torch.zeros((size, steps, *shape), dtype=torch.int64)
    else:
        inputs = torch.from_numpy(_lava_to_ours(spikes.astype(np.int64), batched))
    bias_ours = None
    if bias is not None:
        b = bias if batched else bias[None]
        b = np.swapaxes(b, 1, 3) if b.ndim == 4 else b  # (B, C, H, W)
        bias_ours = torch.from_numpy(b.astype(np.int64))
    return inputs, bias_ours


def _emulate(network, steps, spikes, bias, batched, reset_interval, reset_offset, message_bits,
             spike_exp):
    from .emulator import Emulator

    device = "cuda" if torch.cuda.is_available() else "cpu"
    inputs, bias_ours = _batch_of(network, steps, spikes, bias, batched)
    emulator = Emulator(network, reset_interval, reset_offset, device, spike_exp,
                        input_graded=message_bits > 0)
    out = emulator.run(inputs, steps, input_bias=bias_ours)
    return [_ours_to_lava(o.cpu().numpy(), batched) for o in out]


def _lava(network, steps, spikes, bias, batched, reset_interval, reset_offset, message_bits,
          timeout, spike_exp):
    from .lava_runner import run_netx

    options = {"timeout": timeout, "num_layers": network.num_layers, "spike_exp": spike_exp}
    if not batched:
        return run_netx(network.path, steps, spikes, bias, reset_interval, reset_offset,
                        message_bits, **options)
    size = len(spikes) if spikes is not None else len(bias)
    per_sample = [run_netx(network.path, steps,
                           None if spikes is None else spikes[b],
                           None if bias is None else bias[b], reset_interval, reset_offset,
                           message_bits, **options)
                  for b in range(size)]
    return [np.stack(layer) for layer in zip(*per_sample, strict=True)]
