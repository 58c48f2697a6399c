"""``energy.png``: energy per inference (left, log scale) and per layer (right).

Left: one bar per estimate (device model x network) and one per measurement (engine,
workload, batch size; hatched, median with a min-max error bar). Right: the per-layer
breakdown of one estimate, stacked by term.

Drawn on matplotlib's Agg canvas directly (no pyplot, no global backend switch); 12 x 5
inches at 100 dpi, i.e. 1200 x 500 pixels.
"""

from __future__ import annotations

import os
from typing import Any

from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

from slssnn.atomic import atomic_path

from .fmt import breakdown_estimate, format_joules, format_seconds, joule_unit

FIGSIZE_IN = (12.0, 5.0)
DPI = 100
_COLORS = ("#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b", "#e377c2")
_MEASURED_COLORS = ("#404040", "#8c8c8c")  # GPU, CPU


def plot_report(report: dict[str, Any], path: str | os.PathLike[str]) -> None:
    """Draw the report dict from ``build_report`` into the PNG at ``path`` (atomically)."""
    fig = Figure(figsize=FIGSIZE_IN, dpi=DPI, layout="constrained")
    FigureCanvasAgg(fig)
    left, right = fig.subplots(1, 2, gridspec_kw={"width_ratios": [1, 1.2]})
    _totals(left, report)
    _layers(right, report)
    run = report["run"]
    gpu = report["gpu"]
    gpu_text = f"GPU measured on {gpu['device']['name']}" if gpu["measured"] \
        else "GPU not measured"
    fig.suptitle(f"{run['network']}: energy per inference (counts from {run['backend']}, "
                 f"{run['samples']} samples, {run['timesteps']} timesteps; {gpu_text})\n"
                 + _latency_text(report))
    with atomic_path(path) as tmp:
        fig.savefig(tmp, format="png", dpi=DPI)


def _latency_text(report: dict[str, Any]) -> str:
    """One line: latency, throughput and energy x delay on the report's chip."""
    timing, edp = report["deployment"]["timing"], report["energy_delay"]
    if not timing["estimated"]:
        return f"latency on {timing['chip']}: not estimated ({timing['reason'][:90]})"
    return (f"latency on {timing['chip']} (estimate): {format_seconds(timing['latency_s'])} "
            f"per inference ({timing['steps_per_inference']} steps x "
            f"{format_seconds(timing['time_per_step_s'])}), "
            f"{timing['inferences_per_s']:,.0f} inferences/s; energy x delay "
            f"{edp['j_s']:.3g} J*s")


def _bars(report: dict[str, Any]) -> list[dict[str, Any]]:
    """Every bar of the left panel: ``label``, ``j``, ``low``, ``high``, ``color``, ``hatch``."""
    models = list(dict.fromkeys(e["model"] for e in report["estimates"]))
    bars = [{"label": e["label"].replace(" ", "\n", 1), "j": e["j_per_inference"],
             "low": None, "high": None, "hatch": None,
             "color": _COLORS[models.index(e["model"]) % len(_COLORS)]}
            for e in report["estimates"]]
    for engine, color in (("gpu", _MEASURED_COLORS[0]), ("cpu", _MEASURED_COLORS[1])):
        section = report[engine]
        for r in section.get("results", []) if section["measured"] else []:
            j = r["j_per_inference"]
            bars.append({"label": r["label"].replace(" b=", "\nb=").replace(" T=", "\nT="),
                         "j": j["median"], "low": j["min"], "high": j["max"],
                         "color": color, "hatch": "//"})
    return bars


def _totals(ax, report: dict[str, Any]) -> None:
    bars = _bars(report)
    values = [b["j"] for b in bars]
    for x, bar in enumerate(bars):
        ax.bar(x, bar["j"], color=bar["color"], hatch=bar["hatch"],
               edgecolor="white" if bar["hatch"] else None)
        if bar["low"] is not None:
            ax.errorbar(x, bar["j"], yerr=[[bar["j"] - bar["low"]], [bar["high"] - bar["j"]]],
                        color="black", capsize=3, linewidth=1)
    for x, value in enumerate(values):  # a zero bar's label sits on the axis
        where = ((x, value), "data") if value > 0 else ((x, 0.0), ax.get_xaxis_transform())
        ax.annotate(format_joules(value), where[0], xycoords=where[1], ha="center",
                    va="bottom", fontsize=7 if len(bars) > 6 else 9, xytext=(0, 2),
                    textcoords="offset points")
    if len(bars) > 6:  # many bars: one-line labels, slanted
        ax.set_xticks(range(len(values)), [b["label"].replace("\n", " ") for b in bars],
                      fontsize=7, rotation=35, ha="right", rotation_mode="anchor")
    else:
        ax.set_xticks(range(len(values)), [b["label"] for b in bars], fontsize=8)
    positive = [v for v in values if v > 0]
    if positive:  # a zero bar has no height on the log scale; its label still says 0
        ax.set_yscale("log")
        ax.set_ylim(min(positive) / 3, max(b["high"] or b["j"] for b in bars) * 5)
    ax.set_ylabel("J per inference" + (" (log scale)" if positive else ""))
    ax.set_title("Total energy per inference: estimates, measured (hatched)"
                 if len(bars) > len(report["estimates"]) else "Total energy per inference, "
                 "by model")
    ax.grid(axis="y", which="major", alpha=0.3)


def _layers(ax, report: dict[str, Any]) -> None:
    est = breakdown_estimate(report)
    names = [layer["name"] for layer in est["layers"]]
    size, unit = joule_unit(max((layer["j"] for layer in est["layers"]), default=0.0))
    bottoms = [0.0] * len(names)
    for i, term in enumerate(est["terms"]):
        heights = [layer["terms"][i]["j"] / size for layer in est["layers"]]
        ax.bar(range(len(names)), heights, bottom=bottoms, color=_COLORS[i % len(_COLORS)],
               label=f"{term['count']} x {term['value_pj']:g} pJ ({term['constant']})")
        bottoms = [b + h for b, h in zip(bottoms, heights, strict=True)]
    for x, (layer, top) in enumerate(zip(est["layers"], bottoms, strict=True)):
        share = "" if layer["share"] is None else f"{100 * layer['share']:.0f} %"
        ax.annotate(share, (x, top), ha="center", va="bottom", fontsize=8,
                    xytext=(0, 2), textcoords="offset points")
    ax.set_xticks(range(len(names)), names, fontsize=8,
                  rotation=30 if len(names) > 6 else 0)
    ax.set_ylabel(f"{unit} per inference")
    ax.set_title(f"Per layer, {est['label']} (share of total above bars)")
    ax.set_ylim(0, 1.4 * max(bottoms, default=0.0) or 1.0)  # headroom for the legend
    ax.legend(fontsize=8, loc="upper left")
