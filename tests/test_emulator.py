"""The batched emulator against Lava, PyTorch and lava-dl's own recorded ground truth."""


import h5py
import numpy as np
import pytest
import torch
from corpus import OXFORD, TINY_BIAS, TINY_NET, TINY_OUTPUT
from netfactory import random_images, random_net

from slssnn.errors import SlssnnError
from slssnn.export.netx_reader import read_network
from slssnn.export.netx_writer import export_network
from slssnn.lava_runtime.emulator import run_windows
from slssnn.lava_runtime.simulate import simulate

pytestmark = pytest.mark.timeout(300)


@pytest.mark.parametrize("backend", ["emulator", "lava"])
def test_tinynet_matches_lava_dl_ground_truth(backend):
    """Driven as lava-dl's test_tinynet drives it: input through bias_mant, reset every 17."""
    gt = np.load(TINY_OUTPUT)[0].transpose([2, 1, 0, 3])[..., 1:]
    result = simulate(TINY_NET, steps=20, bias=np.load(TINY_BIAS),
                      backend=backend, reset_interval=17, reset_offset=0)
    output = result.layers[-1].spikes
    assert output.shape == (1, 1, 36, 20)
    assert gt.sum() > 0
    assert int(np.abs(output[..., 2:17] - gt).sum()) == 0


def oxford_spikes() -> np.ndarray:
    events = np.load(OXFORD / "input.npy")  # (neuron, channel, time ms)
    spikes = np.zeros((200, int(events[:, 2].max()) + 10), dtype=np.int64)
    spikes[events[:, 0].astype(int), np.floor(events[:, 2]).astype(int)] = 1
    return spikes


def test_oxford_emulator_and_lava_identical_at_every_layer():
    spikes = oxford_spikes()
    net = OXFORD / "network.net"
    emu = simulate(net, steps=spikes.shape[1], spikes=spikes, backend="emulator")
    lava = simulate(net, steps=spikes.shape[1], spikes=spikes, backend="lava")
    for a, b in zip(emu.layers, lava.layers, strict=True):
        assert a.spikes.shape == b.spikes.shape
        assert np.array_equal(a.spikes, b.spikes), a.name
        assert a.totals == b.totals and a.spikes.sum() > 0
    assert emu.layers[0].totals["synops"] == int(spikes.sum()) * 256


def test_our_conv_net_pytorch_equals_emulator(tmp_path):
    model = random_net(timesteps=4, bias=True, v_decay=300, seed=7)
    path = tmp_path / "net.net"
    export_network(model, path)
    images = random_images(32, seed=9)
    with torch.no_grad():
        _, trace = model(images)
    emulated = run_windows(read_network(path), model.input_layer.currents(images).numpy(), 4)
    for i, (got, want) in enumerate(zip(emulated, trace, strict=True)):
        want = want.transpose(0, 1).to(torch.int8).numpy()
        assert np.array_equal(got, want), f"layer {i}"
        assert want.sum() > 0


def test_batched_simulate_with_reset_equals_lava(tmp_path):
    model = random_net(timesteps=3, bias=True, v_decay=1000, seed=11)
    path = tmp_path / "net.net"
    export_network(model, path)
    rng = np.random.default_rng(0)
    currents = rng.integers(0, 60, size=(2, 7, 7, 2, 9))  # (B, W, H, C, steps), Lava order
    kw = dict(steps=9, spikes=currents, reset_interval=3, reset_offset=1)
    emu, lava = simulate(path, backend="emulator", **kw), simulate(path, backend="lava", **kw)
    for a, b in zip(emu.layers, lava.layers, strict=True):
        assert a.spikes.shape[0] == 2 and a.spikes.shape[-1] == 9
        assert np.array_equal(a.spikes, b.spikes), a.name
        assert a.totals == b.totals


def test_unsupported_features_are_refused_naming_layer_and_field():
    net = OXFORD / "network.net"
    with pytest.raises(SlssnnError, match="spikes must be shaped"):
        simulate(net, steps=5, spikes=np.zeros((3, 5)))
    with pytest.raises(SlssnnError, match="unknown backend"):
        simulate(net, steps=5, backend="loihi")


