"""How close is an STCB's equivalent gradient to the true spike-count function?

For a neuron with many random presynaptic spike trains, the script draws
random inputs of a given aggregate input ``A = sum_t a[t] + T * bias``
(integer, in ``a_in`` units), runs the real fixed-point neuron
(:func:`slssnn.training.neuron.run_cuba`, bit-accurate Lava CUBA) on them,
and compares the measured spike count with two linearisations of the count:

- ``clamp``: ``clamp(A / theta, 0, T)``, the equivalent gradient's function
  (``training/stcb.py``);
- ``leaky``: ``T * r(A / T)``, the steady-state count of a leaky neuron under
  constant drive (``training/stcb.py: leaky_rate``), which is ``clamp`` when
  ``vDecay = 0``;
- ``residue``: ``clamp(A / (theta + |A / T| / 2), 0, T)``, a reset-residue
  heuristic for comparison only (not used in training): each spike throws
  away about half a step's input above the threshold.

It writes ``docs/equivalent_gradient.png`` (expected count vs ``A / theta``
for an IF and a leaky neuron at T = 4 and 16, with the linearisations)
and prints the mean absolute deviation, in spikes per window, of each
linearisation from the true count, over all drawn samples::

    .venv/bin/python docs/plot_equivalent_gradient.py [--samples N] [--out PNG]
        [--checkpoint runs/demo/checkpoint.pt]

``--checkpoint`` also measures every block of a trained network on the first
360 test samples of its dataset: the same deviation, from real spike trains.
"""

from __future__ import annotations

import argparse
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from slssnn.training.fixed_point import WEIGHT_MAX, WEIGHT_STEP
from slssnn.training.neuron import CubaParams, run_cuba
from slssnn.training.stcb import leaky_rate

THRESHOLD = 500
"""vThMant of the measured neuron (a_in units; two full-scale weights cross it)."""
INPUTS = 32
"""Presynaptic neurons per sample."""


