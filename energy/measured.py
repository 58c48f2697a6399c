"""Measured energy of a trained network: the SNN and its ANN twin on the GPU (NVML) and the
CPU (RAPL), at several batch sizes.

:func:`measure_model` returns ``{"gpu": section, "cpu": section}``. A section is either
``{"measured": False, "reason": "..."}`` (the reason says why: no CUDA, no NVML, RAPL not
readable, not requested) or::

    {"measured": True, "engine": "gpu" | "cpu", "device": {...}, "counter": {...},
     "settings": MeasureSettings as a dict, "inputs": "...",
     "results": [{"workload": "snn" | "ann", "label", "batch_size",
                  "j_per_inference": spread, "inferences_per_s": spread, "power_w": spread,
                  "idle_power_w", "idle", "windows", "clocks_mhz"}, ...]}

``spread`` is ``{"median", "min", "max", "q1", "q3", "n"}`` over the windows (see
:mod:`.measure`). Idle power is measured just before each result and shown beside it, never
subtracted. Inputs stay on the device (host-to-device copies are not measured); each step
runs one batch and waits for it (``torch.cuda.synchronize``).
"""

from __future__ import annotations

import os
import platform
from collections.abc import Callable, Sequence
from typing import Any

from .gpu import open_gpu
from .measure import CounterStalled, MeasureSettings, measure
from .rapl import open_rapl

DEFAULT_BATCH_SIZES = (1, 256)
ENGINES = ("gpu", "cpu")
WORKLOAD_LABELS = {"snn": "SNN", "ann": "ANN twin"}
COUNTER_SOURCES = {
    "gpu": "NVML nvmlDeviceGetTotalEnergyConsumption (board energy, integer mJ)",
    "cpu": "Linux RAPL powercap energy_uj, sum of CPU packages (uJ, wraparound handled)",
}


def not_measured(reason: str) -> dict[str, Any]:
    """A section that says why there is no measurement."""
    return {"measured": False, "reason": reason}


def not_requested() -> dict[str, dict[str, Any]]:
    """Both sections when no measurement was asked for."""
    why = "not requested (pass --measure-gpu CHECKPOINT to measure)"
    return {engine: not_measured(why) for engine in ENGINES}


def workload_label(engine: str, workload: str, timesteps: int, batch_size: int) -> str:
    """``"GPU SNN T=4 b=256"``, ``"CPU ANN twin b=1"``."""
    steps = f" T={timesteps}" if workload == "snn" else ""
    return f"{engine.upper()} {WORKLOAD_LABELS[workload]}{steps} b={batch_size}"


def _batch(images, batch_size: int):
    import torch

    index = torch.arange(batch_size) % images.shape[0]
    return images[index].float()


def _stepper(module, x, device) -> Callable[[], None]:
    import torch

    def step() -> None:
        with torch.inference_mode():
            module(x)
        if device.type == "cuda":
            torch.cuda.synchronize(device)

    return step


def _cpu_info() -> dict[str, Any]:
    import torch

    name = platform.processor() or platform.machine()
    try:
        for line in open("/proc/cpuinfo").read().splitlines():
            if line.startswith("model name"):
                name = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return {"name": name, "torch": torch.__version__, "torch_threads": torch.get_num_threads(),
            "cpus": os.cpu_count()}


def measure_on(engine: str, device, counter, workloads: dict[str, Any], images,
               timesteps: int, batch_sizes: Sequence[int], settings: MeasureSettings,
               clocks_fn: Callable[[], Any] | None = None,
               log: Callable[[str], None] | None = None) -> list[dict[str, Any]]:
    """Measure every workload at every batch size on ``device`` with ``counter`` (J)."""
    results = []
    for workload, module in workloads.items():
        module = module.to(device)
        for batch_size in batch_sizes:
            step = _stepper(module, _batch(images, batch_size).to(device), device)
            result = measure(step, batch_size, counter, settings)
            step()
            clocks = clocks_fn() if clocks_fn else None  # right after a step: active clocks
            label = workload_label(engine, workload, timesteps, batch_size)
            results.append({"workload": workload, "label": label, **result,
                            "idle_power_w": result["idle"]["watts"], "clocks_mhz": clocks})
            if log:
                j = result["j_per_inference"]
                log(f"{label}: {j['median']:.3e} J/inference (min {j['min']:.3e}, "
                    f"max {j['max']:.3e}), {result['inferences_per_s']['median']:.1f} "
                    f"inferences/s, {result['power_w']['median']:.1f} W "
                    f"(idle {result['idle']['watts']:.1f} W)")
        module.to("cpu")
    return results


