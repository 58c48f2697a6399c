"""Run a netx network in Lava's CPU simulator and read every layer's spikes.

Lava and lava-dl are imported here, lazily, and nowhere else.

Timing. Every Lava synapse (Dense, Conv) delivers at step t what it received
at step t-1, so block ``i`` (input layer = 0) lags the input by ``i`` steps.
netx's ``reset_interval`` staggers the resets the same way: with interval T
and offset 0, block ``i`` resets u and v at the start of every global step
``t`` with ``t % T == (i + 1) % T``. Sample ``k``'s current is presented at
global steps ``kT+1 .. kT+T``; block ``i`` then processes sample ``k`` exactly
in global steps ``kT+1+i .. kT+T+i``, from a fresh state, seeing the previous
block's spikes of the same sample step for step. So one Lava run of
``N*T + L - 1`` steps evaluates ``N`` samples, each as if alone for ``T`` steps:
the semantics of the PyTorch forward.
"""

from __future__ import annotations

import multiprocessing
import os
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any, NamedTuple

import numpy as np

from slssnn.errors import SlssnnError
from slssnn.export.netx_reader import read_network

from .isolation import run_isolated


def _to_lava_order(x: np.ndarray) -> np.ndarray:
    """(C, H, W, ...) -> (W, H, C, ...), Lava's (x, y, z) order; 1-D shapes unchanged."""
    if x.ndim >= 3:
        return np.swapaxes(x, 0, 2)
    return x


def _prepare_multiprocessing() -> None:
    """Let Lava's import set the 'fork' start method it needs.

    Lava calls ``multiprocessing.set_start_method('fork')`` on import, which
    raises if anything (a tqdm progress bar, for one) already fixed the method.
    A method already set to 'fork' is cleared so Lava can set it again; any
    other method is refused, because Lava cannot run under it.
    """
    method = multiprocessing.get_start_method(allow_none=True)
    if method == "fork":
        multiprocessing.set_start_method(None, force=True)
    elif method is not None:
        raise SlssnnError(f"Lava needs the 'fork' multiprocessing start method; "
                          f"this process already uses {method!r}")


def run_netx(net_path: str | os.PathLike[str], steps: int, inputs: np.ndarray | None = None,
             input_bias: np.ndarray | None = None, reset_interval: int | None = None,
             reset_offset: int = 0, input_message_bits: int = 0, chunk_steps: int = 500,
             on_progress: Callable[[int, int], None] | None = None,
             timeout: float | None = None, num_layers: int | None = None,
             spike_exp: int = 6) -> list[np.ndarray]:
    """:func:`run_netx_inline` in an isolated worker (see :mod:`.isolation`).

    A timeout (seconds), SIGINT or SIGTERM stops the run, kills every Lava
    process and removes its shared memory, then raises ``SlssnnError``.
    """
    return run_isolated(run_netx_inline, (net_path, steps, inputs, input_bias, reset_interval,
                                          reset_offset, input_message_bits, chunk_steps,
                                          on_progress, num_layers, spike_exp), timeout=timeout)


def run_netx_inline(net_path: str | os.PathLike[str], steps: int,
                    inputs: np.ndarray | None = None, input_bias: np.ndarray | None = None,
                    reset_interval: int | None = None, reset_offset: int = 0,
                    input_message_bits: int = 0, chunk_steps: int = 500,
                    on_progress: Callable[[int, int], None] | None = None,
                    num_layers: int | None = None, spike_exp: int = 6) -> list[np.ndarray]:
    """Build the file with lava-dl's ``netx.hdf5.Network``, run it, return every block's output.

    Args:
        net_path: a netx HDF5 file.
        steps: global steps to run (one ``run`` per ``chunk_steps``, compiled once).
        inputs: Lava order ``net.inp.shape + (steps,)``: the input block's ``a_in``
            currents (netx's Input block leaves its own ``inp`` port unconnected,
            so they go straight into its LIF), or the first synapse's spikes.
        input_bias: written into the input block's ``bias_mant`` (Lava order).
        reset_interval, reset_offset, input_message_bits, num_layers, spike_exp:
            passed to ``netx.hdf5.Network`` (message bits > 0: graded input spikes).
    Returns:
        per block, what its ``out`` port sent: ``out.shape + (steps,)``, Lava order.
    """
    if "lava.magma.runtime.message_infrastructure.multiprocessing" not in sys.modules:
        _prepare_multiprocessing()
    from lava.lib.dl.netx import hdf5
    from lava.magma.core.run_configs import Loihi2SimCfg
    from lava.proc.io.sink import RingBuffer as Sink
    from lava.proc.io.source import RingBuffer as Source

    net = hdf5.Network(net_config=str(Path(net_path)), reset_interval=reset_interval,
                       reset_offset=reset_offset, input_message_bits=input_message_bits,
                       num_layers=num_layers, spike_exp=spike_exp)
    blocks = net.layers
    first_is_input = type(blocks[0]).__name__ == "Input"
    if inputs is not None:
        source = Source(data=inputs.astype(np.int32))
        source.s_out.connect(blocks[0].neuron.a_in if first_is_input else net.inp)
    if input_bias is not None:
        if not first_is_input:
            raise SlssnnError(f"network {net_path}: input bias needs an input layer first")
        blocks[0].neuron.bias_mant.init = np.asarray(input_bias).astype(np.int32)
    sinks = []
    for block in blocks:
        sink = Sink(shape=block.out.shape, buffer=steps)
        block.out.connect(sink.a_in)
        sinks.append(sink)
    return _run_chunks(net, steps, Loihi2SimCfg(select_tag="fixed_pt"), chunk_steps,
                       on_progress, lambda: [sink.data.get() for sink in sinks])


