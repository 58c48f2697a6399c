"""int8 or float32 dendritic sums: which is faster on this CPU, side by side, and identical.

``training/synapse.py`` sums binary spikes times grid weights either in int8
(``torch._int_mm``, int32 accumulation) or in float32; both are exact. It
takes int8 only where :func:`slssnn.training.synapse.int_mm_is_faster`
measured int8 products faster. This script shows the choice and its effect,
round-robin on the same batches:

- each block of the mnist zoo network (batch ``--batch`` x T = ``--timesteps``
  input spike trains from real images): the dendritic sums by both paths,
  checked identical, median ms each and the ratio;
- whole training steps (forward, loss, backward, AdamW) of two copies of the
  network from the same initialisation, one forced onto each path: median ms
  per step, samples/s and the ratio; every step checks that both copies'
  output counts are identical (so their weights stay identical too).

    OMP_NUM_THREADS=1 .venv/bin/python bench/int8_products.py [--steps 10] [--batch 32]
"""

from __future__ import annotations

import argparse
import functools
import os
import statistics
import time
from collections.abc import Callable

import torch

import slssnn.training.synapse as synapse
from slssnn.training.datasets import load_dataset
from slssnn.training.models import MODEL_CONFIGS, build_model
from slssnn.training.trainer import TrainConfig, build_optimizer, count_loss, epoch_batches

PATHS = ("int8", "float32")


def forced(path: str) -> None:
    """Make ``dendritic_sums`` take ``path`` (int8 where its conditions hold, else float32)."""
    synapse.int_mm_is_faster = (lambda: True) if path == "int8" else (lambda: False)


def timed(run: Callable[[], torch.Tensor]) -> tuple[float, torch.Tensor]:
    started = time.perf_counter()
    out = run()
    return (time.perf_counter() - started) * 1e3, out


def block_sums(model: torch.nn.Module, images: torch.Tensor, repeats: int) -> None:
    """Per block: both paths' sums of the same spikes, identical, and their median ms."""
    with torch.no_grad():
        _, trace = model(images)  # input layer first, then every block
    print(f"{'block':>6} {'input spikes':>22} {'int8 ms':>9} {'float32 ms':>10} {'ratio':>7}")
    for i, block in enumerate(model.blocks):
        spikes_in = trace[i].flatten(2) if model.flatten_before[i] else trace[i]
        flat = spikes_in.flatten(0, 1).float()  # (T*B, *in_shape)
        weight = block.quantized().weight.detach()
        times: dict[str, list[float]] = {p: [] for p in PATHS}
        results = {}
        for _ in range(repeats):
            for path in PATHS:
                forced(path)
                ms, results[path] = timed(functools.partial(
                    synapse.dendritic_sums, flat, weight, block.synapse, on_grid=True))
                times[path].append(ms)
        if not torch.equal(results["int8"].to(torch.int64), results["float32"].to(torch.int64)):
            raise SystemExit(f"block {type(block.synapse).__name__}: the two paths differ")
        t8, tf = (statistics.median(times[p]) for p in PATHS)
        print(f"{type(block.synapse).__name__:>6} {str(tuple(flat.shape)):>22} {t8:9.1f} "
              f"{tf:10.1f} {t8 / tf:6.1f}x")


def training_steps(args: argparse.Namespace) -> None:
    """Median ms per training step of two identical copies, one per path."""
    config = TrainConfig(dataset="mnist", timesteps=args.timesteps, batch_size=args.batch)
    data = load_dataset("mnist", None, args.timesteps)
    copies = {}
    for path in PATHS:
        torch.manual_seed(0)
        model = build_model(MODEL_CONFIGS["mnist"](args.timesteps)).train()
        copies[path] = (model, build_optimizer(model, config), [])
    batches = epoch_batches(data.train, config, torch.Generator().manual_seed(0))
    for k in range(args.warmup + args.steps):
        images, labels = next(batches)
        counts = {}
        for path in PATHS:
            model, optimizer, times = copies[path]
            forced(path)
            started = time.perf_counter()
            out, _ = model(images)
            loss = count_loss(out, labels, args.timesteps)
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            if k >= args.warmup:
                times.append((time.perf_counter() - started) * 1e3)
            counts[path] = out.detach()
        if not torch.equal(counts["int8"], counts["float32"]):
            raise SystemExit(f"step {k}: the two copies' output counts differ")
    t8, tf = (statistics.median(copies[p][2]) for p in PATHS)
    print(f"training step (batch {args.batch}, T = {args.timesteps}): int8 {t8:.0f} ms "
          f"({args.batch / t8 * 1e3:.1f} samples/s), float32 {tf:.0f} ms "
          f"({args.batch / tf * 1e3:.1f} samples/s): float32 {t8 / tf:.1f}x faster, "
          f"output counts identical in all {args.warmup + args.steps} steps")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=10, help="timed training steps per path")
    parser.add_argument("--warmup", type=int, default=2)
    parser.add_argument("--batch", type=int, default=32)
    parser.add_argument("--timesteps", type=int, default=4)
    args = parser.parse_args()
    if not synapse._int_mm_available():
        raise SystemExit("this torch has no CPU torch._int_mm: only the float32 path exists")
    chosen = "int8" if synapse.int_mm_is_faster() else "float32"
    print(f"torch {torch.__version__}, CPU capability {torch.backends.cpu.get_cpu_capability()}, "
          f"{torch.get_num_threads()} thread(s), load {os.getloadavg()[0]:.1f}; "
          f"int_mm_is_faster() chose {chosen}")
    data = load_dataset("mnist", None, args.timesteps)
    torch.manual_seed(0)
    model = build_model(MODEL_CONFIGS["mnist"](args.timesteps)).eval()
    block_sums(model, data.test.images[:args.batch], repeats=3)
    training_steps(args)


if __name__ == "__main__":
    main()
