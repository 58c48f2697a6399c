"""lava-dl's own published netx networks: read as netx reads them, run bit-exactly.

The networks and ground truths come from the installed lava-dl 0.6.0 wheel
(``tests/corpus.py``); each is driven the way lava-dl's own
``tests/lava/lib/dl/netx/test_hdf5.py`` (or ``test_hdf5_nx.py``) drives it,
and compared with zero mismatches. The emulator is also compared with Lava
(lava-dl's ``netx.hdf5.Network`` in Lava's CPU simulator) at every layer.
"""

from __future__ import annotations

import numpy as np
import pytest
from corpus import MNIST_NET, NTIDIGITS, OXFORD, PILOTNET_LIF, PILOTNET_SDNN, TINY_NET

from slssnn.errors import SlssnnError
from slssnn.export.netx_reader import (
    CubaNeuron,
    LayerSpec,
    RfNeuron,
    SigmaDeltaNeuron,
    read_network,
)
from slssnn.export.netx_writer import write_network
from slssnn.lava_runtime.simulate import simulate

pytestmark = pytest.mark.timeout(600)

PILOTNET_LIF_GTS = ["input"] + [f"conv-{i}" for i in range(5)] + [f"fc-{i}" for i in range(3)] \
    + ["fc-3-s"]


def assert_identical(emulator, lava) -> None:
    """Both backends sent the same messages at every layer, and some layer was active."""
    assert [a.name for a in emulator.layers] == [b.name for b in lava.layers]
    for a, b in zip(emulator.layers, lava.layers, strict=True):
        assert a.spikes.shape == b.spikes.shape, a.name
        mismatches = int(np.count_nonzero(a.spikes != b.spikes))
        assert mismatches == 0, f"{a.name}: {mismatches} mismatching values"
        assert a.totals == b.totals, a.name
    assert all(layer.spikes.any() for layer in emulator.layers[:-1])


# --- the reader ---------------------------------------------------------------------------

@pytest.mark.parametrize("path, num_layers, blocks, kinds", [
    (TINY_NET, None, ["input", "conv", "conv"], {"LOIHI"}),
    (MNIST_NET, None, ["input", "dense", "dense", "dense"], {"CUBA"}),
    (PILOTNET_LIF / "network.net", None, ["input"] + ["conv"] * 5 + ["dense"] * 4, {"LOIHI"}),
    (PILOTNET_SDNN / "network.net", None, ["input"] + ["conv"] * 4 + ["dense"] * 4,
     {"delta", "sigma_delta", "sigma"}),
    (PILOTNET_SDNN / "square_network.net", None, ["input"] + ["conv"] * 4,
     {"delta", "sigma_delta"}),
    (NTIDIGITS / "ntidigits.net", 5, ["dense"] * 3, {"LOIHI"}),
    (OXFORD / "network.net", None, ["dense"] * 2, {"CUBA"}),
])
def test_every_published_network_is_read(path, num_layers, blocks, kinds):
    net = read_network(path, num_layers=num_layers)
    assert [layer.type for layer in net.layers] == blocks
    assert {getattr(layer.neuron, "role", getattr(layer.neuron, "kind", None))
            for layer in net.layers} == kinds


def test_reader_follows_netx_defaults():
    mnist = read_network(MNIST_NET)
    last = mnist.layers[-1].neuron  # no neuron group: netx's non-leaky integrator
    assert (last.i_decay, last.v_decay, last.threshold) == (0, 4096, 1 << 17)
    pilot = read_network(PILOTNET_LIF / "network.net")
    assert [layer.shape for layer in pilot.layers[6:]] == [(100,), (50,), (10,), (1,)]
    assert pilot.layers[-1].weight.shape == (1, 10)  # a flat weight, reshaped as netx does
    nti = read_network(NTIDIGITS / "ntidigits.net", num_layers=5)
    assert nti.input_shape == (64,) and nti.declared_input == (1, 1, 64)
    assert nti.layers[0].delay.shape == (256, 64)  # axonal delays, one per output neuron
    sdnn = read_network(PILOTNET_SDNN / "network.net")
    assert sdnn.layers[0].neuron == SigmaDeltaNeuron(0, "delta")
    assert sdnn.layers[-1].neuron.role == "sigma"


