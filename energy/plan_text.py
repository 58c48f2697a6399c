"""The deployment plan for people: the terminal table of ``slssnn plan`` and its Markdown form."""

from __future__ import annotations

from typing import Any

from .chips import Chip
from .fmt import format_seconds
from .plan import CORE_LIMITS

_BITS_PER_KIB = 8 * 1024


def _limit_text(chip: Chip) -> str:
    parts = []
    for name, key in CORE_LIMITS.items():
        value = chip.limit(key)
        if value is None:
            parts.append(f"{name}: not public")
        elif name == "synaptic memory":
            parts.append(f"{value / _BITS_PER_KIB:g} KiB synaptic memory")
        else:
            parts.append(f"{value:,.0f} {name}" + (" axons" if "fan" in name else ""))
    chip_parts = [f"{chip.limit(k):,.0f} {k.split('_')[0]} per chip"
                  for k in ("cores_per_chip", "neurons_per_chip", "synapses_per_chip")
                  if chip.limit(k) is not None]
    return "per core: " + ", ".join(parts) + "; " + ", ".join(chip_parts)


def _tile(layer: dict[str, Any]) -> str:
    if layer["tile"] is None:
        return "-"
    return "x".join(str(x) for x in layer["tile"])


def _need(layer: dict[str, Any], name: str) -> str:
    need = layer["per_core"][name]
    used = (layer["limits_used"] or {}).get(name)
    text = f"{need / _BITS_PER_KIB:.1f}" if name == "synaptic memory" else f"{need:,}"
    return text if used is None else f"{text} ({100 * used:.0f}%)"


def plan_rows(plan: dict[str, Any]) -> tuple[list[str], list[list[str]]]:
    """The plan's per-layer table: header and rows of strings."""
    header = ["layer", "neurons", "synapses", "bits", "cores", "tile", "neurons/core",
              "fan-in axons", "fan-out axons", "syn. memory KiB", "binds on"]
    rows = []
    for x in plan["layers"]:
        row = [x["name"], f"{x['neurons']:,}", f"{x['synapses']:,}",
               str(x["bits_per_synapse"] or "-")]
        if x["problem"]:
            row += ["cannot be placed", "", "", "", "", "", ""]
        elif x["cores"] is None:
            row += ["n/a", "-", "-", "-", "-", "-", "-"]
        else:
            row += [str(x["cores"]), _tile(x)] + [_need(x, n) for n in CORE_LIMITS] \
                + [x["binding"]]
        rows.append(row)
    return header, rows


def format_plan(plan: dict[str, Any], chip: Chip, timing: dict[str, Any] | None) -> str:
    """The plan (and its timing, when given) as terminal text."""
    header, rows = plan_rows(plan)
    widths = [max(len(r[i]) for r in [header, *rows]) for i in range(len(header))]
    lines = [f"plan of {plan['network']} on {chip.name} ({_limit_text(chip)})",
             "  ".join(h.ljust(w) if i == 0 else h.rjust(w)
                       for i, (h, w) in enumerate(zip(header, widths, strict=True)))]
    for row in rows:
        lines.append("  ".join(c.ljust(w) if i == 0 else c.rjust(w)
                               for i, (c, w) in enumerate(zip(row, widths, strict=True))))
    lines += _summary(plan, chip)
    if timing is not None:
        lines += timing_lines(timing)
    return "\n".join(lines)


def _summary(plan: dict[str, Any], chip: Chip) -> list[str]:
    lines = []
    if plan["total_cores"] is not None:
        lines.append(f"total: {plan['total_cores']} cores, {plan['chips']} chip(s) "
                     f"(tile: the neurons of one core, channels x rows x columns for conv; "
                     f"(%): share of the core's limit)")
    elif plan["placeable"]:
        demands = ", ".join(f"{k}: {v}" for k, v in plan["chip_demands"].items())
        lines.append(f"cores per layer: not computable, {chip.name}'s per-core limits are "
                     f"not public; chips: {plan['chips']} (by {demands})")
    for problem in plan["problems"]:
        lines.append(f"cannot be placed: {problem}")
    if plan["not_checked"]:
        lines.append("not public, not checked: " + ", ".join(plan["not_checked"]))
    if plan["leaves_out"]:
        lines += ["the mapping leaves out:", *(f"  - {item}" for item in plan["leaves_out"])]
    return lines


def timing_lines(timing: dict[str, Any]) -> list[str]:
    """Time per step and latency as a few terminal lines."""
    if not timing["estimated"]:
        return [f"time per step: not estimated: {timing['reason']}"]
    return [
        f"time per step: {format_seconds(timing['time_per_step_s'])} (slowest core: "
        f"{timing['slowest']['layer']}, {format_seconds(timing['slowest']['core_s'])}; "
        f"barrier {format_seconds(timing['barrier_s'])})",
        f"latency per inference: {format_seconds(timing['latency_s'])} "
        f"({timing['timesteps']} steps + {timing['pipeline_fill_steps']} pipeline fill); "
        f"{timing['inferences_per_s']:,.0f} inferences/s (samples back to back)",
        "the estimate leaves out:", *(f"  - {item}" for item in timing["leaves_out"]),
    ]


def plan_markdown(plan: dict[str, Any], timing: dict[str, Any] | None) -> str:
    """The plan (and timing) as a Markdown section."""
    header, rows = plan_rows(plan)
    lines = [f"## Deployment plan on {plan['chip']}\n",
             "| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(r) + " |" for r in rows]
    lines.append("")
    if plan["total_cores"] is not None:
        lines.append(f"- Total: {plan['total_cores']} cores, {plan['chips']} chip(s).")
    lines += [f"- Cannot be placed: {p}" for p in plan["problems"]]
    if plan["not_checked"]:
        lines.append("- Not public, not checked: " + ", ".join(plan["not_checked"]))
    if plan["leaves_out"]:
        lines.append("- The mapping leaves out:")
        lines += [f"  - {item}" for item in plan["leaves_out"]]
    if timing is not None:
        lines.append("")
        lines += [f"- {line}" for line in timing_lines(timing)[:2 if timing["estimated"] else 1]]
        if timing["estimated"]:
            lines.append("- The estimate leaves out:")
            lines += [f"  - {item}" for item in timing["leaves_out"]]
    return "\n".join(lines) + "\n"
