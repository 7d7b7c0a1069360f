"""examples/notebook/quickstart.py runs as a user runs it, in a fresh process."""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

import pytest

SCRIPT = Path(__file__).resolve().parents[2] / "examples/notebook/quickstart.py"


@pytest.mark.lava
def test_the_quickstart_compiles_simulates_verifies_and_reports(tmp_path):
    start = time.perf_counter()
    result = subprocess.run([sys.executable, str(SCRIPT)], capture_output=True, text=True,
                            cwd=tmp_path, timeout=300, check=False)
    seconds = time.perf_counter() - start
    assert result.returncode == 0, result.stderr
    assert "bit-exact: lava == reference on 2 populations" in result.stdout
    assert "accuracy per T {1: " in result.stdout
    written = sorted(p.name for p in (tmp_path / "quickstart_report").iterdir())
    assert {"report.json", "report.md", "accuracy_vs_timesteps.png"} <= set(written)
    assert seconds < 120, f"the quickstart took {seconds:.0f} s"  # about 25 s on 2 cores
