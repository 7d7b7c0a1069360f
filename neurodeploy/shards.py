"""Work over many samples, cut into shards of consecutive samples and run as Ray tasks when
asked (``Workers``), for runs that outgrow one process or one machine.

Ray is an optional extra (``pip install 'neurodeploy[ray]'``), imported only here and only
when work is distributed; without it everything runs in the calling process, as one shard.
A task is a module-level function ``task(rows, *common)``: ``rows`` is its slice of the
samples, ``common`` the arguments every shard shares (the graph, the samples), put into
Ray's object store once. The tasks' results come back in shard order, so combining them
gives what one process computes. Ray's workers import the driver's own ``neurodeploy``
package (shipped with the job), so both run the same code.

A local Ray (``Workers(count=N)``) is started for the call and shut down after it, also on
Ctrl-C, which stops its processes; ``Workers(address=...)`` joins a running cluster and
leaves it running. A Ray session the caller already started is used as it is.
"""

from __future__ import annotations

import contextlib
import itertools
import logging
import os
import signal
import socket
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

from neurodeploy.errors import BackendUnavailable, InputError, NeurodeployError, whole_number
from neurodeploy.progress import progress

R = TypeVar("R")
RAY_HINT = "pip install 'neurodeploy[ray]'"
STOP_SECONDS = 3.0  #: how long a left-over Ray process gets to end after SIGTERM
REACH_SECONDS = 5.0  #: how long a cluster address gets to accept a connection
SHARED_MEMORY = Path("/dev/shm")  #: where Python's shared-memory segments live (Linux)


@dataclass(frozen=True)
class Workers:
    """Where sharded work runs: this process (the default), a local Ray of ``count`` worker
    processes, or the Ray cluster at ``address`` ("auto": the one this machine belongs to)."""

    count: int | None = None
    address: str | None = None

    def __post_init__(self) -> None:
        if self.count is not None:
            whole_number(self.count, "workers")

    @property
    def distributed(self) -> bool:
        return self.address is not None or self.count is not None


IN_PROCESS = Workers()


