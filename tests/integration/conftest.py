"""Fixtures the CLI integration tests share."""

from __future__ import annotations

from pathlib import Path

import pytest

from neurodeploy import api
from tests.models import save_torchscript, trained_digits_mlp


@pytest.fixture(scope="module")
def digits_nir(tmp_path_factory) -> Path:
    """The digits MLP compiled for loihi at T=4 (one per test module)."""
    path = tmp_path_factory.mktemp("digits")
    model = save_torchscript(trained_digits_mlp(), path / "model.pt")
    out = path / "model.nir"
    api.save(api.compile(model, target="loihi", method="p99.99", calib="digits",
                         timesteps=4).graph, out)
    return out
