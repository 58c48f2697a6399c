"""The model description: :class:`ModelConfig`, validated once, at construction.

A :class:`ModelConfig` is everything needed to rebuild a network: the input
shape, the number of classes, T and the layer list with each block's
options. It is stored in every checkpoint and in the exported file's
metadata, and a user writes one as JSON (``slssnn train --model MODEL.json``,
:func:`load_model_config`). Every check lives in :func:`validate_config`,
which the constructor runs: a bad entry is one line naming the layer index
and the field.
"""

from __future__ import annotations

import math
import os
from dataclasses import asdict, dataclass, field, fields
from typing import Any

from slssnn.errors import SlssnnError

from .fixed_point import DECAY_MAX, DECAY_MIN, DECAY_UNITY, I_DECAY_MIN, THRESHOLD_MAX

LAYER_TYPES = ("conv", "flatten", "dense")
INPUT_KINDS = ("current", "events")
BLOCK_OPTIONS = ("i_decay", "v_decay", "train_threshold", "batch_norm", "clamp_slope")
"""Per-block options of a conv or dense layer spec (see :class:`ModelConfig`)."""
LAYER_KEYS = {
    "conv": ("type", "out_channels", "kernel", "stride", "padding", "dilation", "groups",
             *BLOCK_OPTIONS),
    "dense": ("type", "out_features", *BLOCK_OPTIONS),
    "flatten": ("type",),
}
REQUIRED_LAYER_KEYS = {"conv": ("out_channels", "kernel"), "dense": ("out_features",),
                       "flatten": ()}
CONV_PAIRS = {"kernel": (1, 1), "stride": (1, 1), "padding": (0, 0), "dilation": (1, 1)}
"""Conv geometry fields: an integer or ``[height, width]``; (default, minimum)."""
REQUIRED_FIELDS = ("name", "input_shape", "num_classes", "timesteps", "layers")


@dataclass
class ModelConfig:
    """Everything needed to rebuild a network (stored in checkpoints and files).

    ``input_shape`` is (C, H, W) of one step's input; ``num_classes`` the
    number of output neurons (the readout is the argmax of their spike
    counts); ``timesteps`` T, the steps per sample. ``layers`` is a list of
    dicts, each ``{"type": "conv", "out_channels", "kernel"[, "stride",
    "padding", "dilation", "groups"]}`` (geometry fields an integer or
    ``[height, width]``), ``{"type": "flatten"}`` (exactly one, between the
    last conv and the first dense) or ``{"type": "dense", "out_features"}``;
    the last layer has ``num_classes`` outputs.
    A conv or dense spec may also set its block's options (docs/method.md):
    ``"v_decay"`` / ``"i_decay"`` (CUBA decays in 1/4096 per step; default
    the config-wide ``v_decay`` / ``i_decay``: ``v_decay = 0`` is IF, ``> 0``
    leaky), ``"train_threshold"`` (default True; False keeps the threshold
    frozen at ``initial_threshold``), ``"batch_norm"`` (default False:
    batch norm after the synapse in training, folded into weight and bias
    at export) and ``"clamp_slope"`` (default 0: slope of the equivalent
    gradient outside [0, T]; training only, nothing is exported).
    The input layer receives ``round(pixel * input_scale)`` as current on
    each of the ``timesteps`` steps and fires at ``v > input_threshold``.
    ``input_kind`` is ``"current"`` (a static image, the same current every
    step) or ``"events"`` (T binary spike frames ``(T, C, H, W)`` per sample:
    each event is a current ``input_scale > input_threshold`` at its step,
    and with ``i_decay = 4096`` the input layer fires exactly at that step).

    The constructor validates (:func:`validate_config`); :meth:`from_dict`
    also refuses missing and unknown fields.
    """

    name: str
    input_shape: tuple[int, int, int]
    num_classes: int
    timesteps: int
    layers: list[dict[str, Any]]
    input_scale: float = 1.0
    input_threshold: int = 8
    i_decay: int = 4096
    v_decay: int = 0
    bias: bool = False
    initial_threshold: float = 1.0
    input_kind: str = "current"
    extra: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if isinstance(self.input_shape, list):
            self.input_shape = tuple(self.input_shape)
        validate_config(self)

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["input_shape"] = list(self.input_shape)
        return d

    @staticmethod
    def from_dict(d: dict[str, Any]) -> ModelConfig:
        """A config from its dict form (:meth:`to_dict`, or a user's JSON object)."""
        if not isinstance(d, dict):
            raise SlssnnError(f"a model config must be a JSON object, got {_kind(d)}")
        known = [f.name for f in fields(ModelConfig)]
        unknown = sorted(set(d) - set(known))
        if unknown:
            raise SlssnnError(f"unknown field {unknown[0]!r}; known: {', '.join(known)}")
        missing = [k for k in REQUIRED_FIELDS if k not in d]
        if missing:
            raise SlssnnError(f"missing field {missing[0]!r} (required: "
                              f"{', '.join(REQUIRED_FIELDS)})")
        return ModelConfig(**d)


