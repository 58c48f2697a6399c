"""Linear chains fold into one netx synapse, recurrent neurons become dense_rec: checked
against a float evaluation of the unfolded NIR graph (tests/nir_reference.py)."""

import nir
import numpy as np
import pytest
import torch
import torch.nn.functional as F
from nir_reference import run_graph

from slssnn.errors import SlssnnError
from slssnn.export.nir_fold import fold_linear_chain
from slssnn.export.nir_import import convert_nir_to_netx
from slssnn.lava_runtime.simulate import simulate

pytestmark = pytest.mark.timeout(300)
DT = 1e-4


def _chain_graph(named, edges=None):
    nodes = dict(named)
    names = list(nodes)
    return nir.NIRGraph(nodes=nodes, edges=edges or list(zip(names[:-1], names[1:],
                                                                 strict=True)))


def if_node(shape, threshold=1.0):
    shape = tuple(shape)
    return nir.IF(r=np.ones(shape), v_threshold=np.full(shape, float(threshold)),
                  v_reset=np.zeros(shape))


def conv(weight, stride=1, padding=0, groups=1, dilation=1, bias=None):
    return nir.Conv2d(input_shape=None, weight=np.asarray(weight, np.float64), stride=stride,
                      padding=padding, dilation=dilation, groups=groups,
                      bias=np.zeros(len(weight)) if bias is None else bias)


def pool(k=2, s=None, p=0, average=False):
    kind = nir.AvgPool2d if average else nir.SumPool2d
    return kind(kernel_size=np.array([k, k]), stride=np.array([s or k, s or k]),
                padding=np.array([p, p]))


def flatten(shape):
    return nir.Flatten(input_type={"input": np.array(shape)}, start_dim=0)


# --- the fold itself, in real numbers --------------------------------------------------------

def _apply_folded(folded, x):
    x = torch.as_tensor(x)
    if folded.kind == "conv":
        g = folded.geometry
        b = None if folded.bias is None else torch.as_tensor(folded.bias)
        return F.conv2d(x, torch.as_tensor(folded.weight), b, g["stride"], g["padding"],
                        g["dilation"], g["groups"]).numpy()
    y = x.reshape(x.shape[0], -1) @ torch.as_tensor(folded.weight).T
    return (y if folded.bias is None else y + torch.as_tensor(folded.bias)).numpy()


def _reference_chain(items, x, out_shape):
    """The chain node after node, by the reference evaluator (Input -> chain -> Output)."""
    graph = _chain_graph([("in", nir.Input(np.array(x.shape[1:])))] + items
                         + [("out", nir.Output(np.array(out_shape)))])
    return run_graph(graph, x[:, None])["out"][:, 0]


R = np.random.default_rng(11)
CHAINS = {
    "sumpool-conv (sinabs)": ((4, 8, 8), [("p", pool()), ("c", conv(R.normal(size=(5, 4, 3, 3)),
                                                                    padding=1))], "conv"),
    "avgpool-conv": ((3, 9, 9), [("p", pool(3, average=True)),
                                 ("c", conv(R.normal(size=(2, 3, 2, 2)), stride=1))], "conv"),
    "conv-sumpool": ((2, 10, 10), [("c", conv(R.normal(size=(3, 2, 3, 3)), bias=R.normal(
        size=3))), ("p", pool())], "conv"),
    "grouped dilated conv-pool-conv": ((4, 13, 13), [
        ("c1", conv(R.normal(size=(4, 2, 2, 2)), groups=2, dilation=2)), ("p", pool()),
        ("s", nir.Scale(scale=np.arange(1.0, 5.0).reshape(4, 1, 1) * np.ones((4, 5, 5)))),
        ("c2", conv(R.normal(size=(3, 4, 3, 3)), stride=2))], "conv"),
    "pool only (depthwise)": ((3, 6, 6), [("p", pool(3))], "conv"),
    "pool-flatten-linear": ((4, 6, 6), [("p", pool()), ("f", flatten([4, 3, 3])),
                                        ("fc", nir.Linear(weight=R.normal(size=(7, 36))))],
                            "dense"),
    "conv-pool-flatten-affine-scale": ((2, 6, 6), [
        ("c", conv(R.normal(size=(3, 2, 3, 3)), padding=1, bias=R.normal(size=3))),
        ("p", pool(2)), ("f", flatten([3, 3, 3])),
        ("fc", nir.Affine(weight=R.normal(size=(5, 27)), bias=R.normal(size=5))),
        ("s", nir.Scale(scale=R.normal(size=5)))], "dense"),
    "affine-affine": ((6,), [("a", nir.Affine(weight=R.normal(size=(4, 6)), bias=R.normal(
        size=4))), ("b", nir.Linear(weight=R.normal(size=(3, 4))))], "dense"),
}


