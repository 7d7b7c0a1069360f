"""examples/notebook/quickstart.py runs as a user runs it, in a fresh process."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

SCRIPT = Path(__file__).resolve().parents[2] / "examples/notebook/quickstart.py"


@pytest.mark.lava
def test_the_quickstart_compiles_simulates_verifies_and_reports(tmp_path):
    result = subprocess.run([sys.executable, str(SCRIPT)], capture_output=True, text=True,
                            cwd=tmp_path, timeout=900, check=False)
    assert result.returncode == 0, result.stderr
    assert "bit-exact: lava == reference on 2 populations" in result.stdout
    assert "accuracy per T {1: " in result.stdout
    written = sorted(p.name for p in (tmp_path / "quickstart_report").iterdir())
    assert {"report.json", "report.md", "accuracy_vs_timesteps.png"} <= set(written)