def load_model_config(path: str | os.PathLike[str]) -> ModelConfig:
    """Read a :class:`ModelConfig` from a JSON file; errors name the file, layer and field."""
    from slssnn.jsonfile import read_json

    data = read_json(path, "model file")
    try:
        return ModelConfig.from_dict(data)
    except SlssnnError as exc:
        raise SlssnnError(f"model file {path}: {exc}") from None


def _kind(value: Any) -> str:
    return {dict: "an object", list: "a list", str: "a string", bool: "a boolean",
            type(None): "null"}.get(type(value), type(value).__name__)


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _is_number(value: Any) -> bool:
    return (isinstance(value, int | float) and not isinstance(value, bool)
            and math.isfinite(value))


def _int_field(where: str, key: str, value: Any, low: int, high: int | None = None) -> int:
    if not _is_int(value) or value < low or (high is not None and value > high):
        bound = f"in [{low}, {high}]" if high is not None else f">= {low}"
        raise SlssnnError(f"{where}field {key!r} must be an integer {bound}, got {value!r}")
    return value


def validate_config(config: ModelConfig) -> None:
    """Refuse a config netx could not run, in one line naming the field (and the layer index).

    Checks each top-level field's type and range, then walks the layer list
    with the running shape, so that a kernel larger than its input, a
    ``groups`` that does not divide the channels or a last layer without
    ``num_classes`` outputs is named by its index.
    """
    if not isinstance(config.name, str) or not config.name:
        raise SlssnnError(f"field 'name' must be a non-empty string, got {config.name!r}")
    shape = config.input_shape
    if not isinstance(shape, list | tuple) or len(shape) != 3 \
            or not all(_is_int(s) and s >= 1 for s in shape):
        raise SlssnnError(f"field 'input_shape' must be [C, H, W], three integers >= 1, "
                          f"got {shape!r}")
    _int_field("", "num_classes", config.num_classes, 1)
    if not _is_int(config.timesteps) or config.timesteps < 1:
        raise SlssnnError(f"timesteps must be >= 1, got {config.timesteps!r} "
                          "(field 'timesteps')")
    if not _is_number(config.input_scale) or config.input_scale <= 0:
        raise SlssnnError(f"field 'input_scale' must be a number > 0, got {config.input_scale!r}")
    _int_field("", "input_threshold", config.input_threshold, 0, THRESHOLD_MAX)
    _int_field("", "i_decay", config.i_decay, I_DECAY_MIN, DECAY_MAX)
    _int_field("", "v_decay", config.v_decay, DECAY_MIN, DECAY_MAX)
    if not isinstance(config.bias, bool):
        raise SlssnnError(f"field 'bias' must be true or false, got {config.bias!r}")
    if not _is_number(config.initial_threshold) or config.initial_threshold <= 0:
        raise SlssnnError(f"field 'initial_threshold' must be a number > 0, "
                          f"got {config.initial_threshold!r}")
    if not isinstance(config.extra, dict):
        raise SlssnnError(f"field 'extra' must be an object, got {_kind(config.extra)}")
    _check_input_kind(config)
    _check_layers(config)


