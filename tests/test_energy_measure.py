"""The measurement loop and the energy counters.

The loop's windowing and statistics are unit tests of OUR logic: they drive
``energy.measure`` with a simulated board (virtual clock, known power, a counter that
refreshes only every ``period`` seconds in whole millijoules, like NVML's). RAPL is read
from a powercap tree written by the test. On this machine torch has no CUDA: the real GPU
path must say so, with no number.
"""

from __future__ import annotations

import bisect
import math
import subprocess
import sys

import pytest
import torch

from slssnn.energy import measure as M
from slssnn.energy.gpu import open_gpu
from slssnn.energy.rapl import open_rapl


class SimulatedBoard:
    """Virtual time; ``busy_w`` during each step, ``idle_w`` while sleeping; the counter
    shows the energy at its last refresh (every ``period_s``, from ``phase_s``), floored to
    ``resolution_j``."""

    def __init__(self, busy_w: float, idle_w: float, step_s: float, period_s: float,
                 resolution_j: float = 1e-3, phase_s: float = 0.0137) -> None:
        self.busy_w, self.idle_w, self.step_s = busy_w, idle_w, step_s
        self.period_s, self.resolution_j, self.phase_s = period_s, resolution_j, phase_s
        self.times, self.energies = [0.0], [1234.5]  # any origin
        self.steps = 0

    def _advance(self, seconds: float, watts: float) -> None:
        self.times.append(self.times[-1] + seconds)
        self.energies.append(self.energies[-1] + seconds * watts)

    def step(self) -> None:
        self._advance(self.step_s, self.busy_w)
        self.steps += 1

    def sleep(self, seconds: float) -> None:
        self._advance(seconds, self.idle_w)

    def now(self) -> float:
        return self.times[-1]

    def energy_at(self, t: float) -> float:
        if t <= self.times[0]:
            return self.energies[0]
        i = bisect.bisect_right(self.times, t) - 1
        if i + 1 >= len(self.times):
            return self.energies[-1]
        t0, t1, e0, e1 = self.times[i], self.times[i + 1], self.energies[i], self.energies[i + 1]
        return e0 + (e1 - e0) * (t - t0) / (t1 - t0)

    def counter(self) -> float:
        refreshed = self.phase_s + math.floor((self.now() - self.phase_s) / self.period_s) \
            * self.period_s
        return math.floor(self.energy_at(refreshed) / self.resolution_j) * self.resolution_j

    def clocks(self) -> M.Clocks:
        return M.Clocks(now=self.now, sleep=self.sleep)


SETTINGS = M.MeasureSettings(window_s=3.0, repeats=5, warmup_s=0.5, idle_s=1.0)


def test_measurement_loop_with_injected_counter():
    """NVML-like counter (50 ms refresh, mJ): J/inference, throughput, power, idle, windows."""
    board = SimulatedBoard(busy_w=300.0, idle_w=60.0, step_s=0.007, period_s=0.05)
    result = M.measure(board.step, 256, board.counter, SETTINGS, board.clocks())
    expected_j = 300.0 * 0.007 / 256  # J per inference, by hand: 8.203e-3
    j = result["j_per_inference"]
    assert j["n"] == 5 and len(result["windows"]) == 5
    assert j["median"] == pytest.approx(expected_j, rel=0.01)
    assert j["min"] <= j["q1"] <= j["median"] <= j["q3"] <= j["max"]
    assert j["max"] / j["min"] < 1.01
    assert result["inferences_per_s"]["median"] == pytest.approx(256 / 0.007, rel=0.01)
    assert result["power_w"]["median"] == pytest.approx(300.0, rel=0.01)
    assert result["idle"]["watts"] == pytest.approx(60.0, rel=0.01)  # shown, not subtracted
    assert result["idle"]["update_interval_s"] == pytest.approx(0.05, abs=0.003)
    for w in result["windows"]:
        # at least the window, at most window + one refresh + one step at the end
        assert SETTINGS.window_s <= w["seconds"] <= SETTINGS.window_s + 0.05 + 0.007 + 1e-9
        assert w["inferences"] == 256 * w["steps"]
    assert result["warmup_steps"] >= 0.5 / 0.007
    assert board.steps > sum(w["steps"] for w in result["windows"])  # warm-up + alignment


@pytest.mark.parametrize("period_s", [0.001, 0.02, 0.1])
def test_windows_start_and_end_on_counter_refreshes(period_s):
    """Counter granularity: a 0.1 s refresh is 20% of a 0.5 s window, yet the result is
    within one step (7 ms / 0.5 s = 1.4%) because both ends sit on refreshes."""
    board = SimulatedBoard(busy_w=250.0, idle_w=40.0, step_s=0.007, period_s=period_s)
    settings = M.MeasureSettings(window_s=0.5, repeats=3, warmup_s=0.1, idle_s=0.3)
    result = M.measure(board.step, 1, board.counter, settings, board.clocks())
    for w in result["windows"]:
        assert w["joules"] / w["steps"] == pytest.approx(250.0 * 0.007, rel=0.02)
    naive = board.counter()  # read without waiting: stale by up to one refresh
    assert board.energy_at(board.now()) - naive <= 250.0 * period_s + 1e-3


