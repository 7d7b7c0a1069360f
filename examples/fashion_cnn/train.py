"""Train the small VGG-style Fashion-MNIST CNN (minutes on 2 cores); save TorchScript model.pt."""

from __future__ import annotations

import sys
from pathlib import Path

from torch import nn

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))  # examples/common.py is shared by both examples

import common  # noqa: E402


def conv_bn_relu(cin: int, cout: int) -> list[nn.Module]:
    return [nn.Conv2d(cin, cout, 3, padding=1), nn.BatchNorm2d(cout), nn.ReLU()]


def build() -> nn.Module:
    """Only layers neurodeploy maps: Conv2d+BN+ReLU, AvgPool2d (not MaxPool), Flatten, Linear."""
    return nn.Sequential(
        *conv_bn_relu(1, 16), *conv_bn_relu(16, 32), nn.AvgPool2d(2),
        *conv_bn_relu(32, 32), nn.AvgPool2d(2),
        nn.Flatten(), nn.Linear(32 * 7 * 7, 128), nn.ReLU(), nn.Dropout(0.2),
        nn.Linear(128, 10))


if __name__ == "__main__":
    common.main(build, dataset="fashion-mnist", out=HERE / "model.pt", epochs=5, lr=3e-3,
                batch=128, flip=True, description=__doc__)
