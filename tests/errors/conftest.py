"""The input files the regression and fuzz cases run on (built once per session)."""

from __future__ import annotations

import numpy as np
import pytest

from neurodeploy import api
from neurodeploy.data import load_dataset
from neurodeploy.targets import TARGETS_DIR
from tests.errors.contract import Workspace
from tests.models import save_torchscript, trained_digits_mlp


@pytest.fixture(scope="session")
def workspace(tmp_path_factory) -> Workspace:
    """model.pt (digits MLP), net.nir (compiled for loihi2, T=4), x.npy (3 images),
    data.npz (40 labelled images), chip.toml (loihi2's), adir/ (an empty directory)."""
    d = tmp_path_factory.mktemp("workspace")
    save_torchscript(trained_digits_mlp(steps=20), d / "model.pt")
    api.save(api.compile(d / "model.pt", calib="digits", calib_samples=64,
                         show_progress=False, method="p99.99").graph, d / "net.nir")
    x, y = load_dataset("digits", limit=40)
    np.save(d / "x.npy", x[:3])
    np.savez(d / "data.npz", x=x, y=y)
    (d / "chip.toml").write_text((TARGETS_DIR / "loihi2.toml").read_text())
    (d / "adir").mkdir()
    return Workspace(d.resolve())