@pytest.mark.parametrize("delay_of", [
    lambda rng: rng.integers(0, 6, size=(256, 200)),  # one per synapse
    lambda rng: rng.integers(0, 4, size=256),  # one per output neuron
    lambda rng: np.int64(3),  # one for the layer
])
def test_synaptic_delays_equal_lava(tmp_path, delay_of):
    path = tmp_path / "delay.net"
    path.write_bytes((OXFORD / "network.net").read_bytes())
    rng = np.random.default_rng(1)
    with h5py.File(path, "r+") as f:
        f["layer/0"].create_dataset("delay", data=delay_of(rng))
        f["layer/1"].create_dataset("delay", data=rng.integers(0, 3, size=256))  # per input
    spikes = oxford_spikes()[:, :300]
    emu = simulate(path, steps=300, spikes=spikes, backend="emulator")
    lava = simulate(path, steps=300, spikes=spikes, backend="lava")
    plain = simulate(OXFORD / "network.net", steps=300, spikes=spikes)
    for a, b in zip(emu.layers, lava.layers, strict=True):
        assert np.array_equal(a.spikes, b.spikes), a.name
    assert emu.layers[-1].spikes.sum() > 0
    assert not np.array_equal(emu.layers[-1].spikes, plain.layers[-1].spikes)


def test_delays_beyond_62_are_refused(tmp_path):
    path = tmp_path / "delay.net"
    path.write_bytes((OXFORD / "network.net").read_bytes())
    with h5py.File(path, "r+") as f:
        f["layer/0"].create_dataset("delay", data=np.full(256, 63))
    with pytest.raises(SlssnnError, match="layer 0: field 'delay' outside"):
        simulate(path, steps=5)


def test_graded_input_spikes_equal_lava():
    rng = np.random.default_rng(3)
    spikes = rng.integers(0, 4, size=(200, 60)) * (rng.random((200, 60)) < 0.1)
    net = OXFORD / "network.net"
    emu = simulate(net, steps=60, spikes=spikes, backend="emulator")
    lava = simulate(net, steps=60, spikes=spikes, backend="lava")
    for a, b in zip(emu.layers, lava.layers, strict=True):
        assert np.array_equal(a.spikes, b.spikes), a.name
    assert emu.layers[-1].spikes.sum() > 0


def test_bad_input_is_refused():
    net = OXFORD / "network.net"
    with pytest.raises(SlssnnError, match="must hold integers"):
        simulate(net, steps=4, spikes=np.full((200, 4), 0.5))
    with pytest.raises(SlssnnError, match="steps must be >= 1"):
        simulate(net, steps=0)
    with pytest.raises(SlssnnError, match="input spikes must be >= 0"):
        simulate(net, steps=4, spikes=-np.ones((200, 4), dtype=int))
    with pytest.raises(SlssnnError, match="split the batch"):
        simulate(net, steps=4000, spikes=np.zeros((3000, 200, 4000), dtype=np.int8))


def test_conv_geometry_dilation_groups_equal_lava(tmp_path):
    layers = [
        {"type": "conv", "out_channels": 6, "kernel": 3, "stride": 1, "padding": 2,
         "dilation": 2, "groups": 2},
        {"type": "conv", "out_channels": 6, "kernel": [3, 2], "stride": [2, 1],
         "padding": [1, 0], "groups": 3},
        {"type": "flatten"},
        {"type": "dense", "out_features": 5},
    ]
    model = random_net(timesteps=4, bias=True, v_decay=200, layers=layers, seed=5)
    path = tmp_path / "geometry.net"
    export_network(model, path)
    rng = np.random.default_rng(2)
    currents = rng.integers(0, 70, size=(2, 7, 7, 2, 8))  # (B, W, H, C, steps)
    emu = simulate(path, steps=8, spikes=currents, backend="emulator")
    lava = simulate(path, steps=8, spikes=currents, backend="lava")
    for a, b in zip(emu.layers, lava.layers, strict=True):
        assert np.array_equal(a.spikes, b.spikes), a.name
        assert a.spikes.sum() > 0, a.name
