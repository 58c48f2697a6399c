"""The sweep's table, Pareto front and plot: ``sweep.json``, ``sweep.md``, ``sweep.png``.

One line per T: the mean over its seeds (each seed's figure kept beside it) of the deployed
accuracy (emulator; Lava where run), spikes and synaptic operations per inference, energy
per inference under every device model, the latency estimate, inferences/s and energy x
delay. A T is on the **Pareto front** when no other T is at least as accurate with at most
the energy (``loihi SNN`` estimate) and better in one of the two.
"""

from __future__ import annotations

import statistics
from pathlib import Path
from typing import Any

from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from matplotlib.ticker import FuncFormatter

from slssnn.atomic import atomic_path, write_json, write_text
from slssnn.energy.fmt import format_joules, format_seconds

SWEEP_FORMAT = "slssnn-sweep"
FRONT_ENERGY = "loihi SNN"  # the energy the Pareto front and the plot use


def _mean(values: list[float | None]) -> float | None:
    present = [v for v in values if v is not None]
    return statistics.mean(present) if present else None


def summarize(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """One entry per T: means over seeds (``None`` where no seed has the figure) and the
    per-seed rows' figures, plus ``pareto`` (on the accuracy/energy front)."""
    lines = []
    for t in sorted({r["timesteps"] for r in rows}):
        mine = [r for r in rows if r["timesteps"] == t]
        labels = list(dict.fromkeys(k for r in mine for k in r["energy_j"]))
        line = {"timesteps": t, "seeds": [r["seed"] for r in mine],
                "samples": mine[0]["samples"],
                "energy_j": {k: _mean([r["energy_j"].get(k) for r in mine]) for k in labels}}
        for key in ("accuracy_emulator", "accuracy_lava", "accuracy_quantized_pytorch",
                    "spikes_per_inference", "synops_per_inference", "latency_s",
                    "time_per_step_s", "inferences_per_s", "energy_delay_j_s", "cores"):
            line[key] = _mean([r.get(key) for r in mine])
            line[f"{key}_per_seed"] = [r.get(key) for r in mine]
        line["engines_agree"] = all(r["pytorch_equals_emulator"] for r in mine)
        lines.append(line)
    for line in lines:
        line["pareto"] = not any(_dominates(other, line) for other in lines)
    return lines


def _dominates(a: dict[str, Any], b: dict[str, Any]) -> bool:
    ea, eb = a["energy_j"].get(FRONT_ENERGY), b["energy_j"].get(FRONT_ENERGY)
    if ea is None or eb is None:
        return False
    acc_a, acc_b = a["accuracy_emulator"], b["accuracy_emulator"]
    return acc_a >= acc_b and ea <= eb and (acc_a > acc_b or ea < eb)


def _pct(value: float | None, per_seed: list[float | None]) -> str:
    if value is None:
        return "-"
    seeds = [v for v in per_seed if v is not None]
    if len(seeds) < 2:
        return f"{100 * value:.2f}"
    return f"{100 * value:.2f} ({' / '.join(f'{100 * v:.2f}' for v in seeds)})"


def render_markdown(lines: list[dict[str, Any]], title: str, image: str = "sweep.png") -> str:
    """The sweep table as Markdown."""
    labels = list(dict.fromkeys(k for line in lines for k in line["energy_j"]))
    head = (["T", "deployed accuracy % (emulator; seeds)", "Lava %", "spikes/inf",
             "synops/inf"] + [f"{k} /inf" for k in labels]
            + ["latency", "inferences/s", "energy x delay J*s", "Pareto"])
    out = [f"# {title}\n", f"![sweep]({image})\n", "| " + " | ".join(head) + " |",
           "|" + "---|" * len(head)]
    for x in lines:
        cells = [str(x["timesteps"]),
                 _pct(x["accuracy_emulator"], x["accuracy_emulator_per_seed"]),
                 _pct(x["accuracy_lava"], x["accuracy_lava_per_seed"]),
                 f"{x['spikes_per_inference']:,.0f}", f"{x['synops_per_inference']:,.0f}"]
        cells += [format_joules(x["energy_j"].get(k)) for k in labels]
        cells += [format_seconds(x["latency_s"]),
                  "-" if x["inferences_per_s"] is None else f"{x['inferences_per_s']:,.0f}",
                  "-" if x["energy_delay_j_s"] is None else f"{x['energy_delay_j_s']:.3g}",
                  "yes" if x["pareto"] else ""]
        out.append("| " + " | ".join(cells) + " |")
    out += ["", f"Means over seeds (each seed in brackets); {lines[0]['samples']} test samples "
            "per run. Energy and latency are estimates from the emulator's counts "
            "(docs/planning.md); Pareto: no other T is at least as accurate with at most the "
            f"{FRONT_ENERGY} energy."]
    if not all(x["engines_agree"] for x in lines):
        out.append("\n**The quantized PyTorch and emulator predictions differ in some runs.**")
    return "\n".join(out) + "\n"


def plot_sweep(lines: list[dict[str, Any]], title: str, path: Path) -> None:
    """Accuracy against energy (Pareto front marked) and against latency, one point per T."""
    fig = Figure(figsize=(12.0, 5.0), dpi=100, layout="constrained")
    FigureCanvasAgg(fig)
    left, right = fig.subplots(1, 2)
    usable = [x for x in lines if x["energy_j"].get(FRONT_ENERGY) is not None]
    for ax, key in ((left, "energy"), (right, "latency")):
        scale = 1e6  # J -> µJ, s -> µs
        for x in usable:
            value = x["energy_j"][FRONT_ENERGY] if key == "energy" else x["latency_s"]
            if value is None:
                continue
            acc = [100 * v for v in x["accuracy_emulator_per_seed"]]
            mean = 100 * x["accuracy_emulator"]
            ax.errorbar(value * scale, mean, yerr=[[mean - min(acc)], [max(acc) - mean]],
                        fmt="o", ms=9, color="#1f77b4", capsize=3,
                        mfc="#1f77b4" if x["pareto"] else "white", zorder=3)
            label = f"T={x['timesteps']}"
            if key == "energy":
                label += f"\n{format_seconds(x['latency_s'])}" if x["latency_s"] else ""
            else:
                label += f"\n{format_joules(x['energy_j'][FRONT_ENERGY])}"
            ax.annotate(label, (value * scale, mean), xytext=(9, 0), textcoords="offset points",
                        fontsize=9, va="center", zorder=4,
                        bbox={"boxstyle": "round,pad=0.15", "fc": "white", "ec": "none",
                              "alpha": 0.85})
        ax.set_xscale("log")
        ax.margins(y=0.12)  # the labels of the top and bottom points stay inside
        ax.xaxis.set_major_formatter(FuncFormatter(lambda v, _: f"{v:g}"))
        ax.xaxis.set_minor_formatter(FuncFormatter(lambda v, _: f"{v:g}"))
        ax.tick_params(axis="x", which="minor", labelsize=7)
        ax.grid(alpha=0.3, which="both")
        ax.set_ylabel("deployed accuracy, % (emulator; bars: seed range)")
    front = sorted((x for x in usable if x["pareto"]), key=lambda x: x["energy_j"][FRONT_ENERGY])
    if front:
        left.step([1e6 * x["energy_j"][FRONT_ENERGY] for x in front],
                  [100 * x["accuracy_emulator"] for x in front], where="post", color="#d62728",
                  lw=1.5, label="Pareto front (filled: on it)", zorder=2)
        left.legend(loc="lower right", fontsize=9)
    left.set_xlabel(f"energy per inference, µJ ({FRONT_ENERGY} estimate, log scale); "
                    "label: T and latency")
    left.set_title("Accuracy vs energy per inference")
    right.set_xlabel("latency per inference, µs (estimate, log scale); label: T and energy")
    right.set_title("Accuracy vs latency per inference")
    for ax in (left, right):
        low, high = ax.get_xlim()
        ax.set_xlim(low / 1.3, high * 1.6)  # room for the labels right of the points
    fig.suptitle(title)
    with atomic_path(path) as tmp:
        fig.savefig(tmp, format="png", dpi=100)


def write_sweep(rows: list[dict[str, Any]], out: Path, title: str,
                command: str = "") -> dict[str, Path]:
    """Write ``sweep.json``, ``sweep.md`` and ``sweep.png`` into ``out``; return the paths."""
    lines = summarize(rows)
    files = {"json": out / "sweep.json", "md": out / "sweep.md", "png": out / "sweep.png"}
    plot_sweep(lines, title, files["png"])
    write_text(files["md"], render_markdown(lines, title, files["png"].name))
    write_json(files["json"], {"format": SWEEP_FORMAT, "version": 1, "title": title,
                               "command": command, "front_energy": FRONT_ENERGY,
                               "per_timesteps": lines, "cells": rows})
    return files
