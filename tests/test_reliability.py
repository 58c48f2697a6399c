"""Lava runs that time out or are interrupted leave no process and no shared memory behind."""

import os
import signal
import subprocess
import sys
import textwrap
import time
import uuid
from pathlib import Path

import pytest
from corpus import OXFORD
from netfactory import CONV_NET_LAYERS, random_net

from slssnn.export.netx_writer import export_network

OXFORD = OXFORD / "network.net"

LONG_RUN = textwrap.dedent(f"""
    import numpy as np
    from slssnn.lava_runtime.simulate import simulate
    spikes = np.zeros((200, 50000), dtype=np.int64); spikes[:, ::5] = 1
    print("started", flush=True)
    simulate({str(OXFORD)!r}, steps=50000, spikes=spikes, backend="lava")
""")


def processes_marked(marker: str) -> list[int]:
    """PIDs of live processes whose environment carries ``marker``."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            if marker.encode() in (entry / "environ").read_bytes():
                state = (entry / "stat").read_text().rsplit(")", 1)[1].split()[0]
                if state != "Z":
                    found.append(int(entry.name))
        except OSError:
            continue
    return found


def describe(pids: list[int]) -> list[str]:
    """``/proc/PID/stat`` of each process (pid, name, state, ppid, pgid...): what a
    failure message shows of the processes still alive."""
    lines = []
    for pid in pids:
        try:
            lines.append(Path(f"/proc/{pid}/stat").read_text()[:80])
        except OSError:
            lines.append(f"{pid} (gone)")
    return lines


def shm() -> set[str]:
    return set(os.listdir("/dev/shm"))


def held_segments() -> set[str]:
    """Names in /dev/shm that some live process has open or mapped."""
    held = set()
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            links = [os.readlink(fd) for fd in (entry / "fd").iterdir()]
            maps = (entry / "maps").read_text().split()
        except OSError:
            continue
        held.update(Path(p.split(" (deleted)")[0]).name for p in links + maps
                    if p.startswith("/dev/shm/"))
    return held


def leaked(before: set[str]) -> set[str]:
    """Segments created since ``before`` that no live process holds (another Lava run on
    this machine may hold segments of its own meanwhile)."""
    return shm() - before - held_segments()


def _default_signals() -> None:
    """In the child before exec: SIGINT and SIGTERM at their default disposition, as in an
    interactive shell. A suite started in the background (nohup, ``make test &``, some CI
    runners) passes SIGINT on as ignored, and Python then installs no KeyboardInterrupt:
    a SIGINT sent before slssnn installs its handler would be ignored, and the run go on."""
    signal.signal(signal.SIGINT, signal.SIG_DFL)
    signal.signal(signal.SIGTERM, signal.SIG_DFL)


def start(args: list[str], marker: str) -> subprocess.Popen:
    env = dict(os.environ, SLSSNN_TEST_MARKER=marker)
    return subprocess.Popen([sys.executable, *args], env=env, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, preexec_fn=_default_signals)


@pytest.mark.timeout(900)
def test_twenty_interrupted_or_timed_out_runs_leave_nothing_behind(tmp_path):
    tiny = tmp_path / "tiny.net"
    export_network(random_net(layers=[{"type": "conv", "out_channels": 2, "kernel": 3,
                                       "stride": 2, "padding": 0}, {"type": "flatten"},
                                      {"type": "dense", "out_features": 10}],
                              input_shape=(1, 8, 8)), tiny)
    before = shm()
    plan = [("SIGINT", 1.5), ("SIGTERM", 4.0), ("timeout", 2.0), ("SIGINT", 5.0),
            ("SIGTERM", 0.8)] * 4
    for i, (how, delay) in enumerate(plan):
        marker = uuid.uuid4().hex
        if how == "timeout":
            proc = start(["-m", "slssnn", "run", str(tiny), "--backend", "lava", "--timeout",
                          str(delay), "-o", str(tmp_path / "r.json")], marker)
        else:
            proc = start(["-c", LONG_RUN], marker)
            time.sleep(delay)
            proc.send_signal(getattr(signal, how))
        started = time.monotonic()
        try:
            _, err = proc.communicate(timeout=60)
        except subprocess.TimeoutExpired:
            alive = describe([proc.pid, *processes_marked(marker)])
            proc.kill()
            pytest.fail(f"case {i} {how}: still running 60 s later: {alive}")
        stopped_in = time.monotonic() - started
        assert proc.returncode != 0, f"case {i} {how}: the run was not stopped"
        assert stopped_in < 15, f"case {i} {how}: took {stopped_in:.1f} s to stop"
        assert "Traceback" not in err or how != "timeout", err
        time.sleep(0.3)
        assert processes_marked(marker) == [], f"case {i} {how}: processes left behind"
        assert leaked(before) == set(), f"case {i} {how}: shared memory left behind"
    assert not (tmp_path / "r.json").exists()


def test_cli_timeout_is_one_line_exit_2(tmp_path):
    net = tmp_path / "d.net"
    digits_net = random_net(input_shape=(1, 8, 8), layers=[
        *CONV_NET_LAYERS[:-1], {"type": "dense", "out_features": 10}])  # digits' 10 classes
    export_network(digits_net, net)
    proc = start(["-m", "slssnn", "run", str(net), "--dataset", "digits", "--backend", "lava",
                  "--timeout", "0.5", "-o", str(tmp_path / "r.json")], uuid.uuid4().hex)
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 2
    assert err.strip().splitlines()[-1].startswith("slssnn: error: Lava run timed out after 0.5")


def train_args(out: Path, *extra: str) -> list[str]:
    return ["-m", "slssnn", "train", "--epochs", "6", "--timesteps", "2", "--out", str(out),
            *extra]


def test_resume_without_a_checkpoint_is_one_line(tmp_path):
    result = subprocess.run([sys.executable, *train_args(tmp_path / "none", "--resume")],
                            capture_output=True, text=True, timeout=120)
    assert result.returncode == 2
    assert result.stderr.strip().splitlines() == [
        f"slssnn: error: checkpoint {tmp_path / 'none' / 'checkpoint.pt'}: no such file"]


WRITER = textwrap.dedent("""
    import sys
    from slssnn.atomic import write_text
    target, i = sys.argv[1], 0
    print("ready", flush=True)
    while True:
        write_text(target, ("ab"[i % 2]) * 4_000_000)
        i += 1
""")


def test_a_writer_killed_mid_write_leaves_the_old_or_the_new_file(tmp_path):
    target = tmp_path / "record.json"
    target.write_text("a" * 4_000_000)
    for attempt in range(10):
        proc = subprocess.Popen([sys.executable, "-c", WRITER, str(target)],
                                stdout=subprocess.PIPE, text=True)
        proc.stdout.readline()
        time.sleep(0.05 + 0.037 * attempt)
        proc.kill()
        proc.wait()
        text = target.read_text()
        assert len(text) == 4_000_000 and text in ("a" * 4_000_000, "b" * 4_000_000), attempt


@pytest.mark.timeout(300)
def test_killing_the_parent_with_sigkill_leaves_nothing_behind():
    before = shm()
    for delay in (1.0, 4.0):
        marker = uuid.uuid4().hex
        proc = start(["-c", LONG_RUN], marker)
        time.sleep(delay)
        proc.kill()
        proc.communicate(timeout=60)
        deadline = time.monotonic() + 15
        while processes_marked(marker) and time.monotonic() < deadline:
            time.sleep(0.2)
        assert processes_marked(marker) == [], f"killed after {delay} s: processes left"
        assert leaked(before) == set(), f"killed after {delay} s: shared memory left"
