"""Digits accuracy of the default recipe at T = 1, 2, 4, 8: float, quantized, deployed.

A thin wrapper around ``slssnn sweep --dataset digits`` (``slssnn/sweep.py``), which trains
every (T, seed) cell with the default recipe (``TrainConfig`` defaults, ``digits_config(T)``),
exports it and evaluates it, reusing finished cells. This script adds the float column and
prints the README's table, on the 360-image test split:

- **float**: the same spiking network with float weights, threshold and
  membrane (no fixed-point grid; the input layer is the integer one), i.e.
  the network before quantization;
- **quantized**: the quantized PyTorch forward (training's eval, the
  deployed integers);
- **emulator**: the exported netx file run by the bit-exact emulator
  (``slssnn run NET --backend emulator``), checked prediction for prediction
  against the quantized PyTorch run;
- **Lava**: the exported file in Lava's CPU simulator, for the T listed in
  ``--lava`` (slow: about 1.5 min per run here);

and the spikes per inference (all layers, input layer included) of the
deployed network. It prints one Markdown table (mean over seeds, then every
seed) and writes it with the raw figures into ``OUT/digits-sweep.json``.

    .venv/bin/python bench/digits_sweep.py --timesteps 1,2,4,8 --seeds 0,1,2 \
        --lava 4 --out runs/digits-sweep

(cells land in ``OUT/T{T}-seed{S}``; a finished cell is reused, an interrupted one
continues.)
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
from pathlib import Path
from typing import Any

import torch

from slssnn.atomic import write_json
from slssnn.cli import main as cli_main
from slssnn.sweep import CELL_FILE, cell_dir
from slssnn.training.checkpoint import load_checkpoint
from slssnn.training.datasets import load_dataset
from slssnn.training.models import SpikingNet, predict


def float_counts(model: SpikingNet, images: torch.Tensor) -> torch.Tensor:
    """Output spike counts ``(B, classes)`` of the network with float parameters.

    Same topology and dynamics as the deployed network (CUBA, reset to zero,
    strict ``v > theta``) but weights, bias, threshold and state are float:
    ``u[t] = u[t-1] (1 - iDecay/4096) + f(s[t])``,
    ``v[t] = v[t-1] (1 - vDecay/4096) + u[t]``, spike where ``v > theta``.
    A reference for what quantization costs, not a deployed semantics.
    """
    model.eval()
    with torch.no_grad():
        spikes = model.input_layer(images, model.timesteps)  # (T, B, C, H, W)
        for block, flatten in zip(model.blocks, model.flatten_before, strict=True):
            if flatten:
                spikes = spikes.flatten(2)  # (T, B, F)
            weight, bias = block.folded()
            steps, batch = spikes.shape[:2]
            current = block._apply_synapse(spikes.flatten(0, 1), weight, bias)
            current = current.unflatten(0, (steps, batch))  # (T, B, *out_shape)
            keep_u = 1.0 - block.neuron.i_decay / 4096
            keep_v = 1.0 - block.neuron.v_decay / 4096
            u = torch.zeros_like(current[0])
            v = torch.zeros_like(current[0])
            out = []
            for t in range(steps):
                u = u * keep_u + current[t]
                v = v * keep_v + u
                fired = v > block.threshold
                v = torch.where(fired, torch.zeros_like(v), v)
                out.append(fired.to(current.dtype))
            spikes = torch.stack(out)
    return spikes.sum(0)


def _cell(values: list[float]) -> str:
    """``mean (seed / seed / ...)`` in percent, or ``-`` when not measured."""
    if not values:
        return "-"
    seeds = " / ".join(f"{100 * v:.2f}" for v in values)
    return f"{100 * statistics.mean(values):.2f} ({seeds})" if len(values) > 1 else seeds


def table(rows: list[dict[str, Any]]) -> str:
    """Markdown: one line per T (mean over seeds, per-seed figures in brackets)."""
    lines = ["| T | float | quantized (PyTorch) | deployed (emulator) | deployed (Lava) "
             "| spikes/inference |",
             "| --- | --- | --- | --- | --- | --- |"]
    for t in sorted({r["timesteps"] for r in rows}):
        mine = [r for r in rows if r["timesteps"] == t]
        cells = [_cell([r[key] for r in mine if r.get(key) is not None])
                 for key in ("float", "accuracy_quantized_pytorch", "accuracy_emulator",
                             "accuracy_lava")]
        spikes = statistics.mean(r["spikes_per_inference"] for r in mine)
        lines.append(f"| {t} | " + " | ".join(cells) + f" | {spikes:.0f} |")
    return "\n".join(lines)


def _ints(text: str) -> list[int]:
    return [int(x) for x in text.split(",") if x.strip()]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--timesteps", default="1,2,4,8", metavar="T,T")
    parser.add_argument("--seeds", default="0,1,2", metavar="S,S")
    parser.add_argument("--lava", default="", metavar="T,T",
                        help="also run these T in Lava's CPU simulator (slow)")
    parser.add_argument("--out", type=Path, default=Path("runs/digits-sweep"))
    args = parser.parse_args(argv)
    sweep = ["sweep", "--dataset", "digits", "--timesteps", args.timesteps, "--seeds",
             args.seeds, "--out", str(args.out)] + (["--lava", args.lava] if args.lava else [])
    status = cli_main(sweep)
    if status != 0:
        return status
    test = load_dataset("digits").test
    rows = []
    for t in _ints(args.timesteps):
        for s in _ints(args.seeds):
            row = json.loads((cell_dir(args.out, t, s) / CELL_FILE).read_text())
            model, _ = load_checkpoint(cell_dir(args.out, t, s) / "checkpoint.pt")
            counts = float_counts(model, test.images)
            row["float"] = float((predict(counts) == test.labels).float().mean())
            rows.append(row)
    text = table(rows)
    print()
    print(text)
    write_json(args.out / "digits-sweep.json", {"rows": rows, "table": text,
                                                "command": " ".join(sys.argv)})
    if not all(r["pytorch_equals_emulator"] for r in rows):
        print("ENGINES DISAGREE: the quantized PyTorch and emulator predictions differ")
        return 1
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
