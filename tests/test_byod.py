"""Bring your own data (``--data FILE.npz``) and model (``--model MODEL.json``) through
train, export, run (emulator and Lava) and energy; malformed files refused in one line."""

import json
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from slssnn import cli
from slssnn.errors import SlssnnError
from slssnn.export.netx_reader import read_network
from slssnn.training.datasets import dataset_from_arrays, load_dataset
from slssnn.training.models import ModelConfig, build_model, load_model_config

pytestmark = pytest.mark.timeout(300)

MODEL = {
    "name": "tiny", "input_shape": [1, 8, 8], "num_classes": 10, "timesteps": 4,
    "input_scale": 0.0625, "input_threshold": 8, "initial_threshold": 0.3,
    "layers": [{"type": "conv", "out_channels": 8, "kernel": 3, "stride": 2, "padding": 1,
                "v_decay": 256},
               {"type": "flatten"},
               {"type": "dense", "out_features": 10, "clamp_slope": 0.02}],
}


def digits_arrays(train: int = 300, test: int = 30) -> dict[str, np.ndarray]:
    """scikit-learn's digits as a user would save them: uint8 pixels 0..255, (N, H, W)."""
    from sklearn.datasets import load_digits

    digits = load_digits()
    images = np.clip(digits.images * 16, 0, 255).astype(np.uint8)
    return {"x_train": images[:train], "y_train": digits.target[:train],
            "x_test": images[train:train + test], "y_test": digits.target[train:train + test]}


def event_arrays(n: int = 24, frames: int = 3) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(0)
    x = (rng.random((n, frames, 2, 6, 6)) < 0.3).astype(np.uint8)
    y = np.arange(n) % 3
    return {"x_train": x[:16], "y_train": y[:16], "x_test": x[16:], "y_test": y[16:]}


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    root = tmp_path_factory.mktemp("byod")
    np.savez(root / "mine.npz", **digits_arrays())
    np.savez(root / "events.npz", **event_arrays())
    (root / "model.json").write_text(json.dumps(MODEL, indent=1))
    return root


