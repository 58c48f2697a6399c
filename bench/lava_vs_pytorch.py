"""Throughput of the PyTorch evaluation vs Lava's CPU simulator on the same network.

Both engines run the same exported digits-architecture network on the same
test samples, side by side in one process run, and the script prints
samples/s for each and their ratio (the machine is shared and noisy: compare
ratios, not absolute figures). Usage:

    .venv/bin/python bench/lava_vs_pytorch.py [--samples N] [--timesteps T]
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import torch

from slssnn.export.netx_writer import export_network
from slssnn.lava_runtime.run import pytorch_record, run_network
from slssnn.training.models import build_model, digits_config


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--samples", type=int, default=100)
    parser.add_argument("--timesteps", type=int, default=4)
    args = parser.parse_args()
    torch.manual_seed(0)
    config = digits_config(args.timesteps)
    config.initial_threshold = 0.25
    model = build_model(config).eval()
    with tempfile.TemporaryDirectory() as tmp:
        net = Path(tmp) / "digits.net"
        export_network(model, net)
        started = time.perf_counter()
        torch_run = pytorch_record(model, net, "digits", limit=args.samples)
        torch_s = time.perf_counter() - started
        started = time.perf_counter()
        lava = run_network(net, "digits", "lava", limit=args.samples)
        lava_s = time.perf_counter() - started
    same = lava["layers"] == torch_run["layers"] and lava["predictions"] == torch_run["predictions"]
    n = args.samples
    print(f"samples={n} T={args.timesteps} identical spike totals and predictions: {same}")
    print(f"pytorch : {torch_s:8.3f} s  {n / torch_s:10.1f} samples/s")
    print(f"lava    : {lava_s:8.3f} s  {n / lava_s:10.1f} samples/s (incl. compile)")
    print(f"ratio pytorch/lava throughput: {lava_s / torch_s:.0f}x")


if __name__ == "__main__":
    main()
