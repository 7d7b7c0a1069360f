"""The training loop both examples share: Adam, cosine schedule, held-out accuracy per epoch."""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np
import torch
from torch import nn


def train(model: nn.Module, x: np.ndarray, y: np.ndarray, x_test: np.ndarray,
          y_test: np.ndarray, *, epochs: int, lr: float, batch: int, flip: bool = False
          ) -> float:
    """Train in place; returns the final held-out accuracy."""
    torch.manual_seed(0)
    torch.set_num_threads(2)
    optimizer = torch.optim.Adam(model.parameters(), lr=lr)
    steps = epochs * -(-len(x) // batch)
    schedule = torch.optim.lr_scheduler.OneCycleLR(optimizer, max_lr=lr, total_steps=steps)
    inputs, labels = torch.as_tensor(x), torch.as_tensor(y)
    start = time.perf_counter()
    for epoch in range(1, epochs + 1):
        model.train()
        order = torch.randperm(len(x))
        total = 0.0
        for index in order.split(batch):
            xb = inputs[index]
            if flip:
                mask = torch.rand(len(xb)) < 0.5
                xb = torch.where(mask[:, None, None, None], xb.flip(3), xb)
            optimizer.zero_grad()
            loss = nn.functional.cross_entropy(model(xb), labels[index])
            loss.backward()
            optimizer.step()
            schedule.step()
            total += loss.item() * len(index)
        acc = accuracy(model, x_test, y_test)
        print(f"epoch {epoch:2d}  loss {total / len(x):.4f}  test accuracy {100 * acc:.2f}%  "
              f"({time.perf_counter() - start:.0f} s)", flush=True)
    return acc


@torch.no_grad()
def accuracy(model: nn.Module, x: np.ndarray, y: np.ndarray) -> float:
    model.eval()
    hits = sum(int((model(torch.as_tensor(x[i:i + 1000])).argmax(1).numpy()
                    == y[i:i + 1000]).sum()) for i in range(0, len(x), 1000))
    return hits / len(x)


def save_torchscript(model: nn.Module, path: Path) -> None:
    """TorchScript is the safest format to hand to neurodeploy (no pickled code)."""
    torch.jit.save(torch.jit.script(model.eval()), str(path))
    print(f"saved {path}")
