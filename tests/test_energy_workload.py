"""What gets measured: the float SNN and the ANN twin built from a trained network; the
checkpoint-vs-run check; a measured report rendered end to end (counter injected)."""

from __future__ import annotations

import json
import time

import matplotlib.image
import numpy as np
import pytest
import torch
from netfactory import random_digits_net, random_images, random_net

from slssnn import energy
from slssnn.energy.measure import MeasureSettings
from slssnn.energy.measured import measure_model, measure_on
from slssnn.energy.workload import (
    AnnTwin,
    SnnFloat,
    build_workloads,
    check_matches_run,
    model_layers,
)
from slssnn.errors import SlssnnError
from slssnn.export.netx_reader import read_network
from slssnn.export.netx_writer import export_network
from slssnn.lava_runtime.activity import ann_macs
from slssnn.training.models import ModelConfig, build_model


def _events_net():
    torch.manual_seed(4)
    config = ModelConfig(name="ev", input_shape=(2, 6, 6), num_classes=5, timesteps=5,
                         layers=[{"type": "conv", "out_channels": 4, "kernel": 3, "stride": 2,
                                  "padding": 1}, {"type": "flatten"},
                                 {"type": "dense", "out_features": 5}],
                         input_kind="events", input_scale=16.0, input_threshold=8,
                         initial_threshold=0.2)
    return build_model(config).eval()


def _event_frames(n):  # (B, T, 2, H, W) binary frames
    g = torch.Generator().manual_seed(9)
    return (torch.rand((n, 5, 2, 6, 6), generator=g) < 0.3).float()


@pytest.mark.parametrize("make, images", [
    (lambda: random_digits_net(timesteps=4, seed=3), lambda: random_images(64, (1, 8, 8), 5)),
    (lambda: random_net(timesteps=5, bias=True, v_decay=0),
     lambda: random_images(64, (2, 7, 7), 5)),
    (_events_net, lambda: _event_frames(32)),
])
def test_float_snn_spikes_are_the_fixed_point_spikes(make, images):
    """IF neurons: the float GPU forward gives the deployed network's spikes, every layer."""
    model = make()
    images = images()
    with torch.no_grad():
        _, expected = model(images)
        got = SnnFloat(model).trace(images)
    assert len(got) == len(expected)
    for layer, (a, b) in enumerate(zip(got, expected, strict=True)):
        assert torch.equal(a, b.to(a.dtype)), f"layer {layer}"
    assert sum(int(t.sum()) for t in got[1:]) > 0  # the test network does spike
    assert AnnTwin(model)(images).shape == (len(images), model.config.num_classes)


def test_ann_twin_does_the_counted_macs(tmp_path):
    """The twin's multiply-accumulates are the run record's ann_macs, layer by layer."""
    model = random_digits_net(timesteps=4, seed=1)
    twin = AnnTwin(model)
    macs = []

    def count(module, inputs, output):
        weight = module.weight
        per_output = weight[0].numel() if isinstance(module, torch.nn.Conv2d) \
            else weight.shape[1]
        macs.append(output[0].numel() * per_output)

    for module in twin.modules():
        if isinstance(module, torch.nn.Conv2d | torch.nn.Linear):
            module.register_forward_hook(count)
    out = twin(random_images(3, (1, 8, 8)))
    assert out.shape == (3, 10) and bool((out >= 0).all())
    export_network(model, tmp_path / "d.net")
    counted = [ann_macs(spec) for spec in read_network(tmp_path / "d.net").layers]
    assert [0, *macs] == counted == [layer["ann_macs"] for layer in model_layers(model)]
    assert not any(isinstance(m, torch.nn.Module) and "IF" in type(m).__name__
                   for m in twin.modules())


def test_ann_twin_approximates_the_spike_counts():
    """ReLU(A / theta) is the equivalent-gradient count estimate: the twin's outputs follow
    the SNN's output spike counts (random network: correlation about 0.8)."""
    model = random_digits_net(timesteps=4, seed=3)
    images = random_images(200, (1, 8, 8), seed=7)
    with torch.no_grad():
        counts, _ = model(images)
        twin = AnnTwin(model)(images)
    correlation = torch.corrcoef(torch.stack([counts.flatten(), twin.flatten()]))[0, 1]
    assert correlation > 0.6, float(correlation)


def _run_of(model, samples=10):
    layers = []
    for i, layer in enumerate(model_layers(model)):
        layers.append({"name": f"{i}:{layer['type']}", **layer, "spikes": 1, "synops": 2,
                       "neuron_updates": layer["neurons"] * model.config.timesteps * samples})
    return {"backend": "emulator", "network": "x.net", "dataset": "digits", "samples": samples,
            "timesteps": model.config.timesteps, "accuracy": 0.5, "layers": layers}


