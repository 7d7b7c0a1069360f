"""Lava backend (lava-nc 0.10 ``fixed_pt`` CPU models); see docs/backends/lava.md.

Importing this package imports Lava, so the registry imports it only on demand; the
Python 3.11 import shim is installed before the first Lava module loads.
"""

from neurodeploy.backends.lava import compat

compat.install()

from neurodeploy.backends.lava.backend import LavaBackend  # noqa: E402 (after the shim)

__all__ = ["LavaBackend"]
