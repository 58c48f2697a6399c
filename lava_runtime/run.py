"""Run an exported network on a dataset split and record what it did (``run-*.json``).

A run record holds ``backend``, ``network``, ``dataset``, ``split``,
``samples``, ``timesteps``, ``accuracy``, ``predictions`` and ``labels`` (one
int per sample, in split order), ``layers`` (per layer, in order: ``name``,
``type``, ``shape``, ``neurons`` and the totals over the run ``spikes``,
``synops``, ``neuron_updates``, plus ``ann_macs`` per inference; see
:mod:`.activity`) and ``wall_seconds``.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import torch

from slssnn.errors import SlssnnError
from slssnn.export.netx_reader import NetxNetwork, read_network
from slssnn.training.datasets import EVENTS, Dataset, Split, load_dataset
from slssnn.training.models import SpikingNet, encode_currents, predict

from .activity import layer_activity, message_counts
from .simulate import input_message_bits

RECORD_VERSION = 1
"""Version of the run record's fields (``energy/runfile.py`` refuses others)."""

BACKENDS = ("lava", "emulator")
"""Engines of `slssnn run`: Lava's CPU simulator, or the bit-exact batched emulator."""

READOUTS = ("spikes", "voltage")
"""How a dataset run predicts: argmax of output spike counts, or of the output layer's
voltage where each sample's window ends; ties go to the lowest class index."""


def make_record(backend: str, net: NetxNetwork, dataset: str, split: Split,
                spikes: list[np.ndarray], wall_seconds: float,
                voltage: np.ndarray | None = None,
                input_counts: np.ndarray | None = None) -> dict[str, Any]:
    """Build a run record from every layer's spikes ``(N, T, *layer_shape)`` (and, for the
    voltage readout, the output layer's final ``v`` per sample ``(N, *shape)``)."""
    samples, timesteps = spikes[-1].shape[:2]
    output = spikes[-1].reshape(samples, timesteps, -1).sum(1).astype(np.int64)
    per_neuron = [s.sum(axis=(0, 1), dtype=np.int64) for s in spikes]
    return record_from_counts(backend, net, dataset, split, output, per_neuron, int(timesteps),
                              wall_seconds, voltage, input_counts)


def record_from_counts(backend: str, net: NetxNetwork, dataset: str, split: Split,
                       output: np.ndarray, per_neuron: list[np.ndarray], timesteps: int,
                       wall_seconds: float, voltage: np.ndarray | None = None,
                       input_counts: np.ndarray | None = None) -> dict[str, Any]:
    """Build a run record from output spike counts per sample ``(N, classes)`` and every
    layer's spikes per neuron over the run (shaped like the layer). With ``voltage``
    (the output layer's ``v`` where each sample's window ends, ``(N, classes)``), the
    prediction is its argmax (``readout: "voltage"``), else the counts' (``"spikes"``);
    ties go to the lowest class index either way. ``input_counts``: the messages each
    input sent into a first synapse (no input layer), for that block's synops."""
    samples = output.shape[0]
    readout = output if voltage is None else np.asarray(voltage).reshape(samples, -1)
    predictions = predict(torch.from_numpy(np.asarray(readout, dtype=np.int64)))
    labels = split.labels[:samples]
    return {
        "version": RECORD_VERSION,
        "backend": backend,
        "network": str(net.path),
        "dataset": dataset,
        "split": "test",
        "samples": int(samples),
        "timesteps": int(timesteps),
        "readout": "spikes" if voltage is None else "voltage",
        "accuracy": float((predictions == labels).float().mean()),
        "predictions": predictions.tolist(),
        "labels": labels.tolist(),
        "layers": layer_activity(net.layers, per_neuron, int(timesteps), int(samples),
                                 input_counts=input_counts, metadata=net.metadata),
        "wall_seconds": round(wall_seconds, 3),
    }


DataSource = str | Dataset
"""What a run takes: a dataset name, the path of a ``.npz`` data file, or a loaded
:class:`Dataset` (e.g. :func:`slssnn.training.datasets.dataset_from_arrays`)."""