def test_checkpoint_must_match_the_run():
    model = random_digits_net(timesteps=4)
    run = _run_of(model)
    check_matches_run(model, run, "c.pt", "r.json")  # its own network: fine
    with pytest.raises(SlssnnError, match="c.pt does not match run r.json: timesteps 4 vs 2"):
        check_matches_run(model, {**run, "timesteps": 2}, "c.pt", "r.json")
    with pytest.raises(SlssnnError, match="layers"):
        check_matches_run(random_net(timesteps=4), run, "c.pt", "r.json")
    wider = _run_of(model)
    neurons = wider["layers"][3]["neurons"]
    wider["layers"][3]["neurons"] = 2 * neurons
    with pytest.raises(SlssnnError, match=rf"layer 3:dense field 'neurons' is {neurons} in the "
                                          rf"checkpoint, {2 * neurons} in the run"):
        check_matches_run(model, wider, "c.pt", "r.json")


@pytest.mark.skipif(torch.cuda.is_available(), reason="this checks the no-CUDA path")
def test_measure_model_without_cuda_says_why():
    """The real path on this machine: no number, the reason for each engine."""
    sections = measure_model(random_digits_net(), random_images(4, (1, 8, 8)),
                             engines=("gpu",))
    assert sections["gpu"] == {"measured": False, "reason": "torch.cuda.is_available() is "
                               "False (torch " + torch.__version__ + " is a CPU-only build)"} \
        or sections["gpu"]["reason"].startswith("torch.cuda.is_available() is False")
    assert sections["cpu"] == {"measured": False, "reason": "not requested"}


class WallClockCounter:
    """A made-up 40 W meter on the wall clock, refreshed every 10 ms (injected: this is a
    unit test of our measurement and report code, not of any hardware)."""

    watts, period = 40.0, 0.01

    def __init__(self):
        self.start = time.perf_counter()

    def __call__(self) -> float:
        elapsed = time.perf_counter() - self.start
        return self.watts * (elapsed // self.period) * self.period


@pytest.fixture(scope="module")
def measured_report(tmp_path_factory):
    """Real workloads on the CPU, an injected counter; then the whole report."""
    root = tmp_path_factory.mktemp("measured")
    model = random_digits_net(timesteps=4)
    settings = MeasureSettings(window_s=0.2, repeats=3, warmup_s=0.05, idle_s=0.1)
    results = measure_on("gpu", torch.device("cpu"), WallClockCounter(),
                         build_workloads(model), random_images(16, (1, 8, 8)), 4, (1, 8),
                         settings, clocks_fn=lambda: {"sm": 1980, "memory": 2619})
    measured = {"gpu": {"measured": True, "engine": "gpu",
                        "device": {"name": "Injected Test Counter", "driver": "n/a"},
                        "counter": {"source": "injected", "update_interval_ms": 10.0},
                        "settings": settings.to_dict(), "inputs": "random digits",
                        "timesteps": 4, "results": results},
                "cpu": {"measured": False, "reason": "no RAPL package domain (test)"}}
    run_path = root / "run.json"
    run_path.write_text(json.dumps(_run_of(model)))
    summary = energy.write_report(run_path, root / "out", measured=measured)
    return root / "out", summary, results


def test_measured_results_with_injected_counter(measured_report):
    _, _, results = measured_report
    assert [(r["workload"], r["batch_size"]) for r in results] == [
        ("snn", 1), ("snn", 8), ("ann", 1), ("ann", 8)]
    for r in results:
        # the injected meter says 40 W whatever runs: J/inference = 40 W / throughput
        j, rate = r["j_per_inference"]["median"], r["inferences_per_s"]["median"]
        assert j * rate == pytest.approx(40.0, rel=0.15)
        assert r["idle_power_w"] == pytest.approx(40.0, rel=0.15)
        assert all(w["seconds"] >= 0.2 for w in r["windows"])
    assert results[0]["label"] == "GPU SNN T=4 b=1" and results[3]["label"] == "GPU ANN twin b=8"


def test_measured_report_files(measured_report):
    out, summary, results = measured_report
    report = json.loads((out / "energy.json").read_text())
    loihi = next(e for e in report["estimates"] if e["label"] == "loihi SNN")
    ratios = report["measured_ratios"]
    assert [r["label"] for r in ratios] == [r["label"] for r in results]
    for ratio, r in zip(ratios, results, strict=True):
        assert ratio["vs_loihi_snn"] == pytest.approx(
            r["j_per_inference"]["median"] / loihi["j_per_inference"])
    assert report["cpu"] == {"measured": False, "reason": "no RAPL package domain (test)"}
    md = (out / "energy.md").read_text()
    assert "Injected Test Counter" in md and "GPU SNN T=4 b=8" in md
    assert "CPU: not measured: no RAPL package domain (test)" in md
    assert "idle power measured just before" in md
    assert summary["gpu_measured"] is True
    text = energy.format_summary(summary)
    assert "GPU measured on Injected Test Counter" in text and "GPU ANN twin b=1" in text
    image = matplotlib.image.imread(out / "energy.png")
    assert image.shape[:2] == (500, 1200)
    assert np.unique(image.reshape(-1, image.shape[-1]), axis=0).shape[0] > 50  # drawn
