"""The deployment section of an energy report: the run's network planned on a chip, the time
per step and latency from the run's activity, and energy x delay per inference.

``energy_delay`` multiplies the ``loihi`` SNN energy per inference (J) by the latency per
inference (s): J*s per inference, None when either is missing.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from slssnn.errors import SlssnnError

from .chips import Chip, load_chip
from .plan import plan_network
from .timing import estimate_timing

EDP_ESTIMATE = ("loihi", "snn")  # the energy that energy x delay uses


def deployment(run: dict[str, Any], chip: Chip | str = "loihi",
               network: str | Path | None = None) -> dict[str, Any]:
    """``{"chip", "plan", "timing"}`` of ``run`` on ``chip``; the network file is ``network``
    (default: the run's ``network`` field). An unreadable network file gives ``plan: None``
    and a timing that says why (the rest of the report does not need it)."""
    chip = load_chip(chip) if isinstance(chip, str) else chip
    path = Path(network if network is not None else run["network"])
    try:
        from slssnn.export.netx_reader import read_network

        net = read_network(path)
    except SlssnnError as exc:
        return {"chip": chip.to_dict(), "plan": None,
                "timing": {"estimated": False, "chip": chip.name,
                           "reason": f"network file not readable ({exc})"}}
    plan = plan_network(net, chip)
    return {"chip": chip.to_dict(), "plan": plan, "timing": estimate_timing(plan, run, chip)}


def energy_delay(section: dict[str, Any], estimate: dict[str, Any] | None) -> dict[str, Any]:
    """Energy x delay per inference from ``estimate`` (a report estimate) and the timing."""
    timing = section["timing"]
    if estimate is None or not timing["estimated"]:
        reason = timing.get("reason") or f"no {'/'.join(EDP_ESTIMATE)} estimate in the report"
        return {"j_s": None, "reason": reason}
    joules, seconds = estimate["j_per_inference"], timing["latency_s"]
    return {"estimate": estimate["label"], "j_per_inference": joules, "latency_s": seconds,
            "j_s": joules * seconds}
