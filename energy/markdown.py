"""``energy.md``: the energy report for people (all figures per inference)."""

from __future__ import annotations

from typing import Any

from .fmt import breakdown_estimate, format_count, format_joules, format_ratio
from .plan_text import plan_markdown

_COUNT_TITLES = {"synops": "synops", "neuron_updates": "neuron updates", "spikes": "spikes",
                 "ann_macs": "ANN MACs"}


def render_markdown(report: dict[str, Any], image: str = "energy.png") -> str:
    """The report dict from ``build_report`` as Markdown; ``image`` is the plot's relative path."""
    sections = [_header(report), f"![energy]({image})\n", _totals(report), _measured(report),
                _layers(report), _deployment(report), _formulas(report), _constants(report)]
    return "\n".join(sections)


def _header(report: dict[str, Any]) -> str:
    run = report["run"]
    split = f" ({run['split']} split)" if run.get("split") else ""
    same = "; identical counts in " + ", ".join(
        f"the {r['backend']} record (`{r['path']}`)" for r in run["counts_identical_in"]) \
        if run.get("counts_identical_in") else ""
    return (f"# Energy report: {run['network']}\n\n"
            f"- Engine (counts from): {run['backend']}{same}\n"
            f"- Data: {run['dataset']}{split}, {run['samples']} samples, "
            f"{run['timesteps']} timesteps\n"
            f"- Accuracy: {_accuracy(run['accuracy'])}\n"
            f"- Run file: `{run['path']}`\n\n"
            "Estimates multiply the run's counts by published per-operation energies; "
            "measured energies come from hardware energy counters (below). All per "
            "inference.\n" + _graded_note(run.get("graded_layers", [])))


def _graded_note(layers: list[str]) -> str:
    """What the estimates assume for graded (sigma-delta) messages, if the run has any."""
    if not layers:
        return ""
    return ("\nLayers " + ", ".join(f"`{name}`" for name in layers) + " send graded "
            "(sigma-delta) messages: each non-zero message counts as one spike and one "
            "synaptic operation per target, as for binary spikes. No public figure gives "
            "the energy of a graded synaptic operation (Loihi 1 has none; Loihi 2's is "
            "not published), so these rows use the binary-spike constants as stated, "
            "not measured (docs/semantics.md, \"Activity of graded messages\").\n")


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


def _measured(report: dict[str, Any]) -> str:
    rows = ["## Measured energy per inference\n"]
    for engine in ("gpu", "cpu"):
        section = report[engine]
        if not section["measured"]:
            rows.append(f"{engine.upper()}: not measured: {section['reason']}.\n")
            continue
        rows += [_measured_header(engine, section), "",
                 "| Workload | Batch | J/inference (median) | min - max | IQR | "
                 "inferences/s | power W | idle W (just before) | clocks MHz | / loihi SNN |",
                 "|---|---:|---:|---|---|---:|---:|---:|---|---:|"]
        for r in section["results"]:
            j, clocks = r["j_per_inference"], r.get("clocks_mhz") or {}
            clock_text = "/".join(str(clocks.get(k)) for k in ("sm", "memory")) \
                if clocks else "n/a"
            rows.append(
                f"| {r['label']} | {r['batch_size']} | {j['median']:.3e} "
                f"({format_joules(j['median'])}) | {format_joules(j['min'])} - "
                f"{format_joules(j['max'])} | {format_joules(j['q1'])} - "
                f"{format_joules(j['q3'])} | {r['inferences_per_s']['median']:,.1f} | "
                f"{r['power_w']['median']:.1f} | {r['idle_power_w']:.1f} | {clock_text} | "
                f"{format_ratio(r.get('vs_loihi_snn'))} |")
        rows.append("")
    return "\n".join(rows) + "\n"


def _measured_header(engine: str, section: dict[str, Any]) -> str:
    d, s, c = section["device"], section["settings"], section["counter"]
    versions = ", ".join(f"{k} {d[k]}" for k in ("driver", "cuda_driver", "torch")
                         if d.get(k))
    interval = c.get("update_interval_ms")
    refresh = f", refreshed about every {interval:.0f} ms" if interval else ""
    return (f"{engine.upper()}: **{d['name']}** ({versions}). Counter: {c['source']}{refresh}. "
            f"Each row: idle power measured just before (shown, not subtracted), "
            f"{s['warmup_s']:g} s warm-up, then {s['repeats']} windows of at least "
            f"{s['window_s']:g} s, each starting and ending on a counter refresh; median, "
            f"min - max and interquartile range over the windows. Inputs: "
            f"{section['inputs']}. SNN: T={section['timesteps']} float steps; ANN twin: "
            "ReLU in place of IF, one pass, same weights.")


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


def _deployment(report: dict[str, Any]) -> str:
    section, edp = report["deployment"], report["energy_delay"]
    if section["plan"] is None:
        return (f"## Deployment on {section['chip']['name']}\n\nNot planned: "
                f"{section['timing']['reason']}.\n")
    text = plan_markdown(section["plan"], section["timing"])
    if edp["j_s"] is not None:
        text += (f"\nEnergy x delay per inference: {edp['j_s']:.3e} J*s "
                 f"({edp['estimate']}: {format_joules(edp['j_per_inference'])} x "
                 f"latency).\n")
    return text


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


def _accuracy(value: float | None) -> str:
    """A run's accuracy in percent, or why there is none."""
    return "none (an input array without labels)" if value is None else f"{100 * value:.2f} %"

