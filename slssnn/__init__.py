"""slssnn: spike-train level SNNs from PyTorch to Lava, with energy reports.

The names below are the stable Python surface; each is imported on first use, so
``import slssnn`` stays light (torch is loaded when a name needs it, Lava only when a
run uses the Lava backend):

=====================  ===================================================================
``ModelConfig``        a network: input shape, classes, T, layer list with block options
``load_model_config``  a ModelConfig from a JSON file (``--model MODEL.json``)
``build_model``        ModelConfig -> ``torch.nn.Module``; ``model(x)`` returns the output
                       spike counts ``(B, classes)`` (gradient: the STCB equivalent
                       gradient) and every layer's spikes
``count_loss``         the training loss: cross-entropy on the output spike counts
``predict``            the readout: argmax of the counts (ties: lowest class)
``load_dataset``       a dataset by name (``"digits"``) or ``.npz`` file: ``.train``, ``.test``
``dataset_from_arrays``  the same from ``x_train, y_train, x_test, y_test`` arrays
``export_network``     model -> lava-dl netx HDF5 file (quantized onto Loihi's grid)
``run_network``        the test split through a netx file on ``"emulator"`` or ``"lava"``:
                       the run record (accuracy, per-layer spikes and synops)
``simulate``           a netx file on your own input arrays, every layer's spikes
``energy_report``      a run record -> energy.json / .md / .png and the J per inference
=====================  ===================================================================

Stages (one way): ``slssnn.training`` -> ``slssnn.export`` ->
``slssnn.lava_runtime`` -> ``slssnn.energy``; ``slssnn.cli`` drives them.
``slssnn.errors`` and ``slssnn.atomic`` are foundations every stage may use.
Everything stays importable from where it lives.
"""

from __future__ import annotations

import importlib
from typing import Any

__version__ = "0.1.0"

_API = {
    "ModelConfig": "slssnn.training.models",
    "load_model_config": "slssnn.training.models",
    "build_model": "slssnn.training.models",
    "predict": "slssnn.training.models",
    "count_loss": "slssnn.training.trainer",
    "load_dataset": "slssnn.training.datasets",
    "dataset_from_arrays": "slssnn.training.datasets",
    "export_network": "slssnn.export.netx_writer",
    "run_network": "slssnn.lava_runtime.run",
    "simulate": "slssnn.lava_runtime.simulate",
    "energy_report": "slssnn.energy.report",
}
"""Top-level name -> the module it lives in (imported on first use)."""

__all__ = [*_API, "__version__"]


def __getattr__(name: str) -> Any:
    if name not in _API:
        raise AttributeError(f"module 'slssnn' has no attribute {name!r}")
    value = getattr(importlib.import_module(_API[name]), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted({*globals(), *_API})
