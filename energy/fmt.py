"""Number formatting and report look-ups shared by the Markdown and the plot."""

from __future__ import annotations

from typing import Any

_JOULE_UNITS = ((1.0, "J"), (1e-3, "mJ"), (1e-6, "µJ"), (1e-9, "nJ"), (1e-12, "pJ"))


def joule_unit(joules: float) -> tuple[float, str]:
    """The SI unit that shows ``joules`` as 1..999: ``(size of the unit in J, its symbol)``."""
    for size, symbol in _JOULE_UNITS:
        if abs(joules) >= size:
            return size, symbol
    return _JOULE_UNITS[-1]


def format_joules(joules: float | None) -> str:
    """``2.36e-09`` -> ``"2.36 nJ"``; None -> ``"n/a"``."""
    if joules is None:
        return "n/a"
    size, symbol = joule_unit(joules)
    return f"{joules / size:.3g} {symbol}"


_SECOND_UNITS = ((1.0, "s"), (1e-3, "ms"), (1e-6, "µs"), (1e-9, "ns"))


def format_seconds(seconds: float | None) -> str:
    """``1.25e-06`` -> ``"1.25 µs"``; None -> ``"n/a"``."""
    if seconds is None:
        return "n/a"
    for size, symbol in _SECOND_UNITS:
        if abs(seconds) >= size:
            return f"{seconds / size:.3g} {symbol}"
    return f"{seconds / 1e-9:.3g} ns"


def format_count(value: float | None) -> str:
    """A count per inference: integers with thousands separators, others to 2 decimals."""
    if value is None:
        return "n/a"
    if float(value).is_integer():
        return f"{int(value):,}"
    return f"{value:,.2f}"


def format_ratio(value: float | None) -> str:
    """``12.34`` -> ``"12.3x"``; None -> ``"n/a"``."""
    return "n/a" if value is None else f"{value:.3g}x"


def find_estimate(report: dict[str, Any], model: str, formula: str) -> dict[str, Any] | None:
    """The report's estimate of ``model``'s ``formula`` (e.g. ``"loihi"``, ``"snn"``), or None."""
    for entry in report["estimates"]:
        if entry["model"] == model and entry["formula"] == formula:
            return entry
    return None


def breakdown_estimate(report: dict[str, Any]) -> dict[str, Any]:
    """The estimate whose per-layer breakdown the report shows (``report["breakdown"]``)."""
    found = find_estimate(report, report["breakdown"]["model"], report["breakdown"]["formula"])
    if found is None:
        raise ValueError(f"report['breakdown'] names no estimate: {report['breakdown']}")
    return found
