"""Train the digits MLP (seconds on 2 cores) and save it as TorchScript model.pt."""

from __future__ import annotations

import sys
from pathlib import Path

from torch import nn

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))  # examples/common.py is shared by both examples

import common  # noqa: E402


def build() -> nn.Module:
    """64-128-64-10 ReLU MLP: small enough to compile for Loihi in a second."""
    return nn.Sequential(nn.Flatten(), nn.Linear(64, 128), nn.ReLU(), nn.Linear(128, 64),
                         nn.ReLU(), nn.Linear(64, 10))


if __name__ == "__main__":
    common.main(build, dataset="digits", out=HERE / "model.pt", epochs=30, lr=0.01, batch=64,
                description=__doc__)
