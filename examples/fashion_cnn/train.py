"""Train the small VGG-style Fashion-MNIST CNN (minutes on 2 cores); save TorchScript."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from torch import nn

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))

from common import save_torchscript, train  # noqa: E402

from neurodeploy.data import load_dataset  # noqa: E402


def block(cin: int, cout: int) -> list[nn.Module]:
    return [nn.Conv2d(cin, cout, 3, padding=1, bias=False), nn.BatchNorm2d(cout), nn.ReLU()]


def build() -> nn.Module:
    """Only layers neurodeploy maps: Conv2d+BN+ReLU, AvgPool2d (not MaxPool), Flatten, Linear."""
    return nn.Sequential(
        *block(1, 16), nn.AvgPool2d(2),
        *block(16, 32), nn.AvgPool2d(2),
        *block(32, 32),
        nn.Flatten(), nn.Linear(32 * 7 * 7, 128), nn.ReLU(), nn.Dropout(0.2),
        nn.Linear(128, 10))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--epochs", type=int, default=4)
    parser.add_argument("--out", type=Path, default=HERE / "model.pt")
    args = parser.parse_args()
    x, y = load_dataset("fashion-mnist", split="train")
    x_test, y_test = load_dataset("fashion-mnist", split="test")
    model = build()
    acc = train(model, x, y, x_test, y_test, epochs=args.epochs, lr=3e-3, batch=128, flip=True)
    print(f"float test accuracy {100 * acc:.2f}%")
    save_torchscript(model, args.out)


if __name__ == "__main__":
    main()
