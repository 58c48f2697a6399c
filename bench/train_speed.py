"""Training-step speed: STCB equivalent gradient against BPTT peers and the ANN twin.

Side by side in one run, on this machine's CPU, with the same thread count
for every variant: one training step (forward, loss, backward, optimizer
step; batch 64) of one digits-sized conv architecture (8x8x1 -> conv32 k3 p1
-> conv64 k3 s2 p1 -> flatten -> dense128 -> dense10, ``WIDTHS``; ours keeps
the rest of the digits recipe of ``training/models.py``) at each T, trained with

- ``stcb``: our spike-train level equivalent gradient (the real SpikingNet of
  ``training/models.py``, integer forward, backward through counts);
- ``snntorch``: BPTT with snnTorch ``Leaky`` (IF: beta=1, reset to zero,
  atan surrogate), the tutorials' per-step loop;
- ``spikingjelly``: BPTT with SpikingJelly ``IFNode`` in multi-step mode
  (``step_mode='m'``, torch backend, atan surrogate);
- ``slayer``: BPTT with lava-dl SLAYER ``block.cuba`` Conv/Dense (IF:
  current_decay=1, voltage_decay=0);
- ``ann``: the ANN twin (ReLU, one pass), the floor.

Every spiking variant sees the same input spike trains (our input layer as
the digits recipe of ``training/models.py`` sets it) and the same loss, cross-entropy of
``counts * logit_scale / T`` where ``counts`` are the output spike counts.
Our STCB net, snnTorch and SpikingJelly start from the same weights (same
seed, same layer order) and threshold. For each variant the script prints
the firing rate of every spiking layer after training (spikes per neuron per
step) and the loss on a fixed batch of 256 test images before and after the
warm-up and timed training steps (a warning names any variant with a silent
layer or a loss that did not fall); the median (and minimum) milliseconds
per step, timed round-robin across the variants after each one's warm-up, so
that all see the same machine load; the bytes saved for backward in one step (unique tensor
storages packed by autograd, parameters excluded, measured with
``torch.autograd.graph.saved_tensors_hooks``); and the ratios ours vs the
fastest BPTT peer and ours vs the ANN twin at each T.

The machine is shared: run it when the load is low (the script prints
``os.getloadavg()``) and compare ratios. Install the peers with
``make bench-deps``.

    .venv/bin/python bench/train_speed.py [--timesteps 4 8 16] [--steps 60] [--threads 1]
"""

from __future__ import annotations

import argparse
import os
import statistics
import time
from collections.abc import Callable
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from slssnn.training.heap import keep_heap
from slssnn.training.models import InputLayer, build_model, digits_config

BATCH = 64
LOGIT_SCALE = 10.0
EVAL_SIZE = 256
WIDTHS = (32, 64, 128, 10)
"""conv32 k3 p1 -> conv64 k3 s2 p1 -> flatten -> dense128 -> dense10, for every variant."""


def bench_config(steps: int):
    """The digits recipe of ``training/models.py`` (input layer, block options) at WIDTHS."""
    config = digits_config(steps)
    blocks = [spec for spec in config.layers if spec["type"] != "flatten"]
    kinds = [spec["type"] for spec in config.layers]
    if kinds != ["conv", "conv", "flatten", "dense", "dense"]:
        raise SystemExit(f"digits_config changed its layer types ({kinds}); update WIDTHS")
    for spec, width in zip(blocks, WIDTHS, strict=True):
        spec["out_channels" if spec["type"] == "conv" else "out_features"] = width
    return config


@dataclass
class Variant:
    """A model under test: ``forward(images, input_spikes) -> (logits, [layer spikes])``."""

    name: str
    model: nn.Module
    forward: Callable[[torch.Tensor, torch.Tensor], tuple[torch.Tensor, list[torch.Tensor]]]
    lr: float = 3e-3


# --- the variants ------------------------------------------------------------------------


def ours(steps: int, threshold: float) -> Variant:
    config = bench_config(steps)
    config.initial_threshold = threshold
    model = build_model(config)

    def forward(_images: torch.Tensor, spikes: torch.Tensor):
        # SpikingNet.forward after its input layer, on the input spikes every variant
        # gets (train_step times their encoding once for all)
        counts, trace = spikes.sum(0), []
        for block, flatten in zip(model.blocks, model.flatten_before, strict=True):
            if flatten:
                spikes, counts = spikes.flatten(2), counts.flatten(1)
            spikes, counts = block(spikes, counts)
            trace.append(spikes)
        return counts * (LOGIT_SCALE / steps), trace
    return Variant("stcb", model, forward)


