"""The trainer: optimizers and schedule, resume after SIGKILL, torchrun/DDP, devices.

The runs are the real CLI in subprocesses (``python -m slssnn train`` and
``torchrun -m slssnn train``) on a slice of digits, one thread per process:
bit-identity between two runs holds for the same number of threads per process.
"""

from __future__ import annotations

import json
import os
import random
import re
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import numpy as np
import pytest
import torch

from slssnn.cli import main
from slssnn.training.checkpoint import capture_rng_state, restore_rng_state
from slssnn.training.distributed import shard
from slssnn.training.trainer import TrainConfig, train

ENV = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONUNBUFFERED": "1"}
# Small enough to be quick, large enough that the network learns within the run.
RUN = ["-T", "4", "--epochs", "3", "--limit-train", "640", "--batch-size", "32", "--lr", "0.01"]


def slssnn_train(out: Path, *extra: str) -> list[str]:
    return [sys.executable, "-m", "slssnn", "train", *RUN, "--out", str(out), *extra]


def state_dict(out: Path) -> dict[str, torch.Tensor]:
    return torch.load(out / "checkpoint.pt", map_location="cpu", weights_only=True)["state_dict"]


def history(out: Path) -> list[dict]:
    return json.loads((out / "train.json").read_text())["history"]


def assert_identical(a: dict[str, torch.Tensor], b: dict[str, torch.Tensor]) -> None:
    assert a.keys() == b.keys()
    for key in a:
        assert torch.equal(a[key], b[key]), key


class StderrWatcher:
    """Collect a process's stderr in a thread; ``wait_for`` a regex in what arrived so far."""

    def __init__(self, proc: subprocess.Popen) -> None:
        self.text = ""
        self._thread = threading.Thread(target=self._read, args=(proc,), daemon=True)
        self._thread.start()

    def _read(self, proc: subprocess.Popen) -> None:
        for chunk in iter(lambda: proc.stderr.read1(4096), b""):
            self.text += chunk.decode(errors="replace")

    def wait_for(self, pattern: str, timeout: float) -> re.Match | None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            matches = list(re.finditer(pattern, self.text))
            if matches:
                return matches[-1]
            time.sleep(0.005)
        return None


@pytest.mark.timeout(300)
def test_sigkill_mid_epoch_then_resume_is_bit_identical(tmp_path):
    options = ["--optimizer", "sgd", "--nesterov", "--warmup-epochs", "1",
               "--label-smoothing", "0.1", "--max-shift", "2", "--shift-fraction", "0.25",
               "--logit-scale", "7.5"]
    reference = subprocess.run(slssnn_train(tmp_path / "ref", *options), env=ENV,
                               capture_output=True, text=True, timeout=240)
    assert reference.returncode == 0, reference.stderr
    out = tmp_path / "killed"
    proc = subprocess.Popen(slssnn_train(out, *options), env=ENV, stderr=subprocess.PIPE,
                            stdout=subprocess.DEVNULL)
    watcher = StderrWatcher(proc)
    # tqdm's batch bar of epoch 2, a few batches in (of 20): after checkpoint 1, mid-epoch.
    seen = watcher.wait_for(r"epoch 2:\s+\d+%\|[^|]*\|\s*([3-9]|1[0-4])/20", timeout=200)
    proc.send_signal(signal.SIGKILL)
    proc.wait(timeout=30)
    assert seen, watcher.text[-2000:]
    assert proc.returncode == -signal.SIGKILL
    killed_at = torch.load(out / "checkpoint.pt", weights_only=True)["train"]["history"]
    assert len(killed_at) == 1, "killed during epoch 2, so the last checkpoint is epoch 1's"
    assert not (out / "train.json").exists()
    for metric in (r"loss=\d+\.\d+", r"acc=\d\.\d+", r"sps=\d+"):  # the progress bar
        assert re.search(metric, watcher.text), metric

    resumed = subprocess.run(slssnn_train(out, "--resume"), env=ENV, capture_output=True,
                             text=True, timeout=240)
    assert resumed.returncode == 0, resumed.stderr
    assert_identical(state_dict(tmp_path / "ref"), state_dict(out))
    assert history(out)[0] == killed_at[0]  # epoch 1 comes from the checkpoint
    want, got = history(tmp_path / "ref"), history(out)
    for key in ("loss", "train_accuracy", "test_accuracy", "lr"):
        assert [h[key] for h in want] == [h[key] for h in got], key
    assert want[-1]["test_accuracy"] > 0.3, "the run must learn for the comparison to mean much"
    stored = json.loads((out / "train.json").read_text())["config"]
    assert (stored["max_shift"], stored["shift_fraction"], stored["logit_scale"]) == (
        2, 0.25, 7.5)  # resumed with them
    csv = (out / "train.csv").read_text().splitlines()
    assert csv[0] == "epoch,loss,train_accuracy,test_accuracy,samples_per_second,lr"
    assert len(csv) == 4