@pytest.mark.parametrize("case", sorted(CHAINS))
def test_fold_is_the_chain_in_real_numbers(case):
    shape, items, kind = CHAINS[case]
    folded = fold_linear_chain(items, shape)
    assert folded.kind == kind and folded.nodes == [n for n, _ in items]
    x = np.random.default_rng(1).normal(size=(4, *shape))
    want = _reference_chain(items, x, folded.shape)
    got = _apply_folded(folded, x)
    assert got.shape == want.shape
    assert np.allclose(got, want, rtol=1e-10, atol=1e-10)


def test_sumpool_then_conv_is_a_larger_strided_kernel():
    weight = np.arange(2 * 3 * 3 * 3, dtype=np.float64).reshape(2, 3, 3, 3)
    folded = fold_linear_chain([("p", pool()), ("c", conv(weight, padding=1))], (3, 8, 8))
    assert folded.geometry == {"stride": (2, 2), "padding": (2, 2), "dilation": (1, 1),
                               "groups": 1}
    assert folded.weight.shape == (2, 3, 6, 6)
    # each input pixel reaches each conv tap through exactly one pool window
    assert np.array_equal(folded.weight[:, :, ::2, ::2], weight)
    assert np.array_equal(folded.weight[:, :, 1::2, 1::2], weight)
    assert folded.shape == (2, 4, 4)


def test_fold_refused_where_padding_stands_for_dropped_rows():
    """Pooling 5 rows by 2 drops row 4; the next conv's padding is not that row."""
    items = [("pool", pool()), ("conv", conv(np.ones((1, 1, 3, 3)), padding=1))]
    with pytest.raises(SlssnnError, match=r"NIR nodes 'pool' -> 'conv': folding into one conv "
                                          "is not exact"):
        fold_linear_chain(items, (1, 5, 5))


def test_fold_refused_beyond_the_weight_range(tmp_path):
    """A fold whose weights span more than 8 bits would cut neurons off: refused."""
    weight = np.array([[1000.0, 0, 0, 0], [0.001, 0.001, 0, 0]])
    graph = _chain_graph([("in", nir.Input(np.array([1, 4, 4]))), ("n0", if_node((1, 4, 4))),
                          ("pool", pool()), ("flat", flatten([1, 2, 2])),
                          ("fc", nir.Linear(weight=weight)), ("n1", if_node((2,))),
                          ("out", nir.Output(np.array([2])))])
    with pytest.raises(SlssnnError, match=r"NIR nodes pool -> flat -> fc: the folded weights "
                                          r"span more than Loihi's 8-bit weight range: 1 "
                                          r"neuron\(s\) of 'n1'"):
        convert_nir_to_netx(graph, tmp_path / "x.net")


# --- spikes: the converted network against the unfolded graph in float ----------------------

def _even(rng, shape, high=6):
    return 2.0 * rng.integers(-high, high + 1, size=shape)


def cnn_graph(rng, scale=1.0):
    """A sinabs-shaped CNN (conv, conv, sumpool, conv, sumpool, flatten, linear, linear),
    with IF neurons, v_reset 0; weights even integers times ``scale``, thresholds integers
    times ``scale`` (so it is on Loihi's grid up to one per-layer scale)."""
    w = [_even(rng, (4, 2, 5, 5)), _even(rng, (4, 4, 3, 3)), _even(rng, (4, 4, 3, 3)),
         _even(rng, (12, 16)), _even(rng, (6, 12))]
    for x in w:  # one weight of 254 per layer: the per-layer scale is exactly 1 / scale
        x.reshape(-1)[0] = 254
    w = [x * scale for x in w]
    th = [7.0 * scale, 20.0 * scale, 30.0 * scale, 24.0 * scale, 20.0 * scale]
    return _chain_graph([
        ("input", nir.Input(np.array([2, 18, 18]))),
        ("0", conv(w[0], stride=2, padding=1)), ("1", if_node((4, 8, 8), th[0])),
        ("2", conv(w[1], padding=1)), ("3", if_node((4, 8, 8), th[1])),
        ("4", pool()), ("5", conv(w[2], padding=1)), ("6", if_node((4, 4, 4), th[2])),
        ("7", pool()), ("8", flatten([4, 2, 2])), ("9", nir.Linear(weight=w[3])),
        ("10", if_node((12,), th[3])), ("11", nir.Linear(weight=w[4])),
        ("12", if_node((6,), th[4])), ("output", nir.Output(np.array([6])))])


