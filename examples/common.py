"""What both example train.py scripts share: CLI, seeding, Adam + one-cycle loop, TorchScript save.

Each script only says which model, which dataset and which hyper-parameters; everything here is
the same for both so the two examples cannot drift apart.
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import torch
from torch import nn

from neurodeploy.data import load_dataset


def main(build: Callable[[], nn.Module], *, dataset: str, out: Path, epochs: int, lr: float,
         batch: int, flip: bool = False, description: str | None = None) -> None:
    """Parse --epochs/--out, train ``build()`` on ``dataset`` and save it as TorchScript."""
    parser = argparse.ArgumentParser(description=description)
    parser.add_argument("--epochs", type=int, default=epochs, help=f"default {epochs}")
    parser.add_argument("--out", type=Path, default=out, help=f"default {out}")
    args = parser.parse_args()
    torch.manual_seed(0)  # before build(): the initial weights are part of the result
    torch.set_num_threads(2)  # the documented training times are for 2 cores
    model = build()
    start = time.perf_counter()
    acc = train(model, load_dataset(dataset, split="train"), load_dataset(dataset, split="test"),
                epochs=args.epochs, lr=lr, batch=batch, flip=flip)
    print(f"float test accuracy {100 * acc:.2f}% after {time.perf_counter() - start:.0f} s")
    save_torchscript(model, args.out)


def train(model: nn.Module, train_set: tuple[np.ndarray, np.ndarray],
          test_set: tuple[np.ndarray, np.ndarray], *, epochs: int, lr: float, batch: int,
          flip: bool = False) -> float:
    """Train in place and return the final held-out accuracy.

    One-cycle (warm-up, then cosine decay) lets a short fixed budget of epochs converge.
    ``flip`` mirrors half of each batch horizontally: free augmentation for clothing images.
    """
    inputs, labels = torch.as_tensor(train_set[0]), torch.as_tensor(train_set[1])
    optimizer = torch.optim.Adam(model.parameters(), lr=lr)
    steps = epochs * -(-len(inputs) // batch)
    schedule = torch.optim.lr_scheduler.OneCycleLR(optimizer, max_lr=lr, total_steps=steps)
    start = time.perf_counter()
    acc = 0.0
    for epoch in range(1, epochs + 1):
        model.train()
        total = 0.0
        for index in torch.randperm(len(inputs)).split(batch):
            xb = inputs[index]
            if flip:
                mirror = torch.rand(len(xb)) < 0.5
                xb = torch.where(mirror[:, None, None, None], xb.flip(3), xb)
            optimizer.zero_grad()
            loss = nn.functional.cross_entropy(model(xb), labels[index])
            loss.backward()
            optimizer.step()
            schedule.step()
            total += loss.item() * len(index)
        acc = accuracy(model, *test_set)
        print(f"epoch {epoch:2d}  train loss {total / len(inputs):.4f}  "
              f"test accuracy {100 * acc:.2f}%  ({time.perf_counter() - start:.0f} s)", flush=True)
    return acc


@torch.no_grad()
def accuracy(model: nn.Module, x: np.ndarray, y: np.ndarray, batch: int = 1000) -> float:
    """Top-1 accuracy in eval mode (BatchNorm running statistics, no Dropout)."""
    model.eval()
    hits = sum(int((model(torch.as_tensor(x[i:i + batch])).argmax(1).numpy()
                    == y[i:i + batch]).sum()) for i in range(0, len(x), batch))
    return hits / len(x)


def save_torchscript(model: nn.Module, path: Path) -> None:
    """TorchScript is what neurodeploy loads without trusting pickled code."""
    torch.jit.save(torch.jit.script(model.eval()), str(path))
    print(f"saved {path}")
