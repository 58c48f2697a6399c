"""Networks trained elsewhere run on the mnist test images through ``slssnn run
--timesteps T --input-scale S [--readout voltage]``, on both backends alike: one
written by lava-dl SLAYER's own exporter (no slssnn metadata, a flat 784-neuron input
layer), and lava-dl's own published ``mnist.net`` (784-512-512-10, trained on MNIST,
whose output layer never spikes: it is read by its voltage)."""

import dataclasses
import json

import h5py
import numpy as np
import pytest
import torch
from corpus import MNIST_NET

from slssnn import cli
from slssnn.export.netx_reader import read_network
from slssnn.export.netx_writer import write_network
from slssnn.lava_runtime.emulator import run_windows
from slssnn.lava_runtime.lava_runner import run_lava_counts
from slssnn.training.datasets import load_dataset
from slssnn.training.models import encode_currents

pytestmark = pytest.mark.timeout(300)

CUBA = {"threshold": 1.25, "current_decay": 0.25, "voltage_decay": 0.03,
        "requires_grad": False}


def slayer_export(path, input_layer: bool):
    """[input 784 ->] dense 32 -> dense 10, CUBA, exported by SLAYER's blocks themselves."""
    import lava.lib.dl.slayer as slayer

    torch.manual_seed(0)
    blocks = [slayer.block.cuba.Input(CUBA)] if input_layer else []
    blocks += [slayer.block.cuba.Dense(CUBA, 784, 32, weight_scale=2, weight_norm=False),
               slayer.block.cuba.Dense(CUBA, 32, 10, weight_scale=2, weight_norm=False)]
    x = torch.rand(2, 784, 4)
    with torch.no_grad():
        for block in blocks:  # one pass sets the blocks' shapes for their export
            x = block(x)
    with h5py.File(path, "w") as handle:
        layer = handle.create_group("layer")
        for i, block in enumerate(blocks):
            block.export_hdf5(layer.create_group(str(i)))
    return path


@pytest.fixture(scope="module")
def slayer_net(tmp_path_factory):
    return slayer_export(tmp_path_factory.mktemp("slayer") / "mnist_mlp.net", True)


@pytest.fixture(scope="module")
def synapse_first(tmp_path_factory):
    """The same without an input layer: pixels enter the first synapse as messages."""
    return slayer_export(tmp_path_factory.mktemp("slayer") / "mnist_dense.net", False)


def run(net, out, *options):
    assert cli.main(["run", str(net), "--dataset", "mnist", "-o", str(out), *options]) == 0
    return json.loads(out.read_text())


def test_slayer_network_runs_on_mnist_alike_on_lava_and_the_emulator(slayer_net, tmp_path):
    assert read_network(slayer_net).metadata == {}
    options = ["--timesteps", "8", "--input-scale", "1", "--limit", "24"]
    lava = run(slayer_net, tmp_path / "lava.json", "--backend", "lava", *options)
    emulator = run(slayer_net, tmp_path / "emulator.json", "--backend", "emulator", *options)
    assert lava["layers"] == emulator["layers"]
    assert lava["predictions"] == emulator["predictions"]
    assert (lava["samples"], lava["timesteps"]) == (24, 8)
    assert all(layer["spikes"] > 0 for layer in lava["layers"]), lava["layers"]


def test_a_flat_input_sees_the_pixels_in_pytorch_s_flatten_order(slayer_net, tmp_path):
    """The same weights behind a (1, 28, 28) input and a netx flatten give the same counts:
    a flat input layer takes each image as x.view(-1, 784) would."""
    flat = read_network(slayer_net)
    image = [dataclasses.replace(flat.layers[0], shape=(1, 28, 28)),
             *[dataclasses.replace(s, index=s.index + 1) for s in flat.layers[1:]]]
    image[1] = dataclasses.replace(image[1], flatten_before=True)
    write_network(tmp_path / "image.net", image)
    options = ["--backend", "emulator", "--timesteps", "8", "--input-scale", "1",
               "--limit", "200"]
    a = run(slayer_net, tmp_path / "flat.json", *options)
    b = run(tmp_path / "image.net", tmp_path / "image.json", *options)
    assert a["predictions"] == b["predictions"]
    assert [layer["spikes"] for layer in a["layers"]] == \
        [layer["spikes"] for layer in b["layers"] if layer["type"] != "flatten"]
    # a transposed image (the wrong order) would change what the first layer sees
    swapped = np.asarray(flat.layers[1].weight).reshape(32, 28, 28).transpose(0, 2, 1)
    image[1] = dataclasses.replace(image[1], weight=swapped.reshape(32, 784).copy())
    write_network(tmp_path / "swapped.net", image)
    c = run(tmp_path / "swapped.net", tmp_path / "swapped.json", *options)
    assert c["layers"][-2]["spikes"] != a["layers"][1]["spikes"]


@pytest.mark.parametrize("options, needle", [
    ([], "no slssnn metadata for its steps per sample; give --timesteps T and "
         "--input-scale S"),
    (["--timesteps", "8"], "no slssnn metadata for its input encoding; give --input-scale S"),
])
def test_a_network_without_metadata_names_the_options_it_needs(slayer_net, tmp_path, capsys,
                                                               options, needle):
    args = ["run", str(slayer_net), "--dataset", "mnist", "--backend", "emulator",
            "-o", str(tmp_path / "r.json"), *options]
    assert cli.main(args) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and needle in err[0] and str(slayer_net) in err[0], err
    assert not (tmp_path / "r.json").exists()


