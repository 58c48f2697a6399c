"""What the GPU (or CPU) runs when its energy is measured: the SNN and its ANN twin.

Both are built from one trained :class:`SpikingNet`, from its quantized parameters
(integer weights ``W``, threshold ``theta``, bias ``b`` per block; see
``training/quantize.py``), and run in float32 the way a GPU runs a network:

- :class:`SnnFloat`, the SNN: T steps, layer by layer. The input layer receives the image
  currents ``round(x * scale)`` on every step; each block applies its synapse to all T
  steps of its input spikes at once, then its neurons integrate over the steps::

      u[t] = u[t-1] * (1 - iDecay/4096) + a[t]
      v[t] = v[t-1] * (1 - vDecay/4096) + u[t] + b
      s[t] = v[t] > theta;  v[t] = 0 where s[t]

  For integrate-and-fire neurons (iDecay 4096, vDecay 0, the default) every value is an
  integer below 2**24 and the spikes are those of the fixed-point model (the tests check
  it); with leak the float decay does not round like Loihi's, and 24-bit wrapping is not
  modelled: this is the GPU's version of the network, not the chip's;
- :class:`AnnTwin`, the ANN twin: ReLU in place of IF, one pass. Its activations
  approximate the SNN's spike counts (the equivalent-gradient relation ``c ~= A / theta``)::

      a_0 = relu(T * round(x * scale) / input_threshold)   (event frames: events per pixel)
      a_l = relu((W_l a_{l-1} + T * b_l) / theta_l)

  It performs exactly the multiply-accumulates counted as ``ann_macs`` in a run record.

Both take images ``(B, C, H, W)`` (or event frames ``(B, T, C, H, W)``) and return
``(B, classes)`` (spike counts / activations).
"""

from __future__ import annotations

import copy
from typing import Any

import torch
from torch import nn

from slssnn.errors import SlssnnError
from slssnn.training.fixed_point import DECAY_UNITY
from slssnn.training.models import SpikingNet, input_currents

WORKLOADS = ("snn", "ann")


def _synapse_copy(synapse: nn.Conv2d | nn.Linear, weight: torch.Tensor,
                  bias: torch.Tensor | None) -> nn.Module:
    """A fresh float32 synapse with ``weight`` and ``bias`` (None: no bias)."""
    fresh = copy.deepcopy(synapse).float()
    fresh.weight = nn.Parameter(weight.detach().float().clone(), requires_grad=False)
    fresh.bias = None if bias is None else nn.Parameter(bias.detach().float().clone(),
                                                        requires_grad=False)
    return fresh


class _SnnLayer(nn.Module):
    def __init__(self, synapse: nn.Module, threshold: float, bias: torch.Tensor | None,
                 flatten: bool, is_conv: bool, i_decay: int, v_decay: int) -> None:
        super().__init__()
        self.synapse = synapse
        self.threshold = float(threshold)
        self.i_keep = 1.0 - i_decay / DECAY_UNITY
        self.v_keep = 1.0 - v_decay / DECAY_UNITY
        shape = (-1, 1, 1) if is_conv else (-1,)
        self.register_buffer("bias", None if bias is None else bias.float().view(shape))
        self.flatten = flatten


def integrate(a: torch.Tensor, threshold: float, bias: torch.Tensor | float,
              i_keep: float, v_keep: float) -> torch.Tensor:
    """Float CUBA neurons over the leading time axis; ``a`` is ``(T, B, *neurons)``.

    Returns spikes as float 0/1 of the same shape (equations in the module docstring).
    """
    u = torch.zeros_like(a[0])
    v = torch.zeros_like(a[0])
    out = []
    for a_t in a:
        u = u * i_keep + a_t
        v = v * v_keep + u + bias
        s = v > threshold
        v = v.masked_fill(s, 0.0)
        out.append(s)
    return torch.stack(out).to(a.dtype)  # (T, B, *neurons)


