"""Test helpers: small networks with random weights that spike in every layer.

(No tests/__init__.py: lava's wheels install a top-level ``tests`` package.)
"""

from __future__ import annotations

import torch

from slssnn.training.models import ModelConfig, SpikingNet, build_model

CONV_NET_LAYERS = [
    {"type": "conv", "out_channels": 6, "kernel": 3, "stride": 1, "padding": 1},
    {"type": "conv", "out_channels": 8, "kernel": 3, "stride": 2, "padding": 1},
    {"type": "conv", "out_channels": 8, "kernel": 2, "stride": 1, "padding": 0},
    {"type": "flatten"},
    {"type": "dense", "out_features": 12},
    {"type": "dense", "out_features": 5},
]


def random_net(timesteps: int = 5, bias: bool = True, v_decay: int = 512,
               layers: list | None = None, seed: int = 0,
               input_shape: tuple[int, int, int] = (2, 7, 7)) -> SpikingNet:
    """A network with several conv layers, bias and leak, tuned to spike everywhere."""
    torch.manual_seed(seed)
    layers = layers or CONV_NET_LAYERS
    config = ModelConfig(name="test", input_shape=input_shape,
                         num_classes=layers[-1].get("out_features", 5),
                         timesteps=timesteps, layers=layers,
                         input_scale=4.0, input_threshold=20, v_decay=v_decay, bias=bias,
                         initial_threshold=0.3)
    model = build_model(config)
    with torch.no_grad():
        for block in model.blocks:
            block.synapse.weight.add_(0.05)  # net positive drive keeps layers active
            if block.synapse.bias is not None:
                block.synapse.bias.uniform_(-0.05, 0.1)
    return model.eval()


def random_images(n: int, shape: tuple[int, ...] = (2, 7, 7), seed: int = 1) -> torch.Tensor:
    """Integer-valued images 0..16 like the digits data."""
    g = torch.Generator().manual_seed(seed)
    return torch.randint(0, 17, (n, *shape), generator=g).float()


def random_digits_net(timesteps: int = 4, seed: int = 0) -> SpikingNet:
    """The digits architecture with random weights and a low threshold, so every layer spikes."""
    from slssnn.training.models import digits_config

    torch.manual_seed(seed)
    config = digits_config(timesteps)
    config.initial_threshold = 0.25
    return build_model(config).eval()