def test_what_netx_refuses_is_refused_with_the_layer_named():
    with pytest.raises(SlssnnError, match="layer 5: netx 0.6.0 cannot build a 'average' layer "
                       r".*num_layers=5 reads the layers before it"):
        read_network(NTIDIGITS / "ntidigits.net")


def test_published_networks_write_back_identically(tmp_path):
    """The one writer writes the in-memory form back; reading it again gives the same network."""
    for path, num_layers in ((PILOTNET_SDNN / "network.net", None), (MNIST_NET, None),
                             (NTIDIGITS / "ntidigits.net", 5), (PILOTNET_LIF / "network.net", 4)):
        net = read_network(path, num_layers=num_layers)
        back = write_network(tmp_path / f"{path.parent.name}-{path.name}", net.layers,
                             declared_input=net.declared_input)
        assert back.input_shape == net.input_shape
        for a, b in zip(net.layers, back.layers, strict=True):
            assert (a.type, a.shape, a.neuron) == (b.type, b.shape, b.neuron)
            for field in ("weight", "bias", "delay", "weight_rec"):
                x, y = getattr(a, field), getattr(b, field)
                assert (x is None and y is None) or np.array_equal(x, y), field


# --- ground truths recorded by lava-dl -------------------------------------------------------

def test_pilotnet_sdnn_output_matches_lava_dl_ground_truth_and_lava():
    """lava-dl's test_pilotnet_sdnn: input.npy held on every step, len(layers) steps."""
    frame = np.load(PILOTNET_SDNN / "input.npy")  # (x, y, c, 1), held by a ring buffer
    steps = len(read_network(PILOTNET_SDNN / "network.net").layers)
    held = np.repeat(frame, steps, axis=-1)
    emulator = simulate(PILOTNET_SDNN / "network.net", steps=steps, spikes=held)
    gt = np.load(PILOTNET_SDNN / "output.npy")
    assert int(np.abs(emulator.layers[-1].spikes - gt).sum()) == 0
    lava = simulate(PILOTNET_SDNN / "network.net", steps=steps, spikes=held, backend="lava",
                    timeout=300)
    assert_identical(emulator, lava)


def test_pilotnet_sdnn_spike_exp_zero_emulator_equals_lava():
    """lava-dl's test_pilotnet_sdnn_spike_exp drives spike_exp=0: messages lose fraction bits."""
    net = PILOTNET_SDNN / "square_network.net"
    frame = np.load(PILOTNET_SDNN / "input.npy")[:33]  # the square network's 33 x 33 input
    held = np.repeat(frame, 12, axis=-1)
    emulator = simulate(net, steps=12, spikes=held, spike_exp=0)
    lava = simulate(net, steps=12, spikes=held, spike_exp=0, backend="lava", timeout=300)
    assert_identical(emulator, lava)
    default = simulate(net, steps=12, spikes=held)
    assert not np.array_equal(default.layers[-1].spikes, emulator.layers[-1].spikes)


def test_pilotnet_lif_every_layer_matches_lava_dl_ground_truth_and_lava():
    """lava-dl's test_pilotnet_lif: image into the input layer's bias_mant, reset interval 16,
    15 steps; the ground truth holds every layer's spikes."""
    net = PILOTNET_LIF / "network.net"
    image = np.load(PILOTNET_LIF / "image.npy")
    emulator = simulate(net, steps=15, bias=image, reset_interval=16)
    for layer, name in zip(emulator.layers, PILOTNET_LIF_GTS, strict=True):
        gt = np.load(PILOTNET_LIF / f"{name}.npy")[..., :15]
        assert layer.spikes.shape == gt.shape, name
        assert int(np.count_nonzero(layer.spikes != gt)) == 0, name
    lava = simulate(net, steps=15, bias=image, reset_interval=16, backend="lava", timeout=500)
    assert_identical(emulator, lava)