def ann_twin() -> Variant:
    c1, c2, d1, out = WIDTHS
    model = nn.Sequential(
        nn.Conv2d(1, c1, 3, padding=1), nn.ReLU(),
        nn.Conv2d(c1, c2, 3, stride=2, padding=1), nn.ReLU(), nn.Flatten(),
        nn.Linear(c2 * 4 * 4, d1), nn.ReLU(), nn.Linear(d1, out))

    def forward(images: torch.Tensor, _spikes: torch.Tensor):
        return model(images / 16.0), []
    return Variant("ann", model, forward)


def synapses() -> list[nn.Module]:
    """The four synapses of the digits net, as in the ANN twin (no bias, as our STCBs)."""
    c1, c2, d1, out = WIDTHS
    return [nn.Conv2d(1, c1, 3, padding=1, bias=False),
            nn.Conv2d(c1, c2, 3, stride=2, padding=1, bias=False),
            nn.Linear(c2 * 4 * 4, d1, bias=False), nn.Linear(d1, out, bias=False)]


def snntorch_bptt(steps: int, threshold: float) -> Variant:
    import snntorch as snn
    from snntorch import surrogate

    conv1, conv2, fc1, fc2 = synapses()
    lifs = [snn.Leaky(beta=1.0, threshold=threshold, spike_grad=surrogate.atan(),
                      reset_mechanism="zero") for _ in range(4)]
    model = nn.ModuleList([conv1, conv2, fc1, fc2, *lifs])

    def forward(_images: torch.Tensor, spikes: torch.Tensor):
        mems = [lif.init_leaky() for lif in lifs]
        records: list[list[torch.Tensor]] = [[] for _ in lifs]
        for x in spikes:  # the tutorials' loop: one time step through every layer
            for k, synapse in enumerate((conv1, conv2, fc1, fc2)):
                x = synapse(x.flatten(1) if k == 2 else x)
                x, mems[k] = lifs[k](x, mems[k])
                records[k].append(x)
        trace = [torch.stack(r) for r in records]  # (T, B, ...)
        return trace[-1].sum(0) * (LOGIT_SCALE / steps), trace
    return Variant("snntorch", model, forward)


def spikingjelly_bptt(steps: int, threshold: float) -> Variant:
    from spikingjelly.activation_based import functional, layer, neuron, surrogate

    def if_node() -> nn.Module:
        return neuron.IFNode(v_threshold=threshold, v_reset=0.0,
                             surrogate_function=surrogate.ATan(), step_mode="m")
    c1, c2, d1, out = WIDTHS
    model = nn.Sequential(
        layer.Conv2d(1, c1, 3, padding=1, bias=False, step_mode="m"), if_node(),
        layer.Conv2d(c1, c2, 3, stride=2, padding=1, bias=False, step_mode="m"), if_node(),
        layer.Flatten(step_mode="m"),
        layer.Linear(c2 * 4 * 4, d1, bias=False, step_mode="m"), if_node(),
        layer.Linear(d1, out, bias=False, step_mode="m"), if_node())
    nodes = [m for m in model if isinstance(m, neuron.IFNode)]
    trace: list[torch.Tensor] = []
    for node in nodes:
        node.register_forward_hook(lambda _m, _i, out: trace.append(out))

    def forward(_images: torch.Tensor, spikes: torch.Tensor):
        functional.reset_net(model)
        trace.clear()
        out = model(spikes)  # (T, B, 10)
        return out.sum(0) * (LOGIT_SCALE / steps), list(trace)
    return Variant("spikingjelly", model, forward)


def slayer_bptt(steps: int, threshold: float) -> Variant:
    from lava.lib.dl.slayer.block import cuba

    params = {"threshold": threshold, "current_decay": 1.0, "voltage_decay": 0.0,
              "tau_grad": 1.0, "scale_grad": 1.0, "requires_grad": False}
    # delay_shift=False: no axonal delay of one step per block (our STCB windows
    # have none either; with it, the output of 4 blocks at T=4 would be empty)
    c1, c2, d1, out = WIDTHS
    blocks = [cuba.Conv(params, 1, c1, 3, padding=1, delay_shift=False),
              cuba.Conv(params, c1, c2, 3, stride=2, padding=1, delay_shift=False),
              cuba.Flatten(),
              cuba.Dense(params, c2 * 4 * 4, d1, delay_shift=False),
              cuba.Dense(params, d1, out, delay_shift=False)]
    model = nn.ModuleList(blocks)

    def forward(_images: torch.Tensor, spikes: torch.Tensor):
        x = spikes.permute(1, 2, 3, 4, 0)  # (B, C, H, W, T): SLAYER keeps time last
        trace = []
        for block in blocks:
            x = block(x)
            if not isinstance(block, cuba.Flatten):
                trace.append(x)
        return x.sum(-1) * (LOGIT_SCALE / steps), trace
    return Variant("slayer", model, forward, lr=1e-3)


