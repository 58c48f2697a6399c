"""Spiking networks built from STCBs, described by a serialisable config.

A network is an input layer (a CUBA layer driven by the image as a constant
current: on-chip rate encoding) followed by conv/dense STCBs, with one
``flatten`` between the last conv and the first dense block. Only what netx
can load is allowed: conv, flatten, dense; downsampling is strided conv.

The :class:`ModelConfig` is stored in every checkpoint and in the exported
file's metadata, and :func:`build_model` is the only way to build a network.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import nn

from slssnn.errors import SlssnnError

from .fixed_point import DECAY_UNITY, INPUT_CURRENT_MAX
from .model_config import (  # noqa: F401  (re-exported: the historical home of these names)
    BLOCK_OPTIONS,
    INPUT_KINDS,
    LAYER_KEYS,
    LAYER_TYPES,
    ModelConfig,
    load_model_config,
    validate_config,
)
from .neuron import CubaParams, run_cuba, run_cuba_constant
from .stcb import STCB, NeuronConfig

INPUT_I_DECAY = 2048
"""Image input layer: current decay 1/2 per step (synaptic memory), see :func:`recipe_config`."""
INPUT_THRESHOLD = {1: 3, 2: 8}
"""Image input layer threshold (vThMant) per T, for currents 0..16 (pixel values of digits,
8-bit pixels / 16 elsewhere); :data:`INPUT_THRESHOLD_DEFAULT` for every T not listed. Measured
on digits, see :func:`digits_config`."""
INPUT_THRESHOLD_DEFAULT = 12
OUTPUT_CLAMP_SLOPE = 0.02
"""Gradient slope outside [0, T] of every network's output block (docs/method.md, "Clamp
slope"): an output class silent for every sample can still learn to fire."""
BLOCK_OPTIONS_DEFAULT: dict[str, Any] = {"i_decay": DECAY_UNITY}
"""Every STCB of a recipe network: IF neurons without synaptic memory (v_decay is the
config's 0). Set per block because the config-wide ``i_decay`` is the input layer's."""
# Names kept for the digits scripts and docs.
DIGITS_INPUT_I_DECAY = INPUT_I_DECAY
DIGITS_INPUT_THRESHOLD = INPUT_THRESHOLD
DIGITS_INPUT_THRESHOLD_DEFAULT = INPUT_THRESHOLD_DEFAULT
DIGITS_OUTPUT_CLAMP_SLOPE = OUTPUT_CLAMP_SLOPE


