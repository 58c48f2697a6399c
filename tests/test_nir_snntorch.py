"""The real peer: a network trained in snnTorch, exported with snnTorch's own NIR export,
converted by slssnn and run on the emulator and in Lava (bench/nir_snntorch_peer.py)."""

import importlib.util
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("snntorch")
pytest.importorskip("nirtorch")

from slssnn.export.nir_import import convert_nir_to_netx  # noqa: E402
from slssnn.lava_runtime.run import run_network  # noqa: E402
from slssnn.training.datasets import load_dataset  # noqa: E402

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
