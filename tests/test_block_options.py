"""Per-block options (IF/leaky, frozen threshold, batch norm folded at export) and the
equivalent-gradient figure's measurement.

A batch-norm model must run spike for spike the same in the quantized PyTorch
evaluation, the emulator and Lava's CPU simulator.
"""

import copy
import importlib.util
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from netfactory import random_images

from slssnn.errors import SlssnnError
from slssnn.export.netx_reader import read_network
from slssnn.export.netx_writer import export_network
from slssnn.lava_runtime.simulate import simulate
from slssnn.training.checkpoint import load_checkpoint, save_checkpoint
from slssnn.training.models import ModelConfig, build_model
from slssnn.training.stcb import leaky_rate

pytestmark = pytest.mark.timeout(300)
DOCS = Path(__file__).resolve().parents[1] / "docs"

MIXED_LAYERS = [
    {"type": "conv", "out_channels": 6, "kernel": 3, "stride": 1, "padding": 1,
     "batch_norm": True},
    {"type": "conv", "out_channels": 8, "kernel": 3, "stride": 2, "padding": 1,
     "v_decay": 700, "batch_norm": True, "train_threshold": False},
    {"type": "flatten"},
    {"type": "dense", "out_features": 12, "i_decay": 1024, "v_decay": 300},
    {"type": "dense", "out_features": 5, "v_decay": 0, "batch_norm": True},
]


def mixed_config(timesteps: int = 5, bias: bool = False) -> ModelConfig:
    return ModelConfig(name="test", input_shape=(2, 7, 7), num_classes=5, timesteps=timesteps,
                       layers=[dict(s) for s in MIXED_LAYERS], input_scale=4.0,
                       input_threshold=20, bias=bias, initial_threshold=0.4)


def trained_mixed_model(seed: int = 0):
    """A mixed-option model whose batch norms hold running statistics from train-mode passes."""
    torch.manual_seed(seed)
    model = build_model(mixed_config())
    with torch.no_grad():
        for block in model.blocks:
            block.synapse.weight.add_(0.05)
            if block.norm is not None:
                block.norm.bias.uniform_(0.2, 0.6)  # shift normalised currents into firing range
                block.norm.weight.uniform_(0.5, 1.5)
    model.train()
    for block in model.blocks:  # running statistics := those of one batch
        if block.norm is not None:
            block.norm.momentum = 1.0
    with torch.no_grad():
        model(random_images(32, seed=100))
    for block in model.blocks:
        if block.norm is not None:
            block.norm.momentum = 0.1
    return model.eval()


@pytest.fixture(scope="module")
def mixed_model():
    model = trained_mixed_model()
    yield model


@pytest.fixture
def model(mixed_model):
    """A fresh copy of the trained mixed model for each test (tests change modes and stats)."""
    return copy.deepcopy(mixed_model).eval()


def test_layer_spec_options_reach_the_blocks():
    model = build_model(mixed_config())
    decays = [(b.neuron.i_decay, b.neuron.v_decay) for b in model.blocks]
    assert decays == [(4096, 0), (4096, 700), (1024, 300), (4096, 0)]
    assert [b.norm is not None for b in model.blocks] == [True, True, False, True]
    assert [b.threshold.requires_grad for b in model.blocks] == [True, False, True, True]


@pytest.mark.parametrize("field, value, message", [
    ("v_decay", 5000, "field 'v_decay' must be an integer in [0, 4096]"),
    ("i_decay", 0, "field 'i_decay' must be an integer in [1, 4096]"),
    ("v_decay", 0.5, "field 'v_decay'"),
    ("batch_norm", "yes", "field 'batch_norm' must be true or false"),
    ("train_threshold", 1, "field 'train_threshold' must be true or false"),
    ("batchnorm", True, "unknown field 'batchnorm' for dense"),
])
def test_bad_block_options_are_refused_naming_layer_and_field(field, value, message):
    config = mixed_config()
    config.layers[3][field] = value
    with pytest.raises(SlssnnError, match="layer 3: ") as info:
        build_model(config)
    assert message in str(info.value)


