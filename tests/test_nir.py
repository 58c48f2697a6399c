"""NIR interoperability: round trips integer by integer, hand-built graphs on both engines,
and refusals that name the node."""

from pathlib import Path

import h5py
import nir
import numpy as np
import pytest
from corpus import OXFORD, TINY_BIAS, TINY_NET
from netfactory import random_digits_net, random_images, random_net

from slssnn.cli import main
from slssnn.errors import SlssnnError
from slssnn.export.netx_reader import read_network
from slssnn.export.netx_writer import export_network
from slssnn.export.nir_export import convert_netx_to_nir, network_to_nir
from slssnn.export.nir_import import convert_nir_to_netx
from slssnn.lava_runtime.simulate import simulate
from slssnn.training.checkpoint import save_checkpoint

pytestmark = pytest.mark.timeout(300)

SPEC_FIELDS = ("index", "type", "shape", "neuron", "stride", "padding", "dilation", "groups",
               "flatten_before")
NEURON_RAW = ("type", "iDecay", "vDecay", "vThMant", "refDelay", "gradedSpike")


def _raw_neurons(path: Path) -> list[dict]:
    """Every layer's neuron fields and input transform as stored in the file."""
    out = []
    with h5py.File(path, "r") as f:
        for i in range(len(f["layer"])):
            g = f["layer"][str(i)]
            entry = {k: np.asarray(g["neuron"][k][()]).tolist() for k in NEURON_RAW
                     if "neuron" in g and k in g["neuron"]}
            if np.asarray(g["type"][()]).reshape(-1)[0] == b"input":
                entry.update({k: np.asarray(g[k][()]).tolist() for k in ("weight", "bias")
                              if k in g})
            out.append(entry)
    return out


def assert_same_network(a_path: Path, b_path: Path) -> None:
    """Integer arrays, geometry, neuron fields and metadata identical."""
    a, b = read_network(a_path), read_network(b_path)
    assert len(a.layers) == len(b.layers)
    for x, y in zip(a.layers, b.layers, strict=True):
        for f in SPEC_FIELDS:
            assert getattr(x, f) == getattr(y, f), (x.name, f)
        for f in ("weight", "bias", "delay", "weight_rec"):
            u, v = getattr(x, f), getattr(y, f)
            assert (u is None) == (v is None), (x.name, f)
            if u is not None:
                assert u.dtype == v.dtype and np.array_equal(u, v), (x.name, f)
    assert a.metadata == b.metadata
    assert _raw_neurons(a_path) == _raw_neurons(b_path)


def round_trip(src: Path, tmp_path: Path) -> Path:
    """netx -> NIR file -> netx, through nir.write / nir.read."""
    convert_netx_to_nir(src, tmp_path / "graph.nir")
    out = tmp_path / "back.net"
    convert_nir_to_netx(tmp_path / "graph.nir", out)
    return out


def assert_same_spikes(a: Path, b: Path, **inputs) -> None:
    ra = simulate(a, backend="emulator", **inputs)
    rb = simulate(b, backend="emulator", **inputs)
    for x, y in zip(ra.layers, rb.layers, strict=True):
        assert np.array_equal(x.spikes, y.spikes), x.name
    assert ra.layers[-1].spikes.sum() > 0


def test_ours_to_nir_to_netx_is_identical(tmp_path):
    model = random_digits_net(timesteps=4, seed=3)
    src = tmp_path / "ours.net"
    export_network(model, src, {"note": "test"})
    graph = network_to_nir(read_network(src))
    kinds = [type(n).__name__ for n in graph.nodes.values()]
    # the input layer keeps half its current (iDecay 2048) into a non-leaky voltage: LI -> IF
    assert kinds == ["Input", "LI", "IF", "Conv2d", "IF", "Conv2d", "IF", "Flatten", "Linear",
                     "IF", "Linear", "IF", "Output"]
    assert read_network(src).layers[0].neuron.i_decay == 2048
    assert np.allclose(graph.nodes["L0_current"].tau, 2e-4)  # dt 1e-4 * 4096 / 2048
    back = round_trip(src, tmp_path)
    assert_same_network(src, back)
    currents = model.input_layer.currents(random_images(3, (1, 8, 8))).numpy()
    lava_order = np.swapaxes(currents, 1, 3)[..., None].repeat(6, axis=-1)  # (B, W, H, C, T)
    assert_same_spikes(src, back, steps=6, spikes=lava_order)


