"""The CLI: bad input gives one line naming the problem and exit 2; the pipeline end to end."""

import json
import subprocess
import sys
from pathlib import Path

import pytest
from netfactory import random_digits_net, random_net

from slssnn.export.netx_writer import export_network

SHARED = Path(__file__).resolve().parents[2] / "shared" / "lava-dl-nets"


def slssnn(*args, cwd=None):
    return subprocess.run([sys.executable, "-m", "slssnn", *map(str, args)], cwd=cwd,
                          capture_output=True, text=True, timeout=600)


def assert_one_line_error(result, *needles):
    assert result.returncode == 2, result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert "Traceback" not in result.stderr
    for needle in needles:
        assert needle in lines[0], lines[0]


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    root = tmp_path_factory.mktemp("cli")
    (root / "a_file").write_text("not a folder")
    (root / "text.pt").write_text("not a checkpoint")
    (root / "text.net").write_text("not hdf5")
    export_network(random_net(), root / "good.net")
    data = (root / "good.net").read_bytes()
    (root / "truncated.net").write_bytes(data[: len(data) // 3])
    return root


def test_unknown_dataset(files):
    assert_one_line_error(slssnn("train", "--dataset", "nope", "--out", files / "o1"),
                          "unknown dataset 'nope'", "digits")


@pytest.mark.parametrize("value", ["0", "-3", "four"])
def test_bad_timesteps(files, value):
    assert_one_line_error(slssnn("train", "--timesteps", value, "--out", files / "o2"),
                          "--timesteps")


def test_output_folder_that_is_a_file(files):
    assert_one_line_error(slssnn("pipeline", "--out", files / "a_file"), "a_file",
                          "not a folder")


@pytest.mark.parametrize("name,needle", [
    ("missing.pt", "no such file"),
    ("text.pt", "not a readable checkpoint"),
])
def test_bad_checkpoint(files, name, needle):
    assert_one_line_error(slssnn("export", files / name, "-o", files / "x.net"), name, needle)
    assert not (files / "x.net").exists()


@pytest.mark.parametrize("name,needle", [
    ("missing.net", "no such file"),
    ("truncated.net", "not a readable netx HDF5 file"),
    ("text.net", "not a readable netx HDF5 file"),
])
def test_bad_network(files, name, needle):
    assert_one_line_error(slssnn("inspect", files / name), name, needle)
    assert_one_line_error(slssnn("run", files / name, "-o", files / "r.json"), name, needle)
    assert not (files / "r.json").exists()


def test_network_and_dataset_that_do_not_fit(files):
    assert_one_line_error(slssnn("run", files / "good.net", "-o", files / "r.json"),
                          "input shape (2, 7, 7) does not match dataset 'digits'")


def test_energy_of_a_missing_run(files):
    assert_one_line_error(slssnn("energy", files / "nope.json", "-o", files / "e"), "nope.json")


def test_inspect_valid_files(files):
    for path in (files / "good.net", SHARED / "tinynet" / "tiny.net"):
        result = slssnn("inspect", path)
        assert result.returncode == 0, result.stderr
        assert "valid netx network" in result.stdout


def test_help_explains_every_subcommand():
    result = slssnn("--help")
    for command in ("train", "export", "run", "energy", "inspect", "pipeline"):
        assert command in result.stdout
        assert slssnn(command, "--help").returncode == 0


@pytest.mark.timeout(600)
def test_pipeline_end_to_end(tmp_path):
    out = tmp_path / "p"
    result = slssnn("pipeline", "--dataset", "digits", "--timesteps", "2", "--epochs", "2",
                    "--limit", "24", "--out", out)
    assert result.returncode == 0, result.stderr[-2000:]
    for name in ("checkpoint.pt", "train.json", "network.net", "run-lava.json",
                 "run-pytorch.json", "energy.json", "energy.md", "energy.png"):
        assert (out / name).is_file(), name
    lava = json.loads((out / "run-lava.json").read_text())
    torch_run = json.loads((out / "run-pytorch.json").read_text())
    assert lava["predictions"] == torch_run["predictions"]
    assert lava["layers"] == torch_run["layers"]
    train = json.loads((out / "train.json").read_text())
    assert len(train["history"]) == 2
    assert "predictions identical: 24/24" in result.stdout


@pytest.mark.timeout(600)
def test_run_backends_write_the_same_record(tmp_path):
    export_network(random_digits_net(timesteps=3, seed=2), tmp_path / "d.net")
    records = {}
    for backend in ("lava", "emulator"):
        result = slssnn("run", tmp_path / "d.net", "--backend", backend, "--limit", "30",
                        "-o", tmp_path / f"{backend}.json")
        assert result.returncode == 0, result.stderr
        records[backend] = json.loads((tmp_path / f"{backend}.json").read_text())
    lava, emu = records["lava"], records["emulator"]
    assert lava["backend"] == "lava" and emu["backend"] == "emulator"
    for key in ("predictions", "layers", "accuracy", "samples", "timesteps", "labels"):
        assert lava[key] == emu[key], key