# --- measurement ------------------------------------------------------------------------


def digits() -> tuple[tuple[torch.Tensor, torch.Tensor], tuple[torch.Tensor, torch.Tensor]]:
    """scikit-learn's 8x8 digits, pixels 0..16 ``(N, 1, 8, 8)``: (train, test), 20% test."""
    from sklearn.datasets import load_digits
    from sklearn.model_selection import train_test_split

    data = load_digits()
    images = torch.from_numpy(data.images.astype("float32")[:, None])
    labels = torch.from_numpy(data.target.astype("int64"))
    x_train, x_test, y_train, y_test = train_test_split(
        images, labels, test_size=0.2, random_state=0, stratify=labels)
    return (x_train, y_train), (x_test, y_test)


def batches(images: torch.Tensor, labels: torch.Tensor, seed: int):
    """Endless shuffled batches of BATCH images."""
    generator = torch.Generator().manual_seed(seed)
    while True:
        order = torch.randperm(len(labels), generator=generator)
        for start in range(0, len(order) - BATCH + 1, BATCH):
            idx = order[start:start + BATCH]
            yield images[idx], labels[idx]


def evaluate(variant: Variant, encode: InputLayer, steps: int, images: torch.Tensor,
             labels: torch.Tensor) -> tuple[float, float, list[float]]:
    """Loss, accuracy and per-layer firing rates (spikes/neuron/step) on a fixed batch."""
    with torch.no_grad():
        logits, trace = variant.forward(images, encode(images, steps))
        loss = float(F.cross_entropy(logits, labels))
        accuracy = float((logits.argmax(-1) == labels).float().mean())
    return loss, accuracy, [float(s.float().mean()) for s in trace]


def train_step(variant: Variant, encode: InputLayer, steps: int,
               optimizer: torch.optim.Optimizer, images: torch.Tensor,
               labels: torch.Tensor) -> torch.Tensor:
    """One training step: input encoding, forward, loss, backward, optimizer step."""
    with torch.no_grad():
        spikes = encode(images, steps)  # (T, B, 1, 8, 8)
    logits, _ = variant.forward(images, spikes)
    loss = F.cross_entropy(logits, labels)
    optimizer.zero_grad(set_to_none=True)
    loss.backward()
    optimizer.step()
    return loss


def saved_bytes(variant: Variant, encode: InputLayer, steps: int, images: torch.Tensor,
                labels: torch.Tensor) -> int:
    """Bytes of the distinct tensor storages autograd keeps for backward in one step."""
    params = {p.untyped_storage().data_ptr() for p in variant.model.parameters()}
    storages: dict[int, int] = {}

    def pack(t: torch.Tensor) -> torch.Tensor:
        storage = t.untyped_storage()
        if storage.data_ptr() not in params:
            storages[storage.data_ptr()] = storage.nbytes()
        return t

    with torch.no_grad():
        spikes = encode(images, steps)
    with torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t):
        logits, _ = variant.forward(images, spikes)
        loss = F.cross_entropy(logits, labels)
    loss.backward()
    variant.model.zero_grad(set_to_none=True)
    return sum(storages.values())


@dataclass
class Result:
    name: str
    steps: int
    ms: float
    ms_min: float
    saved: int
    loss_before: float
    loss_after: float
    accuracy_after: float
    rates_before: list[float]
    rates_after: list[float]


def measure_all(variants: list[Variant], steps: int, train, eval_batch, args) -> list[Result]:
    """Time the variants' training steps round-robin (the same machine load for each).

    Each variant gets the same batches in the same order and its own optimizer;
    after its warm-up steps the timed steps alternate between the variants.
    """
    encode = _encoder(steps)
    state = []
    for variant in variants:
        optimizer = torch.optim.AdamW(variant.model.parameters(), lr=variant.lr)
        data = batches(*train, args.seed)
        before = evaluate(variant, encode, steps, *eval_batch)
        saved = saved_bytes(variant, encode, steps, *next(data))
        for _ in range(args.warmup):
            train_step(variant, encode, steps, optimizer, *next(data))
        state.append((variant, optimizer, data, before, saved, []))
    for _ in range(args.steps):
        for variant, optimizer, data, _, _, times in state:
            images, labels = next(data)
            started = time.perf_counter()
            train_step(variant, encode, steps, optimizer, images, labels)
            times.append(time.perf_counter() - started)
    results = []
    for variant, _, _, before, saved, times in state:
        loss_after, accuracy, rates_after = evaluate(variant, encode, steps, *eval_batch)
        results.append(Result(variant.name, steps, 1e3 * statistics.median(times),
                              1e3 * min(times), saved, before[0], loss_after, accuracy,
                              before[2], rates_after))
    return results


