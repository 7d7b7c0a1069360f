"""Train a small ResNet on Fashion-MNIST (minutes on 2 cores); save TorchScript model.pt.

Three basic blocks: two with 1x1 projection shortcuts (they change the channel count and
stride) and one with an identity shortcut, then global average pooling and a Linear readout.
"""

from __future__ import annotations

import sys
from pathlib import Path

import torch
from torch import nn

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))  # examples/common.py is shared by the examples

import common  # noqa: E402


class BasicBlock(nn.Module):
    """relu(bn(conv(relu(bn(conv(x))))) + shortcut(x)); the shortcut projects when the shape
    changes, so each merge is one population fed by two synapse layers."""

    def __init__(self, cin: int, cout: int, stride: int = 1) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(cin, cout, 3, stride=stride, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(cout)
        self.relu1 = nn.ReLU()
        self.conv2 = nn.Conv2d(cout, cout, 3, padding=1, bias=False)
        self.bn2 = nn.BatchNorm2d(cout)
        self.shortcut = nn.Identity()
        if stride != 1 or cin != cout:
            self.shortcut = nn.Sequential(nn.Conv2d(cin, cout, 1, stride=stride, bias=False),
                                          nn.BatchNorm2d(cout))
        self.relu2 = nn.ReLU()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.bn2(self.conv2(self.relu1(self.bn1(self.conv1(x)))))
        return self.relu2(out + self.shortcut(x))


def build() -> nn.Module:
    """Only layers neurodeploy maps: Conv2d+BN+ReLU, residual adds, AdaptiveAvgPool2d(1)."""
    return nn.Sequential(
        nn.Conv2d(1, 16, 3, padding=1, bias=False), nn.BatchNorm2d(16), nn.ReLU(),
        BasicBlock(16, 32, stride=2), BasicBlock(32, 32), BasicBlock(32, 64, stride=2),
        nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(64, 10))


if __name__ == "__main__":
    common.main(build, dataset="fashion-mnist", out=HERE / "model.pt", epochs=3, lr=3e-3,
                batch=128, flip=True, description=__doc__)