def _ours(raster):
    """Lava order (B, ..., T) -> (B, T, C, H, W) or (B, T, N)."""
    raster = np.moveaxis(raster, -1, 1)
    return raster.transpose(0, 1, 4, 3, 2) if raster.ndim == 5 else raster


def assert_network_fires_like_graph(net_path, graph, neuron_names, inputs, steps):
    """Each netx layer's spikes, shifted by its pipeline lag, equal the float graph's.

    Block ``i`` of netx sees the sample's first step ``i`` steps after the input
    (each synapse delivers one step later, one more without an input layer); a
    reset interval longer than the run resets each block once, at that step, so
    the bias it added before its input arrived is gone (as in a dataset run).
    """
    total = steps + len(neuron_names) + 1
    padded = np.concatenate([inputs, np.zeros(inputs.shape[:-1] + (total - steps,),
                                              inputs.dtype)], axis=-1)
    probe = simulate(net_path, steps=1, spikes=padded[..., :1])
    lag = 0 if probe.layers[0].name.endswith(":input") else 1
    result = simulate(net_path, steps=total, spikes=padded, reset_interval=total + 10,
                      reset_offset=lag)
    reference = run_graph(graph, _ours(inputs).astype(np.float64), DT)
    layers = [r for r in result.layers if not r.name.endswith(":input")]
    assert len(layers) == len(neuron_names)
    first = len(result.layers) - len(layers)
    for k, (layer, name) in enumerate(zip(layers, neuron_names, strict=True)):
        start = lag + first + k
        want = reference[name]
        got = _ours(layer.spikes)[:, start:start + steps]
        got = got[..., :want.shape[-1]]  # a clock neuron, if any, is the layer's last
        assert np.array_equal(got, want.astype(got.dtype)), (layer.name, name)
        assert want.sum() > 0, name


@pytest.mark.parametrize("scale", [1.0, 0.25])
def test_folded_cnn_fires_like_the_unfolded_graph(tmp_path, scale):
    """SumPool before a conv and before a dense fold exactly; after quantization too."""
    graph = cnn_graph(np.random.default_rng(5), scale)
    result = convert_nir_to_netx(graph, tmp_path / "cnn.net")
    folds = [r for r in result.report if "fold" in r]
    assert [r["nodes"] for r in folds] == [["4", "5", "6"], ["7", "8", "9", "10"]]
    assert all(r["weight_max_abs_error"] < 1e-6 for r in result.report)
    assert [r["scale"] for r in result.report] == pytest.approx([1 / scale] * 5)
    inputs = (np.random.default_rng(2).random((3, 18, 18, 2, 12)) < 0.5).astype(np.int64)
    assert_network_fires_like_graph(tmp_path / "cnn.net", graph, ["1", "3", "6", "10", "12"],
                                    inputs, 12)


def test_folded_float_graph_fires_like_the_unfolded_one():
    """Before quantization: the graph with each chain replaced by its fold, in float."""
    rng = np.random.default_rng(8)
    graph = cnn_graph(rng, 1.0)
    for name in ("0", "2", "5"):
        graph.nodes[name].weight = rng.normal(0.2, 1.0, graph.nodes[name].weight.shape)
    pooled = fold_linear_chain([("4", graph.nodes["4"]), ("5", graph.nodes["5"])], (4, 8, 8))
    dense = fold_linear_chain([(n, graph.nodes[n]) for n in ("7", "8", "9")], (4, 4, 4))
    g = pooled.geometry
    folded = _chain_graph([
        ("input", graph.nodes["input"]), ("0", graph.nodes["0"]), ("1", graph.nodes["1"]),
        ("2", graph.nodes["2"]), ("3", graph.nodes["3"]),
        ("45", conv(pooled.weight, g["stride"], g["padding"], g["groups"])),
        ("6", graph.nodes["6"]), ("flat", flatten([4, 4, 4])),
        ("789", nir.Linear(weight=dense.weight)),
        ("10", graph.nodes["10"]), ("11", graph.nodes["11"]), ("12", graph.nodes["12"]),
        ("output", graph.nodes["output"])])
    x = (rng.random((4, 20, 2, 18, 18)) < 0.5).astype(np.float64)
    a, b = run_graph(graph, x), run_graph(folded, x)
    for name in ("1", "3", "6", "10", "12"):
        assert np.array_equal(a[name], b[name]), name
        assert a[name].sum() > 0