def test_leaky_cuba_bias_and_delays_round_trip(tmp_path):
    """LIF and CubaLIF (bias as v_leak) layers, per-input and per-output dense delays."""
    model = random_net(timesteps=4, bias=True, v_decay=300, seed=5)
    src = tmp_path / "leaky.net"
    export_network(model, src)
    with h5py.File(src, "r+") as f:
        f["layer/2/neuron/iDecay"][()] = 1000  # conv with a decaying current: CubaLIF
        f["layer/5/neuron/iDecay"][()] = 2048
        f["layer/5"].create_dataset("delay", data=np.arange(12) % 4)  # per output
        f["layer/6"].create_dataset("delay", data=np.arange(12) % 3)  # per input
    graph = network_to_nir(read_network(src))
    assert type(graph.nodes["L2_neuron"]).__name__ == "CubaLIF"
    assert type(graph.nodes["L5_delay_out"]).__name__ == "Delay"
    assert type(graph.nodes["L6_delay_in"]).__name__ == "Delay"
    back = round_trip(src, tmp_path)
    assert_same_network(src, back)
    currents = model.input_layer.currents(random_images(2)).numpy()
    assert_same_spikes(src, back, steps=12,
                       spikes=np.swapaxes(currents, 1, 3)[..., None].repeat(12, axis=-1))


HIDDEN_CURRENT_LAYERS = [
    {"type": "conv", "out_channels": 6, "kernel": 3, "stride": 1, "padding": 1,
     "i_decay": 1500},
    {"type": "conv", "out_channels": 8, "kernel": 3, "stride": 2, "padding": 1},
    {"type": "flatten"},
    {"type": "dense", "out_features": 12, "i_decay": 2048},
    {"type": "dense", "out_features": 5, "i_decay": 3000},
]


def test_dense_rec_round_trips_as_a_neuron_with_its_own_loop(tmp_path):
    """netx dense_rec -> NIR neuron N with N -> L{i}_rec -> N (the NIR paper's lif1.w_rec)
    -> the same dense_rec, integer by integer, firing the same."""
    from slssnn.export.netx_reader import CubaNeuron, LayerSpec
    from slssnn.export.netx_writer import write_network

    rng = np.random.default_rng(5)
    even = lambda *shape: 2 * rng.integers(-40, 60, size=shape)  # noqa: E731
    src = write_network(tmp_path / "rec.net", [
        LayerSpec(0, "input", (8,), CubaNeuron(4096, 0, 40)),
        LayerSpec(1, "dense_rec", (6,), CubaNeuron(2048, 256, 90), even(6, 8),
                  bias=rng.integers(-3, 6, size=6), weight_rec=even(6, 6)),
        LayerSpec(2, "dense", (4,), CubaNeuron(4096, 128, 60), even(4, 6))]).path
    graph = network_to_nir(read_network(src))
    assert ("L1_neuron", "L1_rec") in graph.edges and ("L1_rec", "L1_neuron") in graph.edges
    back = round_trip(src, tmp_path)
    assert_same_network(src, back)
    currents = np.random.default_rng(1).integers(0, 30, size=(2, 8, 30))
    assert_same_spikes(src, back, steps=30, spikes=currents)


