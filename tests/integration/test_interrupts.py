"""Ctrl-C and SIGTERM during `neurodeploy verify` on Lava: the command ends with one line and
exit code 130, and leaves no process and no shared-memory segment behind (the figures:
benchmarks/interrupts.py)."""

from __future__ import annotations

import signal

import pytest

from tests.interrupts import interrupt

HANG = 30.0  #: seconds: far above the few an interrupted run needs; only a hang exceeds it



@pytest.mark.lava
@pytest.mark.parametrize(("stage", "signum", "to_group"), [
    ("workers starting", signal.SIGINT, True),
    ("running", signal.SIGINT, True),
    ("running", signal.SIGTERM, False),
])
def test_an_interrupted_lava_run_ends_cleanly(digits_nir, stage, signum, to_group):
    outcome = interrupt(["verify", str(digits_nir), "--samples", "2000"],  # a 30 s Lava run
                        stage=stage, signum=signum, to_group=to_group, timeout=HANG)
    assert outcome.exit_code == 130, outcome
    expected = "error: interrupted" if signum == signal.SIGINT else "error: terminated (SIGTERM)"
    assert outcome.stderr.strip() == expected, outcome
    assert outcome.processes_at_signal > 1, "the signal came before Lava started its workers"
    assert outcome.left_processes == [] and outcome.left_segments == [], outcome


def test_an_interrupted_ray_run_leaves_no_ray_process(digits_nir):
    """Ctrl-C while a local Ray started by --workers runs its tasks: Ray is shut down."""
    outcome = interrupt(["evaluate", str(digits_nir), "--workers", "2", "-T", "100000"],
                        stage="ray running", timeout=HANG)
    assert outcome.exit_code == 130, outcome
    assert outcome.stderr.strip() == "error: interrupted", outcome
    assert outcome.processes_at_signal > 3, "the signal came before Ray started"
    assert outcome.left_processes == [], outcome