def measure_model(model, images, batch_sizes: Sequence[int] = DEFAULT_BATCH_SIZES,
                  settings: MeasureSettings | None = None, engines: Sequence[str] = ENGINES,
                  inputs: str = "", log: Callable[[str], None] | None = None
                  ) -> dict[str, dict[str, Any]]:
    """Measure ``model``'s SNN and ANN twin (see :mod:`.workload`) on the GPU and CPU.

    ``images`` ``(N, C, H, W)`` are cycled to fill each batch; ``inputs`` describes them in
    the report. An engine not in ``engines`` is "not requested".
    """
    import torch

    from .workload import build_workloads

    settings = settings or MeasureSettings()
    workloads = build_workloads(model)
    timesteps = model.config.timesteps
    sections = {}
    for engine in ENGINES:
        if engine not in engines:
            sections[engine] = not_measured("not requested")
            continue
        if engine == "gpu":
            gpu, reason = open_gpu(torch.cuda.current_device()
                                   if torch.cuda.is_available() else 0)
            counter, clocks_fn, device = (gpu.energy_j, gpu.clocks_mhz,
                                          torch.device("cuda", gpu.cuda_index)) if gpu \
                else (None, None, None)
        else:
            gpu, (counter, reason) = None, open_rapl()
            clocks_fn, device = None, torch.device("cpu")
        if counter is None:
            sections[engine] = not_measured(reason)
            continue
        try:
            info = gpu.info() if gpu else _cpu_info()
            results = measure_on(engine, device, counter, workloads, images, timesteps,
                                 batch_sizes, settings, clocks_fn, log)
        except CounterStalled as exc:
            sections[engine] = not_measured(str(exc))
            continue
        finally:
            if gpu:
                gpu.close()
        sections[engine] = {"measured": True, "engine": engine, "device": info,
                            "counter": {"source": COUNTER_SOURCES[engine]},
                            "settings": settings.to_dict(), "inputs": inputs,
                            "timesteps": timesteps, "results": results}
        intervals = [r["idle"]["update_interval_s"] for r in results
                     if r["idle"]["update_interval_s"] is not None]
        sections[engine]["counter"]["update_interval_ms"] = \
            1000 * sorted(intervals)[len(intervals) // 2] if intervals else None
    return sections


def _inputs(dataset: str, input_shape: tuple[int, ...], timesteps: int, data_dir=None):
    """The dataset's test images when they load and fit, else seeded synthetic ones."""
    import torch

    from slssnn.errors import SlssnnError

    try:
        from slssnn.training.datasets import load_dataset

        data = load_dataset(dataset, data_dir, timesteps=timesteps)
        if tuple(data.test.images.shape[-3:]) == tuple(input_shape):
            return data.test.images, f"{dataset} test split images, cycled to fill a batch"
    except (SlssnnError, ImportError, OSError, ValueError, TypeError):
        pass
    g = torch.Generator().manual_seed(0)
    return (torch.rand((256, *input_shape), generator=g),
            f"synthetic: uniform [0, 1) images {tuple(input_shape)}, seed 0")


def measure_checkpoint(checkpoint, run: dict[str, Any], run_path: str,
                       batch_sizes: Sequence[int] = DEFAULT_BATCH_SIZES,
                       settings: MeasureSettings | None = None,
                       log: Callable[[str], None] | None = None,
                       data_dir: str | os.PathLike[str] | None = None
                       ) -> dict[str, dict[str, Any]]:
    """Load ``checkpoint``, check it is the network of ``run`` (SlssnnError if not), and
    measure it (:func:`measure_model`) on the run's dataset's test images (read from
    ``data_dir`` where the dataset needs files; synthetic images if they cannot be read)."""
    from slssnn.training.checkpoint import load_checkpoint

    from .workload import check_matches_run

    model, _ = load_checkpoint(checkpoint)
    check_matches_run(model, run, str(checkpoint), str(run_path))
    images, inputs = _inputs(run["dataset"], tuple(model.config.input_shape),
                             model.config.timesteps, data_dir)
    return measure_model(model, images, batch_sizes, settings, inputs=inputs, log=log)
