"""Measured GPU (and CPU) energy per inference beside the Loihi estimates, in one short run.

For two networks it writes the full energy report (energy.json, energy.md, energy.png):

1. ``digits``: the digits STCB network, trained here (about 20 s; or ``--checkpoint``),
   exported, run through the bit-exact emulator on the 360 test images (its counts
   cross-checked against the PyTorch evaluation: they must be identical);
2. ``cifar-shaped``: a CIFAR-10-shaped network (3x32x32 input, four conv and two dense
   layers, random weights with thresholds calibrated to about 15% firing) on 64 synthetic
   images; its counts come from the emulator.

Each network is measured as the SNN (T=4 float steps) and as its ANN twin, at batch sizes
1 and 256, with NVML's total-energy counter (GPU) and RAPL (CPU, where readable); every
row starts with an idle-power window. Then a direct check: NVML read before and after a
fixed number of batches, without our windowing, for one configuration. Lava is not needed
(nor imported: the script checks). The whole run stays under ``--budget`` seconds
(default 180): measurements that would not fit are reported as skipped, never guessed.

    python bench/gpu_energy.py [--out DIR] [--checkpoint digits.pt] [--window 2]
                               [--repeats 3] [--batch-sizes 1,256] [--no-cpu]

Needs torch (CUDA build for the GPU side), numpy, h5py, scikit-learn, matplotlib, tqdm and
nvidia-ml-py; slssnn installed (``pip install --no-deps -e .``) or run from its checkout.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import sys
import time
from pathlib import Path
from types import SimpleNamespace

ROOT = Path(__file__).resolve().parents[1]
STAGES = ("training", "export", "lava_runtime", "energy")


def _bootstrap() -> None:
    """Make ``slssnn.*`` importable from this checkout when slssnn is not installed."""
    if importlib.util.find_spec("slssnn") is not None:
        try:
            import slssnn.energy  # noqa: F401
            return
        except ModuleNotFoundError:
            pass

    def load(name: str, folder: Path):
        spec = importlib.util.spec_from_file_location(
            name, folder / "__init__.py", submodule_search_locations=[str(folder)])
        module = importlib.util.module_from_spec(spec)
        sys.modules[name] = module
        spec.loader.exec_module(module)
        return module

    package = load("slssnn", ROOT / "slssnn")
    for stage in STAGES:
        setattr(package, stage, load(f"slssnn.{stage}", ROOT / stage))


def cifar_shaped_model(timesteps: int, images):
    """3x32x32 -> conv64 -> conv128/2 -> conv256/2 -> conv256/2 -> dense512 -> dense10,
    random weights, each block's threshold set so that about 15% of its drives exceed it."""
    import torch

    from slssnn.training.models import ModelConfig, build_model

    convs = [(64, 1), (128, 2), (256, 2), (256, 2)]
    layers = [{"type": "conv", "out_channels": c, "kernel": 3, "stride": s, "padding": 1}
              for c, s in convs]
    layers += [{"type": "flatten"}, {"type": "dense", "out_features": 512},
               {"type": "dense", "out_features": 10}]
    torch.manual_seed(0)
    config = ModelConfig(name="cifar-shaped", input_shape=(3, 32, 32), num_classes=10,
                         timesteps=timesteps, layers=layers, input_scale=16.0,
                         input_threshold=8)
    model = build_model(config).eval()
    g = torch.Generator().manual_seed(0)
    with torch.no_grad():
        for i, block in enumerate(model.blocks):
            _, trace = model(images)
            spikes = trace[i]  # (T, B, *in)
            if model.flatten_before[i]:
                spikes = spikes.flatten(2)
            drive = block.synapse(spikes.flatten(0, 1)).flatten()
            sample = drive[torch.randint(drive.numel(), (min(drive.numel(), 1 << 20),),
                                         generator=g)]
            block.threshold.fill_(max(float(torch.quantile(sample, 0.85)), 1e-3))
    return model