def _encoder(steps: int) -> InputLayer:
    """Our input layer (pixel 0..16 as current, as the digits recipe sets it)."""
    return build_model(bench_config(steps)).input_layer


FACTORIES = {
    "stcb": lambda steps, args: ours(steps, args.stcb_threshold),
    "snntorch": lambda steps, args: snntorch_bptt(steps, args.bptt_threshold),
    "spikingjelly": lambda steps, args: spikingjelly_bptt(steps, args.bptt_threshold),
    "slayer": lambda steps, args: slayer_bptt(steps, args.slayer_threshold),
    "ann": lambda steps, args: ann_twin(),
}
BPTT = ("snntorch", "spikingjelly", "slayer")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--timesteps", type=int, nargs="+", default=[4, 8, 16])
    parser.add_argument("--variants", nargs="+", default=list(FACTORIES),
                        choices=list(FACTORIES))
    parser.add_argument("--steps", type=int, default=60, help="timed training steps")
    parser.add_argument("--warmup", type=int, default=10, help="untimed steps first")
    parser.add_argument("--threads", type=int, default=1, help="torch threads, all variants")
    parser.add_argument("--stcb-threshold", type=float, default=0.5)
    parser.add_argument("--bptt-threshold", type=float, default=0.5)
    parser.add_argument("--slayer-threshold", type=float, default=0.5)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--default-malloc", action="store_true",
                        help="leave glibc's malloc trimming on (training/heap.py)")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    allocator = "default allocator" if args.default_malloc else keep_heap()
    train, test = digits()
    eval_batch = (test[0][:EVAL_SIZE], test[1][:EVAL_SIZE])
    print(f"torch {torch.__version__}, {torch.get_num_threads()} thread(s), batch {BATCH}, "
          f"{args.warmup} warm-up + {args.steps} timed steps, {allocator}, "
          f"load average {os.getloadavg()[0]:.2f}")
    results: list[Result] = []
    for steps in args.timesteps:
        variants = []
        for name in args.variants:
            torch.manual_seed(args.seed)  # the same initial weights where the shapes agree
            variants.append(FACTORIES[name](steps, args))
        for result in measure_all(variants, steps, train, eval_batch, args):
            results.append(result)
            rates = " ".join(f"{a:.3f}" for a in result.rates_after) or "-"
            print(f"T={steps:<3d} {result.name:13s} {result.ms:8.2f} ms/step (min "
                  f"{result.ms_min:6.2f})  saved {result.saved / 2**20:6.2f} MiB  "
                  f"loss {result.loss_before:.3f} -> {result.loss_after:.3f} "
                  f"(acc {result.accuracy_after:.2f})  rates {rates}", flush=True)
    report(results, args.timesteps)
    print(f"load average at the end {os.getloadavg()[0]:.2f}")


def report(results: list[Result], timesteps: list[int]) -> None:
    """Ratios per T, and warnings for variants that do not spike or do not learn."""
    print()
    for r in results:
        if r.name != "ann" and min(r.rates_after, default=0.0) <= 0.0:
            print(f"WARNING: {r.name} at T={r.steps} has a silent layer after training: "
                  f"{r.rates_after}")
        if r.loss_after >= r.loss_before:
            print(f"WARNING: {r.name} at T={r.steps} did not learn "
                  f"({r.loss_before:.3f} -> {r.loss_after:.3f})")
    for steps in timesteps:
        at = {r.name: r for r in results if r.steps == steps}
        if "stcb" not in at:
            continue
        line = f"T={steps:<3d} stcb {at['stcb'].ms:.2f} ms"
        peers = [at[n] for n in BPTT if n in at]
        if peers:
            best = min(peers, key=lambda r: r.ms)
            speedup = best.ms / at["stcb"].ms
            line += (f"; fastest BPTT {best.name} {best.ms:.2f} ms: {speedup:.1f}x faster"
                     " (goal >= 3x)")
        ann = at.get("ann")
        if ann is not None:
            line += f"; {at['stcb'].ms / ann.ms:.1f}x the ANN twin's {ann.ms:.2f} ms (goal <= 3x)"
        print(line)


if __name__ == "__main__":
    main()
