"""A real peer through NIR: train in snnTorch, export with snnTorch's own NIR export,
convert with slssnn, run on Lava; accuracy side by side.

    .venv/bin/python bench/nir_snntorch_peer.py [--epochs 3] [--lava-samples 50] [--out DIR]

Two snnTorch variants of one small network (digits, T = 4, pixel values 0..16
as input current on every step)::

    Leaky (input neurons) -> Conv2d 8@3x3 -> Leaky -> Conv2d 16@3x3 stride 2 -> Leaky
      -> Flatten -> Linear 10 -> Leaky;  beta = 0.875 = 1 - 512/4096 everywhere

- ``loihi``: ``reset_mechanism="zero", reset_delay=False``: snnTorch's
  neuron is then Loihi's CUBA neuron with iDecay = 4096 (reset to zero in the
  step that fires); the remaining differences are 8-bit weights and Lava's
  rounding of the decay;
- ``default``: snnTorch's defaults (subtractive reset, applied one step late),
  which snnTorch's exporter still writes as ``v_reset = 0``.

For each: accuracy in snnTorch (float, 360 test images), on slssnn's
bit-exact emulator (all 360) and on Lava (the first ``--lava-samples``), the
emulator and Lava predictions compared one by one, and how often snnTorch and
the deployed network predict the same class, and the energy report of the Lava
run (``energy.json/.md/.png`` under ``--out``). snnTorch propagates a spike
through all layers within one step; netx delays each block's input by one
step, and slssnn's dataset runs absorb that by giving every layer the T steps
of its input (the windows of docs/semantics.md), so the two see the same T steps.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
import warnings
from pathlib import Path

import numpy as np
import torch
from torch import nn

TIMESTEPS = 4
BETA = 1 - 512 / 4096
INPUT_THRESHOLD = 8.0


def _leaky(shape: tuple[int, ...], threshold: float, variant: str, output: bool = False):
    import snntorch as snn

    kwargs = {"reset_mechanism": "zero", "reset_delay": False} if variant == "loihi" else {}
    # per-neuron parameter tensors: snnTorch's NIR export needs the layer's shape
    return snn.Leaky(beta=torch.full(shape, BETA), threshold=torch.full(shape, threshold),
                     init_hidden=True, output=output, **kwargs)


def build_net(variant: str, seed: int = 0) -> nn.Sequential:
    """The snnTorch network (see module doc); ``variant`` is 'loihi' or 'default'."""
    torch.manual_seed(seed)
    return nn.Sequential(
        _leaky((1, 8, 8), INPUT_THRESHOLD, variant),
        nn.Conv2d(1, 8, 3, padding=1), _leaky((8, 8, 8), 1.0, variant),
        nn.Conv2d(8, 16, 3, stride=2, padding=1), _leaky((16, 4, 4), 1.0, variant),
        nn.Flatten(), nn.Linear(256, 10), _leaky((10,), 1.0, variant, output=True))


def spike_counts(net: nn.Sequential, images: torch.Tensor, steps: int = TIMESTEPS
                 ) -> torch.Tensor:
    """Output spike counts ``(B, 10)``: the image as current on each of ``steps`` steps."""
    from snntorch import utils

    utils.reset(net)
    counts = 0
    for _ in range(steps):
        spikes, _ = net(images)
        counts = counts + spikes
    return counts


def train(net: nn.Sequential, images: torch.Tensor, labels: torch.Tensor, epochs: int,
          seed: int = 0, batch: int = 64, lr: float = 5e-3) -> None:
    """Surrogate-gradient BPTT (snnTorch's default ATan), cross-entropy on counts x 10/T."""
    gen = torch.Generator().manual_seed(seed)
    opt = torch.optim.Adam(net.parameters(), lr=lr)
    net.train()
    for _ in range(epochs):
        order = torch.randperm(len(images), generator=gen)
        for start in range(0, len(images), batch):
            idx = order[start:start + batch]
            loss = nn.functional.cross_entropy(spike_counts(net, images[idx]) * 10 / TIMESTEPS,
                                               labels[idx])
            opt.zero_grad()
            loss.backward()
            opt.step()
    net.eval()


def predict_snntorch(net: nn.Sequential, images: torch.Tensor) -> np.ndarray:
    """argmax of output counts, ties to the lowest class (slssnn's readout)."""
    with torch.no_grad():
        return torch.argmax(spike_counts(net, images), dim=-1).numpy()


def export_nir(net: nn.Sequential, path: Path) -> None:
    """snnTorch's own NIR export, written with ``nir.write``."""
    import nir
    from snntorch.export_nir import export_to_nir

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # nirtorch's deprecation notice
        graph = export_to_nir(net, torch.zeros(1, 1, 8, 8), ignore_dims=[0])
    nir.write(path, graph)


def peer(variant: str, epochs: int, lava_samples: int, out: Path, seed: int = 0) -> dict:
    """Train, export, convert, run one variant; return its figures."""
    from slssnn.export.nir_import import convert_nir_to_netx
    from slssnn.lava_runtime.run import run_network
    from slssnn.training.datasets import load_dataset

    data = load_dataset("digits")
    net = build_net(variant, seed)
    started = time.perf_counter()
    train(net, data.train.images, data.train.labels, epochs, seed)
    train_s = time.perf_counter() - started
    labels = data.test.labels.numpy()
    snn_pred = predict_snntorch(net, data.test.images)
    export_nir(net, out / f"{variant}.nir")
    conversion = convert_nir_to_netx(out / f"{variant}.nir", out / f"{variant}.net",
                                     timesteps=TIMESTEPS)
    emu = run_network(out / f"{variant}.net", "digits", "emulator")
    emu_pred = np.array(emu["predictions"])
    result = {"variant": variant, "train_seconds": train_s, "samples": len(labels),
              "acc_snntorch": float((snn_pred == labels).mean()),
              "acc_emulator": emu["accuracy"],
              "same_class_snntorch_vs_deployed": float((snn_pred == emu_pred).mean()),
              "report": conversion.format_report()}
    if lava_samples:
        from slssnn.atomic import write_json
        from slssnn.energy.report import format_summary, write_report

        lava = run_network(out / f"{variant}.net", "digits", "lava", limit=lava_samples,
                           timeout=600)
        emu_n = run_network(out / f"{variant}.net", "digits", "emulator", limit=lava_samples)
        write_json(out / f"{variant}-run-lava.json", lava)
        result["energy"] = format_summary(write_report(out / f"{variant}-run-lava.json",
                                                       out / f"{variant}-energy"))
        result.update({
            "lava_samples": lava["samples"], "acc_lava": lava["accuracy"],
            "acc_emulator_same_samples": emu_n["accuracy"],
            "acc_snntorch_same_samples": float((snn_pred[:lava_samples]
                                                == labels[:lava_samples]).mean()),
            "lava_equals_emulator": lava["predictions"] == emu_n["predictions"] and all(
                a["spikes"] == b["spikes"] for a, b in zip(lava["layers"], emu_n["layers"],
                                                            strict=True)),
            "lava_seconds": lava["wall_seconds"]})
    return result


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--epochs", type=int, default=3)
    parser.add_argument("--lava-samples", type=int, default=50)
    parser.add_argument("--variants", default="loihi,default")
    parser.add_argument("--out", default=None, help="folder for the .nir/.net files")
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(args.out or tmp)
        out.mkdir(parents=True, exist_ok=True)
        for variant in args.variants.split(","):
            r = peer(variant, args.epochs, args.lava_samples, out)
            print(f"== snnTorch variant '{variant}' ({args.epochs} epochs, "
                  f"{r['train_seconds']:.1f} s), converted with slssnn:")
            print(r["report"])
            print(f"accuracy on {r['samples']} test images: snnTorch {r['acc_snntorch']:.4f}  "
                  f"slssnn emulator (bit-exact Lava semantics) {r['acc_emulator']:.4f}  "
                  f"same class {r['same_class_snntorch_vs_deployed']:.4f}")
            if "acc_lava" in r:
                print(f"first {r['lava_samples']} test images: snnTorch "
                      f"{r['acc_snntorch_same_samples']:.4f}  emulator "
                      f"{r['acc_emulator_same_samples']:.4f}  Lava {r['acc_lava']:.4f}  "
                      f"(Lava == emulator, predictions and per-layer spikes: "
                      f"{r['lava_equals_emulator']}; Lava run {r['lava_seconds']:.1f} s)")
                print(r["energy"])
            sys.stdout.flush()
    return 0


if __name__ == "__main__":
    sys.exit(main())
