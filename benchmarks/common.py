"""Shared helpers for the benchmark scripts: result files and table printing."""

from __future__ import annotations

import json
import platform
import time
from pathlib import Path

import torch

from neurodeploy import api
from neurodeploy.errors import TargetLimitExceeded

RESULTS = Path(__file__).resolve().parent / "results"
ROOT = Path(__file__).resolve().parent.parent
CACHE = Path(__file__).resolve().parent / "cache"  #: fine-tuned models (gitignored)


def write_result(name: str, payload: dict) -> Path:
    """Write benchmarks/results/<name>.json with the machine it ran on."""
    RESULTS.mkdir(parents=True, exist_ok=True)
    payload = {"benchmark": name, "date": time.strftime("%Y-%m-%d %H:%M:%S"),
               "machine": {"python": platform.python_version(), "torch": torch.__version__,
                           "threads": torch.get_num_threads(), "cpu": platform.processor()},
               **payload}
    path = RESULTS / f"{name}.json"
    path.write_text(json.dumps(payload, indent=2))
    return path


def compile_checked(model, **kwargs) -> tuple[api.CompileResult, bool]:
    """(compiled, whether saturation had to be allowed): compiled with the static membrane
    bound checked; where the worst case could saturate within the window, compiled again
    allowing it (saturation is part of the neuron rule, so the backends still agree)."""
    try:
        return api.compile(model, **kwargs), False
    except TargetLimitExceeded as exc:
        print(f"note: {exc}; compiling with --allow-saturation", flush=True)
        return api.compile(model, allow_saturation=True, **kwargs), True


def print_table(headers: list[str], rows: list[list]) -> None:
    cells = [[str(c) for c in row] for row in [headers, *rows]]
    widths = [max(len(row[i]) for row in cells) for i in range(len(headers))]
    for index, row in enumerate(cells):
        print("  ".join(c.rjust(w) for c, w in zip(row, widths, strict=True)))
        if index == 0:
            print("  ".join("-" * w for w in widths))


def finetuned(model: str, dataset: str, method: str, levels: int, epochs: int,
              lr: float) -> tuple[str, dict]:
    """``model`` fine-tuned for a trained method (neurodeploy.train.finetune), cached in
    benchmarks/cache/ by everything that changes the result; returns the path and the
    fine-tune record (time, epochs, per-epoch history)."""
    from neurodeploy.nn import STYLES
    from neurodeploy.train import TrainConfig, finetune, save_torchscript

    style = STYLES[method]
    key = (f"{Path(model).stem}_{dataset}_shift{style.shift}_noise{style.noise}_L{levels}"
           f"_e{epochs}_lr{lr}")
    path, info = CACHE / f"{key}.pt", CACHE / f"{key}.json"
    if not path.exists():
        result = finetune(model, method=method, dataset=dataset, levels=levels,
                          config=TrainConfig(epochs=epochs, lr=lr,
                                             flip=dataset == "fashion-mnist"))
        save_torchscript(result.model, path, result.input_shape)
        info.write_text(json.dumps({
            "finetune_seconds": result.history.seconds, "finetune_epochs": epochs,
            "finetune_lr": lr, "levels": levels, "finetune_test_accuracy": result.test_accuracy,
            "finetune_history": [vars(e) for e in result.history.epochs]}, indent=2))
    return str(path), json.loads(info.read_text())