def run_sharded(task: Callable[..., R], samples: int, common: Sequence[Any],
                workers: Workers = IN_PROCESS, *, description: str = "",
                show_progress: bool = True, shard_size: int | None = None) -> list[R]:
    """``task(rows, *common)`` for consecutive shards ``rows`` covering ``range(samples)``,
    in shard order: one shard in this process, or one per Ray worker CPU; ``shard_size``
    samples per shard instead when the samples' costs differ (a sweep's configurations), so
    Ray hands the next one to whichever worker is free."""
    if not isinstance(workers, Workers):
        raise InputError(f"workers must be a Workers, got {workers!r}",
                         hint="Workers(count=2) for a local Ray, Workers(address='auto') for a "
                              "cluster")
    if not workers.distributed:
        return [task(slice(0, samples), *common)]
    with ray_session(workers) as ray:
        parts = min(samples, max(1, int(ray.cluster_resources().get("CPU", 1))))
        if shard_size is not None:
            parts = -(-samples // shard_size)
        shared = [ray.put(value) for value in common]
        remote = ray.remote(num_cpus=1, max_retries=0)(task)
        refs = [remote.remote(rows, *shared) for rows in _split(samples, parts)]
        try:
            return [ray.get(ref) for ref in progress(refs, description, show_progress)]
        except ray.exceptions.RayTaskError as err:
            if isinstance(err.cause, NeurodeployError):  # a user's input, read in a worker
                raise err.cause from None
            raise


@contextlib.contextmanager
def ray_session(workers: Workers) -> Iterator[Any]:
    """The ``ray`` module with a session: the caller's if one is running, else a local Ray of
    ``workers.count`` CPUs or the cluster at ``workers.address``, ended on exit."""
    ray = import_ray()
    if ray.is_initialized():
        yield ray
        return
    if workers.address:
        _check_reachable(workers.address)
    package = str(Path(__file__).parent)
    settings = {"address": workers.address} if workers.address else {
        "num_cpus": workers.count, "include_dashboard": False}
    before = set(descendants(os.getpid()))
    started: set[int] = set()
    sigterm = signal.getsignal(signal.SIGTERM)
    since = time.time()
    try:
        try:
            with _quiet(logging.getLogger("ray")):  # its start-up notices are not this run's
                ray.init(**settings, runtime_env={"py_modules": [package]},
                         log_to_driver=False, configure_logging=False)
        except ConnectionError as exc:  # no cluster at the address
            raise InputError(f"cannot join the Ray cluster at '{workers.address}': "
                             f"{str(exc).splitlines()[0]}", hint="Start it (ray start --head) "
                             "or run a local Ray with --workers N (workers=Workers(count=N))"
                             ) from None
        except SystemExit as exc:  # Ray's SIGTERM handler, active while it starts
            if exc.code != signal.SIGTERM:
                raise
            _restore(signal.SIGTERM, sigterm)
            signal.raise_signal(signal.SIGTERM)  # the caller's unwinding, as at any other time
            raise
        finally:
            _restore(signal.SIGTERM, sigterm)
        started = set(descendants(os.getpid())) - before  # Ctrl-C may orphan them later
        yield ray
    finally:
        started |= set(descendants(os.getpid())) - before
        try:
            ray.shutdown()
        finally:
            if not workers.address:
                _stop(sorted(started))
                remove_orphan_segments(since)


def _check_reachable(address: str) -> None:
    """Refuse a host:port no connection reaches: ray.init retried it forever (logging every
    40 s). 'auto' and addresses without a port are Ray's to resolve."""
    host, _, port = address.removeprefix("ray://").rpartition(":")
    if not host or not port.isdigit():
        return
    try:
        socket.create_connection((host.strip("[]"), int(port)),  # [::1]:6379 too
                                 timeout=REACH_SECONDS).close()
    except OSError as err:
        raise InputError(f"cannot reach the Ray cluster at '{address}': {err}",
                         hint="Check the address (the head's host:port, as `ray start "
                              "--head` prints it), or run a local Ray with --workers N") from None


def _restore(signum: int, handler: Any) -> None:
    """Put the caller's handler back: ``ray.init`` sets its own SIGTERM handler (exit at once)
    for good, so the caller's (the CLI's clean unwinding, a server's shutdown) would be lost
    during the run and after it."""
    if handler is not None and threading.current_thread() is threading.main_thread():
        signal.signal(signum, handler)


def descendants(root: int) -> list[int]:
    """Live processes descended from ``root``, read from /proc (none where there is none)."""
    parents = {}
    pids = [e for e in os.listdir("/proc") if e.isdigit()] if os.path.isdir("/proc") else []
    for pid in pids:
        with contextlib.suppress(OSError):  # it exited meanwhile
            with open(f"/proc/{pid}/stat") as f:
                fields = f.read().rsplit(")", 1)[1].split()
            if fields[0] != "Z":
                parents[int(pid)] = int(fields[1])
    found, frontier = [], {root}
    while frontier:
        frontier = {pid for pid, parent in parents.items() if parent in frontier}
        found += sorted(frontier)
    return found


def _stop(pids: list[int]) -> None:
    """End the processes a local Ray started that outlive its shutdown: after Ctrl-C reached
    the whole process group, Ray's agents survive the raylet they belong to."""
    for signum in (signal.SIGTERM, signal.SIGKILL):
        alive = [pid for pid in pids if _signal(pid, signum)]
        end = time.monotonic() + STOP_SECONDS
        while alive and time.monotonic() < end:
            time.sleep(0.05)
            alive = [pid for pid in alive if _signal(pid, 0)]
        if not alive:
            return


def remove_orphan_segments(since: float, directory: Path = SHARED_MEMORY) -> list[Path]:
    """Remove Python shared-memory segments (``psm_*``, Lava's channels) of this user, made
    since ``since``, that no process maps any more: a worker killed in the middle of a run
    (Ray's shutdown after Ctrl-C) cannot unlink its own. Returns what was removed."""
    found = {}
    for entry in directory.glob("psm_*") if directory.is_dir() else []:
        with contextlib.suppress(OSError):
            status = entry.stat()
            if status.st_uid == os.getuid() and status.st_mtime >= since:
                found[str(entry)] = entry
    for pid in (e for e in os.listdir("/proc") if e.isdigit()) if found else []:
        with contextlib.suppress(OSError):  # exited meanwhile, or another user's
            maps = Path(f"/proc/{pid}/maps").read_text()
            found = {path: entry for path, entry in found.items() if path not in maps}
    for entry in found.values():
        with contextlib.suppress(OSError):
            entry.unlink()
    return list(found.values())


def _signal(pid: int, signum: int) -> bool:
    """Send ``signum`` (0: only check); whether the process still exists (not a zombie)."""
    try:
        os.kill(pid, signum)
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[0] != "Z"
    except (ProcessLookupError, FileNotFoundError):
        return False


@contextlib.contextmanager
def _quiet(logger: logging.Logger) -> Iterator[None]:
    """Only ``logger``'s errors while inside."""
    level = logger.level
    logger.setLevel(logging.ERROR)
    try:
        yield
    finally:
        logger.setLevel(level)


def import_ray():
    """The ``ray`` module, or one error line naming the extra that installs it.

    Ray's C++ crash handler also takes SIGTERM while ``ray.init`` runs and aborts the process
    with a stack dump, before any Python handler could unwind it: it is off unless the
    environment says otherwise (read when ray is first imported)."""
    os.environ.setdefault("RAY_DISABLE_FAILURE_SIGNAL_HANDLER", "1")
    try:
        import ray
    except ImportError:
        raise BackendUnavailable("running on several workers needs Ray, which is not "
                                 "installed", hint=RAY_HINT) from None
    return ray


def _split(samples: int, parts: int) -> list[slice]:
    """``range(samples)`` in ``parts`` consecutive slices whose sizes differ by at most one."""
    bounds = [samples * k // parts for k in range(parts + 1)]
    return [slice(a, b) for a, b in itertools.pairwise(bounds)]