def one_line_error(capsys, argv, *needles):
    capsys.readouterr()
    assert cli.main([str(a) for a in argv]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "Traceback" not in err, err
    for needle in needles:
        assert needle in err, err
    return err


@pytest.mark.timeout(600)
def test_npz_and_model_file_train_export_run_on_both_backends_and_energy(files, capsys):
    out = files / "run"
    assert cli.main(["train", "--data", str(files / "mine.npz"), "--model",
                     str(files / "model.json"), "--epochs", "1", "--limit-train", "96",
                     "--out", str(out)]) == 0
    net = out / "tiny.net"
    assert cli.main(["export", str(out / "checkpoint.pt"), "-o", str(net)]) == 0
    metadata = read_network(net).metadata
    assert metadata["model_config"] == ModelConfig.from_dict(MODEL).to_dict()
    assert metadata["timesteps"] == 4
    assert metadata["dataset"] == str(files / "mine.npz")  # what it was trained on, not "tiny"
    # The network and the data are all a run needs; a network trained on a data file
    # does not guess which data to run.
    one_line_error(capsys, ["run", net, "--backend", "emulator", "-o", out / "x.json"],
                   "--data FILE.npz")
    for backend in ("emulator", "lava"):
        assert cli.main(["run", str(net), "--data", str(files / "mine.npz"), "--backend",
                         backend, "--limit", "4", "--timeout", "240",
                         "-o", str(out / f"run-{backend}.json")]) == 0
    emulator, lava = (json.loads((out / f"run-{b}.json").read_text())
                      for b in ("emulator", "lava"))
    assert emulator["layers"] == lava["layers"] and emulator["predictions"] == lava["predictions"]
    assert emulator["labels"] == digits_arrays()["y_test"][:4].tolist()
    assert all(layer["spikes"] > 0 for layer in lava["layers"])
    assert cli.main(["energy", str(out / "run-lava.json"), str(out / "run-emulator.json"),
                     "-o", str(out / "energy")]) == 0
    report = json.loads((out / "energy" / "energy.json").read_text())
    assert report["run"]["dataset"] == str(files / "mine.npz")
    assert report["run"]["counts_identical_in"][0]["backend"] == "emulator"


def test_event_npz_with_the_default_model_trains_and_runs(files, capsys):
    out = files / "events-run"
    assert cli.main(["train", "--data", str(files / "events.npz"), "--epochs", "1",
                     "--out", str(out)]) == 0
    record = json.loads((out / "train.json").read_text())
    assert record["config"]["timesteps"] == 3  # T from the file's frames
    assert record["model_config"]["input_kind"] == "events"
    assert record["model_config"]["input_shape"] == [2, 6, 6]
    assert record["model_config"]["num_classes"] == 3
    assert cli.main(["export", str(out / "checkpoint.pt"), "-o", str(out / "n.net")]) == 0
    assert cli.main(["run", str(out / "n.net"), "--data", str(files / "events.npz"),
                     "--backend", "emulator", "-o", str(out / "r.json")]) == 0
    assert json.loads((out / "r.json").read_text())["samples"] == 8
    capsys.readouterr()
    one_line_error(capsys, ["train", "--data", files / "events.npz", "-T", "5", "--out", out],
                   "events.npz", "key 'x_train'", "3 event frames", "T=5")


def _variant(files: Path, name: str, change) -> Path:
    arrays = digits_arrays(40, 10)
    change(arrays)
    np.savez(files / name, **arrays)
    return files / name


@pytest.mark.parametrize("name, change, needles", [
    ("no_y_test.npz", lambda a: a.pop("y_test"), ["missing key 'y_test'"]),
    ("extra.npz", lambda a: a.update(x_val=a["x_test"]), ["unknown key 'x_val'"]),
    ("float.npz", lambda a: a.update(x_train=a["x_train"].astype(np.float32)),
     ["key 'x_train'", "uint8", "float32"]),
    ("flat.npz", lambda a: a.update(x_test=a["x_test"].reshape(10, 64)),
     ["key 'x_test'", "(10, 64)"]),
    ("count.npz", lambda a: a.update(y_train=a["y_train"][:-1]),
     ["key 'y_train'", "39 labels for 40 samples"]),
    ("fl_labels.npz", lambda a: a.update(y_test=a["y_test"] + 0.5), ["key 'y_test'", "integers"]),
    ("shape.npz", lambda a: a.update(x_test=a["x_test"][:, :, :6]), ["key 'x_test'", "(8, 6)"]),
    ("neg.npz", lambda a: a.update(y_test=a["y_test"] - 1), ["key 'y_test'", "negative"]),
    ("events2.npz", lambda a: a.update(x_train=np.full((40, 2, 2, 8, 8), 2, np.uint8),
                                       x_test=np.zeros((10, 2, 2, 8, 8), np.uint8)),
     ["key 'x_train'", "0/1"]),
])
def test_malformed_npz_is_one_line_naming_the_key(files, capsys, name, change, needles):
    path = _variant(files, name, change)
    one_line_error(capsys, ["train", "--data", path, "--epochs", "1", "--out", files / "bad"],
                   f"data file {path}", *needles)
    assert not (files / "bad" / "checkpoint.pt").exists()


def test_unreadable_npz_files_are_one_line(files, capsys):
    (files / "text.npz").write_text("not a zip")
    one_line_error(capsys, ["train", "--data", files / "text.npz", "--out", files / "bad"],
                   "text.npz", "not an .npz file")
    np.savez(files / "objects.npz", x_train=np.array([{"a": 1}], dtype=object))
    one_line_error(capsys, ["run", files / "any.net", "--data", files / "objects.npz",
                            "-o", files / "r.json"], "no such file")
    one_line_error(capsys, ["train", "--data", files / "objects.npz", "--out", files / "bad"],
                   "objects.npz", "key 'x_train'", "not a plain numeric array")
    one_line_error(capsys, ["train", "--data", files / "missing.npz", "--out", files / "bad"],
                   "missing.npz: no such file")


def _model_variant(files: Path, change) -> Path:
    model = json.loads(json.dumps(MODEL))
    change(model)
    path = files / "bad-model.json"
    path.write_text(json.dumps(model))
    return path


@pytest.mark.parametrize("change, needles", [
    (lambda m: m.pop("num_classes"), ["missing field 'num_classes'"]),
    (lambda m: m.update(clases=10), ["unknown field 'clases'"]),
    (lambda m: m.update(input_shape=[8, 8]), ["field 'input_shape'"]),
    (lambda m: m.update(timesteps="4"), ["field 'timesteps'"]),
    (lambda m: m.update(num_classes=9), ["layer 2:", "10 outputs", "field 'num_classes'"]),
    (lambda m: m["layers"][0].update(kernel="3"), ["layer 0:", "field 'kernel'"]),
    (lambda m: m["layers"][0].update(kernel=12), ["layer 0:", "field 'kernel'", "larger"]),
    (lambda m: m["layers"][0].update(groups=3), ["layer 0:", "field 'groups'"]),
    (lambda m: m["layers"][0].pop("out_channels"), ["layer 0:", "missing field 'out_channels'"]),
    (lambda m: m["layers"][1].update(type="pool"), ["layer 1:", "unknown layer type 'pool'"]),
    (lambda m: m["layers"][2].update(v_decay=5000), ["layer 2:", "field 'v_decay'"]),
    (lambda m: m["layers"][2].update(bachnorm=True), ["layer 2:", "unknown field 'bachnorm'"]),
    (lambda m: m["layers"].__setitem__(1, "flatten"), ["layer 1:", "must be an object"]),
])
def test_malformed_model_file_is_one_line_naming_index_and_field(files, capsys, change,
                                                                 needles):
    path = _model_variant(files, change)
    one_line_error(capsys, ["train", "--data", files / "mine.npz", "--model", path,
                            "--out", files / "bad"], f"model file {path}", *needles)


def test_model_file_that_does_not_fit_or_parse_is_refused(files, capsys):
    one_line_error(capsys, ["train", "--data", files / "events.npz", "--model",
                            files / "model.json", "--out", files / "bad"],
                   "key 'x_train' has 3 event frames", "T=4")
    small = _variant(files, "seven.npz", lambda a: a.update(
        {k: a[k][:, :7, :7] for k in ("x_train", "x_test")}))
    one_line_error(capsys, ["train", "--data", small, "--model", files / "model.json",
                            "--out", files / "bad"], "takes input (1, 8, 8)", "(1, 7, 7)")
    one_line_error(capsys, ["train", "--data", files / "mine.npz", "--model",
                            files / "model.json", "-T", "6", "--out", files / "bad"],
                   "--timesteps 6", "field 'timesteps' is 4")
    (files / "broken.json").write_text('{"name": "x",\n "layers": [}')
    one_line_error(capsys, ["train", "--model", files / "broken.json", "--out", files / "bad"],
                   "broken.json", "line 2")


def test_model_config_validates_at_construction_and_loads_from_json(files):
    with pytest.raises(SlssnnError, match="layer 2: the last layer has 10 outputs"):
        ModelConfig(**{**MODEL, "num_classes": 5})
    config = load_model_config(files / "model.json")
    assert config == ModelConfig.from_dict(config.to_dict())
    counts, trace = build_model(config)(torch.zeros(2, 1, 8, 8))
    assert counts.shape == (2, 10) and len(trace) == 3


def test_arrays_in_memory_are_the_same_dataset_as_the_npz_file(files):
    from_file = load_dataset(str(files / "mine.npz"))
    in_memory = dataset_from_arrays(digits_arrays(), name="mine")
    assert torch.equal(from_file.train.images, in_memory.train.images)
    assert from_file.input_shape == in_memory.input_shape == (1, 8, 8)
    assert from_file.train.images.dtype == torch.uint8


def test_import_slssnn_is_light_and_never_imports_lava():
    import subprocess

    code = ("import sys, slssnn\n"
            "assert not any(m.split('.')[0] in ('torch', 'lava') for m in sys.modules)\n"
            "names = [getattr(slssnn, n) for n in slssnn.__all__]\n"
            "assert not any(m.split('.')[0] == 'lava' for m in sys.modules)\n"
            "print(len(names))\n")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                            timeout=120)
    assert result.returncode == 0, result.stderr
    assert int(result.stdout) >= 11


def test_event_frames_of_any_numeric_dtype_holding_0_and_1_are_taken():
    arrays = event_arrays()
    floats = {k: v.astype(np.float32) if k.startswith("x") else v for k, v in arrays.items()}
    data = dataset_from_arrays(floats, name="floats")
    assert data.kind == "events" and data.train.images.dtype == torch.uint8
    assert torch.equal(data.train.images, torch.from_numpy(arrays["x_train"]))
    floats["x_test"] = floats["x_test"] * 0.5
    with pytest.raises(SlssnnError, match="floats: key 'x_test': event frames must be 0/1, "
                                          "found 0.5"):
        dataset_from_arrays(floats, name="floats")