# --- recurrence -----------------------------------------------------------------------------

def recurrent_graph(rng, neuron, hidden=10, w_rec_bias=None):
    """Input(12) -> fc1 -> lif1.lif (with lif1.w_rec onto itself) -> fc2 -> lif2 -> Output,
    the NIR paper's Braille graph with its node names."""
    w_rec = (nir.Linear(weight=_even(rng, (hidden, hidden), 10)) if w_rec_bias is None else
             nir.Affine(weight=_even(rng, (hidden, hidden), 10), bias=w_rec_bias))
    nodes = {"input": nir.Input(np.array([12])),
             "fc1": nir.Affine(weight=_even(rng, (hidden, 12), 12), bias=np.zeros(hidden)),
             "lif1.lif": neuron(hidden), "lif1.w_rec": w_rec,
             "fc2": nir.Affine(weight=_even(rng, (7, hidden), 12), bias=np.zeros(7)),
             "lif2": neuron(7), "output": nir.Output(np.array([7]))}
    edges = [("input", "fc1"), ("fc1", "lif1.lif"), ("lif1.lif", "lif1.w_rec"),
             ("lif1.w_rec", "lif1.lif"), ("lif1.lif", "fc2"), ("fc2", "lif2"),
             ("lif2", "output")]
    return nir.NIRGraph(nodes=nodes, edges=edges)


def test_recurrent_if_layer_fires_like_the_graph(tmp_path):
    """The recurrent edge carries the previous step's spikes, as netx's dense_rec does."""
    rng = np.random.default_rng(3)
    graph = recurrent_graph(rng, lambda n: if_node((n,), 30.0))
    result = convert_nir_to_netx(graph, tmp_path / "rec.net")
    layers = result.network.layers
    assert [s.type for s in layers] == ["dense_rec", "dense"]
    assert np.array_equal(layers[0].weight_rec, graph.nodes["lif1.w_rec"].weight)
    assert result.report[0]["nodes"] == ["fc1", "lif1.w_rec", "lif1.lif"]
    assert result.report[0]["recurrent"] == "lif1.w_rec" and result.report[0]["exact"]
    inputs = (np.random.default_rng(4).random((3, 12, 30)) < 0.4).astype(np.int64)
    assert_network_fires_like_graph(tmp_path / "rec.net", graph, ["lif1.lif", "lif2"],
                                    inputs, 30)
    # the loop matters: without w_rec the hidden layer fires differently
    graph.nodes["lif1.w_rec"].weight = np.zeros((10, 10))
    plain = run_graph(graph, _ours(inputs).astype(np.float64))["lif1.lif"]
    graph.nodes["lif1.w_rec"].weight = layers[0].weight_rec.astype(np.float64)
    assert not np.array_equal(plain, run_graph(graph, _ours(inputs).astype(
        np.float64))["lif1.lif"])


def test_recurrent_bias_adds_to_the_feed_forward_bias(tmp_path):
    rng = np.random.default_rng(3)
    graph = recurrent_graph(rng, lambda n: if_node((n,), 30.0), w_rec_bias=np.full(10, 4.0))
    graph.nodes["fc1"].bias = np.arange(10.0)
    layer = convert_nir_to_netx(graph, tmp_path / "rec.net").network.layers[0]
    assert layer.bias.tolist() == list(range(4, 14))
    inputs = (np.random.default_rng(4).random((2, 12, 20)) < 0.4).astype(np.int64)
    assert_network_fires_like_graph(tmp_path / "rec.net", graph, ["lif1.lif", "lif2"],
                                    inputs, 20)


def _cuba_half(n, threshold):
    """CubaLIF with gain 1 and both decays 1/2 (iDecay = vDecay = 2048): exact on Loihi for
    up to 7 steps of integer input (no halving reaches below Lava's 1/64 units)."""
    return nir.CubaLIF(tau_syn=np.full(n, 2 * DT), tau_mem=np.full(n, 2 * DT),
                       r=np.full(n, 2.0), v_leak=np.zeros(n), v_threshold=np.full(n, threshold),
                       v_reset=np.zeros(n), w_in=np.full(n, 2.0))


