"""The GPU side: NVML's total-energy counter of the CUDA device torch uses.

``nvmlDeviceGetTotalEnergyConsumption`` (``nvidia-ml-py``, module ``pynvml``) returns the
energy in millijoules the GPU board has used since the driver was loaded (Volta and
later); :class:`NvmlGpu` reads it as joules for :mod:`.measure`. The NVML device is matched
to torch's CUDA device by UUID (then PCI bus id; a single GPU needs neither), so
``CUDA_VISIBLE_DEVICES`` cannot make us read the wrong board.

:func:`open_gpu` returns the device or the reason it cannot measure, in this order:
torch without CUDA or no CUDA device, ``pynvml`` not installed, NVML not starting, the
device not found, the counter not supported. Nothing here runs without being asked, and
nothing is imported from lava.
"""

from __future__ import annotations

from typing import Any

MJ_PER_J = 1000.0


def cuda_unavailable_reason() -> str | None:
    """Why torch cannot run on a CUDA device here, or None when it can."""
    try:
        import torch
    except ImportError:
        return "torch is not installed"
    if torch.version.cuda is None:
        return (f"torch.cuda.is_available() is False (torch {torch.__version__} is a "
                "CPU-only build)")
    if not torch.cuda.is_available():
        return "torch.cuda.is_available() is False (no CUDA device or driver)"
    return None


def _text(value: Any) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)


def _try(fn, *args) -> Any:
    try:
        return fn(*args)
    except Exception:  # NVMLError subclasses, missing functions in old bindings
        return None


class NvmlGpu:
    """One NVML device: its energy counter (J), clocks and identity."""

    def __init__(self, nvml: Any, handle: Any, cuda_index: int) -> None:
        self.nvml = nvml
        self.handle = handle
        self.cuda_index = cuda_index

    def energy_j(self) -> float:
        """The board's total energy counter, in joules (NVML reports integer mJ)."""
        return self.nvml.nvmlDeviceGetTotalEnergyConsumption(self.handle) / MJ_PER_J

    def clocks_mhz(self) -> dict[str, int | None]:
        """Current SM, memory and graphics clocks in MHz (None where unreadable)."""
        n = self.nvml
        return {"sm": _try(n.nvmlDeviceGetClockInfo, self.handle, n.NVML_CLOCK_SM),
                "memory": _try(n.nvmlDeviceGetClockInfo, self.handle, n.NVML_CLOCK_MEM),
                "graphics": _try(n.nvmlDeviceGetClockInfo, self.handle, n.NVML_CLOCK_GRAPHICS)}

    def info(self) -> dict[str, Any]:
        """Name, driver, CUDA versions, UUID, power limit (W), max clocks (MHz)."""
        import torch

        n, h = self.nvml, self.handle
        cuda_driver = _try(n.nvmlSystemGetCudaDriverVersion)
        limit_mw = _try(n.nvmlDeviceGetEnforcedPowerLimit, h)
        return {
            "name": _text(n.nvmlDeviceGetName(h)),
            "driver": _text(_try(n.nvmlSystemGetDriverVersion)),
            "cuda_driver": None if cuda_driver is None
            else f"{cuda_driver // 1000}.{cuda_driver % 1000 // 10}",
            "cuda_runtime_torch": torch.version.cuda,
            "torch": torch.__version__,
            "cuda_index": self.cuda_index,
            "uuid": _text(_try(n.nvmlDeviceGetUUID, h)),
            "power_limit_w": None if limit_mw is None else limit_mw / 1000.0,
            "max_clocks_mhz": {"sm": _try(n.nvmlDeviceGetMaxClockInfo, h, n.NVML_CLOCK_SM),
                               "memory": _try(n.nvmlDeviceGetMaxClockInfo, h,
                                              n.NVML_CLOCK_MEM)},
        }

    def close(self) -> None:
        _try(self.nvml.nvmlShutdown)


def _find_handle(nvml: Any, cuda_index: int) -> Any:
    import torch

    props = torch.cuda.get_device_properties(cuda_index)
    uuid = getattr(props, "uuid", None)
    if uuid is not None:  # torch renders it bare, NVML names it "GPU-<uuid>"
        text = str(uuid) if str(uuid).startswith("GPU-") else f"GPU-{uuid}"
        handle = _try(nvml.nvmlDeviceGetHandleByUUID, text.encode())
        if handle is not None:
            return handle
    if hasattr(props, "pci_bus_id"):
        bus = (f"{getattr(props, 'pci_domain_id', 0):08X}:{props.pci_bus_id:02X}:"
               f"{props.pci_device_id:02X}.0")
        handle = _try(nvml.nvmlDeviceGetHandleByPciBusId, bus.encode())
        if handle is not None:
            return handle
    if nvml.nvmlDeviceGetCount() == 1:
        return nvml.nvmlDeviceGetHandleByIndex(0)
    return None


def open_gpu(cuda_index: int = 0) -> tuple[NvmlGpu | None, str | None]:
    """``(gpu, None)`` when CUDA device ``cuda_index``'s energy counter reads, else
    ``(None, reason)``."""
    reason = cuda_unavailable_reason()
    if reason:
        return None, reason
    try:
        import pynvml
    except ImportError:
        return None, "nvidia-ml-py is not installed (import pynvml failed)"
    try:
        pynvml.nvmlInit()
    except pynvml.NVMLError as exc:
        return None, f"NVML did not start ({_text(exc)})"
    try:
        handle = _find_handle(pynvml, cuda_index)
        if handle is None:
            raise LookupError(f"no NVML device matches CUDA device {cuda_index}")
        gpu = NvmlGpu(pynvml, handle, cuda_index)
        gpu.energy_j()
    except (pynvml.NVMLError, LookupError) as exc:
        _try(pynvml.nvmlShutdown)
        return None, f"NVML total-energy counter not readable ({_text(exc)})"
    return gpu, None
