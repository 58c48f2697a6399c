"""``energy.md``: the energy report for people (all figures per inference)."""

from __future__ import annotations

from typing import Any

from .fmt import breakdown_estimate, format_count, format_joules, format_ratio

_COUNT_TITLES = {"synops": "synops", "neuron_updates": "neuron updates", "spikes": "spikes",
                 "ann_macs": "ANN MACs"}


def render_markdown(report: dict[str, Any], image: str = "energy.png") -> str:
    """The report dict from ``build_report`` as Markdown; ``image`` is the plot's relative path."""
    sections = [_header(report), _totals(report), _gpu(report), _layers(report),
                _formulas(report), _constants(report), f"![energy]({image})\n"]
    return "\n".join(sections)


def _header(report: dict[str, Any]) -> str:
    run = report["run"]
    split = f" ({run['split']} split)" if run.get("split") else ""
    return (f"# Energy report: {run['network']}\n\n"
            f"- Engine (counts from): {run['backend']}\n"
            f"- Data: {run['dataset']}{split}, {run['samples']} samples, "
            f"{run['timesteps']} timesteps\n"
            f"- Accuracy: {100 * run['accuracy']:.2f} %\n"
            f"- Run file: `{run['path']}`\n\n"
            "Energies are estimates from published per-operation energies, per inference.\n")


def _totals(report: dict[str, Any]) -> str:
    rows = ["## Energy per inference\n",
            "| Estimate | J/inference | readable | operations/inference |",
            "|---|---:|---:|---|"]
    for e in report["estimates"]:
        ops = "; ".join(f"{format_count(t['per_inference'])} {_COUNT_TITLES[t['count']]}"
                        for t in _unique_counts(e["terms"]))
        rows.append(f"| {e['label']} | {e['j_per_inference']:.3e} | "
                    f"{format_joules(e['j_per_inference'])} | {ops} |")
    rows.append("")
    for name, value in report["ratios"].items():
        rows.append(f"- `{name}` = {format_ratio(value)}: {report['ratio_definitions'][name]}")
    return "\n".join(rows) + "\n"


def _gpu(report: dict[str, Any]) -> str:
    gpu = report["gpu"]
    if gpu["measured"]:
        return "GPU: measured\n"
    return f"GPU: not measured; {gpu['reason']}.\n"


def _layers(report: dict[str, Any]) -> str:
    est = breakdown_estimate(report)
    rows = [f"## Per layer (per inference; energy under {est['label']})\n",
            "| Layer | Type | Neurons | Firing rate | Spikes | Synops | Neuron updates "
            "| ANN MACs | Energy | Share |",
            "|---|---|---:|---:|---:|---:|---:|---:|---:|---:|"]
    for layer, energy in zip(report["counts_per_inference"]["layers"], est["layers"],
                             strict=True):
        rate = "n/a" if layer["firing_rate"] is None else f"{layer['firing_rate']:.4f}"
        share = "n/a" if energy["share"] is None else f"{100 * energy['share']:.1f} %"
        rows.append(f"| {layer['name']} | {layer['type']} | {layer['neurons']:,} | {rate} | "
                    f"{format_count(layer['spikes'])} | {format_count(layer['synops'])} | "
                    f"{format_count(layer['neuron_updates'])} | "
                    f"{format_count(layer['ann_macs'])} | {format_joules(energy['j'])} | "
                    f"{share} |")
    return "\n".join(rows) + "\n"


def _formulas(report: dict[str, Any]) -> str:
    rows = ["## Formulas (per inference)\n"]
    for e in report["estimates"]:
        terms = " + ".join(f"{format_count(t['per_inference'])} {t['count']} x "
                           f"{t['value_pj']:g} pJ ({t['constant']})" for t in e["terms"])
        rows.append(f"- {e['label']}: {terms} = {e['pj_per_inference']:,.1f} pJ")
    return "\n".join(rows) + "\n"


def _constants(report: dict[str, Any]) -> str:
    rows = ["## Constants\n", "| Model | Constant | pJ | Source |", "|---|---|---:|---|"]
    for name, model in report["models"].items():
        for key, const in model["constants"].items():
            source = const["source"].replace("|", "\\|")
            rows.append(f"| {name} | {key} | {const['value_pj']:g} | {source} |")
    return "\n".join(rows) + "\n"


def _unique_counts(terms: list[dict[str, Any]]) -> list[dict[str, Any]]:
    seen: dict[str, dict[str, Any]] = {}
    for term in terms:
        seen.setdefault(term["count"], term)
    return list(seen.values())
