"""The measurement loop: energy per inference from a cumulative energy counter, over windows.

Hardware energy counters (NVML's total-energy counter in mJ, RAPL's ``energy_uj``) are
cumulative and are refreshed only every so often (NVML: every 20-100 ms). Reading one at
arbitrary times therefore misattributes up to one refresh period at each end of a window.
This loop aligns both ends of every window to a counter refresh:

1. idle: with nothing running, wait for a refresh (``e0`` at ``t0``), sleep about
   ``idle_s``, wait for the next refresh (``e1`` at ``t1``): idle power
   ``P_idle = (e1 - e0) / (t1 - t0)`` W, reported beside the result, never subtracted.
   The gaps between the refreshes seen while idle give the counter's update interval;
2. warm-up: run ``step`` for ``warmup_s`` (and at least ``min_warmup_steps`` times);
3. each of ``repeats`` windows: keep running ``step`` until the counter refreshes (``e0``
   at ``t0``), run ``step`` until ``t - t0 >= window_s``, then keep running it until the
   counter refreshes again (``e1`` at ``t1``). With ``n`` steps counted after ``t0``::

       J per inference = (e1 - e0) / (n * batch_size)
       inferences/s    = n * batch_size / (t1 - t0)
       power           = (e1 - e0) / (t1 - t0)   W

   Work never pauses at a window's edges, so the counter's energy and the counted steps
   cover the same interval to within one step.

``step`` must not return before its work is done (a CUDA step synchronises). The counter
and the clock are passed in: the unit tests drive this loop with a simulated counter.
Statistics over the windows: median, min, max and the quartiles (inclusive method).
"""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from typing import Any

from slssnn.errors import SlssnnError

Counter = Callable[[], float]
"""Reads a cumulative energy counter, in joules (any origin; it must not go backwards)."""


@dataclass(frozen=True)
class MeasureSettings:
    """How long to measure: seconds of idle, warm-up and each window; number of windows.

    ``tick_timeout_s`` bounds each wait for a counter refresh; ``poll_s`` is the sleep
    between idle counter reads.
    """

    window_s: float = 3.0
    repeats: int = 5
    warmup_s: float = 1.0
    idle_s: float = 2.0
    min_warmup_steps: int = 3
    tick_timeout_s: float = 2.0
    poll_s: float = 0.002

    def __post_init__(self) -> None:
        for name in ("window_s", "warmup_s", "idle_s", "tick_timeout_s", "poll_s"):
            if not getattr(self, name) > 0:
                raise SlssnnError(f"measurement setting {name} must be > 0 seconds, "
                                  f"not {getattr(self, name)!r}")
        if self.repeats < 1:
            raise SlssnnError(f"measurement setting repeats must be >= 1, not {self.repeats}")

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


class CounterStalled(SlssnnError):
    """The energy counter did not change within the timeout: no measurement is possible."""


@dataclass(frozen=True)
class Window:
    """One measurement window: ``seconds`` between two counter refreshes, ``joules`` the
    counter advanced by, ``steps`` calls of ``step`` completed in between."""

    seconds: float
    joules: float
    steps: int


class Clocks:
    """The loop's view of time: ``now()`` in seconds and ``sleep(seconds)``."""

    def __init__(self, now: Callable[[], float] = time.perf_counter,
                 sleep: Callable[[float], None] = time.sleep) -> None:
        self.now = now
        self.sleep = sleep


def wait_for_refresh(counter: Counter, clocks: Clocks, timeout_s: float,
                     between: Callable[[], None]) -> tuple[float, float, int]:
    """Call ``between`` until ``counter()`` changes; return ``(new value, time, calls)``.

    Raises CounterStalled when the value did not change for ``timeout_s`` seconds.
    """
    start_value, start = counter(), clocks.now()
    calls = 0
    while True:
        between()
        calls += 1
        value, now = counter(), clocks.now()
        if value != start_value:
            return value, now, calls
        if now - start > timeout_s:
            raise CounterStalled(f"energy counter did not change within {timeout_s:g} s")