def recipe_layers(layers: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """``layers`` (conv / flatten / dense specs) with the shared recipe's block options: IF
    blocks without current memory, and the output clamp slope on the last block. Options a
    spec already sets win."""
    out = [dict(spec) for spec in layers]
    blocks = [spec for spec in out if spec["type"] != "flatten"]
    for spec in blocks:
        for key, value in BLOCK_OPTIONS_DEFAULT.items():
            spec.setdefault(key, value)
    if blocks:
        blocks[-1].setdefault("clamp_slope", OUTPUT_CLAMP_SLOPE)
    return out


def recipe_config(name: str, input_shape: tuple[int, int, int], num_classes: int,
                  timesteps: int, layers: list[dict[str, Any]], input_scale: float = 1.0,
                  input_kind: str = "current") -> ModelConfig:
    """A network with the shared recipe (every zoo network and digits; docs/method.md).

    - image input (``input_kind="current"``, currents 0..16 per step): the input
      layer keeps half its current from step to step (``i_decay`` 2048) with
      threshold :data:`INPUT_THRESHOLD` for T (12 from T = 4 on), so its spike
      count grades the pixel almost linearly; event input keeps the
      pass-through input layer (threshold 0, ``i_decay`` 4096);
    - every STCB an IF neuron without synaptic memory, and the output block's
      ``clamp_slope`` :data:`OUTPUT_CLAMP_SLOPE` (:func:`recipe_layers`).
    """
    if input_kind == "events":
        return ModelConfig(name=name, input_shape=input_shape, num_classes=num_classes,
                           timesteps=timesteps, layers=recipe_layers(layers),
                           input_scale=input_scale, input_threshold=0, input_kind="events")
    return ModelConfig(name=name, input_shape=input_shape, num_classes=num_classes,
                       timesteps=timesteps, layers=recipe_layers(layers),
                       input_scale=input_scale,
                       input_threshold=INPUT_THRESHOLD.get(timesteps, INPUT_THRESHOLD_DEFAULT),
                       i_decay=INPUT_I_DECAY)


def digits_config(timesteps: int) -> ModelConfig:
    """The conv STCB network for scikit-learn's 8x8 digits (strided downsampling).

    The recipe (measured over seeds 0-2 with ``bench/digits_sweep.py``; docs/datasets.md,
    "The digits network"), shared by every zoo network (:func:`recipe_config`):

    - the input layer gets the pixel value (0..16) as current on every step
      and keeps half of its current from step to step (``i_decay = 2048``;
      threshold 12), so its charge grows over the window and its spike count
      grades the pixel almost linearly (T = 4: pixels 0..16 -> 0 0 1 1 1 2 2 3
      3 3 3 3 3 4 4 4 4). Without that memory (``i_decay = 4096``) a constant
      current and reset to zero fire every k-th step, so the only counts are
      ``T // k``: {0, 1, 2, 4} at T = 4. The threshold is 12 from T = 4 on;
      shorter windows need a lower one (T = 1: 3, a pixel above 3 spikes;
      T = 2: 8), quantized test accuracy measured in short sweeps (T = 1,
      seeds 0-2: 12 -> 45 %, 6 -> 79 %, 3 -> 81 %; T = 2: 12 -> 93.9 % on
      seed 0, 8 -> 95.0 / 95.6 % on seeds 0 / 1);
    - conv 64 -> conv 128 stride 2 -> dense 256 -> dense 10 (twice the
      channels of the first recipe: 97.7 % -> 98.4 % mean at T = 4);
    - the STCBs are IF neurons without synaptic memory (``i_decay = 4096``,
      ``v_decay = 0``), set per block;
    - the output block's equivalent gradient leaks outside [0, T]
      (``clamp_slope``), so that an output class silent for every sample can
      still learn to fire.
    """
    return recipe_config(
        "digits", (1, 8, 8), 10, timesteps,
        [{"type": "conv", "out_channels": 64, "kernel": 3, "stride": 1, "padding": 1},
         {"type": "conv", "out_channels": 128, "kernel": 3, "stride": 2, "padding": 1},
         {"type": "flatten"},
         {"type": "dense", "out_features": 256},
         {"type": "dense", "out_features": 10}])


MODEL_CONFIGS = {"digits": digits_config}


def input_currents(images: torch.Tensor, scale: float) -> torch.Tensor:
    """The host-side encoding: ``clamp(round(images * scale))`` as int64 currents (a_in units)."""
    return encode_currents(images, scale)[0]


def encode_currents(images: torch.Tensor, scale: float) -> tuple[torch.Tensor, int]:
    """:func:`input_currents` and how many currents the clamp to
    ``[-INPUT_CURRENT_MAX, INPUT_CURRENT_MAX]`` changed (the input layer's clamp count)."""
    current = torch.round(images * scale).to(torch.int64)
    clamped = current.clamp(-INPUT_CURRENT_MAX, INPUT_CURRENT_MAX)
    return clamped, int((clamped != current).sum())


class InputLayer(nn.Module):
    """The netx ``input`` layer: a CUBA layer whose input is the image as current.

    ``currents = clamp(round(x * scale))`` is presented on every one of the T
    steps (images ``(B, C, H, W)``), or step by step (event frames
    ``(B, T, C, H, W)``); the layer fires like any CUBA layer (no trainable
    parameters).
    """

    def __init__(self, scale: float, params: CubaParams) -> None:
        super().__init__()
        self.scale = scale
        self.params = params

    def currents(self, images: torch.Tensor) -> torch.Tensor:
        """Integer input currents, int64, shape ``(B, C, H, W)``."""
        return input_currents(images, self.scale)

    def forward(self, images: torch.Tensor, steps: int) -> torch.Tensor:
        """Spikes of the input layer, float 0/1, shape ``(T, B, C, H, W)``."""
        current = self.currents(images)
        dtype = images.dtype if images.is_floating_point() else torch.get_default_dtype()
        if images.dim() != 5:  # the same current on every step
            return run_cuba_constant(current, steps, self.params, dtype)  # (T, B, C, H, W)
        if images.shape[1] != steps:  # event frames (B, T, C, H, W)
            raise SlssnnError(f"input has {images.shape[1]} event frames per sample, the "
                              f"model runs T={steps} steps")
        return run_cuba(current.transpose(0, 1), self.params, dtype)  # (T, B, C, H, W)


class SpikingNet(nn.Module):
    """Input layer + STCB stack; ``forward`` returns output counts and every layer's spikes."""

    def __init__(self, config: ModelConfig) -> None:
        super().__init__()
        validate_config(config)
        self.config = config
        self.input_layer = InputLayer(
            config.input_scale,
            CubaParams(config.i_decay, config.v_decay, config.input_threshold),
        )
        self.blocks = nn.ModuleList()
        self.flatten_before: list[bool] = []
        channels, height, width = config.input_shape
        features = None
        pending_flatten = False
        for spec in config.layers:
            if spec["type"] == "flatten":
                features, pending_flatten = channels * height * width, True
                continue
            if spec["type"] == "conv":
                conv = nn.Conv2d(channels, spec["out_channels"], spec["kernel"],
                                 stride=spec.get("stride", 1), padding=spec.get("padding", 0),
                                 dilation=spec.get("dilation", 1), groups=spec.get("groups", 1),
                                 bias=config.bias)
                height, width = (
                    (size + 2 * p - d * (k - 1) - 1) // s + 1 for size, p, d, k, s in zip(
                        (height, width), conv.padding, conv.dilation, conv.kernel_size,
                        conv.stride, strict=True))
                channels = spec["out_channels"]
                synapse: nn.Module = conv
            else:
                synapse = nn.Linear(features, spec["out_features"], bias=config.bias)
                features = spec["out_features"]
            neuron = NeuronConfig(spec.get("i_decay", config.i_decay),
                                  spec.get("v_decay", config.v_decay))
            self.blocks.append(STCB(synapse, neuron, config.initial_threshold,
                                    train_threshold=spec.get("train_threshold", True),
                                    batch_norm=spec.get("batch_norm", False),
                                    clamp_slope=spec.get("clamp_slope", 0.0)))
            self.flatten_before.append(pending_flatten)
            pending_flatten = False

    @property
    def timesteps(self) -> int:
        return self.config.timesteps

    def forward(self, images: torch.Tensor) -> tuple[torch.Tensor, list[torch.Tensor]]:
        """Run the network on a batch of images ``(B, C, H, W)`` or frames ``(B, T, C, H, W)``.

        Returns ``(counts, spikes)``: output spike counts ``(B, classes)``
        (value = true counts, gradient = equivalent gradient) and a list with
        every layer's spikes ``(T, B, *layer_shape)``, input layer first.
        """
        spikes = self.input_layer(images, self.timesteps)
        counts = spikes.sum(0)
        trace = [spikes]
        for block, flatten in zip(self.blocks, self.flatten_before, strict=True):
            if flatten:
                spikes, counts = spikes.flatten(2), counts.flatten(1)  # (T, B, F), (B, F)
            spikes, counts = block(spikes, counts)
            trace.append(spikes)
        return counts, trace


def predict(counts: torch.Tensor) -> torch.Tensor:
    """Readout used everywhere: argmax of output counts; ties go to the lowest class index.

    The counts are rounded first: the model's output counts carry the
    equivalent gradient as ``surrogate + (counts - surrogate).detach()``,
    whose float value can miss the integer count by an ulp, and such an ulp
    must not break a tie.
    """
    return torch.argmax(torch.round(counts), dim=-1)


def build_model(config: ModelConfig) -> SpikingNet:
    """Build the network a config describes."""
    return SpikingNet(config)


from . import zoo  # noqa: E402,F401  (registers one model per dataset into MODEL_CONFIGS)
