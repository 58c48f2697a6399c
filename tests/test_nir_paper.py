"""The NIR paper's benchmark graphs (Pedersen et al. 2024, NIR repository ``paper/``), built
here with the ``nir`` package in the same shapes and node types, small: converted, run with
``slssnn run NET --input FILE.npy`` on both backends, and costed with ``slssnn energy``.

- ``paper/02_cnn/cnn_sinabs.nir`` (sinabs ``to_nir``): Conv2d(2->16, k5, s2, p1) IF
  Conv2d(16->16, k3, p1) IF SumPool2d(2) Conv2d(16->8, k3, p1) IF SumPool2d(2) Flatten
  Linear(128->256) IF Linear(256->10) IF, IF with r 1, v_reset 0, sinabs' thresholds,
  on 2x34x34 event frames; here 2x18x18 and 4 channels.
- ``paper/03_rnn/braille_noDelay_*.nir`` (snnTorch RSynaptic/Synaptic, dt 1e-4): Input(12)
  fc1 Affine -> lif1.lif CubaLIF with lif1.w_rec Affine onto itself -> fc2 Affine -> lif2
  CubaLIF(7); ``bias_zero``: 38 hidden, alpha 0.55/0.5, beta 0.9/0.55, biases trained;
  ``noBias_subtract``: 55 hidden (40 in the parameter file), alpha 0.75/0.45, beta
  0.85/0.7, zero biases, trained with snnTorch's subtractive reset, which NIR 1.0 has no
  field for (the nodes say ``v_reset`` 0).
"""

import json

import nir
import numpy as np
import pytest

from slssnn.cli import main
from slssnn.errors import SlssnnError
from slssnn.export.netx_reader import read_network
from slssnn.export.nir_import import convert_nir_to_netx
from slssnn.lava_runtime.simulate import simulate

pytestmark = pytest.mark.timeout(600)
DT = 1e-4


def _chain(*named):
    nodes = dict(named)
    names = list(nodes)
    return nir.NIRGraph(nodes=nodes, edges=list(zip(names[:-1], names[1:], strict=True)))


def _if(shape, threshold=1.0):
    return nir.IF(r=np.ones(shape), v_threshold=np.full(shape, threshold),
                  v_reset=np.zeros(shape))


def _conv(rng, o, i, k, stride, padding):
    return nir.Conv2d(input_shape=None, weight=rng.normal(0.1, 0.3, (o, i, k, k)),
                      stride=stride, padding=padding, dilation=1, groups=1, bias=np.zeros(o))


def _pool():
    return nir.SumPool2d(kernel_size=np.array([2, 2]), stride=np.array([2, 2]),
                         padding=np.array([0, 0]))