def test_an_output_layer_that_is_not_the_classes_is_refused(slayer_net, tmp_path, capsys):
    flat = read_network(slayer_net)
    last = flat.layers[-1]
    layers = [*flat.layers[:-1], dataclasses.replace(last, shape=(7,), weight=last.weight[:7])]
    write_network(tmp_path / "seven.net", layers)
    assert cli.main(["run", str(tmp_path / "seven.net"), "--dataset", "mnist", "--timesteps",
                     "4", "--input-scale", "1", "--backend", "emulator",
                     "-o", str(tmp_path / "r.json")]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert err == [f"slssnn: error: network {tmp_path / 'seven.net'}: its output layer has 7 "
                   "neurons, dataset 'mnist' has 10 classes"]


def test_lava_dl_mnist_net_is_read_by_its_output_voltage_alike_on_both_backends():
    """The voltages themselves, not only their argmax, are Lava's to the last bit."""
    images = load_dataset("mnist", None, 16).test.images[:12]
    currents = encode_currents(images, 0.25)[0].reshape(12, -1).numpy()
    voltages: list[np.ndarray] = []
    spikes = run_windows(read_network(MNIST_NET), currents, 16, voltages=voltages)
    lava = run_lava_counts(MNIST_NET, currents, 16, voltage=True)
    assert np.array_equal(voltages[0], lava.voltage)
    assert lava.output.sum() == 0 and len(np.unique(lava.voltage)) > 12  # silent, yet read
    assert [int(s.sum()) for s in spikes] == [int(c.sum()) for c in lava.per_neuron]


def test_lava_dl_mnist_net_classifies_the_mnist_test_images(tmp_path, capsys):
    options = ["--backend", "emulator", "--timesteps", "16", "--input-scale", "0.25"]
    voltage = run(MNIST_NET, tmp_path / "v.json", *options, "--readout", "voltage")
    assert voltage["readout"] == "voltage" and voltage["samples"] == 1000
    assert voltage["accuracy"] > 0.97, voltage["accuracy"]
    spikes = run(MNIST_NET, tmp_path / "s.json", *options, "--limit", "20")
    assert spikes["readout"] == "spikes" and set(spikes["predictions"]) == {0}
    assert "never spiked, so every prediction is class 0; a non-spiking output layer " \
           "(SLAYER's Affine block) is read with --readout voltage" in capsys.readouterr().out


@pytest.mark.parametrize("scale, bits", [(1 / 255, "binary"), (1 / 16, "graded")])
def test_a_network_without_an_input_layer_takes_pixels_into_its_first_synapse(
        synapse_first, tmp_path, scale, bits):
    """round(pixel * S) as binary spikes (S = 1/255) or as graded messages 0..16 (5 bits):
    Lava's windows start a step later behind a synapse; the records are the same."""
    assert not read_network(synapse_first).has_input_block
    options = ["--timesteps", "6", "--input-scale", str(scale), "--limit", "16"]
    lava = run(synapse_first, tmp_path / "lava.json", "--backend", "lava", *options,
               "--readout", "voltage")
    emulator = run(synapse_first, tmp_path / "emulator.json", "--backend", "emulator",
                   *options, "--readout", "voltage")
    assert lava["layers"] == emulator["layers"]
    assert lava["predictions"] == emulator["predictions"]
    assert all(layer["spikes"] > 0 for layer in lava["layers"]), lava["layers"]
    images = load_dataset("mnist", None, 6).test.images[:16]
    pixels = torch.round(images.double() * scale).reshape(16, -1)
    assert (int(pixels.max()) > 1) == (bits == "graded")
    sent = int((pixels != 0).sum()) * 6  # every message reaches all 32 neurons
    assert lava["layers"][0]["synops"] == sent * 32


def test_a_conv_output_layer_predicts_the_same_class_on_both_backends(tmp_path):
    """Output conv (C=2, H=1, W=5) as the 10 classes: Lava's per-sample counts and voltages
    come in (x, y, c) order and are read in (C, H, W) order, as the emulator's."""
    from slssnn.export.netx_writer import export_network
    from slssnn.lava_runtime.run import run_network
    from slssnn.training.datasets import dataset_from_arrays
    from slssnn.training.models import ModelConfig, build_model

    torch.manual_seed(0)
    config = ModelConfig(name="conv-out", input_shape=(1, 1, 5), num_classes=10, timesteps=4,
                         layers=[{"type": "conv", "out_channels": 2, "kernel": 3, "stride": 1,
                                  "padding": 1}],
                         input_scale=0.1, input_threshold=8, initial_threshold=0.3)
    model = build_model(config).eval()
    with torch.no_grad():
        model.blocks[0].synapse.weight.add_(0.05)
    export_network(model, tmp_path / "conv.net", {})
    images = np.random.default_rng(0).integers(0, 255, (30, 1, 5)).astype(np.uint8)
    labels = np.arange(30) % 10
    data = dataset_from_arrays({"x_train": images, "y_train": labels, "x_test": images,
                                "y_test": labels})
    for readout in ("spikes", "voltage"):
        emulator = run_network(tmp_path / "conv.net", data, "emulator", readout=readout)
        lava = run_network(tmp_path / "conv.net", data, "lava", readout=readout)
        assert lava["predictions"] == emulator["predictions"], readout
        assert lava["layers"] == emulator["layers"]
        assert len(set(lava["predictions"])) > 2, lava["predictions"]  # not all ties