def synthetic_record(net_path: Path, images, timesteps: int, device: str) -> dict:
    """An emulator run record of ``images`` (synthetic: labels 0, accuracy meaningless)."""
    import torch

    from slssnn.export.netx_reader import read_network
    from slssnn.lava_runtime.emulator import run_windows
    from slssnn.lava_runtime.run import make_record
    from slssnn.training.models import input_currents

    net = read_network(net_path)
    currents = input_currents(images, net.metadata["input_encoding"]["scale"]).numpy()
    started = time.perf_counter()
    spikes = run_windows(net, currents, timesteps, device=device)
    split = SimpleNamespace(labels=torch.zeros(len(images), dtype=torch.int64))
    record = make_record("emulator", net, "synthetic-cifar10-shaped", split, spikes,
                         time.perf_counter() - started)
    return record


def digits_network(out: Path, checkpoint: str | None, epochs: int, device: str):
    """Train (or load) the digits network; export; emulator and PyTorch records."""
    from slssnn.atomic import write_json
    from slssnn.export.netx_writer import export_network
    from slssnn.lava_runtime.run import pytorch_record, run_network
    from slssnn.training.checkpoint import load_checkpoint

    if checkpoint is None:
        from slssnn.training.trainer import TrainConfig, train

        started = time.perf_counter()
        train(TrainConfig(dataset="digits", timesteps=4, epochs=epochs, seed=0,
                          out_dir=str(out)))
        checkpoint = str(out / "checkpoint.pt")
        print(f"digits: trained {epochs} epochs in {time.perf_counter() - started:.1f} s")
    model, _ = load_checkpoint(checkpoint)
    export_network(model, out / "network.net", {"checkpoint": str(checkpoint)})
    emulator = run_network(out / "network.net", "digits", "emulator")
    write_json(out / "run-emulator.json", emulator)
    write_json(out / "run-pytorch.json", pytorch_record(model, out / "network.net", "digits"))
    print(f"digits: emulator accuracy {emulator['accuracy']:.4f} on {emulator['samples']} "
          f"test images ({device} emulator)")
    return model, [out / "run-emulator.json", out / "run-pytorch.json"]


def cifar_network(out: Path, device: str):
    import torch

    from slssnn.atomic import write_json
    from slssnn.export.netx_writer import export_network

    images = torch.rand((64, 3, 32, 32), generator=torch.Generator().manual_seed(1))
    model = cifar_shaped_model(4, images[:32])
    export_network(model, out / "network.net", {"note": "random weights, calibrated"})
    write_json(out / "run-emulator.json", synthetic_record(out / "network.net", images, 4,
                                                           device))
    return model, images, [out / "run-emulator.json"]


class Budget:
    """Seconds left of the bench's time budget; what a measurement will cost."""

    def __init__(self, started: float, seconds: float, settings, batch_sizes) -> None:
        self.end = started + seconds
        self.seconds = seconds
        per_row = settings.idle_s + settings.warmup_s + settings.repeats * (settings.window_s
                                                                            + 0.3) + 0.5
        self.per_model = 2 * len(batch_sizes) * per_row  # SNN and ANN twin

    def fits(self, models: int = 1) -> bool:
        return time.monotonic() + models * self.per_model < self.end


def measure(model, images, inputs, args, settings, budget, engine: str) -> dict:
    from slssnn.energy.measured import measure_model, not_measured

    if not budget.fits():
        return not_measured(f"skipped: the bench's time budget of {budget.seconds:g} s "
                            "was spent")
    sections = measure_model(model, images, args.batch_sizes, settings, engines=(engine,),
                             inputs=inputs, log=lambda line: print(f"  {line}", flush=True))
    return sections[engine]


