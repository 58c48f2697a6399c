"""Lava's CPU simulator (through lava-dl's netx) against the PyTorch evaluation, spike for spike.

Each test bounds its time: a Lava run that deadlocks must not hang the suite.
"""

import numpy as np
import pytest
import torch
from netfactory import random_digits_net, random_images, random_net

from slssnn.export.netx_writer import export_network
from slssnn.lava_runtime.lava_runner import run_lava
from slssnn.lava_runtime.run import pytorch_record
from slssnn.training.neuron import CubaParams, run_cuba

pytestmark = pytest.mark.timeout(300)


def assert_same_spikes(model, path, images):
    with torch.no_grad():
        _, trace = model(images)
    currents = model.input_layer.currents(images).numpy()
    lava = run_lava(path, currents, model.timesteps)
    assert len(lava) == len(trace)
    for i, (got, want) in enumerate(zip(lava, trace, strict=True)):
        want = want.transpose(0, 1).to(torch.int8).numpy()  # (N, T, *shape)
        assert got.shape == want.shape, f"layer {i}"
        mismatches = int((got != want).sum())
        assert mismatches == 0, f"layer {i}: {mismatches} spikes differ"
        assert want.sum() > 0, f"layer {i} never spiked: the test would prove little"


def test_conv_net_with_bias_and_leak_matches_pytorch_exactly(tmp_path):
    model = random_net(timesteps=5, bias=True, v_decay=512)
    path = tmp_path / "conv.net"
    export_network(model, path)
    assert_same_spikes(model, path, random_images(6))


def test_digits_architecture_matches_pytorch_exactly(tmp_path):
    model = random_digits_net(timesteps=4, seed=3)
    path = tmp_path / "digits.net"
    export_network(model, path)
    assert_same_spikes(model, path, random_images(8, (1, 8, 8), seed=4))


def test_lava_lif_process_matches_the_step_function():
    """Lava's own LIF (fixed_pt) driven by random input, against cuba_step."""
    from slssnn.lava_runtime.lava_runner import _prepare_multiprocessing

    _prepare_multiprocessing()
    from lava.magma.core.run_conditions import RunSteps
    from lava.magma.core.run_configs import Loihi2SimCfg
    from lava.proc.io.sink import RingBuffer as Sink
    from lava.proc.io.source import RingBuffer as Source
    from lava.proc.lif.process import LIF

    rng = np.random.default_rng(0)
    steps, n = 40, 12
    a_in = rng.integers(-300, 900, size=(n, steps)).astype(np.int32)
    bias = rng.integers(-20, 40, size=n)
    params = dict(du=1023, dv=700, vth=500)  # iDecay = du + 1
    lif = LIF(shape=(n,), bias_mant=bias, bias_exp=6, **params)
    source, sink = Source(data=a_in), Sink(shape=(n,), buffer=steps)
    source.s_out.connect(lif.a_in)
    lif.s_out.connect(sink.a_in)
    try:
        lif.run(condition=RunSteps(num_steps=steps), run_cfg=Loihi2SimCfg(select_tag="fixed_pt"))
        lava_spikes = sink.data.get().T
    finally:
        lif.stop()
    p = CubaParams(i_decay=1024, v_decay=700, threshold=500, bias=torch.from_numpy(bias))
    ours = run_cuba(torch.from_numpy(a_in.T.astype(np.int64)), p).numpy()
    assert lava_spikes.sum() > 0
    assert np.array_equal(lava_spikes.astype(bool), ours)


def test_run_records_agree_between_pytorch_and_lava(tmp_path):
    """The run-record path end to end on the digits split (subset), as `slssnn run` does it."""
    from slssnn.lava_runtime.run import run_network

    model = random_digits_net(timesteps=3, seed=5)
    path = tmp_path / "digits.net"
    export_network(model, path)
    lava = run_network(path, "digits", "lava", limit=12)
    torch_run = pytorch_record(model, path, "digits", limit=12)
    assert lava["predictions"] == torch_run["predictions"]
    assert lava["layers"] == torch_run["layers"]
    assert lava["samples"] == 12 and lava["timesteps"] == 3
