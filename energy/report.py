"""The energy report of one run: ``energy.json``, ``energy.md`` and ``energy.png``.

All energies are per inference (J, with pJ beside them); counts are per inference. The two
ratios compare the ANN twin with the SNN:

- ``ann_mac_vs_snn_ac`` = (ann_macs x 4.6 pJ) / (synops x 0.9 pJ), both from
  ``horowitz45nm`` (the SNN-paper convention);
- ``horowitz_ann_vs_loihi`` = ``horowitz45nm`` ANN-twin MAC energy / ``loihi`` SNN energy.

A ratio is None (``null``) when its models are not in the report or its denominator is 0.

Measured energy (``gpu`` and ``cpu`` sections, see :mod:`.measured`) is either a set of
results or ``"measured": false`` with the reason; ``measured_ratios`` divides each measured
median J per inference by the ``loihi`` SNN estimate (``vs_loihi_snn``). The counts come
from one run record (``run.backend`` names its engine); records of the same network from
other engines, when given, must have identical counts and are listed in
``run.counts_identical_in``.
"""

from __future__ import annotations

import copy
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from slssnn.atomic import write_json, write_text
from slssnn.errors import SlssnnError

from .chips import Chip
from .deployment import EDP_ESTIMATE, deployment, energy_delay
from .devices import DeviceModel, builtin_models
from .estimate import estimate, per_inference_counts
from .fmt import find_estimate, format_joules, format_ratio, format_seconds
from .markdown import render_markdown
from .measured import not_requested
from .plot import plot_report
from .runfile import check_identical, load_run

REPORT_FORMAT = "slssnn-energy-report"
REPORT_VERSION = 1
VERSUS = ("loihi", "snn")  # the estimate measured energies are divided by
BREAKDOWN = ("loihi", "snn")  # the estimate shown per layer, when the report has it

# ratio name -> (numerator (model, formula), denominator (model, formula), definition)
RATIOS: dict[str, tuple[tuple[str, str], tuple[str, str], str]] = {
    "ann_mac_vs_snn_ac": (
        ("horowitz45nm", "ann"), ("horowitz45nm", "snn"),
        "(ann_macs x multiply_accumulate) / (synops x accumulate), horowitz45nm "
        "(4.6 pJ per MAC vs 0.9 pJ per AC, the SNN-paper convention)"),
    "horowitz_ann_vs_loihi": (
        ("horowitz45nm", "ann"), ("loihi", "snn"),
        "horowitz45nm ANN-twin MAC energy / loihi SNN energy"),
}


def build_report(run: dict[str, Any], models: Sequence[DeviceModel], run_path: str = "",
                 measured: dict[str, dict[str, Any]] | None = None,
                 identical_in: Sequence[dict[str, str]] = (),
                 deployed: dict[str, Any] | None = None) -> dict[str, Any]:
    """The report dict (what ``energy.json`` holds) of ``run`` under ``models``.

    ``measured`` is :func:`.measured.measure_model`'s ``{"gpu", "cpu"}`` (default: not
    requested); ``identical_in`` lists ``{"backend", "path"}`` of other engines' records
    already checked identical; ``deployed`` is :func:`.deployment.deployment`'s plan and
    timing (default: the run's network on ``loihi``). Energies in J and pJ per inference;
    see the module docstring for the ratios.
    """
    names = [m.name for m in models]
    if not models or len(set(names)) != len(names):
        raise SlssnnError(f"energy models: need at least one, each name once (got {names})")
    counts = per_inference_counts(run)
    estimates = []
    for model in models:
        for key, result in estimate(run, model)["formulas"].items():
            estimates.append({"model": model.name, "formula": key,
                              "label": f"{model.name} {result['label']}",
                              "j_per_inference": result["j"], "pj_per_inference": result["pj"],
                              "terms": result["terms"], "layers": result["layers"]})
    report = {
        "format": REPORT_FORMAT, "version": REPORT_VERSION,
        "run": {"path": run_path, "backend": run["backend"], "network": run["network"],
                "dataset": run["dataset"], "split": run.get("split"),
                "samples": run["samples"], "timesteps": run["timesteps"],
                "accuracy": run["accuracy"], "counts_identical_in": list(identical_in),
                "graded_layers": [layer["name"] for layer in run["layers"]
                                  if layer.get("graded")]},
        "units": {"energy": "j*: joules per inference; pj*: picojoules per inference",
                  "counts": "per inference (run totals / samples; ann_macs as given)",
                  "firing_rate": "spikes per neuron per timestep"},
        "counts_per_inference": counts,
        "estimates": estimates,
        "models": {m.name: {**m.to_dict(), "origin": m.origin} for m in models},
        **copy.deepcopy(measured or not_requested()),
    }
    report["ratios"] = {name: _ratio(report, num, den) for name, (num, den, _) in RATIOS.items()}
    report["ratio_definitions"] = {name: spec[2] for name, spec in RATIOS.items()}
    report["measured_ratios"] = _measured_ratios(report)
    report["breakdown"] = _breakdown(estimates)
    report["deployment"] = deployed if deployed is not None else deployment(run)
    report["energy_delay"] = energy_delay(report["deployment"],
                                          find_estimate(report, *EDP_ESTIMATE))
    return report


