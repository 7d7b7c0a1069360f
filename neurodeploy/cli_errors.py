"""How a `neurodeploy` command ends: one policy for every command, so scripts can rely on it.

- success: exit 0 (``verify`` exits 1 when the backends differ); Python warnings raised on
  the way are printed afterwards, one ``warning:`` line each;
- a usage error, a ``NeurodeployError`` or running out of memory: one ``error:`` line on
  stderr, exit 2, and no warning lines beside it (they would read as part of the error);
- Ctrl-C (SIGINT) or SIGTERM: the command unwinds like an exception (every ``finally`` runs:
  temp files go, Lava's workers are stopped), one line, exit 130;
- standard output closed by its reader (``| head``): no line, exit 141 (128 + SIGPIPE, as a
  shell reports ``yes | head``); standard output that cannot be written (a full disk): one
  line, exit 2;
- anything else is a bug: one line naming the exception, exit 3; the traceback only with
  ``neurodeploy --debug``.
"""

from __future__ import annotations

import io
import os
import signal
import sys
import threading
import traceback
import warnings
from collections.abc import Iterator
from contextlib import contextmanager

import click

from neurodeploy.errors import NeurodeployError

USAGE = 2  #: bad arguments or inputs (click's code for usage errors, kept for ours)
INTERRUPTED = 130  #: 128 + SIGINT, as shells report Ctrl-C
BROKEN_PIPE = 141  #: 128 + SIGPIPE
STDOUT = 1
BUG = 3


class Terminated(KeyboardInterrupt):
    """SIGTERM, raised like Ctrl-C so the same cleanup runs."""


class Group(click.Group):
    """The command group that applies the policy above to every subcommand."""

    def main(self, args=None, prog_name=None, complete_var=None, standalone_mode=True, **extra):
        if not standalone_mode:
            return super().main(args, prog_name, complete_var, False, **extra)
        with _sigterm_raises():
            try:
                code = super().main(args, prog_name, complete_var, False, **extra)
            except click.exceptions.Abort:  # Ctrl-C while click itself was running
                _end("error: interrupted", INTERRUPTED)
            except click.ClickException as exc:
                where = f"{exc.ctx.command_path}: " if getattr(exc, "ctx", None) else ""
                _end(f"error: {where}{exc.format_message()}"
                     + (f" (see {exc.ctx.command_path} --help)" if where else ""), USAGE)
        sys.exit(code if isinstance(code, int) else 0)

    def invoke(self, ctx: click.Context):
        debug = ctx.params.get("debug", False)
        try:
            with _warnings_held() as held:
                result = super().invoke(ctx)
        except (click.ClickException, click.exceptions.Exit, click.exceptions.Abort):
            raise
        except NeurodeployError as exc:
            _end(f"error: {exc}", USAGE, debug)
        except KeyboardInterrupt as exc:
            _end("error: terminated (SIGTERM)" if isinstance(exc, Terminated)
                 else "error: interrupted", INTERRUPTED, debug)
        except Exception as exc:
            if isinstance(exc, OSError) and _raised_by_stdout(exc):
                # the exit would fail on the unwritten bytes once more: send them nowhere
                null = os.open(os.devnull, os.O_WRONLY)
                os.dup2(null, STDOUT)
                os.close(null)
                if isinstance(exc, BrokenPipeError):
                    sys.exit(BROKEN_PIPE)
                _end(f"error: cannot write to standard output ({exc.strerror})", USAGE)
            if _out_of_memory(exc):
                _end("error: not enough memory for this run (try fewer samples, a shorter "
                     "window -T or a smaller model)", USAGE, debug)
            _end(f"error: internal error, a bug in neurodeploy ({type(exc).__name__}: {exc}); "
                 "please report it with the output of `neurodeploy --debug ...`", BUG, debug)
        for message in held:
            click.echo(_one_line(f"warning: {message}"), err=True)
        return result


def _end(line: str, code: int, debug: bool = False) -> None:
    if debug:
        traceback.print_exc()
    click.echo(_one_line(line), err=True)
    sys.exit(code)


def run_process(group: click.Group) -> None:
    """The ``neurodeploy`` process: ``group`` under the policy above. An interrupted run that
    loaded Ray exits without finalizing the interpreter, where Ray's core worker crashes (its
    cleanup has run by then); only the process's own entry point may skip it, not a test's."""
    try:
        group.main()
    except SystemExit as ended:
        if ended.code == INTERRUPTED and "ray" in sys.modules:
            sys.stdout.flush()
            sys.stderr.flush()
            os._exit(INTERRUPTED)
        raise


def _out_of_memory(exc: Exception) -> bool:
    """numpy raises MemoryError; torch's CPU allocator raises a RuntimeError saying so."""
    return isinstance(exc, MemoryError) or (
        isinstance(exc, RuntimeError) and "can't allocate memory" in str(exc))


def _raised_by_stdout(exc: OSError) -> bool:
    """Whether ``exc`` came from writing standard output (a stream on descriptor 1 where it
    was raised, as in click.echo), not from some other file or pipe."""
    frame = exc.__traceback__  # never None: ``exc`` was caught
    while frame.tb_next is not None:
        frame = frame.tb_next
    return any(_descriptor(value) == STDOUT for value in frame.tb_frame.f_locals.values()
               if isinstance(value, io.IOBase))


def _descriptor(stream: io.IOBase) -> int | None:
    try:
        return stream.fileno()
    except (OSError, ValueError):
        return None


def _one_line(text: str) -> str:
    return " ".join(text.split())


@contextmanager
def _warnings_held() -> Iterator[list[str]]:
    """Collect Python warnings instead of printing them where they arise."""
    with warnings.catch_warnings(record=True) as caught:
        held: list[str] = []
        yield held
        held.extend(dict.fromkeys(str(w.message) for w in caught))


@contextmanager
def _sigterm_raises() -> Iterator[None]:
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def terminate(_signum, _frame):
        raise Terminated

    previous = signal.signal(signal.SIGTERM, terminate)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, signal.SIG_DFL if previous is None else previous)
