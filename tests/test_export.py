"""Export -> h5py read-back -> our reader -> lava-dl's netx; malformed files are refused."""

import json
import shutil
from pathlib import Path

import h5py
import numpy as np
import pytest
from corpus import OXFORD, TINY_NET
from netfactory import random_net

from slssnn.errors import SlssnnError
from slssnn.export import schema as S
from slssnn.export.netx_reader import read_network
from slssnn.export.netx_writer import export_network


@pytest.fixture
def exported(tmp_path):
    model = random_net()
    path = tmp_path / "net.net"
    export_network(model, path, {"test": True})
    return model, path


def test_fields_read_back_with_h5py(exported):
    model, path = exported
    with h5py.File(path, "r") as f:
        layers = f["layer"]
        types = [layers[str(i)]["type"][0].decode() for i in range(len(layers))]
        assert types == ["input", "conv", "conv", "conv", "flatten", "dense", "dense"]
        assert list(layers["0/shape"][()]) == [2, 7, 7]
        assert layers["0/neuron/type"][()] == b"CUBA"
        assert int(layers["0/neuron/vThMant"][()]) == model.config.input_threshold
        for i, block in zip((1, 2, 3, 5, 6), model.blocks, strict=True):
            q = block.quantized()
            group = layers[str(i)]
            assert np.array_equal(group["weight"][()], q.weight.numpy())
            assert np.array_equal(group["bias"][()], q.bias.numpy())
            assert int(group["neuron/vThMant"][()]) == int(q.threshold)
            assert int(group["neuron/iDecay"][()]) == 4096
            assert int(group["neuron/vDecay"][()]) == 512
            weight = group["weight"][()]
            assert np.all(weight % 2 == 0) and weight.min() >= -256 and weight.max() <= 254
        assert list(layers["2/stride"][()]) == [2, 2]
        meta = json.loads(f["slssnn"].attrs["metadata"])
        assert f["slssnn"].attrs["format_version"] == S.FORMAT_VERSION
        assert meta["timesteps"] == 5 and meta["provenance"] == {"test": True}


def test_export_stores_and_prints_the_clamp_counts(tmp_path, capsys):
    import torch

    from slssnn.cli import main
    from slssnn.training.checkpoint import save_checkpoint

    model = random_net()
    with torch.no_grad():
        model.blocks[0].threshold.fill_(1e-6)  # rounds to 0 on the grid: clamped to 1
    save_checkpoint(tmp_path / "c.pt", model, {})
    assert main(["export", str(tmp_path / "c.pt"), "-o", str(tmp_path / "n.net")]) == 0
    clamps = read_network(tmp_path / "n.net").metadata["clamps"]
    assert clamps[0] == {"layer": 1, "name": "1:conv", "bias": 0, "threshold": 1}
    assert len(clamps) == len(model.blocks)
    assert "clamped onto Loihi's range: 1 value(s) (1:conv bias 0, threshold 1;" \
        in capsys.readouterr().out


def test_export_does_not_change_the_model(tmp_path):
    model = random_net()
    before = {k: v.clone() for k, v in model.state_dict().items()}
    export_network(model, tmp_path / "a.net")
    assert all(np.array_equal(before[k], v) for k, v in model.state_dict().items())


def test_lava_dl_netx_loads_the_file_unchanged(exported):
    from lava.lib.dl.netx import hdf5

    _, path = exported
    net = hdf5.Network(net_config=str(path))
    assert [type(b).__name__ for b in net.layers] == ["Input", "Conv", "Conv", "Conv",
                                                      "Dense", "Dense"]
    assert net.layers[1].shape == (7, 7, 6)  # (W, H, C)
    assert net.out_layer.out.shape == (5,)


def test_reader_accepts_lava_dl_networks():
    tiny = read_network(TINY_NET)
    assert [(s.type, s.shape) for s in tiny.layers] == [
        ("input", (3, 16, 16)), ("conv", (24, 6, 6)), ("conv", (36, 1, 1))]
    oxford = read_network(OXFORD / "network.net")
    assert [(s.type, s.shape) for s in oxford.layers] == [("dense", (256,)), ("dense", (200,))]


def damage(path: Path, edit) -> Path:
    with h5py.File(path, "r+") as f:
        edit(f)
    return path


