"""``energy.png``: energy per inference per estimate (left, log scale) and per layer (right).

Drawn on matplotlib's Agg canvas directly (no pyplot, no global backend switch); 12 x 5
inches at 100 dpi, i.e. 1200 x 500 pixels.
"""

from __future__ import annotations

import os
from typing import Any

from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

from slssnn.atomic import atomic_path

from .fmt import breakdown_estimate, format_joules, joule_unit

FIGSIZE_IN = (12.0, 5.0)
DPI = 100
_COLORS = ("#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b", "#e377c2")


def plot_report(report: dict[str, Any], path: str | os.PathLike[str]) -> None:
    """Draw the report dict from ``build_report`` into the PNG at ``path`` (atomically)."""
    fig = Figure(figsize=FIGSIZE_IN, dpi=DPI, layout="constrained")
    FigureCanvasAgg(fig)
    left, right = fig.subplots(1, 2, gridspec_kw={"width_ratios": [1, 1.2]})
    _totals(left, report)
    _layers(right, report)
    run = report["run"]
    fig.suptitle(f"{run['network']}: energy per inference (counts from {run['backend']}, "
                 f"{run['samples']} samples, {run['timesteps']} timesteps; estimates, GPU "
                 f"{'measured' if report['gpu']['measured'] else 'not measured'})")
    with atomic_path(path) as tmp:
        fig.savefig(tmp, format="png", dpi=DPI)


def _totals(ax, report: dict[str, Any]) -> None:
    estimates = report["estimates"]
    labels = [e["label"].replace(" ", "\n", 1) for e in estimates]
    values = [e["j_per_inference"] for e in estimates]
    models = list(dict.fromkeys(e["model"] for e in estimates))
    colors = [_COLORS[models.index(e["model"]) % len(_COLORS)] for e in estimates]
    ax.bar(range(len(values)), values, color=colors)
    for x, value in enumerate(values):  # a zero bar's label sits on the axis
        where = ((x, value), "data") if value > 0 else ((x, 0.0), ax.get_xaxis_transform())
        ax.annotate(format_joules(value), where[0], xycoords=where[1], ha="center",
                    va="bottom", fontsize=9, xytext=(0, 2), textcoords="offset points")
    ax.set_xticks(range(len(values)), labels, fontsize=8)
    positive = [v for v in values if v > 0]
    if positive:  # a zero bar has no height on the log scale; its label still says 0
        ax.set_yscale("log")
        ax.set_ylim(min(positive) / 3, max(positive) * 5)
    ax.set_ylabel("J per inference" + (" (log scale)" if positive else ""))
    ax.set_title("Total energy per inference, by model")
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
