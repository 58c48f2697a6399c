"""The STCB forward's fast paths against the plain definitions, in training, side by side.

Two copies of the same digits-sized network (``bench/train_speed.py``'s
architecture and seed) train on the same batches, round-robin on one thread:

- ``reference``: every block's dendritic sums by a float conv/linear, rounded
  and wrapped in int64, and every neuron layer by a loop of ``cuba_step``
  (the plain definitions);
- ``fast``: what ``STCB.forward`` runs (``training/synapse.py`` int8 sums,
  ``run_cuba``'s float32 integrate-and-fire path, ``count_spikes``).

Every step checks that every layer's spikes are identical in both (so the
weights stay identical too) and the script prints the median ms per training
step of each and their ratio.

    .venv/bin/python bench/stcb_fast_paths.py [--timesteps 4 8 16] [--steps 40]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn

import slssnn.training.stcb as stcb
from slssnn.training.models import build_model
from slssnn.training.neuron import CubaParams, run_cuba_steps

sys.path.insert(0, str(Path(__file__).resolve().parent))
import train_speed  # noqa: E402  (the same architecture, data and allocator setting)


def reference_sums(spikes: torch.Tensor, weight: torch.Tensor,
                   synapse: nn.Conv2d | nn.Linear, on_grid: bool = False) -> torch.Tensor:
    """Float conv/linear, rounded, int64, Conv sums wrapped (the forward before the fast paths).

    ``on_grid`` (``dendritic_sums``' promise of grid weights) is not needed here.
    """
    if isinstance(synapse, nn.Conv2d):
        c = synapse
        sums = F.conv2d(spikes, weight, None, c.stride, c.padding, c.dilation, c.groups)
        return stcb.wrap_conv_accum(sums.round().to(torch.int64))
    return F.linear(spikes, weight).round().to(torch.int64)


def reference_run(a_in: torch.Tensor, p: CubaParams, dtype: torch.dtype = torch.bool,
                  bounds: tuple[int, int] | None = None) -> torch.Tensor:
    """A plain loop of ``cuba_step`` in int64 (``bounds`` unused)."""
    return run_cuba_steps(a_in, p, dtype)


FAST = (stcb.dendritic_sums, stcb.run_cuba, stcb.count_spikes)
REFERENCE = (reference_sums, reference_run, lambda spikes: spikes.sum(0))


def use(paths: tuple) -> None:
    stcb.dendritic_sums, stcb.run_cuba, stcb.count_spikes = paths


def compare(steps: int, args: argparse.Namespace, train) -> tuple[float, float]:
    """Median ms per training step of (reference, fast); raises if any spike differs."""
    runs = {}
    for name in ("reference", "fast"):
        torch.manual_seed(args.seed)
        config = train_speed.bench_config(steps)
        config.initial_threshold = 0.5
        model = build_model(config)
        runs[name] = (model, torch.optim.AdamW(model.parameters(), lr=3e-3), [])
    data = train_speed.batches(*train, args.seed)
    try:
        for k in range(args.warmup + args.steps):
            images, labels = next(data)
            traces = {}
            for name, paths in (("reference", REFERENCE), ("fast", FAST)):
                use(paths)
                model, optimizer, times = runs[name]
                started = time.perf_counter()
                counts, trace = model(images)
                loss = F.cross_entropy(counts * (train_speed.LOGIT_SCALE / steps), labels)
                optimizer.zero_grad(set_to_none=True)
                loss.backward()
                optimizer.step()
                if k >= args.warmup:
                    times.append(time.perf_counter() - started)
                traces[name] = trace
            for i, (a, b) in enumerate(zip(traces["reference"], traces["fast"], strict=True)):
                if not torch.equal(a, b):
                    raise SystemExit(f"T={steps}, step {k}: layer {i} spikes differ")
    finally:
        use(FAST)
    return tuple(1e3 * statistics.median(runs[n][2]) for n in ("reference", "fast"))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--timesteps", type=int, nargs="+", default=[4, 8, 16])
    parser.add_argument("--steps", type=int, default=40)
    parser.add_argument("--warmup", type=int, default=8)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    torch.set_num_threads(1)
    allocator = train_speed.keep_heap()
    train, _ = train_speed.digits()
    print(f"torch {torch.__version__}, 1 thread, batch {train_speed.BATCH}, {allocator}")
    for steps in args.timesteps:
        reference, fast = compare(steps, args, train)
        print(f"T={steps:<3d} reference {reference:7.2f} ms/step, fast {fast:7.2f} ms/step: "
              f"{reference / fast:.1f}x; every layer's spikes identical in all "
              f"{args.warmup + args.steps} steps", flush=True)


if __name__ == "__main__":
    main()