def _network_inputs(net: NetxNetwork, dataset: DataSource, limit: int | None,
                    data_dir: str | os.PathLike[str] | None = None,
                    timesteps: int | None = None, input_scale: float | None = None
                    ) -> tuple[Split, np.ndarray, int]:
    """The test split to run, its input currents and T.

    Currents are ``(N, *input_shape)`` for images (the same every step) or
    ``(N, T, *input_shape)`` for event frames (one per step; the dataset is
    binned into the network's T frames). ``timesteps`` and ``input_scale``
    (current = ``round(pixel * input_scale)``, pixels in the dataset's own
    units) replace the file's metadata, or stand in for it in a network
    trained elsewhere. A flat input layer ``(n,)`` takes each sample
    flattened in (C, H, W) order where ``n`` is its size.
    """
    meta = net.metadata
    timesteps = meta.get("timesteps") if timesteps is None else timesteps
    scale = (meta.get("input_encoding") or {}).get("scale") if input_scale is None \
        else input_scale
    if timesteps is None or scale is None:
        missing = " and ".join(option for option, value in (("--timesteps T", timesteps),
                                                             ("--input-scale S", scale))
                               if value is None)
        raise SlssnnError(f"network {net.path}: no slssnn metadata for its "
                          f"{'steps per sample' if timesteps is None else 'input encoding'}; "
                          f"give {missing} (input current = round(pixel * S)) for a network "
                          "trained elsewhere, or export it with 'slssnn export'")
    if int(timesteps) < 1 or not float(scale) > 0:
        raise SlssnnError(f"network {net.path}: timesteps must be >= 1 and the input scale "
                          f"> 0, got {timesteps} and {scale}")
    timesteps = int(timesteps)
    data = dataset if isinstance(dataset, Dataset) else load_dataset(dataset, data_dir, timesteps)
    kind = meta.get("model_config", {}).get("input_kind")
    if kind is not None and (kind == "events") != (data.kind == EVENTS):
        raise SlssnnError(f"network {net.path}: input kind {kind!r} cannot run dataset "
                          f"{data.name!r} ({data.kind} data)")
    if data.kind == EVENTS and data.test.images.shape[1] != timesteps:
        raise SlssnnError(f"dataset {data.name!r}: {data.test.images.shape[1]} event frames "
                          f"per sample, network {net.path} runs T={timesteps} steps")
    # a NIR network's always-on input (docs/nir.md) is the last of its flat inputs
    bias_channel = (meta.get("input_encoding") or {}).get("bias_channel")
    shape = net.input_shape if bias_channel is None else (net.input_shape[0] - 1,)
    flat = len(shape) == 1 and shape[0] == int(np.prod(data.input_shape))
    if tuple(data.input_shape) != tuple(shape) and not flat:
        raise SlssnnError(f"network {net.path}: input shape {shape} does not match "
                          f"dataset {data.name!r} {data.input_shape}")
    classes, outputs = len(data.class_names), net.layers[-1].neurons
    if outputs != classes:
        raise SlssnnError(f"network {net.path}: its output layer has {outputs} neurons, dataset "
                          f"{data.name!r} has {classes} classes")
    split = data.test
    if limit is not None:
        if limit < 1:
            raise SlssnnError(f"--limit must be >= 1, got {limit}")
        split = Split(split.images[:limit], split.labels[:limit])
    currents, clamped = encode_currents(split.images, float(scale))
    if clamped:
        print(f"input layer: {clamped} input current(s) clamped to Loihi's range")
    if flat:  # (N, [T,] C, H, W) -> (N, [T,] C*H*W)
        currents = currents.reshape(*currents.shape[:-3], -1)
    if bias_channel is not None:
        currents = torch.cat([currents, torch.ones_like(currents[..., :1])], dim=-1)
    return split, currents.numpy(), timesteps


def run_network(net_path: str | os.PathLike[str], dataset: DataSource, backend: str = "lava",
                limit: int | None = None,
                on_progress: Callable[[int, int], None] | None = None,
                timeout: float | None = None,
                data_dir: str | os.PathLike[str] | None = None,
                timesteps: int | None = None,
                input_scale: float | None = None, readout: str = "spikes") -> dict[str, Any]:
    """Run the test split of ``dataset`` (a name, read from ``data_dir``; a ``.npz`` data
    file; or a :class:`Dataset`) through the network file on ``backend``; return the run
    record (module docstring).

    ``timeout`` (seconds) bounds a Lava run; the emulator ignores it. ``timesteps`` (steps
    per sample) and ``input_scale`` (current = ``round(pixel * input_scale)``) default to
    the file's metadata; a network trained elsewhere, without it, needs both.
    ``readout``: ``"spikes"`` (argmax of output spike counts) or ``"voltage"`` (argmax of
    the output layer's ``v`` at the end of each sample's window: a non-spiking output
    layer, such as SLAYER's ``Affine`` block).
    """
    if backend not in BACKENDS:
        raise SlssnnError(f"unknown backend {backend!r}; known: {', '.join(BACKENDS)}")
    if readout not in READOUTS:
        raise SlssnnError(f"unknown readout {readout!r}; known: {', '.join(READOUTS)}")
    voltage = readout == "voltage"
    net = read_network(net_path)
    split, currents, timesteps = _network_inputs(net, dataset, limit, data_dir, timesteps,
                                                 input_scale)
    stepwise = currents.ndim == len(net.input_shape) + 2  # event frames (N, T, *input_shape)
    bits = input_message_bits(net, currents)
    sent = None  # messages into a first synapse, per input, over the run
    if not net.has_input_block:  # a held current is sent on each of the T steps
        sent = message_counts(currents) if stepwise else \
            message_counts(currents[:, None]) * timesteps
    started = time.perf_counter()
    if backend == "lava":
        from .lava_runner import run_lava_counts

        counts = run_lava_counts(Path(net_path), currents, timesteps, on_progress=on_progress,
                                 timeout=timeout, stepwise=stepwise, voltage=voltage,
                                 input_message_bits=bits)
        return _warn_silent(record_from_counts(
            backend, net, _name(dataset), split, counts.output, counts.per_neuron, timesteps,
            time.perf_counter() - started, counts.voltage, sent))
    from .emulator import run_windows

    device = "cuda" if torch.cuda.is_available() else "cpu"
    voltages: list[np.ndarray] | None = [] if voltage else None
    spikes = run_windows(net, currents, timesteps, device=device, stepwise=stepwise,
                         voltages=voltages, input_graded=bits > 0)
    return _warn_silent(make_record(backend, net, _name(dataset), split, spikes,
                                    time.perf_counter() - started,
                                    voltages[0] if voltages else None, sent))