def idle_power(counter: Counter, clocks: Clocks, settings: MeasureSettings) -> dict[str, Any]:
    """Idle power (W) between two refreshes about ``idle_s`` apart, and the refresh interval.

    Returns ``{"watts", "seconds", "joules", "update_interval_s"}``; ``update_interval_s``
    is the median gap between the refreshes seen (None if fewer than two gaps were seen).
    """
    def poll() -> None:
        clocks.sleep(settings.poll_s)

    e0, t0, _ = wait_for_refresh(counter, clocks, settings.tick_timeout_s, poll)
    ticks, value, now = [t0], e0, t0
    while now - t0 < settings.idle_s:
        value, now, _ = wait_for_refresh(counter, clocks, settings.tick_timeout_s, poll)
        ticks.append(now)
    gaps = [b - a for a, b in zip(ticks, ticks[1:], strict=False)]
    return {"watts": (value - e0) / (now - t0), "seconds": now - t0, "joules": value - e0,
            "update_interval_s": statistics.median(gaps) if len(gaps) >= 2 else None}


def warm_up(step: Callable[[], None], clocks: Clocks, settings: MeasureSettings) -> int:
    """Run ``step`` for ``warmup_s`` seconds and at least ``min_warmup_steps`` times."""
    start, calls = clocks.now(), 0
    while calls < settings.min_warmup_steps or clocks.now() - start < settings.warmup_s:
        step()
        calls += 1
    return calls


def measure_window(step: Callable[[], None], counter: Counter, clocks: Clocks,
                   settings: MeasureSettings) -> Window:
    """One window of at least ``window_s`` seconds, both ends on counter refreshes."""
    e0, t0, _ = wait_for_refresh(counter, clocks, settings.tick_timeout_s, step)
    steps = 0
    while clocks.now() - t0 < settings.window_s:
        step()
        steps += 1
    e1, t1, tail = wait_for_refresh(counter, clocks, settings.tick_timeout_s, step)
    return Window(seconds=t1 - t0, joules=e1 - e0, steps=steps + tail)


def spread(values: list[float]) -> dict[str, float]:
    """``{"median", "min", "max", "q1", "q3", "n"}`` of ``values`` (quartiles inclusive)."""
    if len(values) == 1:
        q1 = q3 = values[0]
    else:
        q1, _, q3 = statistics.quantiles(values, n=4, method="inclusive")
    return {"median": statistics.median(values), "min": min(values), "max": max(values),
            "q1": q1, "q3": q3, "n": len(values)}


def measure(step: Callable[[], None], batch_size: int, counter: Counter,
            settings: MeasureSettings, clocks: Clocks | None = None) -> dict[str, Any]:
    """Idle power, warm-up, then ``repeats`` windows of ``step`` (``batch_size`` inferences).

    Returns ``{"batch_size", "idle": idle_power(...), "warmup_steps",
    "j_per_inference": spread, "inferences_per_s": spread, "power_w": spread,
    "windows": [{"seconds", "joules", "steps", "inferences"}, ...]}``.
    """
    clocks = clocks or Clocks()
    idle = idle_power(counter, clocks, settings)
    warmup_steps = warm_up(step, clocks, settings)
    windows = [measure_window(step, counter, clocks, settings) for _ in range(settings.repeats)]
    for w in windows:
        if w.joules <= 0 or w.steps == 0:
            raise CounterStalled(f"a {w.seconds:.2f} s window saw {w.joules:g} J over "
                                 f"{w.steps} steps: the counter is not usable")
    per_inference = [w.joules / (w.steps * batch_size) for w in windows]
    return {
        "batch_size": batch_size,
        "idle": idle,
        "warmup_steps": warmup_steps,
        "j_per_inference": spread(per_inference),
        "inferences_per_s": spread([w.steps * batch_size / w.seconds for w in windows]),
        "power_w": spread([w.joules / w.seconds for w in windows]),
        "windows": [{**asdict(w), "inferences": w.steps * batch_size} for w in windows],
    }
