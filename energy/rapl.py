"""CPU package energy from Linux RAPL through powercap (``/sys/class/powercap``).

Each CPU package is a domain ``intel-rapl:N`` (AMD's RAPL uses the same name) with
``energy_uj``, a counter in microjoules that wraps to 0 after ``max_energy_range_uj``.
Sub-domains (``intel-rapl:N:M``: core, uncore, dram) are parts of a package or outside it
and are not added. The counter read here is the sum over packages, unwrapped::

    delta = now - last                          if now >= last
    delta = now + max_energy_range_uj - last    otherwise (one wrap)

so it must be read at least once per wrap period (minutes at full power). ``energy_uj`` is
readable only by root on most kernels since 2020; where it is not readable, or absent (a VM,
a container without powercap, a non-x86 host), :func:`open_rapl` returns the reason.
"""

from __future__ import annotations

import os
import re
from pathlib import Path

POWERCAP = Path("/sys/class/powercap")
UJ_PER_J = 1e6
_PACKAGE = re.compile(r"^intel-rapl:\d+$")


class RaplCounter:
    """Cumulative CPU package energy in joules since construction (wraparound handled)."""

    def __init__(self, domains: list[Path]) -> None:
        self.domains = list(domains)
        self._max = [int((d / "max_energy_range_uj").read_text()) for d in self.domains]
        self._last = [self._raw(d) for d in self.domains]
        self._total_uj = 0

    @staticmethod
    def _raw(domain: Path) -> int:
        return int((domain / "energy_uj").read_text())

    def __call__(self) -> float:
        """Joules the packages used since this counter was made."""
        for i, domain in enumerate(self.domains):
            now = self._raw(domain)
            delta = now - self._last[i]
            if delta < 0:  # wrapped past max_energy_range_uj
                delta += self._max[i]
            self._total_uj += delta
            self._last[i] = now
        return self._total_uj / UJ_PER_J

    def names(self) -> list[str]:
        """The domains' ``name`` files (``package-0``, ...)."""
        return [_read_name(d) for d in self.domains]


def _read_name(domain: Path) -> str:
    try:
        return (domain / "name").read_text().strip()
    except OSError:
        return domain.name


def open_rapl(root: str | os.PathLike[str] = POWERCAP) -> tuple[RaplCounter | None, str | None]:
    """``(counter, None)`` when every package's ``energy_uj`` is readable, else ``(None, why)``."""
    root = Path(root)
    domains = sorted(p for p in root.glob("intel-rapl:*") if _PACKAGE.match(p.name)) \
        if root.is_dir() else []
    if not domains:
        return None, (f"no RAPL package domain under {root} (no powercap here: a VM or "
                      "container without it, or not an Intel/AMD Linux host)")
    try:
        counter = RaplCounter(domains)
        counter()
    except PermissionError as exc:
        return None, f"RAPL counter not readable ({exc.filename}: permission denied; needs root)"
    except (OSError, ValueError) as exc:
        return None, f"RAPL counter not readable ({exc.__class__.__name__}: {exc})"
    return counter, None
