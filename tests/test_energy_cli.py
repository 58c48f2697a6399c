"""``slssnn energy``: --measure-gpu without a GPU, --device-model, cross-checked runs, and the
bad input that must end in one line and exit status 2."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest
import torch
from netfactory import random_digits_net, random_net

from slssnn.energy.devices import BUILTIN_DIR
from slssnn.energy.workload import model_layers
from slssnn.training.checkpoint import save_checkpoint


def slssnn(*args):
    return subprocess.run([sys.executable, "-m", "slssnn", *map(str, args)],
                          capture_output=True, text=True, timeout=300)


def one_line_error(result, *needles):
    assert result.returncode == 2, (result.stdout, result.stderr)
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in result.stderr, result.stderr
    for needle in needles:
        assert needle in lines[0], lines[0]


def run_record(model, backend="emulator", spikes=7):
    layers = [{"name": f"{i}:{layer['type']}", **layer, "spikes": spikes * (i + 1),
               "synops": 100 * i, "neuron_updates": layer["neurons"] * 4 * 10}
              for i, layer in enumerate(model_layers(model))]
    return {"backend": backend, "network": "digits.net", "dataset": "digits", "split": "test",
            "samples": 10, "timesteps": model.config.timesteps, "accuracy": 0.8,
            "predictions": [1] * 10, "labels": [1] * 10, "layers": layers}


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    root = tmp_path_factory.mktemp("energy-cli")
    digits = random_digits_net(timesteps=4)
    save_checkpoint(root / "digits.pt", digits, {})
    save_checkpoint(root / "other.pt", random_net(timesteps=4), {})
    for name, run in {"lava.json": run_record(digits, "lava"),
                      "emulator.json": run_record(digits, "emulator"),
                      "off.json": run_record(digits, "emulator", spikes=8),
                      "v2.json": {**run_record(digits), "version": 2}}.items():
        (root / name).write_text(json.dumps(run))
    loihi = json.loads((BUILTIN_DIR / "loihi.json").read_text())
    mine = {**loihi, "name": "mychip"}
    (root / "mychip.json").write_text(json.dumps(mine))
    loihi["constants"]["synaptic_op"]["value_pj"] = -1.0
    (root / "negative.json").write_text(json.dumps(loihi))
    return root


@pytest.mark.skipif(torch.cuda.is_available(), reason="this checks the no-CUDA path")
def test_measure_gpu_without_cuda_reports_why(files):
    out = files / "measured"
    result = slssnn("energy", files / "lava.json", files / "emulator.json", "-o", out,
                    "--measure-gpu", files / "digits.pt", "--device-model", files / "mychip.json",
                    "--batch-sizes", "1", "--window", "0.2", "--repeats", "1")
    assert result.returncode == 0, result.stderr
    assert "GPU: not measured: torch.cuda.is_available() is False" in result.stdout
    assert "counts identical in the emulator record" in result.stdout
    report = json.loads((out / "energy.json").read_text())
    assert report["gpu"]["measured"] is False
    assert "torch.cuda.is_available() is False" in report["gpu"]["reason"]
    assert report["run"]["backend"] == "lava"
    assert report["run"]["counts_identical_in"] == [
        {"backend": "emulator", "path": str(files / "emulator.json")}]
    assert "mychip" in report["models"]
    assert any(e["label"] == "mychip SNN" for e in report["estimates"])
    md = (out / "energy.md").read_text()
    assert "GPU: not measured: torch.cuda.is_available() is False" in md
    assert "Engine (counts from): lava; identical counts in the emulator record" in md


@pytest.mark.parametrize("args, needles", [
    (["lava.json", "--measure-gpu", "other.pt"], ["other.pt does not match run", "lava.json"]),
    (["v2.json"], ["v2.json", "field 'version'", "another slssnn version"]),
    (["lava.json", "--device-model", "negative.json"],
     ["negative.json", "constants.synaptic_op.value_pj", "negative"]),
    (["lava.json", "--device-model", "absent.json"], ["absent.json", "no such file"]),
    (["lava.json", "off.json"], ["disagree", "layers[0].spikes", "7 vs 8"]),
    (["lava.json", "--measure-gpu", "absent.pt"], ["absent.pt", "no such file"]),
])
def test_bad_input_is_one_line_exit_2(files, args, needles):
    paths = [files / a if a.endswith((".json", ".pt")) else a for a in args]
    one_line_error(slssnn("energy", *paths, "-o", files / "bad"), *needles)
    assert not (files / "bad" / "energy.json").exists()


def test_bad_batch_sizes(files):
    one_line_error(slssnn("energy", files / "lava.json", "-o", files / "b",
                          "--batch-sizes", "1,0"), "--batch-sizes", "must be >= 1")
