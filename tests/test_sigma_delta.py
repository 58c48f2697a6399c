"""Lava's own sigma-delta processes and netx's synapses on graded messages, against our steps.

Each Lava test builds Lava's processes (``Loihi2SimCfg(select_tag="fixed_pt")``),
drives them from a RingBuffer with random graded input (negative values,
values around the thresholds, values that wrap int32) and compares every
output value with :mod:`slssnn.training.sigma_delta` and
:mod:`slssnn.training.graded_synapse`. lava-dl's recorded PilotNet SDNN output
is reproduced with the steps alone.
"""

import sysconfig
from collections.abc import Callable
from pathlib import Path
from typing import NamedTuple

import h5py
import numpy as np
import pytest
import torch

from slssnn.training.graded_synapse import conv_sums, dense_sums, netx_dense_weights
from slssnn.training.sigma_delta import (
    DeltaParams,
    DeltaState,
    SigmaDeltaParams,
    SigmaDeltaState,
    delta_step,
    sigma_delta_step,
    sigma_step,
)

pytestmark = pytest.mark.timeout(300)

STEPS = 50


def graded_input(n: int, steps: int, seed: int) -> np.ndarray:
    """``(n, steps)`` int32 messages in four groups of neurons: small, medium, large, and
    positive ones that carry every running sum past ``2**31``."""
    rng = np.random.default_rng(seed)
    high = np.repeat([40, 3000, 1 << 21, 1 << 27], n // 4)[:, None]
    low = np.where(high > 1 << 26, 0, -high)
    data = rng.integers(low, high + 1, size=(n, steps))
    data[rng.random((n, steps)) < 0.3] = 0
    return data.astype(np.int32)


def run_lava(root, sinks: list, steps: int) -> list[np.ndarray]:
    """Run the graph around ``root`` for ``steps`` fixed-point steps; every sink's data."""
    from slssnn.lava_runtime.lava_runner import _prepare_multiprocessing

    _prepare_multiprocessing()
    from lava.magma.core.run_conditions import RunSteps
    from lava.magma.core.run_configs import Loihi2SimCfg

    try:
        root.run(condition=RunSteps(num_steps=steps), run_cfg=Loihi2SimCfg(select_tag="fixed_pt"))
        return [sink.data.get() for sink in sinks]
    finally:
        root.stop()


def run_steps(step, state, inputs: torch.Tensor, *args) -> np.ndarray:
    """Outputs ``(*shape, T)`` of ``step`` over ``inputs`` ``(T, *shape)``."""
    outputs = []
    for x in inputs:
        out, state = step(state, x, *args)
        outputs.append(out)
    return torch.stack(outputs, dim=-1).numpy()


def assert_equal(got: np.ndarray, want: np.ndarray, name: str) -> None:
    assert got.shape == want.shape, f"{name}: shapes {got.shape} and {want.shape}"
    mismatches = int((got != want).sum())
    assert mismatches == 0, f"{name}: {mismatches} of {got.size} values differ"
    assert np.count_nonzero(want) > got.size // 10, f"{name}: too few messages to prove much"


def test_lava_sigma_delta_processes_match_the_steps():
    """Delta, SigmaDelta (ReLU and unit, with and without cum_error) and Sigma, value for value."""
    from lava.proc.io.sink import RingBuffer as Sink
    from lava.proc.io.source import RingBuffer as Source
    from lava.proc.sdn.process import ActivationMode, Delta, Sigma, SigmaDelta

    n = 48
    data = graded_input(n, STEPS, seed=1)
    bias = np.random.default_rng(2).integers(-500, 500, size=n).astype(np.int32)
    bias[:2] = [600_000, -700_000]  # bias << 12 wraps int32
    cases = [  # (name, Lava process, our step, our state, our params)
        ("Delta (netx)", Delta(shape=(n,), vth=3, spike_exp=6, state_exp=6),
         delta_step, DeltaState, DeltaParams(vth=3)),
        ("Delta cum_error", Delta(shape=(n,), vth=700, cum_error=True, spike_exp=2, state_exp=3),
         delta_step, DeltaState, DeltaParams(vth=700, spike_exp=2, state_exp=3, cum_error=True)),
        ("SigmaDelta (netx)", SigmaDelta(shape=(n,), vth=2, bias=bias, spike_exp=6, state_exp=6),
         sigma_delta_step, SigmaDeltaState, SigmaDeltaParams(vth=2, bias=torch.from_numpy(bias))),
        ("SigmaDelta unit cum_error",
         SigmaDelta(shape=(n,), vth=900, bias=bias, act_mode=ActivationMode.UNIT, cum_error=True,
                    spike_exp=0, state_exp=2),
         sigma_delta_step, SigmaDeltaState,
         SigmaDeltaParams(vth=900, bias=torch.from_numpy(bias), spike_exp=0, state_exp=2,
                          cum_error=True, relu=False)),
    ]
    source = Source(data=data)
    sinks = []
    for _, proc, *_ in cases:
        source.s_out.connect(proc.a_in)
        sinks.append(Sink(shape=(n,), buffer=STEPS))
        proc.s_out.connect(sinks[-1].a_in)
    sigma = Sigma(shape=(n,))
    source.s_out.connect(sigma.a_in)
    sinks.append(Sink(shape=(n,), buffer=STEPS))
    sigma.s_out.connect(sinks[-1].a_in)
    lava = run_lava(source, sinks, STEPS)

    inputs = torch.from_numpy(data.T.astype(np.int64))  # (T, n)
    for (name, _, step, state, params), got in zip(cases, lava, strict=False):
        assert_equal(got, run_steps(step, state.zeros((n,)), inputs, params), name)
    sigma_out = run_steps(lambda s, x: sigma_step(s, x), torch.zeros(n, dtype=torch.int64), inputs)
    assert_equal(lava[-1], sigma_out, "Sigma")
    assert (np.diff(lava[-1][-n // 4:], axis=1) < 0).any()  # a positive sum wrapped past 2**31


def netx_dense_block(weight: np.ndarray, message_bits: int):
    """netx's Dense block as ``hdf5.py:409-421`` builds it, with a Sigma neuron to read its sums."""
    from lava.lib.dl.netx.blocks.process import Dense
    from lava.lib.dl.netx.utils import optimize_weight_bits
    from lava.proc.sdn.process import Sigma

    w, num_weight_bits, weight_exponent, sign_mode = optimize_weight_bits(weight)
    return Dense(shape=(weight.shape[0],),
                 neuron_params={"neuron_proc": Sigma, "num_message_bits": 16},
                 weight=w, num_weight_bits=num_weight_bits, weight_exponent=weight_exponent,
                 sign_mode=sign_mode, input_message_bits=message_bits)


def sigma_of_sums(sums: torch.Tensor) -> np.ndarray:
    """A Sigma neuron's outputs ``(*shape, T)`` for the sums ``(T, *shape)`` its synapse computed.

    The synapse delivers at step t what it received at step t - 1.
    """
    delivered = torch.cat([torch.zeros_like(sums[:1]), sums[:-1]])
    return run_steps(lambda s, x: sigma_step(s, x), torch.zeros_like(sums[0]), delivered)


@pytest.mark.filterwarnings("ignore:divide by zero:RuntimeWarning")  # netx: 127 / max weight 0
def test_netx_dense_on_graded_and_binary_messages_matches_dense_sums():
    """netx Dense blocks: mixed weights, non-positive weights holding -256, graded and binary."""
    from lava.proc.io.sink import RingBuffer as Sink
    from lava.proc.io.source import RingBuffer as Source

    n_in, n_out = 48, 10
    rng = np.random.default_rng(3)
    data = graded_input(n_in, STEPS, seed=4)
    mixed = 2 * rng.integers(-128, 128, size=(n_out, n_in))
    small = rng.integers(-3, 4, size=(n_out, n_in))  # odd weights, netx scales them up
    non_positive = -2 * rng.integers(0, 129, size=(n_out, n_in))
    non_positive[:, 0] = -256
    non_positive[0, 1] = 0  # largest weight 0: Lava calls it inhibitory and clips -256
    cases = [("mixed graded", mixed, 16), ("small graded", small, 16),
             ("non-positive graded", non_positive, 16), ("non-positive binary", non_positive, 0)]
    source = Source(data=data)
    sinks = []
    for _, weight, bits in cases:
        block = netx_dense_block(weight, bits)
        source.s_out.connect(block.inp)
        sinks.append(Sink(shape=(n_out,), buffer=STEPS))
        block.out.connect(sinks[-1].a_in)
    lava = run_lava(source, sinks, STEPS)

    messages = torch.from_numpy(data.T.astype(np.int64))  # (T, n_in)
    for (name, weight, bits), got in zip(cases, lava, strict=True):
        spikes = messages if bits else (messages != 0).to(torch.int64)
        sums = dense_sums(spikes, netx_dense_weights(weight), graded=bits > 0)
        assert_equal(got, sigma_of_sums(sums), name)
    assert netx_dense_weights(non_positive).weight.min() == -255  # the clip acted


def test_netx_conv_on_graded_messages_matches_conv_sums():
    """netx Conv blocks (padding; stride with groups) on graded messages whose sums wrap 24 bits."""
    from lava.lib.dl.netx.blocks.process import Conv
    from lava.proc.io.sink import RingBuffer as Sink
    from lava.proc.io.source import RingBuffer as Source
    from lava.proc.sdn.process import Sigma

    rng = np.random.default_rng(5)
    c, h, w = 3, 5, 6
    data = rng.integers(-(1 << 20), 1 << 20, size=(c, h, w, STEPS))
    data[rng.random(data.shape) < 0.3] = 0
    geometries = [  # (out channels, groups, stride, padding, dilation), (H, W) as in the file
        (4, 1, (1, 1), (1, 1), (1, 1)),
        (6, 3, (2, 1), (0, 1), (1, 2)),
    ]
    source = Source(data=data.transpose(2, 1, 0, 3).astype(np.int32))  # (W, H, C, T)
    sinks, weights = [], []
    for out_c, groups, stride, padding, dilation in geometries:
        weight = rng.integers(-20, 21, size=(out_c, c // groups, 3, 3))
        probe = conv_sums(torch.zeros(1, c, h, w, dtype=torch.int64), torch.from_numpy(weight),
                          stride, padding, dilation, groups)
        shape = tuple(probe.shape[1:][::-1])  # Lava's (W, H, C)
        block = Conv(  # as hdf5.py:500-544 builds it from the file's fields
            input_shape=(w, h, c), shape=shape,
            weight=weight[:, :, ::-1, ::-1].transpose(0, 3, 2, 1),
            stride=np.array(stride[::-1]), padding=np.array(padding[::-1]),
            dilation=np.array(dilation[::-1]), groups=groups, input_message_bits=16,
            neuron_params={"neuron_proc": Sigma, "num_message_bits": 16})
        source.s_out.connect(block.inp)
        sinks.append(Sink(shape=shape, buffer=STEPS))
        block.out.connect(sinks[-1].a_in)
        weights.append(weight)
    lava = run_lava(source, sinks, STEPS)

    messages = torch.from_numpy(np.moveaxis(data, -1, 0).astype(np.int64))  # (T, C, H, W)
    for geometry, weight, got in zip(geometries, weights, lava, strict=True):
        _, groups, stride, padding, dilation = geometry
        sums = conv_sums(messages, torch.from_numpy(weight), stride, padding, dilation, groups)
        assert (sums.abs() >= 1 << 22).any()  # near the 24-bit edge
        want = sigma_of_sums(sums)  # (O, OH, OW, T)
        assert_equal(got, want.transpose(2, 1, 0, 3), f"conv {geometry}")


NETX_TESTS = Path(sysconfig.get_paths()["purelib"]) / "tests/lava/lib/dl/netx"


class Layer(NamedTuple):
    """One PilotNet block: its neuron step ``(state, x) -> (out, state)``, state and synapse."""

    step: Callable
    state: object
    synapse: Callable | None  # the previous block's messages -> this block's sums


def pilotnet_layer(g: h5py.Group) -> Layer:
    """A block of the PilotNet SDNN file, read as netx reads it (``hdf5.py:164-189, 247-544``)."""
    kind, neuron = g["type"][0].decode(), g["neuron"]
    shape = (1, *g["shape"][()])  # (1, C, H, W) or (1, N)
    if kind == "input":
        params = DeltaParams(int(neuron["vThMant"][()]))
        return Layer(lambda s, x: delta_step(s, x, params), DeltaState.zeros(shape), None)
    if kind == "conv":
        weight = torch.from_numpy(g["weight"][()].astype(np.int64))
        geometry = [tuple(int(v) for v in g[k][()]) for k in ("stride", "padding", "dilation")]
        groups = int(g["groups"][()])

        def synapse(s):
            return conv_sums(s, weight, *geometry, groups)
    else:
        dense = netx_dense_weights(g["weight"][()].astype(np.int64))

        def synapse(s):
            return dense_sums(s.reshape(1, -1), dense, graded=True)  # (C, H, W) order
    if "sigma_output" in neuron:
        return Layer(sigma_step, torch.zeros(shape, dtype=torch.int64), synapse)
    bias = torch.from_numpy(g["bias"][()].astype(np.int64))  # netx: astype(int)
    params = SigmaDeltaParams(int(neuron["vThMant"][()]),
                              bias.view(-1, 1, 1) if kind == "conv" else bias)
    return Layer(lambda s, x: sigma_delta_step(s, x, params), SigmaDeltaState.zeros(shape),
                 synapse)


def test_pilotnet_sdnn_output_matches_lava_dl_ground_truth():
    """lava-dl's PilotNet SDNN, driven as its ``test_pilotnet_sdnn``, through the steps alone.

    ``input.npy`` (one frame, held by a RingBuffer of one step) into the input
    layer's Delta ``a_in``; ``len(net.layers) = 9`` steps; the Sigma output
    layer's value at every step against ``output.npy``.
    """
    root = NETX_TESTS / "gts/pilotnet_sdnn"
    frame = np.load(root / "input.npy")[..., 0].transpose(2, 1, 0)  # (C, H, W)
    want = np.load(root / "output.npy")  # (1, 9)
    with h5py.File(root / "network.net") as f:
        layers = [pilotnet_layer(f["layer"][str(i)]) for i in range(len(f["layer"]))
                  if f["layer"][str(i)]["type"][0] != b"flatten"]
    x = torch.from_numpy(frame.astype(np.int64))[None]  # (1, C, H, W)
    states = [layer.state for layer in layers]
    sums = [x] + [torch.zeros_like(layer.state if isinstance(layer.state, torch.Tensor)
                                   else layer.state[0]) for layer in layers[1:]]
    outputs = []
    for _ in range(want.shape[1]):
        messages = []
        for i, layer in enumerate(layers):
            out, states[i] = layer.step(states[i], sums[i])
            messages.append(out)
        sums = [x] + [layer.synapse(m) for layer, m in zip(layers[1:], messages, strict=False)]
        outputs.append(int(messages[-1].flatten()[0]))
    assert outputs == want[0].astype(np.int64).tolist()
    assert len(set(outputs)) > 5
