"""Train the digits MLP (seconds on 2 cores) and save it as TorchScript model.pt."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from torch import nn

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))

from common import save_torchscript, train  # noqa: E402

from neurodeploy.data import load_dataset  # noqa: E402


def build() -> nn.Module:
    return nn.Sequential(nn.Flatten(), nn.Linear(64, 128), nn.ReLU(), nn.Linear(128, 64),
                         nn.ReLU(), nn.Linear(64, 10))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--epochs", type=int, default=25)
    parser.add_argument("--out", type=Path, default=HERE / "model.pt")
    args = parser.parse_args()
    x, y = load_dataset("digits", split="train")
    x_test, y_test = load_dataset("digits", split="test")
    model = build()
    acc = train(model, x, y, x_test, y_test, epochs=args.epochs, lr=0.01, batch=64)
    print(f"float test accuracy {100 * acc:.2f}%")
    save_torchscript(model, args.out)


if __name__ == "__main__":
    main()
