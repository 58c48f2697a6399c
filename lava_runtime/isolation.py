"""Run Lava in a forked worker that can always be stopped, leaving nothing behind.

Lava runs every process of a network in its own OS process and talks to them
through shared memory. A run that raises, deadlocks or is interrupted can
leave those processes and ``/dev/shm`` segments behind, and ``stop()`` itself
can hang. So slssnn runs Lava in a forked worker that leads its own process
group. The parent waits for it; on a timeout, SIGINT or SIGTERM it collects
the shared-memory segments every process of the group has open, kills the
group with SIGKILL and unlinks those segments. If the parent itself is killed
(even by SIGKILL), a watchdog thread in the worker ends it and a janitor it
forks does the same. Linux only
(reads ``/proc``).
"""

from __future__ import annotations

import os
import pickle
import signal
import tempfile
import threading
import time
import traceback
from collections.abc import Callable
from pathlib import Path
from typing import Any

from slssnn.errors import SlssnnError

SHM_DIR = "/dev/shm/"


class LavaInterrupted(SlssnnError):
    """A Lava run was stopped by a signal; its processes and segments were cleaned up."""


def group_members(pgid: int) -> list[int]:
    """PIDs of the live processes in process group ``pgid``."""
    members = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        fields = stat[stat.rindex(")") + 2:].split()  # after "pid (comm) "
        if int(fields[2]) == pgid and fields[0] != "Z":
            members.append(int(entry.name))
    return members


def shared_memory_of(pids: list[int]) -> set[str]:
    """Paths under /dev/shm that these processes have open or mapped."""
    paths: set[str] = set()
    for pid in pids:
        proc = Path(f"/proc/{pid}")
        try:
            for fd in (proc / "fd").iterdir():
                target = os.readlink(fd)
                if target.startswith(SHM_DIR):
                    paths.add(target.split(" (deleted)")[0])
            for line in (proc / "maps").read_text().splitlines():
                parts = line.split(maxsplit=5)
                if len(parts) == 6 and parts[5].startswith(SHM_DIR):
                    paths.add(parts[5].split(" (deleted)")[0])
        except OSError:
            continue
    return paths


def _signal(pid: int, signum: int) -> None:
    try:
        os.kill(pid, signum)
    except ProcessLookupError:
        pass


def orphan_segments(since: float, ignore: int | None = None) -> set[str]:
    """Segments in /dev/shm created at or after ``since`` (epoch s) that no live process
    (but ``ignore``) holds."""
    try:
        names = os.listdir(SHM_DIR)
    except OSError:
        return set()
    recent = set()
    for name in names:
        try:
            if os.stat(SHM_DIR + name).st_ctime >= since:
                recent.add(SHM_DIR + name)
        except OSError:
            continue
    if not recent:
        return recent
    live = [int(p.name) for p in Path("/proc").iterdir()
            if p.name.isdigit() and int(p.name) != ignore]
    return recent - shared_memory_of(live)


def kill_group(pgid: int, spare: int | None = None, since: float | None = None) -> None:
    """Kill every process of the group (but ``spare``) and unlink the segments they held.

    The members are frozen with SIGSTOP first (until no new member appears),
    then killed, and the group is waited for (up to 2 s, killing any member still
    listed) so that none keeps the caller's pipes open after it returns. The
    segments they had open are unlinked, and so are segments created since
    ``since`` that no live process holds (a segment can be in flight between two
    processes when the group is frozen).
    """
    frozen: set[int] = set()
    for _ in range(10):
        members = [pid for pid in group_members(pgid) if pid != spare and pid not in frozen]
        if not members:
            break
        for pid in members:
            _signal(pid, signal.SIGSTOP)
        frozen.update(members)
        time.sleep(0.01)
    segments = shared_memory_of(sorted(frozen) + ([spare] if spare else []))
    for pid in frozen:
        _signal(pid, signal.SIGKILL)
    deadline = time.monotonic() + 2.0
    while time.monotonic() < deadline:  # until the group is gone (a straggler is killed too)
        left = [pid for pid in group_members(pgid) if pid != spare]
        if not left:
            break
        for pid in left:
            _signal(pid, signal.SIGKILL)
        time.sleep(0.02)
    if since is not None:
        segments |= orphan_segments(since)
    for path in segments:
        try:
            os.unlink(path)
        except OSError:
            pass


def _watch_parent(parent: int, since: float) -> None:
    """In the worker: if the parent dies (even by SIGKILL), clean up the group and exit.

    The worker's main thread may be starting Lava processes and creating segments
    at that moment, so the worker exits at once and a janitor forked here (one
    thread) cleans up once the worker is gone: then nothing of the group is left
    to create a segment after the janitor's last look.
    """
    while os.getppid() == parent:
        time.sleep(0.2)
    worker = os.getpid()
    if os.fork() == 0:
        try:
            _clean_up_after(worker, since)
        finally:
            os._exit(0)
    os._exit(1)