@pytest.mark.timeout(300)
def test_torchrun_two_gloo_processes_match_one_process(tmp_path):
    # 631 samples: the last global batch has 23, split 11 / 12 between the two processes.
    run = ["--limit-train", "631"]
    one = subprocess.run(slssnn_train(tmp_path / "one", *run, "--grad-shards", "2"), env=ENV,
                         capture_output=True, text=True, timeout=240)
    assert one.returncode == 0, one.stderr
    two = subprocess.run([sys.executable, "-m", "torch.distributed.run", "--standalone",
                          "--nproc_per_node", "2", "-m", "slssnn", "train", *RUN, *run,
                          "--out", str(tmp_path / "two")],
                         env=ENV, capture_output=True, text=True, timeout=240)
    assert two.returncode == 0, two.stderr[-3000:]
    assert two.stdout.count("quantized test accuracy") == 1  # rank 0 reports
    assert_identical(state_dict(tmp_path / "one"), state_dict(tmp_path / "two"))
    record = json.loads((tmp_path / "two" / "train.json").read_text())
    assert record["runtime"]["world_size"] == 2 and record["config"]["grad_shards"] == 2
    assert history(tmp_path / "one") == [
        {**h, "samples_per_second": a["samples_per_second"]}
        for h, a in zip(history(tmp_path / "two"), history(tmp_path / "one"), strict=True)]
    assert history(tmp_path / "two")[-1]["test_accuracy"] > 0.3


def one_step(tmp_path: Path, shards: int, name: str) -> dict[str, torch.Tensor]:
    """Weights after one plain SGD step (lr 1) on a batch of 27: ``w0 - gradient``."""
    config = TrainConfig(timesteps=4, epochs=1, batch_size=27, limit_train=27, optimizer="sgd",
                         lr=1.0, momentum=0.0, weight_decay=0.0, grad_shards=shards,
                         out_dir=str(tmp_path / name))
    train(config, progress=False)
    return state_dict(tmp_path / name)


def test_gradient_over_unequal_shards_is_the_batch_mean(tmp_path):
    torch.manual_seed(0)
    full = one_step(tmp_path, 1, "full")
    for shards in (2, 4):  # 13 + 14 and 6 + 7 + 7 + 7 samples
        parts = one_step(tmp_path, shards, f"shards{shards}")
        for key in full:
            # the same sum of per-sample gradients, added in another order (float32)
            assert torch.allclose(full[key], parts[key], rtol=1e-5, atol=1e-6), key


def test_shards_cover_the_batch_in_order():
    for n in (0, 1, 5, 23, 32):
        for world in (1, 2, 3, 8):
            parts = [shard(n, r, world) for r in range(world)]
            assert [i for p in parts for i in range(n)[p]] == list(range(n))
            sizes = [len(range(n)[p]) for p in parts]
            assert max(sizes) - min(sizes) <= 1


def test_rng_state_survives_the_checkpoint_format(tmp_path):
    generator = torch.Generator().manual_seed(5)
    torch.manual_seed(1)
    random.seed(2)
    np.random.seed(3)
    saved = capture_rng_state(generator)
    torch.save(saved, tmp_path / "rng.pt")
    first = (torch.rand(3, generator=generator), torch.rand(3), random.random(),
             np.random.rand())
    restore_rng_state(torch.load(tmp_path / "rng.pt", weights_only=True), generator)
    again = (torch.rand(3, generator=generator), torch.rand(3), random.random(),
             np.random.rand())
    assert torch.equal(first[0], again[0]) and torch.equal(first[1], again[1])
    assert first[2:] == again[2:]


