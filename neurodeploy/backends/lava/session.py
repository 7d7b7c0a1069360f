"""Start and tear down a Lava runtime so that an interrupt never hangs or leaks.

Lava 0.10 forks one worker process per Lava process, plus a shared-memory manager whose
segments (``/dev/shm/psm_*``) carry the channels. A Ctrl-C reaches the whole process group:
workers died mid-message, ``Runtime.stop()`` then waited forever for their answer, and at
exit multiprocessing joined the live ones (the hang the issue saw, holding the segments).

So the workers are started with SIGINT and SIGTERM blocked (they inherit the mask): only
this process sees an interrupt, and it then ``abort``s the runtime, killing the workers and
shutting the manager down (which unlinks every segment), without a protocol that needs
their cooperation. Each worker also asks the kernel to kill it if this process dies, so a
``kill -9`` leaves no worker under init either.
"""

from __future__ import annotations

import ctypes
import os
import signal
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from multiprocessing import util

from lava.magma.core.process.process import AbstractProcess

SIGNALS = {signal.SIGINT, signal.SIGTERM}
PR_SET_PDEATHSIG = 1  #: linux/prctl.h


class _Parent:
    """The forking process, as the after-fork hook sees it (kept alive while workers start)."""

    def __init__(self) -> None:
        self.pid = os.getpid()


def _die_with_parent(parent: _Parent) -> None:
    """In a new worker: be killed when the parent dies (prctl), or now if it already has."""
    libc = ctypes.CDLL(None, use_errno=True)
    if libc.prctl(PR_SET_PDEATHSIG, signal.SIGKILL) != 0 or os.getppid() != parent.pid:
        os._exit(1)


@contextmanager
def workers_starting() -> Iterator[None]:
    """Around ``create_runtime``: workers forked inside inherit SIGINT/SIGTERM blocked and die
    with this process; here an interrupt is held until they all exist, then raised."""
    if threading.current_thread() is not threading.main_thread():
        yield  # signals are only delivered to the main thread's handlers anyway
        return
    held: list[int] = []
    previous = {s: signal.signal(s, lambda signum, _frame: held.append(signum)) for s in SIGNALS}
    parent = _Parent()
    util.register_after_fork(parent, _die_with_parent)  # a weak entry: gone with ``parent``
    signal.pthread_sigmask(signal.SIG_BLOCK, SIGNALS)
    try:
        yield
    finally:
        signal.pthread_sigmask(signal.SIG_UNBLOCK, SIGNALS)  # a pending one lands in ``held``
        del parent
        for signum, handler in previous.items():
            signal.signal(signum, signal.SIG_DFL if handler is None else handler)
        if held:
            signal.raise_signal(held[0])


def abort(process: AbstractProcess) -> None:
    """Kill the runtime's workers and free its shared memory, whatever state it is in.

    Reaches into Lava's runtime (lava-nc 0.10): its own ``stop()`` needs every worker to answer.
    """
    runtime = process.runtime
    if runtime is None:
        return
    runtime._is_started = False  # else Runtime.__del__ calls stop() and waits on dead workers
    infrastructure = runtime._messaging_infrastructure
    if infrastructure is not None:
        running = [actor for actor in infrastructure.actors if _running(actor)]
        for actor in running:
            actor.kill()
        for actor in running:
            actor.join()
        if infrastructure.smm is not None:
            infrastructure.smm.shutdown()  # the manager unlinks every segment it created
    if runtime._watchdog_manager is not None:
        runtime._watchdog_manager.stop()


def _running(actor) -> bool:
    try:
        return actor.is_alive()
    except ValueError:  # closed: Lava's own stop() already joined it
        return False