def test_statistics_by_hand():
    assert M.spread([5.0, 1.0, 4.0, 2.0, 3.0]) == {"median": 3.0, "min": 1.0, "max": 5.0,
                                                   "q1": 2.0, "q3": 4.0, "n": 5}
    assert M.spread([2.0, 4.0]) == {"median": 3.0, "min": 2.0, "max": 4.0, "q1": 2.5,
                                    "q3": 3.5, "n": 2}
    assert M.spread([7.0])["q1"] == 7.0


def test_statistics_follow_the_windows():
    """Power that changes over time: each window's own figure enters the spread."""
    board = SimulatedBoard(busy_w=100.0, idle_w=30.0, step_s=0.01, period_s=0.02)
    original_step = board.step

    def ramping_step():  # busy power grows 20 W per second of virtual time
        board.busy_w = 100.0 + 20.0 * board.now()
        original_step()

    settings = M.MeasureSettings(window_s=1.0, repeats=4, warmup_s=0.1, idle_s=0.2)
    result = M.measure(ramping_step, 8, board.counter, settings, board.clocks())
    per_window = [w["joules"] / w["inferences"] for w in result["windows"]]
    assert per_window == sorted(per_window)  # later windows, more power
    assert result["j_per_inference"] == M.spread(per_window)
    assert result["j_per_inference"]["max"] > 1.2 * result["j_per_inference"]["min"]


def test_stalled_counter_is_an_error_not_a_number():
    board = SimulatedBoard(busy_w=100.0, idle_w=30.0, step_s=0.01, period_s=0.02)
    with pytest.raises(M.CounterStalled, match="did not change within 2 s"):
        M.measure(board.step, 1, lambda: 42.0, SETTINGS, board.clocks())


def test_bad_settings():
    with pytest.raises(M.SlssnnError, match="window_s must be > 0"):
        M.MeasureSettings(window_s=0)
    with pytest.raises(M.SlssnnError, match="repeats must be >= 1"):
        M.MeasureSettings(repeats=0)


# ---- RAPL (powercap) ----------------------------------------------------------------------

def _domain(root, name, uj, max_uj, label):
    d = root / name
    d.mkdir()
    (d / "energy_uj").write_text(f"{uj}\n")
    (d / "max_energy_range_uj").write_text(f"{max_uj}\n")
    (d / "name").write_text(f"{label}\n")
    return d


def test_rapl_sums_packages_and_unwraps(tmp_path):
    p0 = _domain(tmp_path, "intel-rapl:0", 900_000, 1_000_000, "package-0")
    p1 = _domain(tmp_path, "intel-rapl:1", 10, 1_000_000, "package-1")
    _domain(tmp_path, "intel-rapl:0:0", 5, 1_000_000, "core")  # part of package 0: not added
    counter, reason = open_rapl(tmp_path)
    assert reason is None and counter.names() == ["package-0", "package-1"]
    assert counter() == 0.0
    (p0 / "energy_uj").write_text("950000\n")   # +50,000 uJ
    (p1 / "energy_uj").write_text("20010\n")    # +20,000 uJ
    assert counter() == pytest.approx(0.07)
    (p0 / "energy_uj").write_text("30000\n")    # wrapped: 1,000,000 - 950,000 + 30,000
    assert counter() == pytest.approx(0.07 + 0.08)


def test_rapl_absent_or_unreadable(tmp_path):
    counter, reason = open_rapl(tmp_path / "nothing")
    assert counter is None and "no RAPL package domain" in reason
    d = _domain(tmp_path, "intel-rapl:0", 1, 10, "package-0")
    (d / "energy_uj").unlink()
    (d / "energy_uj").mkdir()  # unreadable as a file
    counter, reason = open_rapl(tmp_path)
    assert counter is None and reason.startswith("RAPL counter not readable")


# ---- the real GPU path on this machine ------------------------------------------------------

@pytest.mark.skipif(torch.cuda.is_available(), reason="this checks the no-CUDA path")
def test_no_cuda_means_not_measured_with_the_reason():
    gpu, reason = open_gpu()
    assert gpu is None
    assert "torch.cuda.is_available() is False" in reason


def test_energy_and_emulator_import_no_lava():
    """The GPU machine has no Lava: measurement, report and emulator must not import it."""
    code = ("import sys, slssnn.energy.gpu, slssnn.energy.measured, slssnn.energy.workload, "
            "slssnn.energy.report, slssnn.lava_runtime.emulator, slssnn.lava_runtime.run; "
            "print(sorted(m for m in sys.modules if m == 'lava' or m.startswith('lava.')))")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                            timeout=120)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "[]"