@dataclass
class Measurement:
    """Samples of one neuron setting: aggregate input, true count, both linearisations.

    All arrays have shape ``(samples,)``; ``x = A / theta`` (spikes), ``count``
    the true spike count of the window, ``clamp``, ``leaky`` and ``residue``
    the linearisations at the same ``A``.
    """

    timesteps: int
    i_decay: int
    v_decay: int
    x: np.ndarray
    count: np.ndarray
    clamp: np.ndarray
    leaky: np.ndarray
    residue: np.ndarray
    spread: float
    """Mean over samples of the standard deviation of ``a[t]`` over the window, over theta."""

    def mad(self, which: str) -> float:
        """Mean absolute deviation (spikes per window) of a linearisation from the true count."""
        return float(np.mean(np.abs(getattr(self, which) - self.count)))

    def binned(self, bins: int = 48) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Bin centres of ``x`` and the mean and standard deviation of the count in each bin."""
        edges = np.linspace(self.x.min(), self.x.max(), bins + 1)
        which = np.clip(np.digitize(self.x, edges) - 1, 0, bins - 1)
        centre, mean, std = [], [], []
        for b in range(bins):
            sel = which == b
            if sel.sum() >= 5:
                centre.append(0.5 * (edges[b] + edges[b + 1]))
                mean.append(self.count[sel].mean())
                std.append(self.count[sel].std())
        return np.array(centre), np.array(mean), np.array(std)


def measure(timesteps: int, i_decay: int = 4096, v_decay: int = 0, samples: int = 20000,
            seed: int = 0, threshold: int = THRESHOLD) -> Measurement:
    """Run ``samples`` random neurons through ``run_cuba`` and record counts vs ``A``.

    Each sample has ``INPUTS`` presynaptic Bernoulli spike trains (rates
    uniform in [0, 1]) and even integer weights in [-254, 254] whose mean is
    set so that the expected ``A / theta`` is uniform over ``[-T/2, 3T/2]``;
    ``A`` itself is computed exactly from the drawn spikes. Half of the
    samples also get a random neuron bias (bias mantissa, ``|b| < theta/4``).
    """
    g = torch.Generator().manual_seed(seed)
    rates = torch.rand(samples, INPUTS, generator=g)
    spikes = (torch.rand(timesteps, samples, INPUTS, generator=g) < rates).to(torch.int64)
    target = (torch.rand(samples, generator=g) * 2 - 0.5) * threshold  # mean drive per step
    bias = torch.where(torch.rand(samples, generator=g) < 0.5,
                       torch.round((torch.rand(samples, generator=g) - 0.5) * threshold / 2),
                       torch.zeros(samples)).to(torch.int64)
    spread = torch.randn(samples, INPUTS, generator=g) * threshold / 4
    offset = ((target - bias - (rates * spread).sum(1)) / rates.sum(1).clamp_min(1e-3))
    weight = (spread + offset[:, None]).clamp(-WEIGHT_MAX, WEIGHT_MAX)
    weight = (torch.round(weight / WEIGHT_STEP) * WEIGHT_STEP).to(torch.int64)
    a_in = (spikes * weight).sum(-1)  # (T, samples)
    params = CubaParams(i_decay, v_decay, threshold, bias)
    count = run_cuba(a_in, params).sum(0).double()
    aggregate = a_in.sum(0).double() + timesteps * bias.double()
    x = aggregate / threshold
    clamp = x.clamp(0, timesteps)
    leaky = timesteps * leaky_rate(aggregate / timesteps, float(threshold), v_decay)
    residue = residue_count(x.numpy(), timesteps)
    spread = float(a_in.double().std(0, unbiased=False).mean() / threshold)
    return Measurement(timesteps, i_decay, v_decay, x.numpy(), count.numpy(),
                       clamp.numpy(), leaky.clamp(0, timesteps).numpy(), residue, spread)


def residue_count(x: np.ndarray, timesteps: int) -> np.ndarray:
    """``clamp(A / (theta + |A/T| / 2), 0, T)`` for ``x = A / theta`` (reset-residue heuristic)."""
    return np.clip(x / (1 + np.abs(x / timesteps) / 2), 0, timesteps)


def constant_drive_count(x: np.ndarray, timesteps: int, v_decay: int,
                         threshold: int = THRESHOLD) -> np.ndarray:
    """True count under a constant drive ``round(x * theta / T)`` per step (the staircase)."""
    drive = torch.round(torch.from_numpy(x) * threshold / timesteps).to(torch.int64)
    a_in = drive.expand(timesteps, -1)
    return run_cuba(a_in, CubaParams(4096, v_decay, threshold)).sum(0).numpy()


SETTINGS = (("IF", 0), ("leaky, vDecay = 512", 512))
STEPS = (4, 16)


def plot(measurements: dict[tuple[int, int], Measurement], out: Path) -> None:
    """Write the figure: rows IF / leaky, columns T."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(len(SETTINGS), len(STEPS), figsize=(10, 8), squeeze=False)
    for row, (label, v_decay) in enumerate(SETTINGS):
        for col, steps in enumerate(STEPS):
            m = measurements[(v_decay, steps)]
            ax = axes[row][col]
            centre, mean, std = m.binned()
            ax.fill_between(centre, mean - std, mean + std, color="tab:blue", alpha=0.2,
                            label="true count, ±1 std")
            ax.plot(centre, mean, color="tab:blue", lw=2, label="expected count (run_cuba)")
            grid = np.linspace(m.x.min(), m.x.max(), 400)
            ax.plot(grid, constant_drive_count(grid, steps, v_decay), color="grey", lw=1,
                    label="constant drive (staircase)")
            ax.plot(grid, np.clip(grid, 0, steps), "k--", lw=1.5,
                    label=f"clamp(A/θ, 0, T)  MAD {m.mad('clamp'):.2f}")
            ax.plot(grid, residue_count(grid, steps), color="tab:green", ls="-.", lw=1.2,
                    label=f"residue heuristic  MAD {m.mad('residue'):.2f}")
            if v_decay:
                lk = steps * leaky_rate(torch.from_numpy(grid * THRESHOLD / steps),
                                        float(THRESHOLD), v_decay).clamp(0, 1).numpy()
                ax.plot(grid, lk, "r:", lw=2, label=f"leaky steady state  MAD {m.mad('leaky'):.2f}")
            ax.set_title(f"{label}, T = {steps}")
            ax.set_xlabel("aggregate input A / θ")
            ax.set_ylabel("spike count per window")
            ax.legend(fontsize=7, loc="upper left")
            ax.grid(alpha=0.3)
    fig.suptitle("STCB count vs the equivalent gradient's linearisation "
                 f"(θ = {THRESHOLD}, {INPUTS} random inputs, "
                 f"{len(next(iter(measurements.values())).x)} samples per panel)")
    fig.tight_layout()
    fig.savefig(out, dpi=110)
    plt.close(fig)


