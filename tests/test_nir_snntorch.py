"""The real peer: a network trained in snnTorch, exported with snnTorch's own NIR export,
converted by slssnn and run on the emulator and in Lava (bench/nir_snntorch_peer.py)."""

import importlib.util
from pathlib import Path

import numpy as np
import pytest
import snntorch  # noqa: F401  (installed by `make setup`: a missing peer is a failure, not a skip)

from slssnn.export.nir_import import convert_nir_to_netx
from slssnn.lava_runtime.run import run_network
from slssnn.training.datasets import load_dataset

BENCH = Path(__file__).resolve().parents[1] / "bench" / "nir_snntorch_peer.py"
pytestmark = pytest.mark.timeout(600)


def _peer_module():
    spec = importlib.util.spec_from_file_location("nir_snntorch_peer", BENCH)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_snntorch_network_converts_and_runs_on_lava(tmp_path):
    peer = _peer_module()
    data = load_dataset("digits")
    net = peer.build_net("loihi", seed=0)
    peer.train(net, data.train.images, data.train.labels, epochs=1, lr=1e-2)
    labels = data.test.labels.numpy()
    snn_pred = peer.predict_snntorch(net, data.test.images)
    peer.export_nir(net, tmp_path / "snntorch.nir")  # written by snnTorch, not by slssnn
    result = convert_nir_to_netx(tmp_path / "snntorch.nir", tmp_path / "snntorch.net",
                                 timesteps=peer.TIMESTEPS)
    layers = result.network.layers
    assert [s.type for s in layers] == ["input", "conv", "conv", "dense"]
    assert all(s.neuron.v_decay == 512 and s.neuron.i_decay == 4096 for s in layers)
    assert result.report[0]["exact"] and layers[0].neuron.threshold == 8
    assert all(r["weight_max_abs_error"] <= 1.0 for r in result.report)

    emu = run_network(tmp_path / "snntorch.net", "digits", "emulator")
    emu_pred = np.array(emu["predictions"])
    assert (snn_pred == labels).mean() > 0.5  # snnTorch learned something
    # quantization and Lava's decay rounding move a few samples, not the network
    assert (snn_pred == emu_pred).mean() >= 0.85
    lava = run_network(tmp_path / "snntorch.net", "digits", "lava", limit=20, timeout=400)
    emu20 = run_network(tmp_path / "snntorch.net", "digits", "emulator", limit=20)
    assert lava["predictions"] == emu20["predictions"]
    for a, b in zip(lava["layers"], emu20["layers"], strict=True):
        assert a["spikes"] == b["spikes"] and a["synops"] == b["synops"], a["name"]
    assert lava["layers"][-1]["spikes"] > 0


def test_our_graph_runs_in_snntorch_like_the_emulator(tmp_path):
    """The other direction: a network of ours as NIR, read by snnTorch's own importer.

    snnTorch runs NIR's float LIF; Lava rounds each decay product toward zero
    at 1/64 of a unit, so a few spikes may differ: at most 2 % per layer.
    """
    import nir
    import snntorch as snn
    import torch
    from netfactory import random_images, random_net
    from snntorch import utils
    from snntorch.import_nir import import_from_nir

    from slssnn.export.netx_reader import read_network
    from slssnn.export.netx_writer import export_network
    from slssnn.export.nir_export import convert_netx_to_nir
    from slssnn.lava_runtime.emulator import run_windows

    steps, samples = 6, 24
    model = random_net(timesteps=steps, bias=True, v_decay=300, seed=3)
    export_network(model, tmp_path / "ours.net")
    convert_netx_to_nir(tmp_path / "ours.net", tmp_path / "ours.nir")
    net = import_from_nir(nir.read(tmp_path / "ours.nir"))
    leaky = [m for m in net.modules() if isinstance(m, snn.Leaky)]
    seen: list[list[np.ndarray]] = [[] for _ in leaky]
    for i, module in enumerate(leaky):
        module.register_forward_hook(
            lambda _m, _in, out, i=i: seen[i].append(np.asarray(out[0].detach()).reshape(-1)))
    currents = model.input_layer.currents(random_images(samples, seed=9))
    with torch.no_grad():
        for b in range(samples):  # snnTorch's imported Flatten(start_dim=0) wants batch 1
            utils.reset(net)
            state = None
            for _ in range(steps):
                _, state = net(currents[b:b + 1].float(), state)
    emulated = run_windows(read_network(tmp_path / "ours.net"), currents.numpy(), steps)
    assert len(leaky) == len(emulated)
    for i, layer in enumerate(emulated):
        ours = layer.reshape(samples, steps, -1)
        theirs = np.array(seen[i]).reshape(samples, steps, -1)
        assert ours.sum() > 0
        assert (ours == theirs).mean() >= 0.98, i