def write_report(run_path: str | os.PathLike[str], out_dir: str | os.PathLike[str],
                 models: Sequence[DeviceModel] | None = None,
                 measured: dict[str, dict[str, Any]] | None = None,
                 also_runs: Sequence[str | os.PathLike[str]] = (),
                 chip: Chip | str = "loihi") -> dict[str, Any]:
    """Write ``energy.json``, ``energy.md`` and ``energy.png`` for the run JSON at ``run_path``.

    ``models`` defaults to :func:`builtin_models`; pass a list to choose (e.g. the built-ins
    plus a user file from :func:`load_device_model`). ``measured``: see
    :func:`build_report`. ``also_runs``: other engines' records of the same network, whose
    counts must be identical (SlssnnError otherwise). ``chip``: the chip the run's network
    is planned on for the time per step, latency and energy x delay. Each file is written
    atomically into ``out_dir`` (created if missing). Returns the summary that
    :func:`format_summary` prints: J per inference per estimate and measurement, the ratios,
    the latency, the file paths.
    """
    run = load_run(run_path)
    identical_in = []
    for other_path in also_runs:
        check_identical(run, load_run(other_path), str(run_path), str(other_path))
        identical_in.append({"backend": load_run(other_path)["backend"],
                             "path": str(other_path)})
    models = list(builtin_models().values()) if models is None else list(models)
    report = build_report(run, models, str(run_path), measured, identical_in,
                          deployment(run, chip))
    out = _output_folder(out_dir)
    files = {"png": out / "energy.png", "md": out / "energy.md", "json": out / "energy.json"}
    plot_report(report, files["png"])
    write_text(files["md"], render_markdown(report, image=files["png"].name))
    write_json(files["json"], report)
    return {"network": report["run"]["network"], "backend": report["run"]["backend"],
            "samples": report["run"]["samples"], "accuracy": report["run"]["accuracy"],
            "j_per_inference": {e["label"]: e["j_per_inference"] for e in report["estimates"]},
            "ratios": dict(report["ratios"]),
            "gpu_measured": report["gpu"]["measured"],
            "measured": {engine: _section_summary(report[engine]) for engine in ("gpu", "cpu")},
            "counts_identical_in": [r["backend"] for r in identical_in],
            "timing": report["deployment"]["timing"], "energy_delay": report["energy_delay"],
            "files": {k: str(v) for k, v in files.items()}}


def _output_folder(out_dir: str | os.PathLike[str]) -> Path:
    """``out_dir``, created if needed; one line naming it where it cannot be."""
    out = Path(out_dir)
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise SlssnnError(f"energy output folder {out}: cannot create it "
                          f"({exc.__class__.__name__})") from exc
    return out


def energy_report(run: dict[str, Any] | str | os.PathLike[str], out_dir: str | os.PathLike[str],
                  models: Sequence[DeviceModel] | None = None) -> dict[str, Any]:
    """The energy report of one run record (a dict from ``run_network``, or its JSON file).

    A record in memory is first written to ``out_dir/run.json`` (the report refers to
    that file); then :func:`write_report` writes ``energy.json``, ``energy.md`` and
    ``energy.png`` into ``out_dir`` and its summary is returned (J per inference per
    estimate under the built-in models, or ``models``).
    """
    if isinstance(run, dict):
        out = _output_folder(out_dir)
        write_json(out / "run.json", run)
        run = out / "run.json"
    return write_report(run, out_dir, models)


