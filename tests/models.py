"""Small PyTorch models saved to files the way users save them (shared by CLI tests)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
from torch import nn

from neurodeploy.data import load_dataset


class DigitsMLP(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.net = nn.Sequential(nn.Flatten(), nn.Linear(64, 48), nn.ReLU(), nn.Linear(48, 10))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x)


class MaxPoolNet(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.conv = nn.Conv2d(1, 4, 3, padding=1)
        self.pool = nn.MaxPool2d(2)
        self.fc = nn.Linear(64, 10)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc(torch.flatten(self.pool(torch.relu(self.conv(x))), 1))


def trained_digits_mlp(steps: int = 150) -> DigitsMLP:
    """Full-batch Adam on the digits training split: about a second on 2 cores."""
    torch.manual_seed(0)
    x, y = load_dataset("digits", split="train")
    model = DigitsMLP()
    optimizer = torch.optim.Adam(model.parameters(), lr=0.01)
    inputs, labels = torch.as_tensor(x), torch.as_tensor(y)
    for _ in range(steps):
        optimizer.zero_grad()
        nn.functional.cross_entropy(model(inputs), labels).backward()
        optimizer.step()
    return model.eval()


def save_torchscript(model: nn.Module, path: Path) -> Path:
    torch.jit.save(torch.jit.script(model), str(path))
    return path


def digits_batch(n: int = 4) -> np.ndarray:
    return load_dataset("digits", limit=n)[0]


#: input shape of the VGG-11 and ResNet-18 shapes (CIFAR-sized)
SHAPE = (3, 32, 32)


def conv_bn_relu(cin: int, cout: int, stride: int = 1) -> list[nn.Module]:
    return [nn.Conv2d(cin, cout, 3, stride, 1, bias=False), nn.BatchNorm2d(cout), nn.ReLU()]


def vgg11() -> nn.Module:
    """VGG-11 for 32x32 inputs, average pooling (a spike count has no exact max)."""
    layers: list[nn.Module] = []
    cin = 3
    for width in (64, "pool", 128, "pool", 256, 256, "pool", 512, 512, "pool", 512, 512, "pool"):
        if width == "pool":
            layers.append(nn.AvgPool2d(2))
        else:
            layers += conv_bn_relu(cin, width)
            cin = width
    return nn.Sequential(*layers, nn.Flatten(), nn.Linear(512, 10))


class BasicBlock(nn.Module):
    def __init__(self, cin: int, cout: int, stride: int):
        super().__init__()
        self.main = nn.Sequential(*conv_bn_relu(cin, cout, stride),
                                  nn.Conv2d(cout, cout, 3, 1, 1, bias=False),
                                  nn.BatchNorm2d(cout))
        self.shortcut = nn.Sequential() if stride == 1 and cin == cout else nn.Sequential(
            nn.Conv2d(cin, cout, 1, stride, bias=False), nn.BatchNorm2d(cout))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.relu(self.main(x) + self.shortcut(x))


def resnet(blocks_per_stage: tuple[int, ...]) -> nn.Module:
    """A ResNet of basic blocks for 32x32 inputs (a 3x3 stem, no max pool): stages of 64, 128,
    256 and 512 channels, each but the first halving the resolution in its first block."""
    blocks, cin = [], 64
    for stage, count in enumerate(blocks_per_stage):
        cout = 64 * 2 ** stage
        for k in range(count):
            blocks.append(BasicBlock(cin, cout, 2 if stage and not k else 1))
            cin = cout
    return nn.Sequential(*conv_bn_relu(3, 64), *blocks, nn.AdaptiveAvgPool2d(1), nn.Flatten(),
                         nn.Linear(512, 10))


def resnet18() -> nn.Module:
    return resnet((2, 2, 2, 2))


def resnet34() -> nn.Module:
    return resnet((3, 4, 6, 3))


SHAPES = {"vgg11": vgg11, "resnet18": resnet18, "resnet34": resnet34}


def shape_network(name: str, images: int) -> tuple[nn.Module, np.ndarray]:
    """(VGG-11 or ResNet-18 shape in eval mode, its ``images`` calibration images): seeded
    random weights and uniform random 3x32x32 images, the BatchNorm statistics a plain average
    over those images, so every layer sees activations of a trained network's scale."""
    torch.manual_seed(0)
    x = torch.rand(images, *SHAPE)
    model = SHAPES[name]()
    for module in model.modules():
        if isinstance(module, nn.BatchNorm2d):
            module.momentum = None  # a plain average over the batches
    model.train()
    with torch.no_grad():
        for first in range(0, len(x), 64):
            model(x[first:first + 64])
    return model.eval(), x.numpy()
