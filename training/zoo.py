"""The model zoo: one STCB network per dataset, built only from what netx loads.

Every network is an input layer, a stack of 3x3 conv STCBs that downsample by
stride 2 (netx 0.6.0 cannot load pooling), one flatten and two dense STCBs.
Every network is built by :func:`slssnn.training.models.recipe_config`, the
recipe digits proved and every zoo network shares (docs/method.md): image
datasets feed ``round(pixel / 16)`` (0..16 for 8-bit pixels, digits' range)
as input current each step into an input layer with current memory
(``i_decay = 2048``, threshold 12 at T >= 4); event datasets feed one current
of 1 per event at its step into an input layer with threshold 0 and
``i_decay = 4096``, so it passes the frames through spike for spike. Every
output block has the clamp slope 0.02.

The configs are registered into :data:`slssnn.training.models.MODEL_CONFIGS`
under the dataset's name; :data:`DEFAULT_TIMESTEPS` is the T each is meant
for (the CLI's default ``--timesteps``).
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

from slssnn.errors import SlssnnError

from .datasets import EVENTS, Dataset
from .models import MODEL_CONFIGS, ModelConfig, recipe_config

PIXEL_SCALE = 1 / 16
"""8-bit pixels 0..255 -> input currents 0..16 (digits' range)."""


def conv(channels: int, stride: int = 1) -> dict[str, Any]:
    """A 3x3 conv STCB spec with 'same' padding (stride 2 halves H and W)."""
    return {"type": "conv", "out_channels": channels, "kernel": 3, "stride": stride,
            "padding": 1}


def dense(features: int) -> dict[str, Any]:
    """A dense STCB spec."""
    return {"type": "dense", "out_features": features}


FLATTEN: dict[str, Any] = {"type": "flatten"}


def _image(name: str, shape: tuple[int, int, int], classes: int, layers: list[dict[str, Any]]
           ) -> Callable[[int], ModelConfig]:
    def config(timesteps: int) -> ModelConfig:
        return recipe_config(name, shape, classes, timesteps, layers, input_scale=PIXEL_SCALE)
    config.__doc__ = f"The {name} network (input {shape}, {classes} classes)."
    return config


def _events(name: str, shape: tuple[int, int, int], classes: int, layers: list[dict[str, Any]]
            ) -> Callable[[int], ModelConfig]:
    def config(timesteps: int) -> ModelConfig:
        return recipe_config(name, shape, classes, timesteps, layers, input_kind="events")
    config.__doc__ = f"The {name} network (event frames {shape}, {classes} classes)."
    return config


def _28x28(classes: int) -> list[dict[str, Any]]:
    """28x28 -> 14 -> 7, then dense 256."""
    return [conv(32), conv(64, 2), conv(64), conv(128, 2), FLATTEN, dense(256), dense(classes)]


def _vgg_cifar(classes: int) -> list[dict[str, Any]]:
    """32x32 -> 16 -> 8 -> 4, then dense 512."""
    return [conv(64), conv(128, 2), conv(128), conv(256, 2), conv(256), conv(256, 2),
            FLATTEN, dense(512), dense(classes)]


ZOO: dict[str, Callable[[int], ModelConfig]] = {
    "digits-dvs": _events("digits-dvs", (2, 10, 10), 10,
                          [conv(64), conv(128, 2), FLATTEN, dense(256), dense(10)]),
    "mnist": _image("mnist", (1, 28, 28), 10, _28x28(10)),
    "fashion-mnist": _image("fashion-mnist", (1, 28, 28), 10, _28x28(10)),
    "cifar10": _image("cifar10", (3, 32, 32), 10, _vgg_cifar(10)),
    "cifar100": _image("cifar100", (3, 32, 32), 100, _vgg_cifar(100)),
    "tiny-imagenet": _image("tiny-imagenet", (3, 64, 64), 200,
                            [conv(64), conv(128, 2), conv(128), conv(256, 2), conv(256),
                             conv(512, 2), conv(512, 2), FLATTEN, dense(1024), dense(200)]),
    "dvs-cifar10": _events("dvs-cifar10", (2, 48, 48), 10,
                           [conv(64), conv(128, 2), conv(128), conv(256, 2), conv(256, 2),
                            FLATTEN, dense(512), dense(10)]),
}

DEFAULT_TIMESTEPS = {"digits": 4, "digits-dvs": 4, "mnist": 4, "fashion-mnist": 4, "cifar10": 4,
                     "cifar100": 4, "tiny-imagenet": 4, "dvs-cifar10": 10}
"""The T each network is meant for (event datasets are binned into T frames)."""

MODEL_CONFIGS.update(ZOO)

DATA_FILE_TIMESTEPS = 4
"""T for a data file of images trained without ``--model`` (event frames carry their own T)."""


def data_file_config(data: Dataset, timesteps: int) -> ModelConfig:
    """The network for a user's data file trained without ``--model``: conv 32, conv 64
    stride 2, flatten, dense 256, dense classes, sized to the data's input shape and
    classes; images enter as ``round(pixel / 16)``, events pass through (like the zoo)."""
    layers = [conv(32), conv(64, 2), FLATTEN, dense(256), dense(len(data.class_names))]
    name = Path(data.name).stem or "data"
    make = _events if data.kind == EVENTS else _image
    return make(name, tuple(data.input_shape), len(data.class_names), layers)(timesteps)


def check_fits(config: ModelConfig, data: Dataset) -> None:
    """Refuse, before training, a network that cannot take ``data``: input shape, input kind
    (images or event frames) and labels within ``num_classes``."""
    if tuple(config.input_shape) != tuple(data.input_shape):
        raise SlssnnError(f"model {config.name!r} takes input {tuple(config.input_shape)}, "
                          f"dataset {data.name!r} has {tuple(data.input_shape)}")
    if (config.input_kind == "events") != (data.kind == EVENTS):
        raise SlssnnError(f"model {config.name!r} takes {config.input_kind!r} input, dataset "
                          f"{data.name!r} holds {data.kind} data")
    top = max(int(data.train.labels.max()), int(data.test.labels.max()))
    if top >= config.num_classes:
        raise SlssnnError(f"dataset {data.name!r} has label {top}, model {config.name!r} "
                          f"has {config.num_classes} classes")