def format_summary(summary: dict[str, Any]) -> str:
    """The summary from :func:`write_report` as a few lines for the terminal."""
    lines = [f"energy of {summary['network']} (counts from {summary['backend']}, "
             f"{summary['samples']} samples, accuracy "
             f"{'-' if summary['accuracy'] is None else format(summary['accuracy'], '.4f')}), "
             "per inference:"]
    width = max(len(label) for label in summary["j_per_inference"])
    for label, joules in summary["j_per_inference"].items():
        lines.append(f"  {label:<{width}}  {joules:.3e} J  ({format_joules(joules)})")
    for name, value in summary["ratios"].items():
        lines.append(f"  {name}: {format_ratio(value)}")
    lines.append("  " + _timing_line(summary["timing"], summary["energy_delay"]))
    if summary["counts_identical_in"]:
        lines.append("  counts identical in the " + ", ".join(summary["counts_identical_in"])
                     + " record(s)")
    for engine, section in summary["measured"].items():
        if "reason" in section:
            lines.append(f"  {engine.upper()}: not measured: {section['reason']}")
            continue
        lines.append(f"  {engine.upper()} measured on {section['device']} (median of windows; "
                     f"x = / loihi SNN estimate):")
        for r in section["results"]:
            lines.append(f"    {r['label']:<22} {r['j']:.3e} J  ({format_joules(r['j'])}), "
                         f"{r['per_s']:.1f} inferences/s, {format_ratio(r['vs_loihi_snn'])}")
    lines.append("  wrote " + ", ".join(summary["files"].values()))
    return "\n".join(lines)


def _timing_line(timing: dict[str, Any], edp: dict[str, Any]) -> str:
    if not timing["estimated"]:
        return f"latency on {timing['chip']}: not estimated: {timing['reason']}"
    return (f"latency on {timing['chip']}: {format_seconds(timing['latency_s'])} per inference "
            f"({timing['steps_per_inference']} steps x "
            f"{format_seconds(timing['time_per_step_s'])}), "
            f"{timing['inferences_per_s']:,.0f} inferences/s; energy x delay "
            f"{edp['j_s']:.3e} J*s ({edp['estimate']})")


def _section_summary(section: dict[str, Any]) -> dict[str, Any]:
    if not section["measured"]:
        return {"reason": section["reason"]}
    return {"device": section["device"]["name"],
            "results": [{"label": r["label"], "j": r["j_per_inference"]["median"],
                         "per_s": r["inferences_per_s"]["median"],
                         "vs_loihi_snn": r.get("vs_loihi_snn")} for r in section["results"]]}


def _measured_ratios(report: dict[str, Any]) -> list[dict[str, Any]]:
    """Each measured median J per inference over the ``loihi`` SNN estimate (None if absent)."""
    versus = find_estimate(report, *VERSUS)
    ratios = []
    for engine in ("gpu", "cpu"):
        section = report[engine]
        for r in section.get("results", []) if section["measured"] else []:
            j = r["j_per_inference"]["median"]
            ratio = j / versus["j_per_inference"] if versus and versus["j_per_inference"] else None
            r["vs_loihi_snn"] = ratio
            ratios.append({"label": r["label"], "engine": engine, "workload": r["workload"],
                           "batch_size": r["batch_size"], "j_per_inference": j,
                           "vs_loihi_snn": ratio})
    return ratios


def _ratio(report: dict[str, Any], num: tuple[str, str], den: tuple[str, str]) -> float | None:
    top, bottom = find_estimate(report, *num), find_estimate(report, *den)
    if top is None or bottom is None or bottom["pj_per_inference"] == 0:
        return None
    return top["pj_per_inference"] / bottom["pj_per_inference"]


def _breakdown(estimates: list[dict[str, Any]]) -> dict[str, str]:
    keys = [(e["model"], e["formula"]) for e in estimates]
    model, formula = BREAKDOWN if BREAKDOWN in keys else keys[0]
    return {"model": model, "formula": formula}