@pytest.mark.parametrize("args, needle", [
    (["--nesterov"], "--nesterov needs --optimizer sgd"),
    (["--label-smoothing", "1.5"], "--label-smoothing must be in [0, 1)"),
    (["--max-shift", "-1"], "--max-shift must be >= 0, got -1"),
    (["--logit-scale", "0"], "--logit-scale must be > 0, got 0.0"),
    (["--shift-fraction", "1.5"], "--shift-fraction must be in [0, 1], got 1.5"),
    (["--epochs", "2", "--warmup-epochs", "2"], "--warmup-epochs must be in [0, --epochs=2)"),
    (["--device", "tpu"], "--device 'tpu': unknown device"),
])
def test_bad_options_are_one_line_errors(tmp_path, capsys, args, needle):
    assert main(["train", "--limit-train", "8", "--out", str(tmp_path / "o"), *args]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and needle in err[0], err


@pytest.mark.skipif(torch.cuda.is_available(), reason="a GPU is present")
def test_device_cuda_without_a_gpu_is_one_line(tmp_path, capsys):
    assert main(["train", "--device", "cuda", "--out", str(tmp_path / "o")]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert err == [f"slssnn: error: --device cuda: CUDA is not available (torch "
                   f"{torch.__version__} sees no GPU); use --device cpu"]


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_cuda_training_matches_its_checkpoint_on_cpu(tmp_path):
    from slssnn.training.checkpoint import load_checkpoint
    from slssnn.training.trainer import evaluate

    config = TrainConfig(timesteps=4, epochs=2, limit_train=256, lr=0.01, device="cuda",
                         out_dir=str(tmp_path / "gpu"))
    result = train(config, progress=False)
    model, _ = load_checkpoint(tmp_path / "gpu" / "checkpoint.pt")
    from slssnn.training.datasets import load_dataset

    cpu = evaluate(model, load_dataset("digits").test)["accuracy"]
    assert cpu == result["test_accuracy_quantized_pytorch"]


def test_resume_rebuilds_the_network_stored_in_the_checkpoint(tmp_path, monkeypatch):
    """Edit the zoo entry between a crash and a resume: the resumed run trains the stored
    network, not the edited one."""
    from slssnn.training import models, trainer
    from slssnn.training.models import ModelConfig

    config = TrainConfig(dataset="digits", timesteps=2, epochs=2, batch_size=32, limit_train=64,
                         out_dir=str(tmp_path))
    real_epoch, calls = trainer._Loop.epoch, []

    def crash_in_epoch_two(loop, bar):
        calls.append(1)
        if len(calls) == 2:
            raise KeyboardInterrupt("crash")
        return real_epoch(loop, bar)

    monkeypatch.setattr(trainer._Loop, "epoch", crash_in_epoch_two)
    with pytest.raises(KeyboardInterrupt):
        train(config, progress=False)
    stored = torch.load(tmp_path / "checkpoint.pt", weights_only=True)["model_config"]
    original = models.MODEL_CONFIGS["digits"]

    def edited(timesteps: int) -> ModelConfig:
        cfg = original(timesteps)
        cfg.layers[0]["out_channels"] = 8  # a different network under the same name
        return cfg

    monkeypatch.setitem(models.MODEL_CONFIGS, "digits", edited)
    result = train(config, progress=False, resume=True)
    assert result["model_config"] == stored
    assert result["model_config"]["layers"][0]["out_channels"] == 64
    assert len(result["history"]) == 2


def test_validation_holds_out_part_of_the_training_split_and_never_reads_test(tmp_path):
    result = train(TrainConfig(dataset="digits", timesteps=2, epochs=1, batch_size=64,
                               validation=True, out_dir=str(tmp_path)), progress=False)
    assert "validation_accuracy" in result["history"][0]
    assert "test_accuracy_quantized_pytorch" not in result
    assert result["validation_samples"] == 144  # 10 % of digits' 1,437 training images
