"""slssnn.energy: estimated energy per inference of a run, from its activity counts.

Input is the run JSON of ``slssnn run`` (per-layer spikes, synaptic ops, neuron updates,
ANN-twin MACs). Device models turn counts into energy, every constant with its source:

- ``loihi``: Davies et al., IEEE Micro 38(1), 2018, Table 2 (pre-silicon):
  synops x 23.6 pJ + neuron updates x 81 pJ + spikes x 1.7 pJ;
- ``loihi-keras-spiking``: keras-spiking's Loihi device: synops x (23.6 + 3.5) pJ +
  neuron updates x 81 pJ;
- ``horowitz45nm``: Horowitz, ISSCC 2014, 45 nm: SNN synops x 0.9 pJ (AC), ANN twin
  MACs x 4.6 pJ (MAC).

There is no ``loihi2`` model: Loihi 2 has no public per-operation energy table, and this
package invents no figures. A user can describe another device in a JSON file of the same
form (:func:`load_device_model`).

Measured energy: the trained network as SNN and ANN twin (``workload``), on the CUDA GPU
with NVML's total-energy counter (``gpu``) and on the CPU with RAPL (``rapl``), through one
windowed measurement loop (``measure``, driven by ``measured``); where a counter cannot be
read the report says "not measured" and why.

Deployment plan (``slssnn plan``, docs/planning.md): ``chips`` (chip files: published
per-core and per-chip limits and per-operation times, each with its source; ``loihi``,
``loihi2``), ``plan`` (each layer's cores under those limits and the constraint that binds),
``timing`` (time per step, latency, inferences/s from a run's activity), ``deployment``
(the report's plan, timing and energy x delay), ``plan_text`` (its table and Markdown).

Modules: ``devices`` (model files), ``fields`` (the field checks device and chip files
share), ``runfile`` (run JSON checks), ``estimate`` (arithmetic), ``report`` (energy.json
and the summary), ``markdown`` (energy.md), ``plot`` (energy.png), ``measure``, ``gpu``,
``rapl``, ``workload``, ``measured``. Nothing here imports lava; torch is imported only by
``workload`` and when measuring.
"""

from .chips import Chip, load_chip
from .devices import Constant, DeviceModel, Formula, Term, builtin_models, load_device_model
from .estimate import estimate, per_inference_counts
from .plan import plan_network
from .report import build_report, energy_report, format_summary, write_report
from .runfile import load_run, validate_run
from .timing import estimate_timing

__all__ = [
    "Chip", "Constant", "DeviceModel", "Formula", "Term", "build_report", "builtin_models",
    "energy_report", "estimate", "estimate_timing", "format_summary", "load_chip",
    "load_device_model", "load_run", "per_inference_counts", "plan_network", "validate_run",
    "write_report",
]