@pytest.mark.parametrize("edit,message", [
    (lambda f: f["layer/1"].__delitem__("weight"), "layer 1: field 'weight' is missing"),
    (lambda f: f["layer/2/neuron"].__delitem__("vThMant"), "layer 2/neuron: field 'vThMant'"),
    (lambda f: (f["layer/1"].__delitem__("type"),
                f["layer/1"].create_dataset("type", data=np.array([b"pool"], "S10"))),
     "layer 1: netx 0.6.0 cannot build a 'pool' layer (NotImplementedError in "
     "lava/lib/dl/netx/hdf5.py); num_layers=1 reads the layers before it"),
    (lambda f: (f["layer/1"].__delitem__("type"),
                f["layer/1"].create_dataset("type", data=np.array([b"blend"], "S10"))),
     "layer 1: unknown layer type 'blend'; known: input, conv, flatten, dense, dense_rec"),
    (lambda f: f["layer/1/neuron"].__delitem__("vThMant"),
     "layer 1/neuron: field 'vThMant' is missing"),
    (lambda f: (f["layer/1/neuron"].__delitem__("type"),
                f["layer/1/neuron"].create_dataset("type", data=np.bytes_(b"RF_PHASE"))),
     "layer 1/neuron: unknown field 'iDecay' for a RF_PHASE neuron"),
    (lambda f: (f["layer/1/neuron"].__delitem__("type"),
                f["layer/1/neuron"].create_dataset("type", data=np.bytes_(b"ALIF"))),
     "layer 1/neuron: neuron type 'ALIF' cannot run: netx 0.6.0 has no ALIF neuron"),
    (lambda f: (f["layer/1/neuron"].__delitem__("type"),
                f["layer/1/neuron"].create_dataset("type", data=np.bytes_(b"SDNN")),
                f["layer/1/neuron"].create_dataset("activation", data=np.bytes_(b"tanh")),
                [f["layer/1/neuron"].__delitem__(k) for k in ("iDecay", "vDecay", "refDelay",
                                                              "gradedSpike")]),
     "layer 1/neuron: field 'activation' is 'tanh': netx never reads it"),
    (lambda f: f["layer/1"].__delitem__("neuron"),
     "layer 1: field 'neuron' is missing"),
    (lambda f: f["layer/1/weight"].__setitem__((0, 0, 0, 0), 300.0),
     "layer 1: field 'weight' outside [-256, 254]"),
    (lambda f: f["layer/1/weight"].__setitem__((0, 0, 0, 0), np.nan),
     "layer 1: field 'weight' holds NaN"),
    (lambda f: f["layer/5/neuron/vThMant"].write_direct(np.array(1 << 20)),
     "layer 5/neuron: field 'vThMant' outside"),
    (lambda f: f["layer/1"].create_dataset("surprise", data=1),
     "layer 1: unknown field 'surprise'"),
    (lambda f: f["layer/2/shape"].write_direct(np.array([8, 3, 3])),
     "layer 2: field 'shape' is (8, 3, 3)"),
    (lambda f: f["slssnn"].attrs.__setitem__("format_version", 99),
     "attribute 'format_version' is 99"),
])
def test_malformed_files_are_refused_naming_layer_and_field(exported, edit, message):
    _, path = exported
    damage(path, edit)
    with pytest.raises(SlssnnError, match=message.replace("(", r"\(").replace(")", r"\)")
                       .replace("[", r"\[").replace("]", r"\]")):
        read_network(path)


def test_truncated_and_foreign_files_are_refused(exported, tmp_path):
    _, path = exported
    truncated = tmp_path / "truncated.net"
    truncated.write_bytes(path.read_bytes()[: path.stat().st_size // 2])
    with pytest.raises(SlssnnError, match="truncated.net: not a readable netx HDF5 file"):
        read_network(truncated)
    text = tmp_path / "text.net"
    text.write_text("hello")
    with pytest.raises(SlssnnError, match="text.net: not a readable netx HDF5 file"):
        read_network(text)
    with pytest.raises(SlssnnError, match="no such file"):
        read_network(tmp_path / "missing.net")


def test_failed_export_leaves_nothing_behind(tmp_path):
    model = random_net()
    with pytest.raises(SlssnnError):
        export_network(model, tmp_path / "nofolder" / "x.net")
    target = tmp_path / "keep.net"
    shutil.copy(TINY_NET, target)
    with pytest.raises(SlssnnError):
        export_network(model, tmp_path)  # a folder
    assert sorted(p.name for p in tmp_path.iterdir()) == ["keep.net"]
