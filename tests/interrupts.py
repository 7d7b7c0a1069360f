"""Interrupt a `neurodeploy` command at a chosen point and account for what it leaves behind
(used by tests/integration/test_interrupts.py and benchmarks/interrupts.py).

The command runs in its own session, as from a terminal: the signal goes to the whole process
group (what Ctrl-C does) or to the command's process alone (``kill PID``). The run's
shared-memory segments are the /dev/shm entries its processes map, sampled until the signal
(other runs on the machine create their own, so a before/after listing would blame them on
this one). Processes are the members of its process group, read from /proc.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass

from neurodeploy.shards import descendants

#: when the signal is sent: seconds after start, or after the first segment of Lava's channels
#: (``psm_*``, multiprocessing.shared_memory) appears, i.e. while its runtime starts its
#: workers, or some seconds after that (running)
STAGES = {"startup": ("start", 1.0), "workers starting": ("channels", 0.0),
          "running": ("channels", 3.0), "ray running": ("ray", 3.0)}
#: a Ray worker's command line while it runs a task of ``evaluate --workers`` (Ray names the
#: process after the task)
RAY_TASK = "ray::_correct"
POLL = 0.02  #: seconds between looks at /proc
GRACE = 5.0  #: seconds a process may outlive the command (Python's resource tracker exits
#: just after its parent) before it counts as left behind


@dataclass(frozen=True)
class Outcome:
    stage: str
    signal: str
    to: str  #: "group" (Ctrl-C) or "process" (kill PID)
    exit_code: int | None  #: None: still running at the timeout (then killed)
    seconds_to_exit: float
    stderr: str
    processes_at_signal: int
    segments_at_signal: int
    left_processes: list[str]  #: "pid command" of group members alive GRACE s after exit
    left_segments: list[str]  #: segments the run mapped that still exist after it exited

    def as_dict(self) -> dict:
        return asdict(self)


def interrupt(argv: Sequence[str], *, stage: str, signum: int = signal.SIGINT,
              to_group: bool = True, timeout: float = 30.0) -> Outcome:
    """Run ``python -m neurodeploy.cli *argv``, signal it at ``stage``, and watch it end."""
    proc = subprocess.Popen([sys.executable, "-m", "neurodeploy.cli", *argv],
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
                            start_new_session=True, preexec_fn=_as_in_a_terminal)
    segments: set[str] = set()
    try:
        _wait_for(stage, proc, segments)
        members = sorted(set(_group(proc.pid)) | set(descendants(proc.pid)))
        segments |= _mapped(members)
        sent = time.monotonic()
        (os.killpg if to_group else os.kill)(proc.pid, signum)
        try:
            _, stderr = proc.communicate(timeout=timeout)
            code = proc.returncode
        except subprocess.TimeoutExpired:
            code, stderr = None, "(no exit within the timeout)"
        seconds = time.monotonic() - sent
    finally:
        _kill_group(proc)
    left = _left_after_grace(proc.pid, members)
    leaked = sorted(s for s in segments if os.path.exists(f"/dev/shm/{s}"))
    _clean_up(proc.pid, leaked, left)
    return Outcome(stage, signal.Signals(signum).name, "group" if to_group else "process", code,
                   round(seconds, 3), stderr, len(members), len(segments), left, leaked)


def _as_in_a_terminal() -> None:
    """A shell starts background jobs (and nohup their commands) with SIGINT ignored, which
    Python keeps ignoring: give the command the default handling a terminal gives it."""
    for signum in (signal.SIGINT, signal.SIGTERM):
        signal.signal(signum, signal.SIG_DFL)
    signal.pthread_sigmask(signal.SIG_SETMASK, [])


def _wait_for(stage: str, proc: subprocess.Popen, segments: set[str]) -> None:
    """Return when ``stage`` is reached, collecting the segments the run maps meanwhile."""
    event, delay = STAGES[stage]
    if event == "ray":
        while not any(_command(pid).startswith(RAY_TASK) for pid in descendants(proc.pid)):
            if proc.poll() is not None:
                raise RuntimeError(f"the command ended before {stage}: {proc.stderr.read()}")
            time.sleep(POLL)
    if event == "channels":
        while not any(name.startswith("psm_") for name in segments):
            if proc.poll() is not None:
                raise RuntimeError(f"the command ended before {stage}: {proc.stderr.read()}")
            segments |= _mapped(_group(proc.pid))
            time.sleep(POLL)
    end = time.monotonic() + delay
    while time.monotonic() < end and proc.poll() is None:
        segments |= _mapped(_group(proc.pid))
        time.sleep(POLL)


def _group(pgid: int) -> list[int]:
    """Live (not zombie) processes of a process group."""
    members = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat") as f:
                fields = f.read().rsplit(")", 1)[1].split()
        except OSError:  # it exited meanwhile
            continue
        if int(fields[2]) == pgid and fields[0] != "Z":
            members.append(int(entry))
    return members


def _command(pid: int) -> str:
    try:
        with open(f"/proc/{pid}/cmdline") as f:
            return f.read().replace(chr(0), " ").strip()
    except OSError:
        return ""


def _mapped(pids: list[int]) -> set[str]:
    names = set()
    for pid in pids:
        try:
            with open(f"/proc/{pid}/maps") as f:
                names |= {line.split("/dev/shm/", 1)[1].split()[0] for line in f
                          if "/dev/shm/" in line}
        except OSError:
            continue
    return names


def _left_after_grace(pgid: int, members: list[int]) -> list[str]:
    """Group members, and the processes that were the command's at the signal, still alive
    GRACE s after it exited."""

    def alive() -> list[int]:
        return sorted(set(_group(pgid)) | {pid for pid in members if _running(pid)})

    end = time.monotonic() + GRACE
    while alive() and time.monotonic() < end:
        time.sleep(POLL)
    return [f"{pid} {_command(pid)[:120]}" for pid in alive() if _command(pid)]


def _running(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False


def _kill_group(proc: subprocess.Popen) -> None:
    """After a hang (or an error of this harness), stop the command."""
    if proc.poll() is None:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()


def _clean_up(pgid: int, segments: list[str], left: list[str]) -> None:
    """Leave nothing of this run on the machine once it has been accounted for."""
    if _group(pgid):
        with contextlib.suppress(ProcessLookupError):  # it ended meanwhile
            os.killpg(pgid, signal.SIGKILL)
    for entry in left:
        with contextlib.suppress(ProcessLookupError):
            os.kill(int(entry.split()[0]), signal.SIGKILL)
    for name in segments:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(f"/dev/shm/{name}")