def _clean_up_after(worker: int, since: float, patience: float = 10.0) -> None:
    """In the janitor: once ``worker`` has exited, kill the rest of its group and unlink
    every segment created since ``since`` that no other live process holds (the janitor
    inherited the worker's mappings; it holds them only until it exits)."""
    me, group = os.getpid(), os.getpgid(0)
    deadline = time.monotonic() + patience
    while os.getppid() == worker and time.monotonic() < deadline:
        time.sleep(0.01)
    kill_group(group, spare=me, since=since)
    while any(pid != me for pid in group_members(group)) and time.monotonic() < deadline:
        time.sleep(0.05)
    for path in orphan_segments(since, ignore=me):
        try:
            os.unlink(path)
        except OSError:
            pass


def _child(fn: Callable[..., Any], args: tuple, result_path: Path, parent: int,
           since: float) -> None:
    os.setpgid(0, 0)
    signal.signal(signal.SIGINT, signal.SIG_DFL)
    signal.signal(signal.SIGTERM, signal.SIG_DFL)
    threading.Thread(target=_watch_parent, args=(parent, since), daemon=True).start()
    try:
        payload = ("ok", fn(*args))
    except SlssnnError as exc:
        payload = ("user", str(exc))
    except BaseException as exc:  # report any failure to the parent, then exit
        payload = ("bug", f"{exc.__class__.__name__}: {exc}\n{traceback.format_exc()}")
    with open(result_path, "wb") as handle:
        pickle.dump(payload, handle, protocol=pickle.HIGHEST_PROTOCOL)


class _Signalled(Exception):
    def __init__(self, signum: int) -> None:
        super().__init__(signum)
        self.signum = signum


def run_isolated(fn: Callable[..., Any], args: tuple = (), timeout: float | None = None,
                 what: str = "Lava run") -> Any:
    """Call ``fn(*args)`` in a forked worker process group; return its (picklable) result.

    Raises ``SlssnnError`` on a timeout (after ``timeout`` seconds) and
    :class:`LavaInterrupted` on SIGINT/SIGTERM, in both cases after killing the
    worker's whole process group and unlinking its shared memory.
    """
    if timeout is not None and timeout <= 0:
        raise SlssnnError(f"timeout must be > 0 seconds, got {timeout}")
    with tempfile.TemporaryDirectory(prefix="slssnn-lava-") as tmp:
        result_path = Path(tmp) / "result.pickle"

        def on_signal(signum: int, _frame: Any) -> None:
            raise _Signalled(signum)

        # a signal this process ignores (SIGINT in a background job, where Python itself
        # installs no KeyboardInterrupt) stays ignored during the run too
        previous = {s: signal.signal(s, on_signal) for s in (signal.SIGINT, signal.SIGTERM)
                    if signal.getsignal(s) is not signal.SIG_IGN}
        parent, since = os.getpid(), time.time() - 1.0
        pid = os.fork()
        if pid == 0:  # the worker
            code = 0
            try:
                _child(fn, args, result_path, parent, since)
            except BaseException:
                code = 1
            os._exit(code)
        try:
            os.setpgid(pid, pid)
        except OSError:
            pass  # the child already did it (or exited)
        deadline = None if timeout is None else time.monotonic() + timeout
        try:
            while os.waitpid(pid, os.WNOHANG) == (0, 0):
                if deadline is not None and time.monotonic() > deadline:
                    raise SlssnnError(f"{what} timed out after {timeout:g} s; stopped it")
                time.sleep(0.02)
        except _Signalled as sig:
            kill_group(pid, since=since)
            name = signal.Signals(sig.signum).name
            raise LavaInterrupted(f"{what} interrupted by {name}; stopped it") from None
        except BaseException:
            kill_group(pid, since=since)
            raise
        finally:
            for s, handler in previous.items():
                signal.signal(s, handler)
        kill_group(pid, since=since)  # anything the worker left (it should be nothing)
        if not result_path.exists():
            raise SlssnnError(f"{what} ended without a result (worker crashed)")
        with open(result_path, "rb") as handle:
            status, value = pickle.load(handle)
    if status == "user":
        raise SlssnnError(value)
    if status == "bug":  # one line for the user; the worker's traceback with --debug
        summary = value.splitlines()[0]
        raise SlssnnError(f"{what} failed in Lava: {summary}") from RuntimeError(value)
    return value