def test_decaying_current_into_if_in_hidden_layers_round_trips(tmp_path):
    """Blocks with iDecay < 4096 and vDecay 0 (per-block options) become LI -> IF and back."""
    model = random_net(timesteps=4, bias=False, v_decay=0, layers=HIDDEN_CURRENT_LAYERS, seed=7)
    src = tmp_path / "current.net"
    export_network(model, src)
    decays = [(s.neuron.i_decay, s.neuron.v_decay) for s in read_network(src).layers]
    assert decays == [(4096, 0), (1500, 0), (4096, 0), (2048, 0), (3000, 0)]
    with h5py.File(src, "r+") as f:
        f["layer/5"].create_dataset("delay", data=np.arange(5) % 3)  # per output, before LI
    graph = network_to_nir(read_network(src))
    kinds = {name: type(n).__name__ for name, n in graph.nodes.items()}
    assert [kinds[k] for k in ("L0_neuron", "L1_current", "L1_neuron", "L2_neuron",
                               "L4_current", "L4_neuron", "L5_current", "L5_neuron")] == \
        ["IF", "LI", "IF", "IF", "LI", "IF", "LI", "IF"]
    assert ("L5_delay_out", "L5_current") in graph.edges
    back = round_trip(src, tmp_path)
    assert_same_network(src, back)
    currents = model.input_layer.currents(random_images(3)).numpy()
    assert_same_spikes(src, back, steps=10,
                       spikes=np.swapaxes(currents, 1, 3)[..., None].repeat(10, axis=-1))


def _nir_reference(nodes, x: np.ndarray, dt: float) -> np.ndarray:
    """Spikes of a chain of LI/IF nodes under the documented forward-Euler equations (float)."""
    state = [np.zeros(x.shape[1:]) for _ in nodes]
    out = []
    for step in x:
        y = step.astype(np.float64)
        for k, node in enumerate(nodes):
            if isinstance(node, nir.LI):
                ratio = dt / node.tau
                state[k] = (1 - ratio) * state[k] + ratio * (node.v_leak + node.r * y)
                y = state[k]
            else:  # IF
                state[k] = state[k] + node.r * y
                y = (state[k] > node.v_threshold).astype(np.float64)
                state[k] = np.where(y > 0, node.v_reset, state[k])
        out.append(y)
    return np.array(out)


@pytest.mark.parametrize("i_decay", [2048, 1024, 3072])
def test_li_if_pair_is_loihis_cuba_neuron(i_decay):
    """The exported LI -> IF, run as NIR defines it, fires exactly as Loihi's CUBA neuron.

    With these decays and 6 steps Lava's rounding at 1/64 of a unit never acts,
    so NIR's float semantics and the integer neuron must agree spike for spike.
    """
    import torch

    from slssnn.export.nir_map import neuron_to_nir
    from slssnn.training.neuron import CubaParams, CubaState, cuba_step

    shape, steps, threshold = (400,), 6, 12
    nodes, _ = neuron_to_nir(i_decay, 0, threshold, None, shape, 1e-4, "test")
    assert [(role, type(n).__name__) for role, n in nodes] == [("current", "LI"),
                                                                ("neuron", "IF")]
    x = np.random.default_rng(i_decay).integers(0, 17, size=(steps, *shape))
    reference = _nir_reference([n for _, n in nodes], x, 1e-4)
    state, loihi = CubaState.zeros(shape), []
    for step in x:
        s, state = cuba_step(state, torch.from_numpy(step), CubaParams(i_decay, 0, threshold))
        loihi.append(s.numpy())
    assert 0 < reference.sum() < reference.size
    assert np.array_equal(reference, np.array(loihi, dtype=np.float64))


def test_li_before_lif_imports_as_the_equivalent_cubalif(tmp_path):
    """A hand-built LI -> LIF is the same netx layer as the CubaLIF with those time constants."""
    rng = np.random.default_rng(2)
    weight = rng.normal(0.3, 0.4, (4, 6))

    def graph(*neurons):
        return _chain(("in", nir.Input(np.array([6]))), ("fc", nir.Linear(weight=weight)),
                      *neurons, ("out", nir.Output(np.array([4]))))

    pair = graph(("syn", nir.LI(tau=np.full(4, 4e-4), r=np.full(4, 8.0), v_leak=np.zeros(4))),
                 ("lif", nir.LIF(tau=np.full(4, 8e-4), r=np.full(4, 8.0), v_leak=np.full(4, .1),
                                 v_threshold=np.full(4, 1.5))))
    cuba = graph(("cuba", nir.CubaLIF(tau_syn=np.full(4, 4e-4), tau_mem=np.full(4, 8e-4),
                                      r=np.full(4, 8.0), w_in=np.full(4, 8.0),
                                      v_leak=np.full(4, .1), v_threshold=np.full(4, 1.5))))
    a = convert_nir_to_netx(pair, tmp_path / "pair.net")
    b = convert_nir_to_netx(cuba, tmp_path / "cuba.net")
    assert a.report[0]["nodes"] == ["fc", "syn", "lif"]
    (x,), (y,) = a.network.layers, b.network.layers
    assert (x.neuron.i_decay, x.neuron.v_decay) == (1024, 512)
    assert x.neuron == y.neuron and np.array_equal(x.weight, y.weight)
    assert np.array_equal(x.bias, y.bias)


