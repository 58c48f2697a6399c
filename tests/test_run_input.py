"""``slssnn run NET --input FILE.npy``: any netx network on the user's own array, then energy."""

import json
import subprocess
import sys

import numpy as np
import pytest
from corpus import NTIDIGITS, PILOTNET_SDNN

pytestmark = pytest.mark.timeout(600)


def slssnn(*args):
    return subprocess.run([sys.executable, "-m", "slssnn", *map(str, args)],
                          capture_output=True, text=True, timeout=600)


def assert_one_line_error(result, *needles):
    assert result.returncode == 2, result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    for needle in needles:
        assert needle in lines[0], lines[0]


def test_sigma_delta_network_on_an_input_array_then_energy(tmp_path):
    frame = np.load(PILOTNET_SDNN / "input.npy")  # (x, y, c, 1)
    batch = np.stack([np.repeat(frame, 6, axis=-1), np.repeat(-frame, 6, axis=-1)])
    np.save(tmp_path / "x.npy", batch)  # (2, 100, 33, 3, 6): two samples, 6 steps
    records = {}
    for backend in ("emulator", "lava"):
        out = tmp_path / f"run-{backend}.json"
        result = slssnn("run", PILOTNET_SDNN / "network.net", "--input", tmp_path / "x.npy",
                        "--backend", backend, "-o", out)
        assert result.returncode == 0, result.stderr
        records[backend] = json.loads(out.read_text())
    emu, lava = records["emulator"], records["lava"]
    assert emu["samples"] == 2 and emu["timesteps"] == 6 and emu["accuracy"] is None
    assert [layer["spikes"] for layer in emu["layers"]] == \
        [layer["spikes"] for layer in lava["layers"]]
    assert [layer["synops"] for layer in emu["layers"]] == \
        [layer["synops"] for layer in lava["layers"]]
    assert emu["layers"][1]["graded"] and emu["layers"][2]["synops"] > 0
    report = slssnn("energy", tmp_path / "run-emulator.json", tmp_path / "run-lava.json",
                    "-o", tmp_path / "energy")
    assert report.returncode == 0, report.stderr
    energy = json.loads((tmp_path / "energy" / "energy.json").read_text())
    assert energy["run"]["accuracy"] is None
    assert "none (an input array without labels)" in \
        (tmp_path / "energy" / "energy.md").read_text()


def test_num_layers_and_spikes_into_a_first_synapse(tmp_path):
    np.save(tmp_path / "x.npy", np.load(NTIDIGITS / "input.npy")[:, :200])
    out = tmp_path / "run.json"
    result = slssnn("run", NTIDIGITS / "ntidigits.net", "--input", tmp_path / "x.npy",
                    "--num-layers", "5", "--backend", "emulator", "-o", out)
    assert result.returncode == 0, result.stderr
    record = json.loads(out.read_text())
    assert [layer["name"] for layer in record["layers"]] == ["2:dense", "3:dense", "4:dense"]
    assert record["layers"][0]["synops"] > 0  # the input spikes count towards layer 2


@pytest.mark.parametrize("array, needles", [
    (np.zeros((100, 33, 4, 5), dtype=np.int32), ["must be shaped (100, 33, 3, 5)",
                                                  "got (100, 33, 4, 5)"]),
    (np.full((100, 33, 3, 5), 0.5), ["must hold integers", "float64"]),
])
def test_wrong_input_is_one_line_naming_both_shapes(tmp_path, array, needles):
    np.save(tmp_path / "x.npy", array)
    assert_one_line_error(slssnn("run", PILOTNET_SDNN / "network.net", "--input",
                                 tmp_path / "x.npy", "--backend", "emulator",
                                 "-o", tmp_path / "r.json"), *needles)
    assert not (tmp_path / "r.json").exists()


def test_unreadable_input_and_average_layer(tmp_path):
    (tmp_path / "x.npy").write_text("not numpy")
    assert_one_line_error(slssnn("run", PILOTNET_SDNN / "network.net", "--input",
                                 tmp_path / "x.npy", "-o", tmp_path / "r.json"),
                          "not a readable .npy array")
    np.save(tmp_path / "y.npy", np.zeros((64, 10), dtype=np.int32))
    assert_one_line_error(slssnn("run", NTIDIGITS / "ntidigits.net", "--input",
                                 tmp_path / "y.npy", "-o", tmp_path / "r.json"),
                          "layer 5", "'average'", "num_layers=5")