def test_bias_into_a_decaying_current_rides_on_always_on_sources(tmp_path):
    """fc1's and w_rec's biases become the weights of an input channel that is 1 at every
    step, fc2's the weights of a clock neuron appended to lif1; both are exact against the
    float graph, whose biases are filtered by the current as NIR says."""
    rng = np.random.default_rng(6)
    graph = recurrent_graph(rng, lambda n: _cuba_half(n, 24.0),
                            w_rec_bias=_even(rng, (10,), 3))
    graph.nodes["fc1"].bias = _even(rng, (10,), 4)
    graph.nodes["fc2"].bias = _even(rng, (7,), 5)
    result = convert_nir_to_netx(graph, tmp_path / "bias.net")
    rec, out = result.network.layers
    assert [(s.type, s.shape, s.weight.shape) for s in (rec, out)] == [
        ("dense_rec", (11,), (11, 13)), ("dense", (7,), (7, 11))]
    assert rec.neuron.i_decay == 2048 and all(r["exact"] for r in result.report)
    assert np.array_equal(rec.weight[:10, 12], graph.nodes["fc1"].bias
                          + graph.nodes["lif1.w_rec"].bias)
    assert np.array_equal(out.weight[:, 10], graph.nodes["fc2"].bias)
    assert rec.bias.tolist() == [0] * 10 + [rec.neuron.threshold + 1]
    assert not rec.weight[10].any() and not rec.weight_rec[10].any() \
        and not rec.weight_rec[:, 10].any()
    assert result.network.metadata["input_encoding"]["bias_channel"] == 12
    inputs = (np.random.default_rng(4).random((3, 12, 6)) < 0.4).astype(np.int64)
    assert_network_fires_like_graph(tmp_path / "bias.net", graph, ["lif1.lif", "lif2"],
                                    inputs, 6)
    clock = simulate(tmp_path / "bias.net", steps=6, spikes=inputs).layers[0].spikes[:, 10]
    assert clock.all()
    # the biases matter: without them both layers fire differently
    for name in ("fc1", "fc2"):
        graph.nodes[name].bias = np.zeros_like(graph.nodes[name].bias)
    graph.nodes["lif1.w_rec"].bias = np.zeros(10)
    plain = run_graph(graph, _ours(inputs).astype(np.float64))
    got = _ours(simulate(tmp_path / "bias.net", steps=9, spikes=np.concatenate(
        [inputs, np.zeros((3, 12, 3), np.int64)], axis=-1), reset_interval=20,
        reset_offset=1).layers[0].spikes)[:, 1:7, :10]
    assert not np.array_equal(got, plain["lif1.lif"].astype(got.dtype))


def test_bias_into_an_li_current_rides_on_always_on_sources(tmp_path):
    """The same for LI -> IF pairs (the LI is the decaying current): Affine biases into both
    LIs, exact against the float graph."""
    rng = np.random.default_rng(1)

    def li(n):
        return nir.LI(tau=np.full(n, 2 * DT), r=np.full(n, 2.0), v_leak=np.zeros(n))

    graph = _chain_graph([
        ("input", nir.Input(np.array([6]))),
        ("fc", nir.Affine(weight=_even(rng, (5, 6)), bias=_even(rng, (5,), 3))),
        ("li", li(5)), ("n", if_node((5,), 10.0)),
        ("fc2", nir.Affine(weight=_even(rng, (4, 5)), bias=_even(rng, (4,), 3) + 4)),
        ("li2", li(4)), ("n2", if_node((4,), 4.0)), ("output", nir.Output(np.array([4])))])
    result = convert_nir_to_netx(graph, tmp_path / "li.net")
    assert [(s.type, s.weight.shape) for s in result.network.layers] == [
        ("dense", (6, 7)), ("dense", (4, 6))]
    assert all(r["exact"] for r in result.report)
    inputs = (rng.random((3, 6, 6)) < 0.4).astype(np.int64)
    assert_network_fires_like_graph(tmp_path / "li.net", graph, ["n", "n2"], inputs, 6)


def _biased_chain(front, n_out=3):
    """``front`` nodes, then Affine(bias) -> CubaLIF (a decaying current) -> Output."""
    n_in = 8
    return _chain_graph(front + [
        ("fc", nir.Affine(weight=np.ones((n_out, n_in)), bias=np.ones(n_out))),
        ("cuba", _cuba_half(n_out, 4.0)), ("output", nir.Output(np.array([n_out])))])