def run_lava(net_path: str | os.PathLike[str], currents: np.ndarray, timesteps: int,
             chunk_steps: int = 500,
             on_progress: Callable[[int, int], None] | None = None,
             timeout: float | None = None, stepwise: bool = False) -> list[np.ndarray]:
    """Run ``N`` samples through the network in ONE Lava run (compiled once).

    Args:
        net_path: a netx HDF5 file whose first layer is an ``input`` layer.
        currents: int input currents of the input layer, ``(N, *input_shape)``
            with input_shape (C, H, W) or (n,), presented on each of the T steps;
            or ``(N, T, *input_shape)`` with ``stepwise``: one current per step
            (event frames).
        timesteps: T, steps per sample (also netx's reset interval).
        chunk_steps: steps per ``run`` call (progress granularity).
        on_progress: called with ``(steps_done, steps_total)``.
        timeout: seconds before the run is stopped (None: no limit).
    Returns:
        per block (input layer first) its spikes, int8 ``(N, T, *layer_shape)``.
    """
    samples = currents.shape[0]
    depth = len(read_network(net_path).layers)
    total = samples * timesteps + depth - 1
    rasters = run_netx(net_path, total, _window_inputs(currents, timesteps, total, stepwise),
                       reset_interval=timesteps,
                       chunk_steps=chunk_steps, on_progress=on_progress, timeout=timeout)
    spikes = []
    for i, raster in enumerate(rasters):
        window = _to_lava_order(raster)[..., i: i + samples * timesteps]  # (*shape, N*T)
        window = window.reshape(window.shape[:-1] + (samples, timesteps))
        spikes.append(np.moveaxis(window, (-2, -1), (0, 1)).astype(np.int8))
    return spikes


def _window_inputs(currents: np.ndarray, timesteps: int, total: int, stepwise: bool
                   ) -> np.ndarray:
    """The input layer's ``a_in`` currents for one run of ``total`` steps, Lava order
    ``(*lava_shape, total)``: each sample's current on its T steps, then zeros."""
    samples = currents.shape[0]
    if stepwise:
        per_step = currents.astype(np.int32).reshape(samples * timesteps, *currents.shape[2:])
    else:
        per_step = np.repeat(currents.astype(np.int32), timesteps, axis=0)  # (N*T, *input_shape)
    per_step = np.moveaxis(per_step, 0, -1)  # (*input_shape, N*T)
    data = np.zeros(per_step.shape[:-1] + (total,), dtype=np.int32)
    data[..., : samples * timesteps] = per_step
    return _to_lava_order(data)


class LavaCounts(NamedTuple):
    """What a run record needs from a Lava run, counted inside it (:func:`run_lava_counts`).

    ``output``: output spikes per sample, int64 ``(N, classes)``; ``per_neuron``:
    per block (input layer first) its spikes per neuron over all samples and steps,
    int64, shaped like the layer ((C, H, W) or (n,)); ``voltage``: with the voltage
    readout, the output layer's ``v`` at the last step of each sample's window, int64
    ``(N, classes)`` (Lava's internal units), else None.
    """

    output: np.ndarray
    per_neuron: list[np.ndarray]
    voltage: np.ndarray | None = None


def run_lava_counts(net_path: str | os.PathLike[str], currents: np.ndarray, timesteps: int,
                    chunk_steps: int = 500,
                    on_progress: Callable[[int, int], None] | None = None,
                    timeout: float | None = None, stepwise: bool = False,
                    scipy_conv: bool = False, voltage: bool = False,
                    input_message_bits: int = 0) -> LavaCounts:
    """:func:`run_lava`'s one run of ``N*T + L - 1`` steps, reading back only counts.

    Each block's ``out`` port feeds a :class:`~.lava_procs.counter.SpikeCounter` that
    counts, inside the run, the block's spikes over its window (block ``i``:
    global steps ``i+1 .. i+N*T``, the steps :func:`run_lava` slices), per
    neuron, and for the output block also per sample. Only those arrays are
    read back: ``neurons`` values per block plus ``N x classes``, instead of
    ``neurons x steps`` per block. Conv blocks run Lava's fixed-point Conv model
    with its convolution computed by one exact product per step
    (:mod:`.lava_procs.conv`; ``scipy_conv`` keeps Lava's own scipy loop, about a
    second per step at 28x28). ``voltage``: also read the output layer's ``v`` where
    each sample's window ends (:class:`~.lava_procs.voltage.VoltageSampler`).
    A network without an input layer takes ``currents`` as messages into its first
    synapse (``input_message_bits`` > 0: graded, netx's argument); the synapse
    delivers them one step later, so every block's window, and netx's reset
    offset, start one step later than behind an input layer, and the run is one
    step longer. Arguments as for :func:`run_lava`; runs in an isolated worker
    (``timeout`` in seconds).
    """
    samples = currents.shape[0]
    net = read_network(net_path)
    lag = 0 if net.has_input_block else 1
    total = samples * timesteps + len(net.layers) - 1 + lag
    inputs = _window_inputs(currents, timesteps, total, stepwise)
    output, per_neuron, voltages = run_isolated(
        _count_inline, (net_path, total, inputs, samples, timesteps, chunk_steps, on_progress,
                        scipy_conv, voltage, input_message_bits, lag), timeout=timeout)
    return LavaCounts(_samples_ours(output, samples),
                      [_to_lava_order(c).astype(np.int64) for c in per_neuron],
                      None if voltages is None else _samples_ours(voltages, samples))


