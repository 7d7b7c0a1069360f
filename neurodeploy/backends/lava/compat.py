"""Import-time shim that makes lava-nc 0.10.0 importable on Python >= 3.11.

``lava/magma/compiler/var_model.py`` declares dataclass fields ``x: ByteEncoder =
ByteEncoder()``; Python 3.11 rejects such mutable defaults with a ValueError when the class
is created, and every Lava process import reaches that module. A meta-path finder rewrites
that one module's source while it is imported (to ``field(default_factory=ByteEncoder)``):
site-packages is never written, line numbers are kept, and an already fixed source passes
through unchanged. Lava forks its worker processes, so they inherit the patched module.
"""

from __future__ import annotations

import importlib.abc
import importlib.machinery
import re
import sys
from collections.abc import Sequence
from types import ModuleType

_TARGET = "lava.magma.compiler.var_model"
_MUTABLE_DEFAULT = re.compile(r"^(\s+\w+\s*:\s*ByteEncoder\s*=\s*)ByteEncoder\(\)\s*$",
                              re.MULTILINE)


class _PatchingLoader(importlib.machinery.SourceFileLoader):
    """Compiles the target module from rewritten source (never from a stale .pyc)."""

    def source_to_code(self, data, path, *, _optimize=-1):  # type: ignore[override]
        src = data.decode("utf-8") if isinstance(data, bytes) else data
        if _MUTABLE_DEFAULT.search(src):
            src = _MUTABLE_DEFAULT.sub(r"\1_dc_field(default_factory=ByteEncoder)", src)
            src = src.replace("from dataclasses import dataclass",
                              "from dataclasses import field as _dc_field, dataclass", 1)
        return super().source_to_code(src.encode("utf-8"), path)

    def get_code(self, fullname: str):  # type: ignore[override]
        return self.source_to_code(self.get_data(self.path), self.path)


class _Finder(importlib.abc.MetaPathFinder):
    def find_spec(self, fullname: str, path: Sequence[str] | None,
                  target: ModuleType | None = None) -> importlib.machinery.ModuleSpec | None:
        if fullname != _TARGET:
            return None
        spec = importlib.machinery.PathFinder.find_spec(fullname, path)
        if spec is not None and isinstance(spec.loader, importlib.machinery.SourceFileLoader):
            spec.loader = _PatchingLoader(fullname, spec.origin)
        return spec


def install() -> None:
    """Register the finder once; call before the first ``import lava``."""
    if sys.version_info >= (3, 11) and not any(isinstance(f, _Finder) for f in sys.meta_path):
        sys.meta_path.insert(0, _Finder())
