"""Train a CIFAR-shaped STCB network on a GPU, then export and reload it on the CPU side.

On synthetic CIFAR-shaped data (3x32x32 pixels 0..255, ten classes, each a
fixed random prototype plus noise, so the task is learnable in a few hundred
steps) this script

1. trains the ``cifar10`` model of the zoo (``MODEL_CONFIGS``) for ``--steps``
   steps with AdamW on ``--device`` (default ``cuda``) and prints samples/s
   (after ``--warmup`` untimed steps, the device synchronised);
2. checks that the loss falls (mean of the last quarter of the steps below
   the first quarter); the thresholds start where about ``--rate`` of each
   layer's neurons fire every step, so that every layer spikes;
3. writes a checkpoint, loads it on the CPU, exports it with
   ``export/netx_writer`` and reads the file back with ``export/netx_reader``;
4. checks that the CPU model and the trained device model give the same output
   spike counts on a batch (one integer semantics on both sides).

It imports no Lava, so it runs where only torch, numpy and h5py are installed
(a GPU box with Python 3.12, torch 2.11 and numpy 2). Without CUDA it stops
with a message; ``--device cpu --steps 20`` is a smoke run of the same path.
Exit status: 0 when every check passed, 1 when one failed, 2 for no device.

    python bench/train_cuda.py [--device cuda] [--steps 300] [--batch-size 64] [--timesteps 4]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

import torch
import torch.nn.functional as F

from slssnn.export.netx_reader import read_network
from slssnn.export.netx_writer import export_network
from slssnn.training.checkpoint import load_checkpoint, save_checkpoint
from slssnn.training.models import MODEL_CONFIGS, SpikingNet, build_model

CLASSES = 10
LOGIT_SCALE = 10.0


def synthetic_cifar(samples: int, seed: int) -> tuple[torch.Tensor, torch.Tensor]:
    """``(images (N, 3, 32, 32) float 0..255, labels (N,))``: a prototype per class plus noise."""
    gen = torch.Generator().manual_seed(seed)
    prototypes = torch.rand((CLASSES, 3, 32, 32), generator=gen) * 255
    labels = torch.randint(0, CLASSES, (samples,), generator=gen)
    noise = torch.randn((samples, 3, 32, 32), generator=gen) * 40
    return (prototypes[labels] + noise).clamp(0, 255).round(), labels


def calibrate_thresholds(model: SpikingNet, images: torch.Tensor, rate: float) -> list[float]:
    """Set each block's threshold so that about ``rate`` of its neurons fire every step.

    Layer by layer on one batch: the threshold becomes the ``1 - rate``
    quantile of the block's mean input current per step, ``f(counts_in / T)``
    (float units), so a deep network starts with spikes in every layer.
    Returns the thresholds.
    """
    steps, chosen = model.timesteps, []
    with torch.no_grad():
        spikes = model.input_layer(images, steps)  # (T, B, C, H, W)
        counts = spikes.sum(0)
        for block, flatten in zip(model.blocks, model.flatten_before, strict=True):
            if flatten:
                spikes, counts = spikes.flatten(2), counts.flatten(1)  # (T, B, F), (B, F)
            current = block.synapse(counts / steps).flatten()
            sample = current[torch.randperm(len(current), device=current.device)[:1 << 20]]
            block.threshold.fill_(float(torch.quantile(sample, 1 - rate).clamp_min(1e-3)))
            chosen.append(float(block.threshold))
            spikes, counts = block(spikes, counts)
    return chosen


def synchronize(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def train(model: SpikingNet, images: torch.Tensor, labels: torch.Tensor,
          args: argparse.Namespace) -> tuple[list[float], float]:
    """Train ``args.steps`` steps; return the losses and the samples/s of the timed steps."""
    optimizer = torch.optim.AdamW(model.parameters(), lr=args.lr)
    gen = torch.Generator(device=images.device).manual_seed(args.seed)
    steps = model.timesteps
    losses, seconds = [], 0.0
    model.train()
    for k in range(args.steps):
        idx = torch.randint(0, len(labels), (args.batch_size,), generator=gen,
                            device=images.device)
        synchronize(images.device)
        started = time.perf_counter()
        counts, _ = model(images[idx])
        loss = F.cross_entropy(counts * (LOGIT_SCALE / steps), labels[idx])
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        losses.append(loss.item())  # synchronises
        if k >= args.warmup:
            seconds += time.perf_counter() - started
        if (k + 1) % max(1, args.steps // 10) == 0 or k + 1 == args.steps:
            print(f"step {k + 1:4d}/{args.steps}  loss {loss.item():.3f}", flush=True)
    timed = max(1, args.steps - args.warmup)
    return losses, timed * args.batch_size / max(seconds, 1e-9)


def check_export(model: SpikingNet, images: torch.Tensor, out: Path) -> list[str]:
    """Checkpoint -> CPU model -> netx HDF5 -> reader; compare counts. Returns failures."""
    failures = []
    checkpoint = out / "checkpoint.pt"
    save_checkpoint(checkpoint, model, {"bench": "train_cuda"})
    cpu_model, _ = load_checkpoint(checkpoint)  # on the CPU, eval mode
    net = export_network(cpu_model, out / "cifar.net", {"bench": "train_cuda"})
    again = read_network(out / "cifar.net")
    if len(again.layers) != len(net.layers) or len(net.layers) != len(cpu_model.blocks) + 1:
        failures.append(f"exported file has {len(again.layers)} layers, expected "
                        f"{len(cpu_model.blocks) + 1}")
    print(f"exported {out / 'cifar.net'}: {len(again.layers)} layers "
          f"({', '.join(s.type for s in again.layers)}), read back on the CPU")
    model.eval()
    with torch.no_grad():
        on_device, _ = model(images)
        on_cpu, _ = cpu_model(images.cpu())
    same = torch.equal(on_device.cpu(), on_cpu)
    print(f"output counts, trained model on {images.device} vs checkpoint on cpu: "
          f"{'identical' if same else 'DIFFERENT'} ({len(images)} samples)")
    if not same:
        failures.append("device and CPU output counts differ")
    return failures


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", default="cuda")
    parser.add_argument("--model", default="cifar10", help="a 3x32x32 model of MODEL_CONFIGS")
    parser.add_argument("--steps", type=int, default=300)
    parser.add_argument("--warmup", type=int, default=None,
                        help="untimed first steps (default: a tenth, at most 20)")
    parser.add_argument("--batch-size", type=int, default=None,
                        help="default 64 on a GPU, 16 on the CPU (a smoke run)")
    parser.add_argument("--timesteps", type=int, default=4)
    parser.add_argument("--lr", type=float, default=1e-3)
    parser.add_argument("--rate", type=float, default=0.2,
                        help="initial thresholds: this fraction of each layer fires every step")
    parser.add_argument("--samples", type=int, default=4096, help="synthetic data set size")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", help="folder for the checkpoint and file (default: temporary)")
    args = parser.parse_args()
    if args.steps < 2:
        parser.error("--steps must be at least 2")
    args.warmup = min(20, args.steps // 10) if args.warmup is None else args.warmup
    device = torch.device(args.device)
    args.batch_size = args.batch_size or (16 if device.type == "cpu" else 64)
    if device.type == "cuda" and not torch.cuda.is_available():
        print("no CUDA device: torch.cuda.is_available() is False "
              f"(torch {torch.__version__}); for a CPU smoke run use --device cpu --steps 20")
        return 2
    if args.model not in MODEL_CONFIGS:
        parser.error(f"unknown model {args.model!r}; known: {', '.join(sorted(MODEL_CONFIGS))}")
    torch.manual_seed(args.seed)
    config = MODEL_CONFIGS[args.model](args.timesteps)
    if tuple(config.input_shape) != (3, 32, 32) or config.num_classes != CLASSES:
        parser.error(f"model {args.model!r} is not CIFAR-10-shaped (3x32x32, 10 classes)")
    model = build_model(config).to(device)
    images, labels = synthetic_cifar(args.samples, args.seed)
    images, labels = images.to(device), labels.to(device)
    thresholds = calibrate_thresholds(model, images[:256], args.rate)
    print("initial thresholds: " + ", ".join(f"{t:.3g}" for t in thresholds))
    name = torch.cuda.get_device_name(device) if device.type == "cuda" else "cpu"
    print(f"{args.model} (T={args.timesteps}) on {device} ({name}), torch {torch.__version__}, "
          f"batch {args.batch_size}, {args.steps} steps")
    losses, rate = train(model, images, labels, args)
    quarter = max(1, args.steps // 4)
    first, last = statistics.mean(losses[:quarter]), statistics.mean(losses[-quarter:])
    print(f"loss {first:.3f} (mean of the first {quarter} steps) -> {last:.3f} (last {quarter})")
    print(f"training: {rate:.1f} samples/s ({rate * args.timesteps:.1f} sample-steps/s) on {name}")
    failures = [] if last < first else [f"loss did not fall ({first:.3f} -> {last:.3f})"]
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(args.out) if args.out else Path(tmp)
        out.mkdir(parents=True, exist_ok=True)
        failures += check_export(model, images[:64], out)
    lava = sorted(m for m in sys.modules if m == "lava" or m.startswith("lava."))
    if lava:  # this path must run where Lava is not installed
        failures.append(f"Lava was imported ({lava[0]}, ...)")
    for failure in failures:
        print(f"FAILED: {failure}")
    if not failures:
        print("OK: the loss fell, the checkpoint exported and loaded on the CPU side")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
