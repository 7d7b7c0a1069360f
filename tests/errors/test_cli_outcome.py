"""How every command ends (neurodeploy/cli_errors.py): usage errors, bugs, interrupts and
warnings, each checked through a real command."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import warnings

import pytest
from click.testing import CliRunner

from neurodeploy import api
from neurodeploy.cli import main
from neurodeploy.errors import TargetError


def _one_line(result, code: int) -> str:
    assert result.exit_code == code, (result.exit_code, result.output, result.stderr)
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in result.stderr, result.stderr
    return lines[0]


@pytest.mark.parametrize(("argv", "expected"), [
    (["compile"], "main compile: Missing argument 'MODEL'. (see main compile --help)"),
    (["simulate", "x.nir", "--input", "x.npy", "--bogus"], "No such option '--bogus'"),
    (["evaluate", "x.nir", "--limit", "many"], "'many' is not a valid integer"),
    (["frobnicate"], "No such command 'frobnicate'"),
    (["--bogus"], "No such option '--bogus'"),
])
def test_usage_errors_are_one_line_with_exit_2(argv, expected):
    line = _one_line(CliRunner().invoke(main, argv), 2)
    assert line.startswith("error: ") and expected in line, line


def _targets_calls(monkeypatch, behaviour):
    """`neurodeploy targets` runs ``behaviour`` inside the API call it makes."""
    real = api.list_targets

    def listed():
        behaviour()
        return real()

    monkeypatch.setattr(api, "list_targets", listed)


def test_a_bug_is_one_line_naming_the_exception_with_exit_3(monkeypatch):
    def bug():
        raise TypeError("unsupported operand")

    _targets_calls(monkeypatch, bug)
    line = _one_line(CliRunner().invoke(main, ["targets"]), 3)
    assert "a bug in neurodeploy (TypeError: unsupported operand)" in line


def test_debug_adds_the_traceback(monkeypatch):
    def bug():
        raise TypeError("unsupported operand")

    _targets_calls(monkeypatch, bug)
    result = CliRunner().invoke(main, ["--debug", "targets"])
    assert result.exit_code == 3 and "Traceback" in result.stderr
    assert result.stderr.strip().splitlines()[-1].startswith("error: internal error")


def test_warnings_follow_a_success_and_are_dropped_beside_an_error(monkeypatch):
    def warn():
        warnings.warn("a warning\nover two lines", UserWarning, stacklevel=1)

    _targets_calls(monkeypatch, warn)
    result = CliRunner().invoke(main, ["targets"])
    assert result.exit_code == 0 and result.stderr == "warning: a warning over two lines\n"

    def warn_then_fail():
        warn()
        raise TargetError("loihi2.toml: broken")

    _targets_calls(monkeypatch, warn_then_fail)
    assert _one_line(CliRunner().invoke(main, ["targets"]), 2) == "error: loihi2.toml: broken"


@pytest.fixture
def as_in_a_terminal():
    """Ctrl-C raises KeyboardInterrupt, as in a terminal: a background job (``make test &``,
    nohup) inherits SIGINT ignored, and Python keeps it so."""
    before = signal.signal(signal.SIGINT, signal.default_int_handler)
    yield
    signal.signal(signal.SIGINT, before)


@pytest.mark.parametrize(("signum", "expected"), [
    (signal.SIGINT, "error: interrupted"), (signal.SIGTERM, "error: terminated (SIGTERM)")])
def test_a_signal_unwinds_to_one_line_and_exit_130(monkeypatch, as_in_a_terminal, signum,
                                                   expected):
    _targets_calls(monkeypatch, lambda: os.kill(os.getpid(), signum))
    assert _one_line(CliRunner().invoke(main, ["targets"]), 130) == expected
    assert signal.getsignal(signal.SIGTERM) is signal.SIG_DFL  # restored for the next test


def _targets_into(stdout) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "neurodeploy.cli", "targets", "--json"],
                          stdout=stdout, stderr=subprocess.PIPE, text=True, timeout=120)


def test_standard_output_that_cannot_be_written_is_one_line_with_exit_2():
    """`targets --json > /dev/full` ended as "internal error, a bug in neurodeploy"."""
    with open("/dev/full", "w") as full:
        ended = _targets_into(full)
    assert ended.returncode == 2, ended.stderr
    assert ended.stderr == ("error: cannot write to standard output (No space left on "
                            "device)\n")


def test_standard_output_closed_by_its_reader_ends_quietly_with_141():
    """`neurodeploy targets | true` ended as "internal error" with exit 3."""
    read, write = os.pipe()
    os.close(read)  # the reader is gone before the command writes
    with os.fdopen(write, "w") as closed:
        ended = _targets_into(closed)
    assert (ended.returncode, ended.stderr) == (141, "")


def test_an_interrupt_after_ray_started_exits_without_finalizing(monkeypatch):
    """Ray's core worker crashed as Python finalized after Ctrl-C (exit -11 instead of 130
    in 5 of 6 interrupted `evaluate --workers 2`). Only the process's entry point skips the
    finalization; without Ray, or on another exit, it is an ordinary SystemExit."""
    from neurodeploy import cli_errors

    class Command:
        code = cli_errors.INTERRUPTED

        def main(self):
            sys.exit(self.code)

    exits = []
    monkeypatch.setattr(cli_errors.os, "_exit", exits.append)
    monkeypatch.delitem(sys.modules, "ray", raising=False)
    with pytest.raises(SystemExit):
        cli_errors.run_process(Command())
    assert exits == []
    monkeypatch.setitem(sys.modules, "ray", object())
    with pytest.raises(SystemExit):  # the stand-in os._exit returns
        cli_errors.run_process(Command())
    assert exits == [130]
    Command.code = cli_errors.USAGE
    with pytest.raises(SystemExit):
        cli_errors.run_process(Command())
    assert exits == [130]