CURRENT_BIAS_REFUSALS = {
    "after an input neuron layer": (lambda: _biased_chain([
        ("input", nir.Input(np.array([8]))), ("n", if_node((8,)))]),
        r"NIR node 'fc' \(Affine\): a bias filtered by the decaying current of 'cuba', right "
        "after an input neuron layer"),
    "after a conv layer": (lambda: _biased_chain([
        ("input", nir.Input(np.array([2, 4, 4]))), ("c", conv(np.ones((2, 2, 3, 3)))),
        ("n", if_node((2, 2, 2))), ("f", flatten([2, 2, 2]))]),
        r"NIR node 'fc' \(Affine\): a bias filtered by a decaying current after the conv "
        "layer 'n'"),
    "into a conv layer": (lambda: _chain_graph([
        ("input", nir.Input(np.array([2, 4, 4]))), ("c", conv(np.ones((2, 2, 1, 1)))),
        ("n", if_node((2, 4, 4))), ("c2", conv(np.ones((2, 2, 3, 3)), bias=np.ones(2))),
        ("cuba", _cuba_half((2, 2, 2), 4.0)), ("output", nir.Output(np.array([2, 2, 2])))]),
        r"NIR node 'c2' \(Conv2d\): a bias filtered by a decaying current after the conv "
        "layer 'n'"),
}


@pytest.mark.parametrize("case", sorted(CURRENT_BIAS_REFUSALS))
def test_bias_into_a_current_without_an_always_on_source_is_refused(tmp_path, case):
    make, message = CURRENT_BIAS_REFUSALS[case]
    with pytest.raises(SlssnnError, match=message):
        convert_nir_to_netx(make(), tmp_path / "bad.net")
    assert not (tmp_path / "bad.net").exists()


RECURRENT_REFUSALS = {
    "loop across layers": (lambda: nir.NIRGraph(nodes={
        "in": nir.Input(np.array([3])), "fc": nir.Linear(weight=np.eye(3)),
        "a": if_node((3,)), "fc2": nir.Linear(weight=np.eye(3)), "b": if_node((3,)),
        "back": nir.Linear(weight=np.eye(3)), "out": nir.Output(np.array([3]))},
        edges=[("in", "fc"), ("fc", "a"), ("a", "fc2"), ("fc2", "b"), ("b", "back"),
               ("back", "a"), ("b", "out")]),
        r"edge '.*' -> '.*' closes a loop that is not a neuron's own recurrent"),
    "recurrent input layer": (lambda: nir.NIRGraph(nodes={
        "in": nir.Input(np.array([3])), "n": if_node((3,)), "rec": nir.Linear(weight=np.eye(3)),
        "fc": nir.Linear(weight=np.eye(3)), "m": if_node((3,)), "out": nir.Output(np.array([3]))},
        edges=[("in", "n"), ("n", "rec"), ("rec", "n"), ("n", "fc"), ("fc", "m"), ("m", "out")]),
        r"NIR node 'n' \(IF\): a recurrent neuron right after the Input"),
    "recurrence past an LI": (lambda: nir.NIRGraph(nodes={
        "in": nir.Input(np.array([3])), "fc": nir.Linear(weight=np.eye(3)),
        "li": nir.LI(tau=np.full(3, 2e-4), r=np.full(3, 2.0), v_leak=np.zeros(3)),
        "n": if_node((3,)), "rec": nir.Linear(weight=np.eye(3)), "out": nir.Output(np.array([3]))},
        edges=[("in", "fc"), ("fc", "li"), ("li", "n"), ("n", "rec"), ("rec", "n"), ("n", "out")]),
        r"NIR node 'rec' \(Linear\): feeds 'n' past the current 'li'"),
    "subtractive reset": (lambda: recurrent_graph(
        np.random.default_rng(0), lambda n: nir.CubaLIF(
            tau_syn=np.full(n, 2e-4), tau_mem=np.full(n, 4e-4), r=np.full(n, 4.0),
            v_leak=np.zeros(n), v_threshold=np.ones(n), w_in=np.full(n, 2.0),
            metadata={"reset_mechanism": "subtract"})),
        r"NIR node 'lif1.lif' \(CubaLIF\): metadata 'reset_mechanism' = 'subtract': Loihi's "
        "CUBA neuron resets the voltage to zero"),
}


@pytest.mark.parametrize("case", sorted(RECURRENT_REFUSALS))
def test_unmappable_recurrence_is_refused(tmp_path, case):
    make, message = RECURRENT_REFUSALS[case]
    with pytest.raises(SlssnnError, match=message) as info:
        convert_nir_to_netx(make(), tmp_path / "bad.net")
    assert "\n" not in str(info.value)
    assert not (tmp_path / "bad.net").exists()