def table(samples: int) -> list[Measurement]:
    """Deviation table over more settings (printed, not plotted)."""
    rows = []
    for steps in (4, 8, 16):
        for i_decay, v_decay in ((4096, 0), (4096, 256), (4096, 512), (4096, 1024), (1024, 0)):
            rows.append(measure(steps, i_decay, v_decay, samples))
    return rows


def checkpoint_deviation(path: Path, samples: int = 360
                         ) -> list[tuple[int, float, float, float, float]]:
    """Per block of a trained checkpoint: ``(vth, MAD all, MAD where 0 < A < T theta, share,
    step spread)``.

    ``A = f_int(c_in) + T * b_int`` from the block's input counts and its
    integer parameters, the true count from the PyTorch evaluation (which is
    Lava's, spike for spike); MAD of ``clamp(A / theta, 0, T)`` in spikes per
    window, over all neurons and samples, and over those inside the clamp's
    linear range (``share`` of them); ``step spread`` is the standard
    deviation of a neuron's input ``a[t]`` over the window, over ``theta``
    (mean over neurons and samples).
    """
    from slssnn.training.checkpoint import load_checkpoint
    from slssnn.training.datasets import load_dataset

    model, _ = load_checkpoint(path)
    cfg = model.config
    images = load_dataset(cfg.name, timesteps=cfg.timesteps).test.images[:samples]
    with torch.no_grad():
        _, trace = model(images)
        rows = []
        for i, (block, flatten) in enumerate(zip(model.blocks, model.flatten_before,
                                                 strict=True)):
            counts_in = trace[i].sum(0)
            counts_in = counts_in.flatten(1) if flatten else counts_in
            q = block.quantized()
            spikes_in = trace[i].flatten(2) if flatten else trace[i]
            per_step = block._apply_synapse(spikes_in.flatten(0, 1), q.weight)
            per_step = per_step.unflatten(0, spikes_in.shape[:2])  # (T, B, *out_shape)
            spread = float(per_step.std(0, unbiased=False).mean() / q.threshold)
            aggregate = block._apply_synapse(counts_in, q.weight)
            if q.bias is not None:
                aggregate = aggregate + cfg.timesteps * q.bias.view(block._bias_shape())
            x = aggregate / q.threshold
            deviation = (trace[i + 1].sum(0) - x.clamp(0, cfg.timesteps)).abs()
            inside = (x > 0) & (x < cfg.timesteps)
            rows.append((int(q.threshold), float(deviation.mean()),
                         float(deviation[inside].mean()), float(inside.float().mean()),
                         spread))
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--samples", type=int, default=20000, help="samples per panel")
    parser.add_argument("--out", type=Path, default=Path(__file__).with_name(
        "equivalent_gradient.png"), help="PNG to write")
    parser.add_argument("--checkpoint", type=Path, help="also measure a trained checkpoint")
    args = parser.parse_args()
    measurements = {(v, t): measure(t, 4096, v, args.samples) for _, v in SETTINGS for t in STEPS}
    plot(measurements, args.out)
    print(f"wrote {args.out}")
    spreads = ", ".join(f"{m.spread:.2f} at T = {t}" for (v, t), m in measurements.items() if not v)
    print(f"step spread (std of a[t] over the window / theta): {spreads}")
    print("mean absolute deviation from the true count (spikes per window), "
          f"{args.samples} samples each")
    print(f"{'T':>3} {'iDecay':>6} {'vDecay':>6} {'clamp':>7} {'leaky':>7} {'residue':>7} "
          f"{'count':>7}")
    for m in table(args.samples):
        print(f"{m.timesteps:>3} {m.i_decay:>6} {m.v_decay:>6} {m.mad('clamp'):7.3f} "
              f"{m.mad('leaky'):7.3f} {m.mad('residue'):7.3f} {m.count.mean():7.3f}")
    if args.checkpoint:
        print(f"{args.checkpoint}: |count - clamp(A/theta, 0, T)| per block")
        for i, (vth, mad_all, mad_in, share, spread) in enumerate(
                checkpoint_deviation(args.checkpoint)):
            print(f"block {i}: vth {vth:6d}  MAD {mad_all:.3f} (all)  {mad_in:.3f} "
                  f"(0 < A < T theta, {share:.0%} of neurons)  step spread {spread:.2f} theta")


if __name__ == "__main__":
    main()
