"""The layer order of docs/concepts/architecture.md, checked on the source: no import cycle
between modules, and no module importing one of a higher layer (imports inside functions
count too: they hide a dependency, they do not remove it).

The package itself (``neurodeploy/__init__.py``) is the facade: it holds ``__version__``, which
any layer may read, and re-exports the API on first use, so its own imports are not edges."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

import neurodeploy

PACKAGE = Path(neurodeploy.__file__).parent

#: lowest first; a module may import its own layer and the layers below it
LAYERS: list[tuple[str, tuple[str, ...]]] = [
    ("base", ("errors", "progress", "fileio", "nir_compat", "shards")),
    ("core", ("core", "targets")),
    ("files and data", ("nir_io", "data")),
    ("frontend", ("nn", "frontend")),
    ("convert", ("convert",)),
    ("passes", ("capacity", "passes")),
    ("backends", ("backends",)),
    ("methods", ("methods", "train", "distill")),
    ("analysis", ("check", "interop", "simulation", "verify", "operations", "report",
                  "summary")),
    ("api", ("api",)),
    ("interfaces", ("cli", "cli_errors", "testing")),
]


def module_name(path: Path) -> str:
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def imports() -> dict[str, set[str]]:
    """module -> the neurodeploy modules it imports (a package import names the package)."""
    modules = {module_name(p): p for p in PACKAGE.rglob("*.py")}
    found: dict[str, set[str]] = {}
    for name, path in modules.items():
        targets = set()
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ImportFrom) and node.level == 0 and node.module and \
                    node.module.split(".")[0] == "neurodeploy":
                for alias in node.names:
                    full = f"{node.module}.{alias.name}"
                    targets.add(full if full in modules else node.module)
            elif isinstance(node, ast.Import):
                targets |= {a.name for a in node.names if a.name.split(".")[0] == "neurodeploy"}
        found[name] = {t for t in targets if t != name}
    return found


def layer_of(module: str) -> int | None:
    """The layer's index; None for the package itself (the public facade re-exports)."""
    parts = module.split(".")
    if len(parts) == 1:
        return None
    for index, (_, units) in enumerate(LAYERS):
        if parts[1] in units:
            return index
    raise AssertionError(f"{module} is in no layer: add it to LAYERS and to "
                         f"docs/concepts/architecture.md")


def test_every_module_has_a_layer():
    for module in imports():
        layer_of(module)


def test_no_module_imports_a_higher_layer():
    upward = []
    for module, targets in imports().items():
        mine = layer_of(module)
        for target in targets:
            theirs = layer_of(target)
            if mine is not None and theirs is not None and theirs > mine:
                upward.append(f"{module} ({LAYERS[mine][0]}) imports {target} "
                              f"({LAYERS[theirs][0]})")
    assert not upward, "\n".join(sorted(upward))


def test_no_import_cycle():
    graph = imports()
    graph["neurodeploy"] = set()  # the facade's imports run on first use, not at import
    for module in graph:  # package targets stand for their __init__
        graph[module] = {t for t in graph[module] if t in graph}
    state: dict[str, int] = {}
    path: list[str] = []

    def visit(module: str) -> None:
        state[module] = 1
        path.append(module)
        for target in sorted(graph[module]):
            if state.get(target) == 1:
                cycle = [*path[path.index(target):], target]
                pytest.fail("import cycle: " + " -> ".join(cycle))
            if target not in state:
                visit(target)
        path.pop()
        state[module] = 2

    for module in sorted(graph):
        if module not in state:
            visit(module)