def cnn_sinabs(rng, size=18, channels=4, hidden=12):
    """cnn_sinabs.nir's node types and geometry, at a small size (node names as sinabs)."""
    a = (size + 2 - 5) // 2 + 1  # conv k5 s2 p1
    flat = channels * (a // 4) ** 2
    return _chain(
        ("input", nir.Input(np.array([2, size, size]))),
        ("0", _conv(rng, channels, 2, 5, 2, 1)), ("1", _if((channels, a, a))),
        ("2", _conv(rng, channels, channels, 3, 1, 1)), ("3", _if((channels, a, a))),
        ("4", _pool()), ("5", _conv(rng, channels, channels, 3, 1, 1)),
        ("6", _if((channels, a // 2, a // 2))), ("7", _pool()),
        ("8", nir.Flatten(input_type={"input": np.array([channels, a // 4, a // 4])},
                          start_dim=0)),
        ("9", nir.Linear(weight=rng.normal(0.1, 0.4, (hidden, flat)))), ("10", _if((hidden,))),
        ("11", nir.Linear(weight=rng.normal(0.1, 0.4, (10, hidden)))), ("12", _if((10,))),
        ("output", nir.Output(np.array([10]))))


def _cuba(n, alpha, beta, threshold=1.0, **meta):
    tau_syn, tau_mem = DT / (1 - alpha), DT / (1 - beta)  # snnTorch's export
    return nir.CubaLIF(tau_syn=np.full(n, tau_syn), tau_mem=np.full(n, tau_mem),
                       r=np.full(n, tau_mem / DT), v_leak=np.zeros(n),
                       v_threshold=np.full(n, threshold), v_reset=np.zeros(n),
                       w_in=np.full(n, tau_syn / DT), metadata=meta)


def braille(rng, hidden, alphas, betas, bias=False, **meta):
    """braille_noDelay_*.nir's nodes and edges (snnTorch names), ``hidden`` neurons."""
    def affine(o, i, scale):
        b = rng.normal(0, 0.1, o) if bias else np.zeros(o)
        return nir.Affine(weight=rng.normal(0.15, scale, (o, i)), bias=b)

    nodes = {"input": nir.Input(np.array([12])), "fc1": affine(hidden, 12, 0.5),
             "lif1.lif": _cuba(hidden, alphas[0], betas[0], **meta),
             "lif1.w_rec": affine(hidden, hidden, 0.2), "fc2": affine(7, hidden, 0.5),
             "lif2": _cuba(7, alphas[1], betas[1], **meta), "output": nir.Output(np.array([7]))}
    edges = [("input", "fc1"), ("fc1", "lif1.lif"), ("lif1.lif", "lif1.w_rec"),
             ("lif1.w_rec", "lif1.lif"), ("lif1.lif", "fc2"), ("fc2", "lif2"),
             ("lif2", "output")]
    return nir.NIRGraph(nodes=nodes, edges=edges, metadata={"dt": DT})


def _run_both(tmp_path, net, inputs, steps):
    """``slssnn run`` on both backends and ``slssnn energy`` on the two records."""
    np.save(tmp_path / "input.npy", inputs)
    records = {}
    for backend in ("emulator", "lava"):
        out = tmp_path / f"run-{backend}.json"
        args = ["run", str(net), "--input", str(tmp_path / "input.npy"), "--backend", backend,
                "-o", str(out)]
        assert main(args + (["--timeout", "400"] if backend == "lava" else [])) == 0
        records[backend] = json.loads(out.read_text())
    assert records["emulator"]["layers"] == records["lava"]["layers"]
    assert records["lava"]["timesteps"] == steps
    assert main(["energy", str(tmp_path / "run-lava.json"), str(tmp_path / "run-emulator.json"),
                 "-o", str(tmp_path / "energy")]) == 0
    report = json.loads((tmp_path / "energy" / "energy.json").read_text())
    assert report
    emu = simulate(net, steps=steps, spikes=inputs, backend="emulator")
    lava = simulate(net, steps=steps, spikes=inputs, backend="lava", timeout=400)
    for a, b in zip(emu.layers, lava.layers, strict=True):
        assert np.array_equal(a.spikes, b.spikes), a.name
    return emu, records


def test_cnn_sinabs_converts_and_runs_equal_on_both_backends(tmp_path):
    nir.write(tmp_path / "cnn_sinabs.nir", cnn_sinabs(np.random.default_rng(0)))
    assert main(["convert", str(tmp_path / "cnn_sinabs.nir"), "-o", str(tmp_path / "cnn.net"),
                 "--timesteps", "16"]) == 0
    net = read_network(tmp_path / "cnn.net")
    assert [(s.type, s.shape) for s in net.layers] == [
        ("input", (2, 18, 18)), ("conv", (4, 8, 8)), ("conv", (4, 8, 8)),
        ("conv", (4, 4, 4)), ("dense", (12,)), ("dense", (10,))]
    pooled = net.layers[3]  # SumPool2d + Conv2d(k3, p1) = Conv2d(k6, s2, p2)
    assert (pooled.weight.shape[2:], pooled.stride, pooled.padding) == ((6, 6), (2, 2), (2, 2))
    assert net.layers[4].flatten_before and net.layers[4].weight.shape == (12, 64)
    folds = [r for r in net.metadata["nir_quantization"] if "fold" in r]
    assert [r["fold"]["kinds"] for r in folds] == [["SumPool2d", "Conv2d"],
                                                   ["SumPool2d", "Flatten", "Linear"]]
    events = (np.random.default_rng(1).random((18, 18, 2, 16)) < 0.3).astype(np.int64)
    emu, records = _run_both(tmp_path, tmp_path / "cnn.net", events, 16)
    assert all(layer.spikes.sum() > 0 for layer in emu.layers), \
        [int(layer.spikes.sum()) for layer in emu.layers]
    # the ANN twin runs the unfolded chains, not the folded kernels (k6 conv: 4x the MACs)
    pool_conv = 4 * 4 * 4 * 2 * 2 + 4 * 4 * 4 * 4 * 3 * 3  # sums of a 2x2 pool, then k3 conv
    pool_linear = 4 * 2 * 2 * 2 * 2 + 12 * 4 * 2 * 2  # sums of a 2x2 pool, then 12 x 16
    macs = [layer["ann_macs"] for layer in records["lava"]["layers"]]
    assert macs == [0, 4 * 8 * 8 * 2 * 5 * 5, 4 * 8 * 8 * 4 * 3 * 3, pool_conv, pool_linear,
                    10 * 12]
    assert net.metadata["ann_macs"] == {"3:conv": pool_conv, "5:dense": pool_linear}


def test_braille_no_bias_converts_to_dense_rec_and_runs_equal_on_both_backends(tmp_path):
    graph = braille(np.random.default_rng(2), 16, (0.75, 0.45), (0.85, 0.7))
    nir.write(tmp_path / "braille.nir", graph)
    result = convert_nir_to_netx(tmp_path / "braille.nir", tmp_path / "braille.net",
                                 timesteps=40)
    rec, out = result.network.layers
    assert (rec.type, rec.shape, rec.weight.shape, rec.weight_rec.shape) == \
        ("dense_rec", (16,), (16, 12), (16, 16))
    assert out.type == "dense" and out.shape == (7,)
    assert (rec.neuron.i_decay, rec.neuron.v_decay) == (1024, 614)  # 4096 (1 - alpha, beta)
    assert result.report[0]["v_decay_float"] == pytest.approx(614.4)
    assert result.report[0]["nodes"] == ["fc1", "lif1.w_rec", "lif1.lif"]
    spikes = (np.random.default_rng(3).random((12, 40)) < 0.3).astype(np.int64)
    emu, _ = _run_both(tmp_path, tmp_path / "braille.net", spikes, 40)
    assert emu.layers[0].spikes.sum() > 0 and emu.layers[1].spikes.sum() > 0


def test_braille_bias_converts_with_always_on_sources_and_runs_equal_on_both_backends(
        tmp_path):
    """braille_noDelay_bias_zero: the trained biases of fc1 and w_rec enter lif1's decaying
    current, fc2's enter lif2's. netx adds a neuron's bias to the voltage, so they ride on
    an input channel that is 1 at every step (slssnn run appends it) and on a clock neuron
    appended to lif1."""
    graph = braille(np.random.default_rng(2), 16, (0.55, 0.5), (0.9, 0.55), bias=True)
    nir.write(tmp_path / "braille_bias.nir", graph)
    assert main(["convert", str(tmp_path / "braille_bias.nir"), "-o",
                 str(tmp_path / "bias.net"), "--timesteps", "40"]) == 0
    net = read_network(tmp_path / "bias.net")
    rec, out = net.layers
    assert (rec.type, rec.shape, rec.weight.shape) == ("dense_rec", (17,), (17, 13))
    assert (out.shape, out.weight.shape) == ((7,), (7, 17))
    report = net.metadata["nir_quantization"]
    assert report[0]["clock_neuron"] == 16 and report[1]["current_bias"]["column"] == 16
    spikes = (np.random.default_rng(3).random((12, 40)) < 0.3).astype(np.int64)
    emu, records = _run_both(tmp_path, tmp_path / "bias.net", spikes, 40)
    assert emu.layers[0].spikes[16].all()  # the clock fires at every step
    assert emu.layers[1].spikes.sum() > 0
    # the always-on input's 40 spikes reach all 17 neurons, as on the chip
    assert records["lava"]["layers"][0]["synops"] == 17 * (int(spikes.sum()) + 40
                                                           + int(emu.layers[0].spikes.sum()))


def test_subtractive_reset_recorded_in_metadata_is_refused(tmp_path):
    graph = braille(np.random.default_rng(2), 8, (0.75, 0.45), (0.85, 0.7),
                    reset_mechanism="subtract")
    nir.write(tmp_path / "sub.nir", graph)
    with pytest.raises(SlssnnError, match=r"NIR node 'lif1.lif' \(CubaLIF\): metadata "
                                          "'reset_mechanism' = 'subtract'"):
        convert_nir_to_netx(tmp_path / "sub.nir", tmp_path / "sub.net")