def test_lava_dl_tinynet_round_trip(tmp_path):
    src = TINY_NET
    back = round_trip(src, tmp_path)
    assert_same_network(src, back)
    assert_same_spikes(src, back, steps=20, bias=np.load(TINY_BIAS),
                       reset_interval=17)


def test_lava_dl_oxford_round_trip(tmp_path):
    src = OXFORD / "network.net"
    back = round_trip(src, tmp_path)
    assert_same_network(src, back)
    events = np.load(OXFORD / "input.npy")
    spikes = np.zeros((200, 400), dtype=np.int64)
    keep = events[:, 2] < 400
    spikes[events[keep, 0].astype(int), np.floor(events[keep, 2]).astype(int)] = 1
    assert_same_spikes(src, back, steps=400, spikes=spikes)


def test_per_synapse_delays_are_refused(tmp_path):
    src = tmp_path / "oxford.net"
    src.write_bytes((OXFORD / "network.net").read_bytes())
    with h5py.File(src, "r+") as f:
        f["layer/0"].create_dataset("delay", data=np.random.default_rng(0).integers(
            0, 5, size=(256, 200)))
    with pytest.raises(SlssnnError, match=r"layer 0 \(dense\): per-synapse delays cannot be "
                                          "expressed in NIR"):
        convert_netx_to_nir(src, tmp_path / "x.nir")
    assert not (tmp_path / "x.nir").exists()


