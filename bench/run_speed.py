"""Speed of the engines on the same network, measured side by side in one run.

1. The digits test split (360 samples) through Lava's CPU simulator (one run,
   compiled once, as in the pipeline) and through the bit-exact emulator:
   samples/s of each, their ratio, the emulator's synaptic operations/s, and
   a check that both produced identical records; then one test image through
   ``simulate(..., backend="lava")`` (one build and run, as for PilotNet SDNN
   below) against the emulator's time per sample in the batched split.
2. The emulator against the PyTorch evaluation of the same network (same
   arithmetic; the emulator should cost at most about 2x).
3. lava-dl's own PilotNet SDNN (installed with lava-dl; sigma-delta, graded
   messages): lava-dl's test input held for 9 steps, one sample in Lava
   (what `simulate(..., backend="lava")` costs per sample: one build and run)
   against a batch of --sdnn-batch samples in the emulator, per sample; both
   records checked identical.
4. A PilotNet-sized LIF network (200x66x3 input, five conv and four dense
   layers, random weights) for 15 steps in the emulator; with --pilotnet-lava
   also in Lava (lava-dl's PilotNet LIF took 83.5 s for 15 steps here).
5. Lava steps/s before and after the counted run (issue 12), side by side on the
   same samples: "before" reads every spike of every layer back from
   RingBuffer sinks and runs Lava's own scipy conv (``run_lava``, then the
   record from the rasters); "after" counts inside the run and runs the exact
   one-product conv (``run_network``, ``run_lava_counts``). On digits
   (--digits-samples test images, default 60: "before" on the whole split took
   over 20 minutes on the loaded machine) and on mnist (the zoo's 28x28
   network, --mnist-samples test images, default 10: "before" costs about a
   second per step there);
   both records must be identical to the emulator's.

This machine is shared and noisy: compare the ratios, not absolute figures.

    .venv/bin/python bench/run_speed.py [--checkpoint runs/demo/checkpoint.pt] [--pilotnet-lava]
        [--mnist-checkpoint runs/mnist/checkpoint.pt] [--digits-samples 60] [--mnist-samples 10]
        [--only-lava]
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

from slssnn.export.netx_reader import read_network
from slssnn.export.netx_writer import export_network
from slssnn.lava_runtime.lava_runner import run_lava
from slssnn.lava_runtime.run import _network_inputs, make_record, pytorch_record, run_network
from slssnn.lava_runtime.simulate import simulate
from slssnn.training.checkpoint import load_checkpoint
from slssnn.training.models import MODEL_CONFIGS, ModelConfig, build_model, digits_config


def timed(fn):
    started = time.perf_counter()
    result = fn()
    return result, time.perf_counter() - started


def digits_model(checkpoint: str | None):
    if checkpoint:
        return load_checkpoint(checkpoint)[0]
    torch.manual_seed(0)
    config = digits_config(4)
    config.initial_threshold = 0.25
    return build_model(config).eval()


def mnist_model(checkpoint: str | None):
    if checkpoint:
        return load_checkpoint(checkpoint)[0]
    torch.manual_seed(0)
    config = MODEL_CONFIGS["mnist"](4)
    config.initial_threshold = 0.25  # random weights that spike in every layer
    return build_model(config).eval()


def lava_before_after(net_path: Path, dataset: str, limit: int | None) -> None:
    """Lava steps/s: every spike read back + scipy conv (before) vs counted (after)."""
    net = read_network(net_path)
    split, currents, timesteps = _network_inputs(net, dataset, limit)
    n = len(split.labels)
    steps = n * timesteps + len(net.layers) - 1
    emu = run_network(net_path, dataset, "emulator", limit=limit)

    def before() -> dict:
        spikes = run_lava(net_path, currents, timesteps)
        return make_record("lava", net, dataset, split, spikes, 0.0)

    old, old_s = timed(before)
    new, new_s = timed(lambda: run_network(net_path, dataset, "lava", limit=limit))
    same = all(old[k] == new[k] == emu[k] for k in ("predictions", "layers"))
    print(f"Lava on {dataset}: {n} samples, T={timesteps}, {steps} steps (incl. compile); "
          f"records identical to the emulator's: {same}")
    print(f"  before (sinks, scipy conv) {old_s:8.1f} s {steps / old_s:8.2f} steps/s")
    print(f"  after  (counted, exact conv) {new_s:6.1f} s {steps / new_s:8.2f} steps/s")
    print(f"  ratio after / before speed: {old_s / new_s:8.1f}x")


def _one_sample(net_path: Path) -> np.ndarray:
    """The first digits test image as ``simulate`` takes it: its currents held for T steps,
    then zeros until the output block has seen the whole window (Lava order, time last)."""
    net = read_network(net_path)
    _, currents, timesteps = _network_inputs(net, "digits", 1)
    image = np.transpose(np.asarray(currents[0]), (2, 1, 0))  # (C, H, W) -> (W, H, C)
    steps = timesteps + len(net.layers) - 1
    held = np.zeros(image.shape + (steps,), dtype=np.int64)
    held[..., :timesteps] = image[..., None]
    return held


def pilotnet_model() -> torch.nn.Module:
    conv = [(24, 2), (36, 2), (64, 2), (64, 1), (64, 2)]
    layers = [{"type": "conv", "out_channels": c, "kernel": 3, "stride": s, "padding": 0}
              for c, s in conv]
    layers += [{"type": "flatten"}] + [{"type": "dense", "out_features": n}
                                       for n in (100, 50, 10, 1)]
    torch.manual_seed(0)
    config = ModelConfig(name="pilotnet-like", input_shape=(3, 66, 200), num_classes=1,
                         timesteps=15, layers=layers, input_threshold=100,
                         initial_threshold=0.3)
    return build_model(config).eval()


def sdnn(batch: int) -> None:
    """lava-dl's PilotNet SDNN: Lava per sample against the batched emulator per sample."""
    from importlib import metadata

    root = Path(str(metadata.distribution("lava-dl").locate_file(
        "tests/lava/lib/dl/netx/gts/pilotnet_sdnn")))
    net, steps = root / "network.net", 9
    held = np.repeat(np.load(root / "input.npy"), steps, axis=-1)  # (x, y, c, steps)
    rng = np.random.default_rng(0)
    many = np.stack([held] + [np.clip(held + rng.integers(-8, 9, held.shape), -128, 127)
                              for _ in range(batch - 1)])
    simulate(net, steps=steps, spikes=many[:2])  # warm-up
    emu, emu_s = timed(lambda: simulate(net, steps=steps, spikes=many))
    lava, lava_s = timed(lambda: simulate(net, steps=steps, spikes=held, backend="lava"))
    same = all(np.array_equal(a.spikes[0], b.spikes)
               for a, b in zip(emu.layers, lava.layers, strict=True))
    per_sample = emu_s / batch
    print(f"PilotNet SDNN (lava-dl), {steps} steps: Lava {lava_s:.1f} s for one sample, "
          f"emulator {emu_s:.2f} s for {batch} ({per_sample * 1e3:.1f} ms/sample); "
          f"first sample identical at every layer: {same}")
    print(f"  ratio emulator / lava per sample: {lava_s / per_sample:8.0f}x  (goal >= 1000x)")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--checkpoint", help="digits checkpoint (default: random weights)")
    parser.add_argument("--sdnn-batch", type=int, default=64,
                        help="PilotNet SDNN samples per emulator batch (default 64)")
    parser.add_argument("--pilotnet-lava", action="store_true",
                        help="also run the PilotNet-sized network in Lava (minutes)")
    parser.add_argument("--mnist-checkpoint", help="mnist checkpoint (default: random weights)")
    parser.add_argument("--digits-samples", type=int, default=60,
                        help="digits test images for the Lava before/after (default 60)")
    parser.add_argument("--mnist-samples", type=int, default=10,
                        help="mnist test images for the Lava before/after (default 10)")
    parser.add_argument("--only-lava", action="store_true",
                        help="only the Lava before/after comparison (part 4)")
    args = parser.parse_args()
    model = digits_model(args.checkpoint)
    with tempfile.TemporaryDirectory() as tmp:
        net = Path(tmp) / "digits.net"
        export_network(model, net)
        mnist_net = Path(tmp) / "mnist.net"
        export_network(mnist_model(args.mnist_checkpoint), mnist_net)
        lava_before_after(net, "digits", args.digits_samples)
        lava_before_after(mnist_net, "mnist", args.mnist_samples)
        if args.only_lava:
            return
        for _ in range(2):  # warm-up: the first torch calls of a process pay one-off costs
            run_network(net, "digits", "emulator", limit=16)
            pytorch_record(model, net, "digits", limit=16)
        emu, emu_s = timed(lambda: run_network(net, "digits", "emulator"))
        torch_run, torch_s = timed(lambda: pytorch_record(model, net, "digits"))
        lava, lava_s = timed(lambda: run_network(net, "digits", "lava"))
        n = lava["samples"]
        same = all(lava[k] == emu[k] == torch_run[k] for k in ("predictions", "layers"))
        synops = sum(layer["synops"] for layer in emu["layers"])
        print(f"digits test split: {n} samples, T={lava['timesteps']}; "
              f"Lava, emulator and PyTorch records identical: {same}")
        print(f"  lava (incl. compile) {lava_s:8.2f} s {n / lava_s:10.1f} samples/s")
        print(f"  emulator             {emu_s:8.3f} s {n / emu_s:10.1f} samples/s "
              f"{synops / emu_s:.3e} synops/s")
        print(f"  pytorch evaluation   {torch_s:8.3f} s {n / torch_s:10.1f} samples/s")
        print(f"  ratio emulator / lava speed:    {lava_s / emu_s:8.1f}x  (one Lava run of the "
              "split)")
        one = _one_sample(net)
        one_s = timed(lambda: simulate(net, steps=one.shape[-1], spikes=one,
                                       backend="lava"))[1]
        print(f"  one sample in Lava (simulate: one build and run, {one.shape[-1]} steps) "
              f"{one_s:.2f} s; ratio emulator / lava per sample: {one_s / (emu_s / n):8.0f}x  "
              "(goal >= 1000x)")
        print(f"  ratio emulator / pytorch time:  {emu_s / torch_s:8.2f}x  (goal <= 2x)")
        sdnn(args.sdnn_batch)

        pilot = pilotnet_model()
        pilot_net = Path(tmp) / "pilotnet.net"
        export_network(pilot, pilot_net)
        rng = np.random.default_rng(0)
        currents = rng.integers(0, 256, size=(200, 66, 3, 15))  # Lava order (W, H, C, steps)
        simulate(pilot_net, steps=15, spikes=currents, backend="emulator")  # warm-up
        result, pilot_s = timed(lambda: simulate(pilot_net, steps=15, spikes=currents,
                                                 backend="emulator"))
        spikes = [int(layer.spikes.sum()) for layer in result.layers]
        print(f"PilotNet-sized LIF network, 15 steps: emulator {pilot_s:.3f} s "
              f"(spikes per layer {spikes})")
        if args.pilotnet_lava:
            lava_result, lava_pilot_s = timed(lambda: simulate(pilot_net, steps=15,
                                                               spikes=currents, backend="lava"))
            same = all(np.array_equal(a.spikes, b.spikes)
                       for a, b in zip(result.layers, lava_result.layers, strict=True))
            print(f"  lava {lava_pilot_s:.1f} s, identical spikes: {same}, "
                  f"ratio {lava_pilot_s / pilot_s:.0f}x")


if __name__ == "__main__":
    main()
