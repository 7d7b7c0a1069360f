"""Train a VGG-style Fashion-MNIST network: six 3x3 conv layers with BatchNorm in three
stages, average pooling, a small classifier (minutes on 2 cores); save TorchScript model.pt.
"""

from __future__ import annotations

import sys
from pathlib import Path

from torch import nn

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))  # examples/common.py is shared by the examples

import common  # noqa: E402

#: channels of the two conv layers of each stage; a 2x2 AvgPool ends each stage (28->14->7->3)
STAGES = (16, 32, 64)


def conv_bn_relu(cin: int, cout: int) -> list[nn.Module]:
    return [nn.Conv2d(cin, cout, 3, padding=1, bias=False), nn.BatchNorm2d(cout), nn.ReLU()]


def build() -> nn.Module:
    """Only layers neurodeploy maps: Conv2d+BN+ReLU, AvgPool2d (not MaxPool), Flatten, Linear."""
    layers: list[nn.Module] = []
    cin = 1
    for width in STAGES:
        layers += [*conv_bn_relu(cin, width), *conv_bn_relu(width, width), nn.AvgPool2d(2)]
        cin = width
    return nn.Sequential(*layers, nn.Flatten(), nn.Linear(cin * 3 * 3, 128), nn.ReLU(),
                         nn.Dropout(0.2), nn.Linear(128, 10))


if __name__ == "__main__":
    common.main(build, dataset="fashion-mnist", out=HERE / "model.pt", epochs=3, lr=3e-3,
                batch=128, flip=True, description=__doc__)
