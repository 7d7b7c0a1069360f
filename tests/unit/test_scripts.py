"""The benchmarks and examples are not run by the tests (they take minutes to hours), so a
change to the package could break them unseen: benchmarks/interop.py imported
``neurodeploy.neuron`` after it had moved to ``neurodeploy.core``. Every name they import
from neurodeploy must exist."""

from __future__ import annotations

import ast
import importlib
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
SCRIPTS = sorted([*ROOT.glob("benchmarks/*.py"), *ROOT.glob("examples/**/*.py")])


def imported_names(path: Path) -> list[tuple[int, str, str | None]]:
    """(line, module, name) of every neurodeploy import (name None for ``import module``)."""
    found = []
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom) and node.level == 0 and node.module and \
                node.module.split(".")[0] == "neurodeploy":
            found += [(node.lineno, node.module, alias.name) for alias in node.names]
        elif isinstance(node, ast.Import):
            found += [(node.lineno, alias.name, None) for alias in node.names
                      if alias.name.split(".")[0] == "neurodeploy"]
    return found


def resolves(module: str, name: str | None) -> bool:
    try:
        imported = importlib.import_module(module)
    except ImportError:
        return False
    if name is None or hasattr(imported, name):
        return True
    try:
        importlib.import_module(f"{module}.{name}")
    except ImportError:
        return False
    return True


@pytest.mark.parametrize("path", SCRIPTS, ids=lambda p: str(p.relative_to(ROOT)))
def test_every_neurodeploy_name_a_script_imports_exists(path):
    missing = [f"line {line}: from {module} import {name}" for line, module, name
               in imported_names(path) if not resolves(module, name)]
    assert not missing, missing


def test_the_scripts_are_found():
    assert len([p for p in SCRIPTS if p.parent.name == "benchmarks"]) >= 20
    assert any(imported_names(p) for p in SCRIPTS if "examples" in p.parts)