def _warn_silent(record: dict[str, Any]) -> dict[str, Any]:
    """Say so when a spike readout saw no output spike at all (every prediction class 0)."""
    if record["readout"] == "spikes" and record["layers"][-1]["spikes"] == 0:
        print(f"warning: the output layer of {record['network']} never spiked, so every "
              "prediction is class 0; a non-spiking output layer (SLAYER's Affine block) is "
              "read with --readout voltage")
    return record


def _name(dataset: DataSource) -> str:
    return dataset.name if isinstance(dataset, Dataset) else str(dataset)


def pytorch_record(model: SpikingNet, net_path: str | os.PathLike[str], dataset: DataSource,
                   limit: int | None = None, batch_size: int = 128,
                   data_dir: str | os.PathLike[str] | None = None) -> dict[str, Any]:
    """The same record from the PyTorch evaluation of the quantized model (backend 'pytorch')."""
    net = read_network(net_path)
    split, _, _ = _network_inputs(net, dataset, limit, data_dir)
    started = time.perf_counter()
    model.eval()
    per_layer: list[list[np.ndarray]] = []
    with torch.no_grad():
        for start in range(0, len(split.labels), batch_size):
            _, trace = model(split.images[start:start + batch_size])
            per_layer.append([t.transpose(0, 1).to(torch.int8).numpy() for t in trace])
    spikes = [np.concatenate(parts) for parts in zip(*per_layer, strict=True)]
    return make_record("pytorch", net, _name(dataset), split, spikes,
                       time.perf_counter() - started)


def load_input_array(path: str | os.PathLike[str]) -> np.ndarray:
    """An ``.npy`` input array for :func:`run_input`, refused in one line if unreadable."""
    path = Path(path)
    if not path.is_file():
        raise SlssnnError(f"input {path}: no such file")
    try:
        array = np.load(path, allow_pickle=False)
    except (OSError, ValueError) as exc:
        reason = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise SlssnnError(f"input {path}: not a readable .npy array ({reason})") from None
    if not isinstance(array, np.ndarray) or array.ndim < 2:
        raise SlssnnError(f"input {path}: expected an array with time last, got shape "
                          f"{getattr(array, 'shape', None)}")
    return array


def run_input(net_path: str | os.PathLike[str], inputs: np.ndarray, backend: str = "emulator",
              *, source: str = "input array", steps: int | None = None,
              num_layers: int | None = None, spike_exp: int = 6,
              reset_interval: int | None = None, timeout: float | None = None
              ) -> dict[str, Any]:
    """Run any netx network on a user's own input array and record what it did.

    ``inputs``: Lava order ``input_shape_lava + (steps,)`` with time last and an
    optional leading batch axis (see :func:`simulate`): values into the input
    layer's neurons, or messages into the first synapse. ``steps`` defaults to
    the array's time axis. The record has the fields of a dataset run, with
    ``accuracy`` null and no predictions (there are no labels).
    """
    from .simulate import simulate

    if backend not in BACKENDS:
        raise SlssnnError(f"unknown backend {backend!r}; known: {', '.join(BACKENDS)}")
    steps = int(inputs.shape[-1]) if steps is None else steps
    started = time.perf_counter()
    result = simulate(net_path, steps=steps, spikes=inputs, backend=backend,
                      num_layers=num_layers, spike_exp=spike_exp,
                      reset_interval=reset_interval, timeout=timeout)
    samples = int(result.layers[0].spikes.shape[0]) if result.batched else 1
    return {
        "version": RECORD_VERSION,
        "backend": backend,
        "network": str(net_path),
        "dataset": source,
        "split": None,
        "samples": samples,
        "timesteps": steps,
        "accuracy": None,
        "layers": [layer.totals for layer in result.layers],
        "wall_seconds": round(time.perf_counter() - started, 3),
    }