def test_cli_export_and_convert(tmp_path, capsys):
    model = random_digits_net(timesteps=4, seed=1)
    save_checkpoint(tmp_path / "checkpoint.pt", model, {"config": {}})
    assert main(["export", str(tmp_path / "checkpoint.pt"), "-o", str(tmp_path / "a.net")]) == 0
    assert main(["export", str(tmp_path / "checkpoint.pt"), "--format", "nir",
                 "-o", str(tmp_path / "a.nir")]) == 0
    assert main(["convert", str(tmp_path / "a.nir"), "-o", str(tmp_path / "b.net")]) == 0
    assert "exact" in capsys.readouterr().out
    assert_same_network(tmp_path / "a.net", tmp_path / "b.net")
    assert main(["convert", str(tmp_path / "b.net"), "-o", str(tmp_path / "c.nir"),
                 "--dt", "0.001"]) == 0
    assert float(nir.read(tmp_path / "c.nir").metadata["dt"]) == 0.001
    assert main(["convert", str(tmp_path / "c.nir"), "-o", str(tmp_path / "c.net")]) == 0
    assert_same_network(tmp_path / "a.net", tmp_path / "c.net")
    assert main(["convert", str(tmp_path / "c.nir"), "-o", str(tmp_path / "d.net"),
                 "--timesteps", "7"]) == 0
    assert read_network(tmp_path / "d.net").metadata["timesteps"] == 7
    (tmp_path / "junk.nir").write_bytes(b"not hdf5")
    assert main(["convert", str(tmp_path / "junk.nir"), "-o", str(tmp_path / "d.net")]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("slssnn: error:") and "\n" not in err


# --- graphs written by hand with the nir package (not by our exporter) ---------------------

def _lif(shape, tau, thr, dt=1e-4, gain=1.0):
    shape = tuple(shape)
    return nir.LIF(tau=np.full(shape, tau), r=np.full(shape, gain * tau / dt),
                   v_leak=np.zeros(shape), v_threshold=np.full(shape, thr),
                   v_reset=np.zeros(shape))


def conv_graph(rng) -> nir.NIRGraph:
    """Input currents -> IF -> Conv2d -> LIF -> Flatten -> Linear -> CubaLIF (v_leak)."""
    return nir.NIRGraph(nodes={
        "in": nir.Input(input_type=np.array([2, 6, 6])),
        "encode": nir.IF(r=np.full((2, 6, 6), 0.5), v_threshold=np.full((2, 6, 6), 3.0)),
        "conv": nir.Conv2d(input_shape=(6, 6), weight=rng.normal(0.3, 0.5, (4, 2, 3, 3)),
                           stride=2, padding=1, dilation=1, groups=1,
                           bias=rng.normal(0.1, 0.1, 4)),
        "lif": _lif((4, 3, 3), 8e-4, 1.0, gain=2.0),
        "flat": nir.Flatten(input_type={"input": np.array([4, 3, 3])}, start_dim=0),
        "fc": nir.Linear(weight=rng.normal(0.2, 0.4, (5, 36))),
        "cuba": nir.CubaLIF(tau_syn=np.full(5, 2e-4), tau_mem=np.full(5, 4e-4),
                            r=np.full(5, 4.0), v_leak=np.full(5, 0.2),
                            v_threshold=np.linspace(0.8, 1.6, 5), w_in=np.full(5, 2.0)),
        "out": nir.Output(output_type=np.array([5])),
    }, edges=[("in", "encode"), ("encode", "conv"), ("conv", "lif"), ("lif", "flat"),
              ("flat", "fc"), ("fc", "cuba"), ("cuba", "out")])


def dense_graph(rng) -> nir.NIRGraph:
    """Input spikes -> Delay -> Affine -> LIF -> Affine -> Delay -> IF."""
    return nir.NIRGraph(nodes={
        "in": nir.Input(input_type=np.array([20])),
        "d_in": nir.Delay(delay=rng.integers(0, 3, 20) * 1e-4),
        "fc1": nir.Affine(weight=rng.normal(0.4, 0.6, (16, 20)), bias=rng.normal(0, 0.1, 16)),
        "lif1": _lif((16,), 1e-3, 1.5),
        "fc2": nir.Affine(weight=rng.normal(0.3, 0.5, (6, 16)), bias=np.zeros(6)),
        "d_out": nir.Delay(delay=np.arange(6) * 1e-4),
        "if2": nir.IF(r=np.ones(6), v_threshold=np.ones(6)),
        "out": nir.Output(output_type=np.array([6])),
    }, edges=[("in", "d_in"), ("d_in", "fc1"), ("fc1", "lif1"), ("lif1", "fc2"),
              ("fc2", "d_out"), ("d_out", "if2"), ("if2", "out")])


@pytest.mark.parametrize("make", [conv_graph, dense_graph])
def test_hand_built_graph_runs_equal_on_emulator_and_lava(tmp_path, make):
    rng = np.random.default_rng(4)
    graph = make(rng)
    nir.write(tmp_path / "hand.nir", graph)
    result = convert_nir_to_netx(tmp_path / "hand.nir", tmp_path / "hand.net", timesteps=10)
    assert not all(r["exact"] for r in result.report)  # floats had to be quantized
    assert all(r["weight_max_abs_error"] <= 1.0 for r in result.report)  # half a step of 2
    net = read_network(tmp_path / "hand.net")
    shape = net.input_shape
    lava_shape = tuple(reversed(shape)) if len(shape) == 3 else shape
    steps = 16
    if make is conv_graph:  # currents into the input layer
        inputs = rng.integers(0, 5, size=lava_shape + (steps,))
    else:  # spikes into the first synapse
        inputs = (rng.random(lava_shape + (steps,)) < 0.4).astype(np.int64)
    emu = simulate(tmp_path / "hand.net", steps=steps, spikes=inputs, backend="emulator")
    lava = simulate(tmp_path / "hand.net", steps=steps, spikes=inputs, backend="lava",
                    timeout=240)
    for a, b in zip(emu.layers, lava.layers, strict=True):
        assert np.array_equal(a.spikes, b.spikes), a.name
        assert a.spikes.sum() > 0, a.name


def test_hand_built_graph_folds_gain_threshold_and_leak(tmp_path):
    """The integers follow the documented folding: gain r, per-neuron thresholds, v_leak."""
    rng = np.random.default_rng(4)
    net = convert_nir_to_netx(conv_graph(rng), tmp_path / "c.net").network
    inp, conv, fc = net.layers
    assert inp.type == "input" and inp.neuron.threshold == 6  # 3.0 / r 0.5, input scale 1
    assert net.metadata["input_encoding"]["scale"] == 1.0
    assert (conv.neuron.i_decay, conv.neuron.v_decay) == (4096, 512)  # dt/tau = 1/8
    assert (fc.neuron.i_decay, fc.neuron.v_decay) == (2048, 1024)
    assert np.abs(conv.weight).max() == 254 and fc.bias is not None
    # scale = 254 / max|gain * W|: the threshold 1.0 becomes 254 / (2 max|W|)
    weight = np.random.default_rng(4).normal(0.3, 0.5, (4, 2, 3, 3))
    assert conv.neuron.threshold == round(254 / (2 * np.abs(weight).max()))
    assert fc.neuron.threshold > 1  # per-neuron thresholds folded into the weights


def test_quantization_report_counts_clipped_biases(tmp_path):
    graph = _chain(("in", nir.Input(np.array([4]))),
                   ("fc", nir.Affine(weight=np.eye(3, 4) * 0.5, bias=np.array([0.1, 50, -50]))),
                   ("if", nir.IF(r=np.ones(3), v_threshold=np.ones(3))),
                   ("out", nir.Output(np.array([3]))))
    result = convert_nir_to_netx(graph, tmp_path / "b.net")
    (record,) = result.report
    assert not record["exact"] and record["scale"] == pytest.approx(508)
    assert record["bias_clipped"] == 2 and record["threshold_int"] == 508
    assert result.network.layers[0].bias.tolist() == [51, 4095, -4096]
    assert "0/2" in result.format_report().splitlines()[1]  # clipped weights/biases


# --- refusals: one line, naming the node and why -------------------------------------------

def _graph(nodes, edges):
    return nir.NIRGraph(nodes=nodes, edges=edges)


def _chain(*named):
    nodes = dict(named)
    names = list(nodes)
    return _graph(nodes, list(zip(names[:-1], names[1:], strict=True)))


REFUSALS = {
    "pooling into no neuron": (lambda: _chain(
        ("in", nir.Input(np.array([1, 4, 4]))), ("n0", nir.IF(r=np.ones((1, 4, 4)),
                                                              v_threshold=np.ones((1, 4, 4)))),
        ("pool", nir.SumPool2d(kernel_size=np.array([2, 2]), stride=np.array([2, 2]),
                               padding=np.array([0, 0]))),
        ("out", nir.Output(np.array([1, 2, 2])))),
        r"NIR node 'pool' \(SumPool2d\): must be followed by a neuron node"),
    "loop through two layers": (lambda: _graph({
        "in": nir.Input(np.array([3])), "fc": nir.Linear(weight=np.eye(3)),
        "lif": _lif((3,), 1e-3, 1.0), "rec": nir.Linear(weight=np.eye(3)),
        "lif2": _lif((3,), 1e-3, 1.0), "out": nir.Output(np.array([3]))},
        [("in", "fc"), ("fc", "lif"), ("lif", "rec"), ("rec", "lif2"), ("lif2", "fc"),
         ("lif2", "out")]),
        r"closes a loop that is not a neuron's own recurrent Affine/Linear"),
    "v_reset": (lambda: _chain(
        ("in", nir.Input(np.array([3]))), ("fc", nir.Linear(weight=np.eye(3))),
        ("if", nir.IF(r=np.ones(3), v_threshold=np.ones(3), v_reset=np.full(3, -0.5))),
        ("out", nir.Output(np.array([3])))),
        r"NIR node 'if' \(IF\): v_reset must be 0"),
    "per-neuron tau": (lambda: _chain(
        ("in", nir.Input(np.array([3]))), ("fc", nir.Linear(weight=np.eye(3))),
        ("lif", nir.LIF(tau=np.array([1e-3, 2e-3, 3e-3]), r=np.ones(3), v_leak=np.zeros(3),
                        v_threshold=np.ones(3))),
        ("out", nir.Output(np.array([3])))),
        r"NIR node 'lif' \(LIF\): dt/tau differs between neurons"),
    "non-spiking": (lambda: _chain(
        ("in", nir.Input(np.array([3]))), ("fc", nir.Linear(weight=np.eye(3))),
        ("li", nir.LI(tau=np.ones(3), r=np.ones(3), v_leak=np.zeros(3))),
        ("out", nir.Output(np.array([3])))),
        r"NIR node 'li' \(LI\): a non-spiking leaky integrator"),
    "LI at the end": (lambda: _chain(
        ("in", nir.Input(np.array([3]))), ("fc", nir.Linear(weight=np.eye(3))),
        ("if", nir.IF(r=np.ones(3), v_threshold=np.ones(3))),
        ("readout", nir.LI(tau=np.ones(3), r=np.ones(3), v_leak=np.zeros(3))),
        ("out", nir.Output(np.array([3])))),
        r"NIR node 'readout' \(LI\): a non-spiking leaky integrator"),
    "LI before a synapse": (lambda: _chain(
        ("in", nir.Input(np.array([3]))),
        ("li", nir.LI(tau=np.full(3, 2e-4), r=np.full(3, 2.0), v_leak=np.zeros(3))),
        ("fc", nir.Linear(weight=np.eye(3))),
        ("if", nir.IF(r=np.ones(3), v_threshold=np.ones(3))),
        ("out", nir.Output(np.array([3])))),
        r"NIR node 'li' \(LI\): a non-spiking leaky integrator"),
    "LI before CubaLIF": (lambda: _chain(
        ("in", nir.Input(np.array([3]))), ("fc", nir.Linear(weight=np.eye(3))),
        ("li", nir.LI(tau=np.full(3, 2e-4), r=np.full(3, 2.0), v_leak=np.zeros(3))),
        ("cuba", nir.CubaLIF(tau_syn=np.full(3, 2e-4), tau_mem=np.full(3, 4e-4),
                             r=np.full(3, 4.0), v_leak=np.zeros(3), v_threshold=np.ones(3),
                             w_in=np.full(3, 2.0))),
        ("out", nir.Output(np.array([3])))),
        r"NIR node 'li' \(LI\): followed by 'cuba' \(CubaLIF\), whose own current decays"),
    "LI v_leak": (lambda: _chain(
        ("in", nir.Input(np.array([3]))), ("fc", nir.Linear(weight=np.eye(3))),
        ("li", nir.LI(tau=np.full(3, 2e-4), r=np.full(3, 2.0), v_leak=np.ones(3))),
        ("if", nir.IF(r=np.ones(3), v_threshold=np.ones(3))),
        ("out", nir.Output(np.array([3])))),
        r"NIR node 'li' \(LI\): v_leak would be filtered"),
}


@pytest.mark.parametrize("case", sorted(REFUSALS))
def test_unmappable_graphs_are_refused_naming_the_node(tmp_path, case):
    make, message = REFUSALS[case]
    nir.write(tmp_path / "bad.nir", make())
    with pytest.raises(SlssnnError, match=message) as info:
        convert_nir_to_netx(tmp_path / "bad.nir", tmp_path / "bad.net")
    assert "\n" not in str(info.value)
    assert not (tmp_path / "bad.net").exists()


def test_export_refuses_what_nir_cannot_express(tmp_path):
    model = random_net(timesteps=4, bias=True, v_decay=0, layers=HIDDEN_CURRENT_LAYERS, seed=2)
    src = tmp_path / "if.net"
    export_network(model, src)
    # a bias into a non-leaky voltage behind a decaying current: IF has no leak term for it
    with pytest.raises(SlssnnError, match=r"layer 1 \(conv\): a bias into a non-leaky voltage "
                                          r"behind a decaying current \(iDecay 1500, vDecay 0\)"):
        network_to_nir(read_network(src))
    model = random_net(timesteps=4, bias=False, v_decay=0, seed=2)
    export_network(model, src)
    with h5py.File(src, "r+") as f:
        f["layer/1/neuron/iDecay"][()] = 0  # a current that never decays
    with pytest.raises(SlssnnError, match=r"layer 1 \(conv\): iDecay 0"):
        network_to_nir(read_network(src))