def test_frozen_threshold_stays_while_weights_learn():
    model = build_model(mixed_config())
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-2)
    before = [b.threshold.item() for b in model.blocks]
    weight_before = model.blocks[1].synapse.weight.detach().clone()
    model.train()
    counts, _ = model(random_images(8))
    torch.nn.functional.cross_entropy(counts, torch.arange(8) % 5).backward()
    optimizer.step()
    after = [b.threshold.item() for b in model.blocks]
    assert after[1] == before[1] and model.blocks[1].threshold.grad is None
    assert after[0] != before[0]
    assert not torch.equal(model.blocks[1].synapse.weight, weight_before)


def test_batch_norm_folds_into_weight_and_bias(model):
    """Eval: folded synapse == BN(synapse) in float; train: batch statistics normalise."""
    block = model.blocks[0]
    x = torch.rand(4, 2, 7, 7)
    weight, bias = block.folded()
    folded = torch.nn.functional.conv2d(x, weight, bias, 1, 1)
    n = block.norm
    manual = ((block.synapse(x) - n.running_mean.view(-1, 1, 1))
              / torch.sqrt(n.running_var.view(-1, 1, 1) + n.eps) * n.weight.view(-1, 1, 1)
              + n.bias.view(-1, 1, 1))
    assert torch.allclose(folded, manual, atol=1e-5)

    block.train()
    rates = torch.rand(64, 2, 7, 7)
    running = n.running_mean.clone()
    weight, bias = block.folded(rates)
    current = torch.nn.functional.conv2d(rates, weight, bias, 1, 1)
    per_channel = current.transpose(0, 1).flatten(1)
    assert torch.allclose(per_channel.mean(1), n.bias, atol=1e-4)
    assert torch.allclose(per_channel.std(1, unbiased=False), n.weight.abs(), atol=1e-3)
    assert not torch.equal(n.running_mean, running)  # batch statistics update the running ones


def test_export_writes_options_and_never_changes_the_live_model(tmp_path, model):
    model.train()  # even a train-mode model exports its eval-mode network unchanged
    state = {k: v.clone() for k, v in model.state_dict().items()}
    net = export_network(model, tmp_path / "mixed.net")
    for k, v in model.state_dict().items():
        assert torch.equal(v, state[k]), k
    blocks = [layer for layer in net.layers if layer.type in ("conv", "dense")]
    assert [(b.neuron.i_decay, b.neuron.v_decay) for b in blocks] == \
        [(4096, 0), (4096, 700), (1024, 300), (4096, 0)]
    # config.bias is False: only the batch-norm blocks carry a (folded) bias
    assert [b.bias is not None for b in blocks] == [True, True, False, True]
    model.eval()
    q = model.blocks[0].quantized()
    assert np.array_equal(blocks[0].weight, q.weight.numpy())
    assert np.array_equal(blocks[0].bias.reshape(-1), q.bias.numpy().reshape(-1))


def test_checkpoint_carries_options_and_batch_norm_statistics(tmp_path, model):
    save_checkpoint(tmp_path / "ck.pt", model, {})
    loaded, _ = load_checkpoint(tmp_path / "ck.pt")
    assert loaded.config.layers == model.config.layers
    images = random_images(6)
    with torch.no_grad():
        a, b = model(images)[1], loaded(images)[1]
    assert all(torch.equal(x, y) for x, y in zip(a, b, strict=True))
    assert torch.equal(loaded.blocks[0].norm.running_var, model.blocks[0].norm.running_var)


def _pytorch_trace(model, images):
    with torch.no_grad():
        _, trace = model(images)
    return [t.transpose(0, 1).to(torch.int8).numpy() for t in trace]  # (N, T, *shape)


def _ours(raster: np.ndarray) -> np.ndarray:
    """simulate()'s (B, *shape_lava, steps) -> (B, steps, *shape_ours)."""
    x = np.moveaxis(raster, -1, 1)
    return np.swapaxes(x, 2, 4) if x.ndim == 5 else x