def _samples_ours(values: np.ndarray, samples: int) -> np.ndarray:
    """Per-sample values of a layer, Lava order ``(N, *lava_shape)`` -> int64 ``(N, neurons)``
    flattened in our (C, H, W) order, as the emulator flattens them."""
    values = np.asarray(values).reshape(samples, *np.shape(values)[1:])
    if values.ndim == 4:  # (N, x, y, c) -> (N, c, y, x)
        values = np.swapaxes(values, 1, 3)
    return values.reshape(samples, -1).astype(np.int64)


def _count_inline(net_path: str | os.PathLike[str], steps: int, inputs: np.ndarray,
                  samples: int, timesteps: int, chunk_steps: int,
                  on_progress: Callable[[int, int], None] | None, scipy_conv: bool = False,
                  voltage: bool = False, input_message_bits: int = 0, lag: int = 0
                  ) -> tuple[np.ndarray, list[np.ndarray], np.ndarray | None]:
    """Build the file with netx, a counter on every block, run, read back the counts (Lava
    order): ``(output counts (N, *out_shape), [per-neuron counts per block], output
    voltages (N, *out_shape) at each window's end or None)``. ``lag``: 1 where the input
    enters a first synapse, which delays it a step (:func:`run_lava_counts`), else 0."""
    if "lava.magma.runtime.message_infrastructure.multiprocessing" not in sys.modules:
        _prepare_multiprocessing()
    from lava.lib.dl.netx import hdf5
    from lava.magma.core.run_configs import Loihi2SimCfg
    from lava.proc.conv.process import Conv
    from lava.proc.io.source import RingBuffer as Source

    from .lava_procs.conv import PyConvModelFixedExact
    from .lava_procs.counter import SpikeCounter

    net = hdf5.Network(net_config=str(Path(net_path)), reset_interval=timesteps,
                       reset_offset=lag, input_message_bits=input_message_bits)
    blocks = net.layers
    source = Source(data=inputs.astype(np.int32))
    # netx's Input leaves its inp port unconnected: currents go into its neurons' a_in
    source.s_out.connect(blocks[0].neuron.a_in if lag == 0 else net.inp)
    counters = []
    for i, block in enumerate(blocks):
        counter = SpikeCounter(shape=block.out.shape, first=i + lag, samples=samples,
                               timesteps=timesteps, per_sample=i == len(blocks) - 1)
        block.out.connect(counter.a_in)
        counters.append(counter)
    sampler = None
    if voltage:
        from .lava_procs.voltage import VoltageSampler

        sampler = VoltageSampler(shape=blocks[-1].out.shape, first=len(blocks) - 1 + lag,
                                 samples=samples, timesteps=timesteps)
        sampler.v_ref.connect_var(blocks[-1].neuron.v)
    exceptions = {} if scipy_conv else {Conv: PyConvModelFixedExact}
    run_cfg = Loihi2SimCfg(select_tag="fixed_pt", exception_proc_model_map=exceptions)
    return _run_chunks(net, steps, run_cfg, chunk_steps, on_progress, lambda: (
        np.rint(counters[-1].sample_counts.get()).astype(np.int64),
        [np.rint(c.counts.get()).astype(np.int64) for c in counters],
        None if sampler is None else np.rint(sampler.voltages.get()).astype(np.int64)))


def _run_chunks(net, steps: int, run_cfg, chunk_steps: int,
                on_progress: Callable[[int, int], None] | None, read: Callable[[], Any]) -> Any:
    """Run a built network ``steps`` steps in chunks of ``chunk_steps`` (progress after each),
    return ``read()`` taken before the network stops; stop it whatever happens."""
    from lava.magma.core.run_conditions import RunSteps

    done = 0
    try:
        while done < steps:
            now = min(chunk_steps, steps - done)
            net.run(condition=RunSteps(num_steps=now), run_cfg=run_cfg)
            done += now
            if on_progress is not None:
                on_progress(done, steps)
        return read()
    finally:
        net.stop()
