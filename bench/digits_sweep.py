"""Digits accuracy of the default recipe at T = 1, 2, 4, 8: float, quantized, deployed.

For every T and seed this trains ``slssnn train --dataset digits --timesteps T``
with the default recipe (``TrainConfig`` defaults, ``digits_config(T)``),
then measures on the 360-image test split:

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
        --lava 4 --out runs

(runs land in ``runs/digits-T{T}-seed{S}``, the folders that
``slssnn pipeline --dataset digits --timesteps T --seed S --out
runs/digits-T{T}-seed{S}`` uses; ``--reuse`` measures finished ones.)
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
from slssnn.export.netx_writer import export_network
from slssnn.lava_runtime.run import run_network
from slssnn.training.checkpoint import load_checkpoint
from slssnn.training.datasets import load_dataset
from slssnn.training.models import SpikingNet, predict
from slssnn.training.trainer import TrainConfig, evaluate, train


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


def measure(timesteps: int, seed: int, out: Path, lava: bool, reuse: bool) -> dict[str, Any]:
    """Train one (T, seed) with the default recipe and measure it on every engine.

    With ``reuse``, a finished run in ``OUT/digits-T{T}-seed{S}`` (``train.json``,
    and ``run-lava.json`` as ``slssnn pipeline --out`` that folder writes it) is
    measured instead of training and running Lava again.
    """
    run_dir = out / f"digits-T{timesteps}-seed{seed}"
    if not (reuse and (run_dir / "train.json").is_file()):
        # an interrupted run resumes from its last epoch (bit-identical on the CPU)
        train(TrainConfig(dataset="digits", timesteps=timesteps, seed=seed,
                          out_dir=str(run_dir)), progress=False,
              resume=reuse and (run_dir / "checkpoint.pt").is_file())
    model, _ = load_checkpoint(run_dir / "checkpoint.pt")
    test = load_dataset("digits").test
    float_acc = float((predict(float_counts(model, test.images)) == test.labels).float().mean())
    net_path = run_dir / "network.net"
    if not (reuse and net_path.is_file()):  # keep the file a pipeline run exported
        export_network(model, net_path, {"checkpoint": str(run_dir / "checkpoint.pt")})
    emu = run_network(net_path, "digits", "emulator")
    quantized_run = evaluate(model, test)
    quantized = quantized_run["accuracy"]
    same = quantized_run["predictions"] == emu["predictions"]
    row = {"timesteps": timesteps, "seed": seed, "float": float_acc, "quantized": quantized,
           "emulator": emu["accuracy"],
           "spikes_per_inference": sum(x["spikes"] for x in emu["layers"]) / emu["samples"],
           "emulator_equals_quantized": same}
    if lava:
        done = run_dir / "run-lava.json"
        record = (json.loads(done.read_text()) if reuse and done.is_file()
                  else run_network(net_path, "digits", "lava", timeout=1800))
        row["lava"] = record["accuracy"]
        row["lava_predictions_equal_emulator"] = record["predictions"] == emu["predictions"]
    print(f"T={timesteps} seed={seed}: " + ", ".join(
        f"{k} {v:.4f}" if isinstance(v, float) else f"{k} {v}" for k, v in row.items()
        if k not in ("timesteps", "seed")), flush=True)
    return row


def _pct(values: list[float]) -> str:
    return f"{100 * statistics.mean(values):.2f}"


def _cell(values: list[float]) -> str:
    """``mean (seed / seed / ...)`` in percent, or ``-`` when not measured."""
    if not values:
        return "-"
    seeds = " / ".join(f"{100 * v:.2f}" for v in values)
    return f"{_pct(values)} ({seeds})" if len(values) > 1 else seeds


def table(rows: list[dict[str, Any]]) -> str:
    """Markdown: one line per T (mean over seeds, per-seed figures in brackets)."""
    lines = ["| T | float | quantized (PyTorch) | deployed (emulator) | deployed (Lava) "
             "| spikes/inference |",
             "| --- | --- | --- | --- | --- | --- |"]
    for t in sorted({r["timesteps"] for r in rows}):
        mine = [r for r in rows if r["timesteps"] == t]
        cells = [_cell([r[key] for r in mine if key in r])
                 for key in ("float", "quantized", "emulator", "lava")]
        spikes = statistics.mean(r["spikes_per_inference"] for r in mine)
        lines.append(f"| {t} | " + " | ".join(cells) + f" | {spikes:.0f} |")
    return "\n".join(lines)


def _ints(text: str) -> list[int]:
    return [int(x) for x in text.split(",") if x.strip()]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--timesteps", type=_ints, default=[1, 2, 4, 8], metavar="T,T")
    parser.add_argument("--seeds", type=_ints, default=[0, 1, 2], metavar="S,S")
    parser.add_argument("--lava", type=_ints, default=[], metavar="T,T",
                        help="also run these T in Lava's CPU simulator (slow)")
    parser.add_argument("--out", type=Path, default=Path("runs"))
    parser.add_argument("--reuse", action="store_true",
                        help="measure finished runs found in OUT instead of training again")
    args = parser.parse_args(argv)
    rows = [measure(t, s, args.out, t in args.lava, args.reuse)
            for t in args.timesteps for s in args.seeds]
    text = table(rows)
    print()
    print(text)
    write_json(args.out / "digits-sweep.json", {"rows": rows, "table": text,
                                         "command": " ".join(sys.argv)})
    mismatches = [r for r in rows if not r["emulator_equals_quantized"]
                  or not r.get("lava_predictions_equal_emulator", True)]
    if mismatches:
        print(f"ENGINES DISAGREE on {len(mismatches)} runs: "
              + json.dumps([(r['timesteps'], r['seed']) for r in mismatches]))
        return 1
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