def test_batch_norm_model_pytorch_equals_emulator(tmp_path, model):
    path = tmp_path / "mixed.net"
    export_network(model, path)
    images = random_images(16, seed=5)
    steps, depth = model.timesteps, len(read_network(path).layers)
    currents = model.input_layer.currents(images).numpy()  # (B, C, H, W)
    data = np.zeros((16, 7, 7, 2, steps + depth - 1), dtype=np.int64)  # Lava order, time last
    data[..., :steps] = np.swapaxes(currents, 1, 3)[..., None]
    result = simulate(path, steps=steps + depth - 1, spikes=data, backend="emulator",
                      reset_interval=steps)
    for i, (layer, want) in enumerate(zip(result.layers, _pytorch_trace(model, images),
                                          strict=True)):
        got = _ours(layer.spikes)[:, i:i + steps]  # block i lags the input by i steps
        assert np.array_equal(got, want), f"layer {i}: {int((got != want).sum())} spikes differ"
        assert want.sum() > 0, f"layer {i} never spiked"


def test_batch_norm_model_lava_matches_pytorch_spike_for_spike(tmp_path):
    from slssnn.lava_runtime.lava_runner import run_lava

    model = trained_mixed_model(seed=1)
    path = tmp_path / "mixed.net"
    export_network(model, path)
    images = random_images(4, seed=6)
    lava = run_lava(path, model.input_layer.currents(images).numpy(), model.timesteps,
                    timeout=240)
    for i, (got, want) in enumerate(zip(lava, _pytorch_trace(model, images), strict=True)):
        assert np.array_equal(got, want), f"layer {i}: {int((got != want).sum())} spikes differ"
        assert want.sum() > 0, f"layer {i} never spiked"


def _figure_module():
    spec = importlib.util.spec_from_file_location("plot_equivalent_gradient",
                                                  DOCS / "plot_equivalent_gradient.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up there
    spec.loader.exec_module(module)
    return module


def test_figure_measurement_runs_the_real_neuron():
    fig = _figure_module()
    m = fig.measure(4, v_decay=0, samples=3000)
    assert m.count.min() >= 0 and m.count.max() <= 4 and m.count.max() > 0
    assert np.array_equal(m.count, np.round(m.count))
    assert np.array_equal(m.clamp, m.leaky)  # IF: both linearisations are the clamp
    assert np.corrcoef(m.x.clip(0, 4), m.count)[0, 1] > 0.8
    assert 0 < m.mad("clamp") < 1.5
    leaky = fig.measure(8, v_decay=1024, samples=3000)
    assert leaky.mad("leaky") < leaky.mad("clamp")  # the claim docs/method.md makes


def test_leaky_rate_limits():
    drive = torch.tensor([-5.0, 0.0, 50.0, 64.0, 200.0, 1e6])
    assert torch.equal(leaky_rate(drive, 100.0, 0), (drive / 100).clamp(0, 1))
    rate = leaky_rate(drive, 100.0, 2048)  # leak floor theta * d = 50: no spikes at or below
    assert rate[:3].tolist() == [0.0, 0.0, 0.0] and 0 < rate[3] < rate[4] <= 1 and rate[5] == 1
    # from rest, v_k = 64 (1 - 0.5**k) / 0.5 first exceeds 100 at k = ln(64/14)/ln 2 ~= 2.19
    assert abs(1 / rate[3].item() - np.log(64 / 14) / np.log(2)) < 1e-5


def test_batch_of_one_dense_uses_running_statistics(model):
    """One value per channel has no batch variance: the running statistics stand in."""
    block = model.blocks[3]  # dense 5, batch norm
    block.train()
    rates = torch.rand(1, block.synapse.in_features)
    running = block.norm.running_var.clone()
    assert all(torch.equal(a, b) for a, b in zip(block.folded(rates), block.folded(), strict=True))
    assert torch.equal(block.norm.running_var, running)
