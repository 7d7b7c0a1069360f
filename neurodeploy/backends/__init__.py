"""Backend registry: names map to "module:Class" strings so that importing neurodeploy
never imports an optional dependency (Lava is imported only when asked for)."""

from __future__ import annotations

import importlib

from neurodeploy.backends.base import Backend, Record, Trace
from neurodeploy.errors import BackendUnavailable, InputError

BACKENDS: dict[str, str] = {
    "reference": "neurodeploy.backends.reference:ReferenceBackend",
    "lava": "neurodeploy.backends.lava:LavaBackend",
}

__all__ = ["BACKENDS", "Backend", "Record", "Trace", "available_backends", "get_backend"]


def available_backends() -> list[str]:
    return sorted(BACKENDS)


def get_backend(name: str, **options) -> Backend:
    if name not in BACKENDS:
        raise InputError(f"unknown backend '{name}'",
                         hint=f"Choose one of: {', '.join(available_backends())}")
    module_name, class_name = BACKENDS[name].split(":")
    try:
        module = importlib.import_module(module_name)
    except ImportError as exc:
        raise BackendUnavailable(
            f"backend '{name}' needs a package that is not installed ({exc.name})",
            hint="Install it with `make setup` (see README)") from None
    return getattr(module, class_name)(**options)