def direct_nvml_check(model, images, batch_size: int, seconds: float = 3.0) -> None:
    """Read NVML directly around a fixed number of batches (no refresh alignment)."""
    import torch

    from slssnn.energy.gpu import open_gpu
    from slssnn.energy.workload import SnnFloat

    gpu, reason = open_gpu(torch.cuda.current_device() if torch.cuda.is_available() else 0)
    if gpu is None:
        print(f"direct NVML check: not run ({reason})")
        return
    snn = SnnFloat(model).to("cuda")
    x = images[torch.arange(batch_size) % len(images)].cuda()

    def one():
        with torch.inference_mode():
            snn(x)
        torch.cuda.synchronize()

    for _ in range(10):
        one()
    started = time.perf_counter()
    one()
    per_batch = max(time.perf_counter() - started, 1e-4)
    batches = max(int(seconds / per_batch), 1)
    time.sleep(0.2)
    e0, t0 = gpu.energy_j(), time.perf_counter()
    for _ in range(batches):
        one()
    time.sleep(0.2)  # let the counter catch up; idle energy of 0.2 s included
    e1, t1 = gpu.energy_j(), time.perf_counter()
    gpu.close()
    print(f"direct NVML check (digits SNN b={batch_size}): {batches} batches, "
          f"{(e1 - e0) / (batches * batch_size):.3e} J/inference over {t1 - t0:.2f} s "
          f"(includes 0.2 s idle tail; compare with the windowed median above)")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", default="runs/gpu-energy", help="output folder")
    parser.add_argument("--checkpoint", default=None, help="digits checkpoint (else train)")
    parser.add_argument("--epochs", type=int, default=30, help="digits training epochs")
    parser.add_argument("--window", type=float, default=2.0, help="seconds per window")
    parser.add_argument("--repeats", type=int, default=3, help="windows per row")
    parser.add_argument("--batch-sizes", default="1,256", help="comma-separated")
    parser.add_argument("--no-cpu", action="store_true", help="skip the RAPL CPU side")
    parser.add_argument("--budget", type=float, default=180.0, help="seconds for it all")
    args = parser.parse_args()
    args.batch_sizes = tuple(int(b) for b in args.batch_sizes.split(","))
    started = time.monotonic()

    _bootstrap()
    import torch

    from slssnn.energy import format_summary, write_report
    from slssnn.energy.measure import MeasureSettings

    settings = MeasureSettings(window_s=args.window, repeats=args.repeats, warmup_s=0.5,
                               idle_s=1.0)
    device = "cuda" if torch.cuda.is_available() else "cpu"
    print(f"torch {torch.__version__}, CUDA {torch.version.cuda}, device {device}"
          + (f" ({torch.cuda.get_device_name()})" if device == "cuda" else ""))
    out = Path(args.out)
    (out / "digits").mkdir(parents=True, exist_ok=True)
    (out / "cifar-shaped").mkdir(parents=True, exist_ok=True)

    digits, digits_runs = digits_network(out / "digits", args.checkpoint, args.epochs, device)
    cifar, cifar_images, cifar_runs = cifar_network(out / "cifar-shaped", device)
    from slssnn.training.datasets import load_dataset

    digits_images = load_dataset("digits").test.images
    budget = Budget(started, args.budget, settings, args.batch_sizes)
    plan = [("digits", digits, digits_images, "digits test split images", digits_runs),
            ("cifar-shaped", cifar, cifar_images,
             "synthetic uniform [0, 1) 3x32x32 images, seed 1", cifar_runs)]
    measured = {name: {} for name, *_ in plan}
    engines = ("gpu",) if args.no_cpu else ("gpu", "cpu")
    for engine in engines:  # all GPU rows first: the CPU side is what the budget trims
        for name, model, images, inputs, _ in plan:
            print(f"{name}: measuring on {engine.upper()}", flush=True)
            measured[name][engine] = measure(model, images, inputs, args, settings, budget,
                                             engine)
    if "cpu" not in engines:
        for name in measured:
            measured[name]["cpu"] = {"measured": False, "reason": "skipped (--no-cpu)"}

    summary = {}
    for name, _, _, _, runs in plan:
        result = write_report(runs[0], out / name, measured=measured[name], also_runs=runs[1:])
        print()
        print(format_summary(result))
        summary[name] = result
    if measured["digits"]["gpu"]["measured"]:
        direct_nvml_check(digits, digits_images, max(args.batch_sizes))
    (out / "bench-summary.json").write_text(json.dumps(summary, indent=2) + "\n")
    lava = sorted(m for m in sys.modules if m == "lava" or m.startswith("lava."))
    print(f"lava modules imported: {lava or 'none'}; total {time.monotonic() - started:.1f} s")
    return 1 if lava else 0


if __name__ == "__main__":
    sys.exit(main())
