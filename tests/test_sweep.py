"""slssnn sweep: cells as their own processes, resume after a kill, collect, the Pareto front."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from slssnn.errors import SlssnnError
from slssnn.sweep import parse_cell
from slssnn.sweep_report import summarize

TINY = ["--dataset", "digits", "--epochs", "1", "--limit-train", "32", "--limit", "20"]


def sweep(out: Path, *args: str, **kwargs) -> subprocess.Popen:
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    return subprocess.Popen([sys.executable, "-m", "slssnn", "sweep", *TINY, "--out", str(out),
                             *args], stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                            text=True, env=env, start_new_session=True, **kwargs)


@pytest.mark.timeout(600)
def test_sweep_resumes_after_a_kill(tmp_path):
    out = tmp_path / "sweep"
    first = out / "T1-seed0" / "cell.json"
    proc = sweep(out, "--timesteps", "1,2")
    deadline = time.monotonic() + 400
    while not first.is_file() and proc.poll() is None and time.monotonic() < deadline:
        time.sleep(0.2)
    assert first.is_file(), proc.communicate()[0]
    os.killpg(proc.pid, signal.SIGKILL)  # the sweep and the cell it is running
    proc.wait()
    assert not (out / "T2-seed0" / "cell.json").is_file()
    stamp = first.stat().st_mtime_ns
    output = sweep(out, "--timesteps", "1,2").communicate(timeout=400)[0]
    assert "[1/2] T=1 seed=0: finished, reused" in output, output
    assert "[2/2] T=2 seed=0: running" in output
    assert first.stat().st_mtime_ns == stamp  # the finished cell was not redone
    table = json.loads((out / "sweep.json").read_text())["per_timesteps"]
    assert [x["timesteps"] for x in table] == [1, 2]
    for x in table:
        assert x["samples"] == 20 and x["engines_agree"]
        assert x["latency_s"] > 0 and x["energy_j"]["loihi SNN"] > 0
    assert (out / "sweep.png").stat().st_size > 0 and "| T |" in (out / "sweep.md").read_text()
    # --collect trains nothing and builds the same table from the cells
    collected = subprocess.run([sys.executable, "-m", "slssnn", "sweep", "--collect", "--out",
                                str(out)], capture_output=True, text=True, timeout=120)
    assert collected.returncode == 0, collected.stderr
    assert json.loads((out / "sweep.json").read_text())["per_timesteps"] == table


def test_parse_cell():
    assert parse_cell("T=4,seed=1") == (4, 1)
    for bad in ("T=0,seed=1", "4,1", "T=4"):
        with pytest.raises(SlssnnError, match="expected T=N,seed=S"):
            parse_cell(bad)


def test_collect_without_cells_is_one_line(tmp_path):
    done = subprocess.run([sys.executable, "-m", "slssnn", "sweep", "--collect", "--out",
                           str(tmp_path)], capture_output=True, text=True, timeout=120)
    assert done.returncode == 2
    assert done.stderr.strip() == (f"slssnn: error: sweep folder {tmp_path}: no finished cells "
                                   "(T*-seed*/cell.json)")


def row(t: int, seed: int, accuracy: float, joules: float) -> dict:
    return {"timesteps": t, "seed": seed, "samples": 10, "energy_j": {"loihi SNN": joules},
            "accuracy_emulator": accuracy, "accuracy_lava": None,
            "accuracy_quantized_pytorch": accuracy, "spikes_per_inference": 1.0,
            "synops_per_inference": 1.0, "latency_s": 1e-6 * t, "time_per_step_s": 1e-6,
            "inferences_per_s": 1e6 / t, "energy_delay_j_s": joules * 1e-6 * t, "cores": 1,
            "pytorch_equals_emulator": True}


def test_pareto_front():
    # T=2 is less accurate than T=1 at more energy: dominated. T=4 and T=8 trade.
    rows = [row(1, 0, 0.80, 1e-6), row(2, 0, 0.70, 2e-6), row(4, 0, 0.95, 4e-6),
            row(4, 1, 0.97, 4e-6), row(8, 0, 0.96, 8e-6)]
    lines = summarize(rows)
    assert [x["pareto"] for x in lines] == [True, False, True, False]
    assert lines[2]["accuracy_emulator"] == pytest.approx(0.96)
    assert lines[2]["accuracy_emulator_per_seed"] == [0.95, 0.97]
