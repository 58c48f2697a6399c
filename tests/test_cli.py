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
    assert_one_line_error(slssnn("run", files / "good.net", "--dataset", "digits", "-o",
                                 files / "r.json"),
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


def error_catalogue(f: Path) -> list[tuple[list, list[str]]]:
    """(arguments, words the one-line error must contain), across every subcommand."""
    tiny = SHARED / "tinynet" / "tiny.net"
    return [
        (["energy", f / "text.net", "-o", f / "e1"], ["text.net", "not a readable JSON"]),
        (["energy", f / "partial.json", "-o", f / "e2"], ["partial.json", "field 'network'"]),
        (["energy", f / "good.json", "-o", f / "a_file"], ["a_file", "not a folder"]),
        (["export", f / "good.pt", "-o", f / "nofolder" / "x.net"], ["nofolder", "not exist"]),
        (["export", f / "good.pt", "-o", f], ["is a folder"]),
        (["export", f / "good.net", "-o", f / "y.net"], ["good.net", "not a readable"]),
        (["export", f / "old.pt", "-o", f / "y.net"], ["old.pt", "version"]),
        (["run", f / "good.net", "--dataset", "emnist", "-o", f / "r.json"],
         ["unknown dataset 'emnist'"]),
        (["run", f / "good.net", "--limit", "0", "-o", f / "r.json"], ["--limit"]),
        (["run", f / "good.net", "--backend", "loihi", "-o", f / "r.json"], ["--backend"]),
        (["run", f / "good.net", "--timeout", "-1", "-o", f / "r.json"], ["timeout"]),
        (["run", tiny, "-o", f / "r.json"], ["tiny.net", "no slssnn metadata"]),
        (["inspect", f], ["not a regular file"]),
        (["train", "--epochs", "0", "--out", f / "t"], ["--epochs"]),
        (["train", "--batch-size", "abc", "--out", f / "t"], ["--batch-size"]),
        (["train", "--resume", "--out", f / "finished"], ["training already finished"]),
        (["frobnicate"], ["invalid choice"]),
    ]


@pytest.fixture(scope="module")
def catalogue_files(files):
    import torch

    from slssnn.training.checkpoint import save_checkpoint

    model = random_net(input_shape=(1, 8, 8))
    save_checkpoint(files / "good.pt", model, {"config": {}})
    payload = torch.load(files / "good.pt", weights_only=True)
    payload["version"] = 99
    torch.save(payload, files / "old.pt")
    (files / "finished").mkdir(exist_ok=True)
    save_checkpoint(files / "finished" / "checkpoint.pt", model, {"config": {}})
    (files / "partial.json").write_text(json.dumps({"backend": "lava", "samples": 3}))
    (files / "good.json").write_text("{}")
    return files


def test_error_catalogue(catalogue_files):
    cases = error_catalogue(catalogue_files)
    assert len(cases) + 13 >= 20  # with the cases above: at least 20 kinds of bad input
    for args, needles in cases:
        assert_one_line_error(slssnn(*args), *needles)
    assert not (catalogue_files / "r.json").exists()


def test_debug_shows_the_traceback(files):
    result = slssnn("--debug", "inspect", files / "text.net")
    assert result.returncode != 0
    assert "Traceback" in result.stderr and "SlssnnError" in result.stderr