def _check_layers(config: ModelConfig) -> None:
    layers = config.layers
    if not isinstance(layers, list) or not layers:
        raise SlssnnError(f"field 'layers' must be a non-empty list of layer objects, "
                          f"got {layers!r}")
    flat = False
    size: list[int] = list(config.input_shape)  # (C, H, W), then [features] after flatten
    for i, spec in enumerate(layers):
        if not isinstance(spec, dict):
            raise SlssnnError(f"layer {i}: must be an object with a 'type', got {_kind(spec)}")
        kind = spec.get("type")
        if kind not in LAYER_TYPES:
            raise SlssnnError(f"layer {i}: unknown layer type {kind!r}; known: "
                              + ", ".join(LAYER_TYPES))
        if kind == "conv" and flat:
            raise SlssnnError(f"layer {i}: conv after flatten is not supported")
        if kind == "dense" and not flat:
            raise SlssnnError(f"layer {i}: dense needs a 'flatten' layer before it")
        if kind == "flatten" and flat:
            raise SlssnnError(f"layer {i}: a second 'flatten' is not supported")
        unknown = sorted(set(spec) - set(LAYER_KEYS[kind]))
        if unknown:
            raise SlssnnError(f"layer {i}: unknown field {unknown[0]!r} for {kind}; known: "
                              + ", ".join(LAYER_KEYS[kind]))
        missing = [k for k in REQUIRED_LAYER_KEYS[kind] if k not in spec]
        if missing:
            raise SlssnnError(f"layer {i}: missing field {missing[0]!r} for {kind}")
        if kind == "flatten":
            flat, size = True, [math.prod(size)]
            continue
        if kind == "conv":
            size = _conv_shape(i, spec, size)
        else:
            size = [_int_field(f"layer {i}: ", "out_features", spec["out_features"], 1)]
        _check_block_options(i, spec)
    outputs = math.prod(size)
    if outputs != config.num_classes:
        raise SlssnnError(f"layer {len(layers) - 1}: the last layer has {outputs} outputs, "
                          f"field 'num_classes' is {config.num_classes}")


def _pair(i: int, spec: dict[str, Any], key: str) -> tuple[int, int]:
    default, low = CONV_PAIRS[key]
    value = spec.get(key, default)
    pair = list(value) if isinstance(value, list | tuple) else [value, value]
    if len(pair) != 2 or not all(_is_int(v) and v >= low for v in pair):
        raise SlssnnError(f"layer {i}: field {key!r} must be an integer >= {low} or "
                          f"[height, width] of such, got {value!r}")
    return pair[0], pair[1]


def _conv_shape(i: int, spec: dict[str, Any], size: list[int]) -> list[int]:
    """The conv's output (C, H, W) from its input ``size``; geometry errors name the field."""
    where = f"layer {i}: "
    out_channels = _int_field(where, "out_channels", spec["out_channels"], 1)
    groups = _int_field(where, "groups", spec.get("groups", 1), 1)
    if size[0] % groups or out_channels % groups:
        raise SlssnnError(f"{where}field 'groups' {groups} must divide the input channels "
                          f"{size[0]} and out_channels {out_channels}")
    kernel, stride, padding, dilation = (_pair(i, spec, k) for k in CONV_PAIRS)
    out = [out_channels]
    for axis in (0, 1):  # the conv output-size formula, per spatial axis
        reach = dilation[axis] * (kernel[axis] - 1) + 1
        n = (size[1 + axis] + 2 * padding[axis] - reach) // stride[axis] + 1
        if n < 1:
            raise SlssnnError(f"{where}field 'kernel' {spec['kernel']!r} is larger than its "
                              f"padded input {size[1]}x{size[2]}")
        out.append(n)
    return out


def _check_block_options(i: int, spec: dict[str, Any]) -> None:
    """Refuse a block option netx could not export, naming the layer and field."""
    for key, low in (("i_decay", I_DECAY_MIN), ("v_decay", DECAY_MIN)):
        if key in spec:
            value = spec[key]
            if not _is_int(value) or not low <= value <= DECAY_MAX:
                raise SlssnnError(f"layer {i}: field {key!r} must be an integer in "
                                  f"[{low}, {DECAY_MAX}] (1/4096 per step), got {value!r}")
    slope = spec.get("clamp_slope", 0.0)
    if not _is_number(slope) or not 0 <= slope <= 1:
        raise SlssnnError(f"layer {i}: field 'clamp_slope' must be a number in [0, 1], "
                          f"got {slope!r}")
    for key in ("train_threshold", "batch_norm"):
        if key in spec and not isinstance(spec[key], bool):
            raise SlssnnError(f"layer {i}: field {key!r} must be true or false, "
                              f"got {spec[key]!r}")


def _check_input_kind(config: ModelConfig) -> None:
    """An event input layer must fire exactly at each event's step (a pass-through)."""
    if config.input_kind not in INPUT_KINDS:
        raise SlssnnError(f"field 'input_kind': unknown {config.input_kind!r}; known: "
                          + ", ".join(INPUT_KINDS))
    if config.input_kind == "events" and (config.i_decay != DECAY_UNITY
                                          or config.input_scale <= config.input_threshold):
        raise SlssnnError("field 'input_kind': 'events' needs i_decay = 4096 and input_scale > "
                          "input_threshold, so that the input layer fires exactly at each event")