def test_ntidigits_whole_input_matches_lava_dl_ground_truth():
    """lava-dl's test_axonal_delay_ntidigits (num_layers=5): the recorded output is ours one
    step later at every step of the 3,000-step input (lava-dl's test checks one column)."""
    spikes = np.load(NTIDIGITS / "input.npy")
    gt = np.load(NTIDIGITS / "output.npy")
    out = simulate(NTIDIGITS / "ntidigits.net", steps=spikes.shape[1], spikes=spikes,
                   num_layers=5).layers[-1].spikes
    assert gt.sum() > 10_000 and not gt[:, 0].any()
    assert int(np.count_nonzero(out[:, :-1] != gt[:, 1:])) == 0


def test_ntidigits_emulator_equals_lava_at_every_layer():
    spikes = np.load(NTIDIGITS / "input.npy")[:, :400]
    args = dict(steps=400, spikes=spikes, num_layers=5)
    assert_identical(simulate(NTIDIGITS / "ntidigits.net", **args),
                     simulate(NTIDIGITS / "ntidigits.net", backend="lava", timeout=300, **args))


def test_mnist_default_output_neuron_emulator_equals_lava():
    """mnist.net's last dense has no neuron group: netx's default never fires."""
    rng = np.random.default_rng(0)
    currents = rng.integers(0, 3000, size=(784, 12))
    args = dict(steps=12, spikes=currents)
    emulator = simulate(MNIST_NET, **args)
    assert_identical(emulator, simulate(MNIST_NET, backend="lava", timeout=300, **args))
    assert not emulator.layers[-1].spikes.any()


# --- recurrent dense --------------------------------------------------------------------------

def recurrent_net(path, seed: int = 0):
    rng = np.random.default_rng(seed)
    even = lambda *shape: 2 * rng.integers(-40, 60, size=shape)  # noqa: E731
    layers = [
        LayerSpec(0, "input", (8,), CubaNeuron(4096, 0, 40)),
        LayerSpec(1, "dense_rec", (6,), CubaNeuron(2048, 256, 90), even(6, 8),
                  bias=rng.integers(-3, 6, size=6), weight_rec=even(6, 6)),
        LayerSpec(2, "dense", (4,), CubaNeuron(4096, 128, 60), even(4, 6)),
    ]
    return write_network(path, layers)


def test_dense_rec_emulator_equals_lava(tmp_path):
    net = recurrent_net(tmp_path / "rec.net")
    assert net.layers[1].weight_rec.shape == (6, 6)
    currents = np.random.default_rng(1).integers(0, 30, size=(2, 8, 40))
    emulator = simulate(net.path, steps=40, spikes=currents)
    lava = simulate(net.path, steps=40, spikes=currents, backend="lava", timeout=300)
    assert_identical(emulator, lava)
    # the recurrent weights act: without them layer 1 spikes differently
    plain = write_network(tmp_path / "plain.net",
                          [net.layers[0], LayerSpec(1, "dense", (6,), net.layers[1].neuron,
                                                    net.layers[1].weight, net.layers[1].bias),
                           net.layers[2]])
    assert not np.array_equal(simulate(plain.path, steps=40, spikes=currents).layers[1].spikes,
                              emulator.layers[1].spikes)


# --- resonate-and-fire behind a complex dense -------------------------------------------------

def test_rf_complex_dense_emulator_equals_lava(tmp_path):
    """netx builds RF_PHASE as Lava's RF and RF_IZHIKEVICH as RF_IZ behind ComplexDense."""
    rng = np.random.default_rng(7)
    even = lambda *shape: 2 * rng.integers(-50, 51, size=shape)  # noqa: E731
    layers = [LayerSpec(1, "dense", (9,), RfNeuron("RF_PHASE", 1100, 3700, 30), even(9, 12),
                        weight_imag=even(9, 12)),
              LayerSpec(2, "dense", (7,), RfNeuron("RF_IZHIKEVICH", 900, 3900, 20), even(7, 9),
                        weight_imag=even(7, 9))]
    net = write_network(tmp_path / "rf.net", layers, declared_input=(12,))
    assert [layer.neuron.process for layer in net.layers] == ["RF", "RF_IZ"]
    spikes = (rng.random((12, 60)) < 0.2).astype(np.int64)
    emulator = simulate(net.path, steps=60, spikes=spikes)
    assert_identical(emulator, simulate(net.path, steps=60, spikes=spikes, backend="lava",
                                        timeout=300))
    assert emulator.layers[-1].spikes.sum() > 5
