"""What both example train.py scripts share: CLI, seeding, the training loop (neurodeploy.train:
Adam with a one-cycle schedule, so a short fixed budget of epochs converges), TorchScript save.

Each script only says which model, which dataset and which hyper-parameters; everything here is
the same for both so the two examples cannot drift apart.
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Callable
from pathlib import Path

import torch
from torch import nn

from neurodeploy.data import load_dataset
from neurodeploy.train import TrainConfig, fit, save_torchscript


def main(build: Callable[[], nn.Module], *, dataset: str, out: Path, epochs: int, lr: float,
         batch: int, flip: bool = False, description: str | None = None) -> None:
    """Parse --epochs/--out, train ``build()`` on ``dataset`` and save it as TorchScript."""
    parser = argparse.ArgumentParser(description=description)
    parser.add_argument("--epochs", type=int, default=epochs, help=f"default {epochs}")
    parser.add_argument("--out", type=Path, default=out, help=f"default {out}")
    parser.add_argument("--threads", type=int, default=2,
                        help="torch threads (default 2: the documented training times are for "
                             "2 cores; 1 wastes no CPU spinning on a machine shared with others)")
    args = parser.parse_args()
    torch.manual_seed(0)  # before build(): the initial weights are part of the result
    torch.set_num_threads(args.threads)
    model = build()
    start = time.perf_counter()
    history = fit(model, load_dataset(dataset, split="train"),
                  load_dataset(dataset, split="test"),
                  TrainConfig(epochs=args.epochs, lr=lr, batch=batch, schedule="one-cycle",
                              flip=flip))
    acc = history.epochs[-1].accuracy
    print(f"float test accuracy {100 * acc:.2f}% after {time.perf_counter() - start:.0f} s")
    save_torchscript(model, args.out)
    print(f"saved {args.out}")


