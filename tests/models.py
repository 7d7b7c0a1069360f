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
