"""How long ``neurodeploy finetune`` takes: the Fashion CNN example, 3 epochs (issue 22: under
5 minutes on 2 cores).

    python benchmarks/finetune_speed.py                       # ecl, T=2, 3 epochs, all cores
    python benchmarks/finetune_speed.py --threads 1 --levels 8

The fine-tune is the command's default: distilled from the model as given (logits), clips
with T levels, Adam with a cosine schedule, mirrored images, held-out accuracy per epoch. It is
never cached (``finetune_accuracy.py`` caches its models, so it cannot time them twice). The
run records wall-clock and CPU seconds per epoch, the torch threads and the machine's load
average before it started: on a machine shared with other jobs, wall-clock time measures them
too. Writes benchmarks/results/finetune_speed.json.
"""

from __future__ import annotations

import argparse
import os

import torch
from common import ROOT, print_table, repo_relative, write_result

from neurodeploy.train import TrainConfig, finetune

BUDGET_SECONDS = 300.0  #: issue 22: 3 epochs of the Fashion CNN in under 5 minutes


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default=str(ROOT / "examples/fashion_cnn/model.pt"))
    parser.add_argument("--method", default="ecl")
    parser.add_argument("--timesteps", type=int, default=2)
    parser.add_argument("--levels", type=int, help="clip levels instead of T")
    parser.add_argument("--epochs", type=int, default=3)
    parser.add_argument("--threads", type=int, default=os.cpu_count(),
                        help="torch threads (default: every core)")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    load = os.getloadavg()[0]
    result = finetune(args.model, method=args.method, dataset="fashion-mnist",
                      levels=args.levels, timesteps=args.timesteps,
                      config=TrainConfig(epochs=args.epochs, flip=True))
    epochs = result.history.epochs
    print_table(["epoch", "held-out %", "wall s", "CPU s"],
                [[e.epoch, f"{100 * e.accuracy:.2f}", f"{e.seconds:.0f}",
                  f"{e.cpu_seconds:.0f}"] for e in epochs])
    seconds = result.history.seconds
    verdict = "met" if seconds < BUDGET_SECONDS else "missed"
    print(f"{args.epochs} epochs in {seconds:.0f} s wall ({result.history.cpu_seconds:.0f} CPU s, "
          f"{args.threads} threads, load {load:.2f} before): budget {BUDGET_SECONDS:.0f} s "
          f"{verdict}; test accuracy {100 * result.start_accuracy:.2f}% -> "
          f"{100 * result.test_accuracy:.2f}% ({result.levels} levels)")
    write_result("finetune_speed", {
        "model": repo_relative(args.model), "method": args.method, "levels": result.levels,
        "epochs": args.epochs, "threads": args.threads, "load_average_before": load,
        "seconds": seconds, "cpu_seconds": result.history.cpu_seconds,
        "budget_seconds": BUDGET_SECONDS, "budget": verdict,
        "original_test_accuracy": result.start_accuracy,
        "finetune_test_accuracy": result.test_accuracy,
        "per_epoch": [vars(e) for e in epochs]})


if __name__ == "__main__":
    main()
