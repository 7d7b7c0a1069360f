"""Import-time shim that makes lava-nc 0.10.0 importable on Python >= 3.11 inside neurodeploy.

Three lava modules fail as released; a meta-path finder rewrites just those modules' source
while they are imported (site-packages is never written, line numbers are kept, and a source
that is already fixed passes through unchanged):

- ``lava/magma/compiler/var_model.py`` declares dataclass fields ``x: ByteEncoder =
  ByteEncoder()``; Python 3.11 rejects such mutable defaults with a ValueError when the
  class is created, and every Lava process import reaches that module. Rewritten to
  ``field(default_factory=ByteEncoder)``.
- ``lava/magma/runtime/message_infrastructure/multiprocessing.py`` calls
  ``mp.set_start_method('fork')`` at import, which raises once anything in the process has
  fixed the start method; numba does so when it starts its thread pool (the reference
  simulator runs before Lava in ``verify``). Rewritten with ``force=True``: Lava needs fork,
  which is Linux's default anyway.
- ``lava/lib/dl/netx/hdf5.py`` (lava-dl 0.6.0) imports ``lava.lib.dl.slayer.neuron.rf`` for
  its resonate-and-fire neurons only, and importing slayer pulls in its object-detection
  package, which needs OpenCV and torchvision (no CPU wheels here, and unused by netx).
  Rewritten to import it when an RF neuron is actually built.

Lava forks its worker processes, so they inherit the patched modules.
"""

from __future__ import annotations

import importlib.abc
import importlib.machinery
import re
import sys
from collections.abc import Sequence
from types import ModuleType

#: module -> (pattern, replacement) pairs applied to its source before it is compiled
_REWRITES: dict[str, tuple[tuple[re.Pattern[str], str], ...]] = {
    "lava.magma.compiler.var_model": (
        (re.compile(r"^(\s+\w+\s*:\s*ByteEncoder\s*=\s*)ByteEncoder\(\)\s*$", re.MULTILINE),
         r"\1_dc_field(default_factory=ByteEncoder)"),
        (re.compile(r"^from dataclasses import dataclass\b", re.MULTILINE),
         "from dataclasses import field as _dc_field, dataclass"),
    ),
    "lava.magma.runtime.message_infrastructure.multiprocessing": (
        (re.compile(r"mp\.set_start_method\('fork'\)"), "mp.set_start_method('fork', force=True)"),
    ),
    "lava.lib.dl.netx.hdf5": (
        (re.compile(r"^from lava\.lib\.dl\.slayer\.neuron\.rf import neuron_params as "
                    r"get_rf_params$", re.MULTILINE),
         "def get_rf_params(*a, **k): from lava.lib.dl.slayer.neuron.rf import neuron_params; "
         "return neuron_params(*a, **k)  # noqa"),
    ),
}


class _PatchingLoader(importlib.machinery.SourceFileLoader):
    """Compiles a rewritten module from its patched source (never from a stale .pyc)."""

    def source_to_code(self, data, path, *, _optimize=-1):  # type: ignore[override]
        src = data.decode("utf-8") if isinstance(data, bytes) else data
        for pattern, replacement in _REWRITES[self.name]:
            src = pattern.sub(replacement, src)
        return super().source_to_code(src.encode("utf-8"), path)

    def get_code(self, fullname: str):  # type: ignore[override]
        return self.source_to_code(self.get_data(self.path), self.path)


class _Finder(importlib.abc.MetaPathFinder):
    def find_spec(self, fullname: str, path: Sequence[str] | None,
                  target: ModuleType | None = None) -> importlib.machinery.ModuleSpec | None:
        if fullname not in _REWRITES:
            return None
        spec = importlib.machinery.PathFinder.find_spec(fullname, path)
        if spec is not None and isinstance(spec.loader, importlib.machinery.SourceFileLoader):
            spec.loader = _PatchingLoader(fullname, spec.origin)
        return spec


def install() -> None:
    """Register the finder once; call before the first ``import lava``."""
    if not any(isinstance(f, _Finder) for f in sys.meta_path):
        sys.meta_path.insert(0, _Finder())