class SnnFloat(nn.Module):
    """The SNN in float32 for T steps; ``forward(images) -> counts (B, classes)``."""

    def __init__(self, model: SpikingNet) -> None:
        super().__init__()
        config = model.config
        self.timesteps = config.timesteps
        self.input_scale = config.input_scale
        self.input_threshold = float(config.input_threshold)
        self.i_keep = 1.0 - config.i_decay / DECAY_UNITY
        self.v_keep = 1.0 - config.v_decay / DECAY_UNITY
        layers = []
        with torch.no_grad():
            for block, flatten in zip(model.blocks, model.flatten_before, strict=True):
                q = block.quantized()
                layers.append(_SnnLayer(_synapse_copy(block.synapse, q.weight, None),
                                        float(q.threshold), q.bias, flatten, block.is_conv,
                                        block.neuron.i_decay, block.neuron.v_decay))
        self.layers = nn.ModuleList(layers)

    def trace(self, images: torch.Tensor) -> list[torch.Tensor]:
        """Every layer's spikes ``(T, B, *layer_shape)``, input layer first."""
        steps = self.timesteps
        current = input_currents(images, self.input_scale).to(torch.float32)
        if images.dim() == 5:  # event frames (B, T, C, H, W)
            a = current.transpose(0, 1)  # (T, B, C, H, W)
        else:
            a = current.unsqueeze(0).expand(steps, *current.shape)  # (T, B, C, H, W)
        spikes = integrate(a, self.input_threshold, 0.0, self.i_keep, self.v_keep)
        out = [spikes]
        for layer in self.layers:
            if layer.flatten:
                spikes = spikes.flatten(2)  # (T, B, F)
            a = layer.synapse(spikes.flatten(0, 1))  # (T*B, *out)
            a = a.view(steps, -1, *a.shape[1:])  # (T, B, *out)
            bias = 0.0 if layer.bias is None else layer.bias
            spikes = integrate(a, layer.threshold, bias, layer.i_keep, layer.v_keep)
            out.append(spikes)
        return out

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        return self.trace(images)[-1].sum(0)


class AnnTwin(nn.Module):
    """The ANN twin: ReLU in place of IF, one pass; ``forward(images) -> (B, classes)``."""

    def __init__(self, model: SpikingNet) -> None:
        super().__init__()
        config = model.config
        self.timesteps = config.timesteps
        self.input_scale = config.input_scale
        self.input_gain = config.timesteps / config.input_threshold
        layers: list[nn.Module] = []
        with torch.no_grad():
            for block, flatten in zip(model.blocks, model.flatten_before, strict=True):
                q = block.quantized()
                bias = None if q.bias is None else config.timesteps * q.bias / q.threshold
                if flatten:
                    layers.append(nn.Flatten())
                layers += [_synapse_copy(block.synapse, q.weight / q.threshold, bias), nn.ReLU()]
        self.body = nn.Sequential(*layers)

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        current = input_currents(images, self.input_scale).to(torch.float32)
        if images.dim() == 5:  # event frames (B, T, C, H, W): one spike per event
            return self.body(torch.relu(current).sum(1) / self.input_scale)
        return self.body(torch.relu(current * self.input_gain))


def build_workloads(model: SpikingNet) -> dict[str, nn.Module]:
    """``{"snn": SnnFloat, "ann": AnnTwin}`` of ``model``, in eval mode, on the CPU."""
    return {"snn": SnnFloat(model).eval(), "ann": AnnTwin(model).eval()}


def model_layers(model: SpikingNet) -> list[dict[str, Any]]:
    """The model's layers as a run record lists them: ``type``, ``shape``, ``neurons``,
    ``ann_macs`` (per inference), input layer first."""
    shape = tuple(model.config.input_shape)
    layers = [{"type": "input", "shape": list(shape), "neurons": _prod(shape), "ann_macs": 0}]
    x = torch.zeros(1, *shape)
    with torch.no_grad():
        for block, flatten in zip(model.blocks, model.flatten_before, strict=True):
            if flatten:
                x = x.flatten(1)
            y = block.synapse(x)
            weight = block.synapse.weight
            macs = y[0].numel() * (weight[0].numel() if block.is_conv else weight.shape[1])
            layers.append({"type": "conv" if block.is_conv else "dense",
                           "shape": list(y.shape[1:]), "neurons": y[0].numel(),
                           "ann_macs": int(macs)})
            x = y
    return layers


def check_matches_run(model: SpikingNet, run: dict[str, Any], checkpoint: str,
                      run_path: str) -> None:
    """Raise SlssnnError unless the checkpoint's network is the run's (layers, T)."""
    where = f"checkpoint {checkpoint} does not match run {run_path}"
    if model.config.timesteps != run["timesteps"]:
        raise SlssnnError(f"{where}: timesteps {model.config.timesteps} vs {run['timesteps']}")
    mine = model_layers(model)
    theirs = [layer for layer in run["layers"] if layer["type"] != "flatten"]
    if len(mine) != len(theirs):
        raise SlssnnError(f"{where}: {len(mine)} layers vs {len(theirs)}")
    for i, (a, b) in enumerate(zip(mine, theirs, strict=True)):
        for key in ("type", "neurons", "ann_macs", "shape"):
            if key in b and a[key] != b[key]:
                raise SlssnnError(f"{where}: layer {b.get('name', i)} field '{key}' is "
                                  f"{a[key]!r} in the checkpoint, {b[key]!r} in the run")


def _prod(shape: tuple[int, ...]) -> int:
    n = 1
    for s in shape:
        n *= int(s)
    return n
