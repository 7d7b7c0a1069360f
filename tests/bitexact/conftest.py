"""Backends for the bit-exact tests (lava-nc is part of `make setup`: no skipping)."""

from __future__ import annotations

import pytest

from neurodeploy.backends import Backend, get_backend


@pytest.fixture(scope="session")
def lava_backend() -> Backend:
    return get_backend("lava")


@pytest.fixture(scope="session")
def reference_backend() -> Backend:
    return get_backend("reference")
