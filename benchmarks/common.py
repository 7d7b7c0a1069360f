"""Shared helpers for the benchmark scripts: result files, table printing, compiling,
fine-tuned models, and measuring a compiled network (accuracy, operations, early exit)."""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import platform
import resource
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import torch

from neurodeploy import api
from neurodeploy.backends import Record, get_backend
from neurodeploy.core.meta import get_graph_meta
from neurodeploy.errors import SaturationRisk
from neurodeploy.methods.iat import confidence_steps, exit_steps, iat_thresholds
from neurodeploy.operations import count_operations
from neurodeploy.progress import progress
from neurodeploy.targets import load_target

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
    path.write_text(repo_relative(json.dumps(payload, indent=2)))
    return path


def importable_in_ray_workers() -> None:
    """Ray's local workers inherit this environment: put this folder on their PYTHONPATH so
    a task defined in a benchmark module (pickled by reference) imports there."""
    os.environ["PYTHONPATH"] = os.pathsep.join(
        filter(None, [str(Path(__file__).parent), os.environ.get("PYTHONPATH")]))


def repo_relative(text: str) -> str:
    """``text`` with this checkout's absolute path removed, so a result (model paths, a
    captured traceback) means the same on every clone."""
    return text.replace(f"{ROOT}/", "")


def digits_network() -> Path:
    """The digits MLP example (examples/digits_mlp) trained and compiled for loihi2 at T=4,
    once, in CACHE (each step in its own process, so no measured run inherits its memory)."""
    model, network = CACHE / "digits_mlp.pt", CACHE / "digits_mlp.nir"
    if not network.exists():
        CACHE.mkdir(parents=True, exist_ok=True)
        subprocess.run([sys.executable, str(ROOT / "examples/digits_mlp/train.py"), "--out",
                        str(model)], check=True, capture_output=True)
        subprocess.run([sys.executable, "-m", "neurodeploy.cli", "compile", str(model),
                        "--target", "loihi2", "--calib", "digits", "-T", "4", "-o",
                        str(network)], check=True, capture_output=True)
    return network


def compile_checked(model, **kwargs) -> tuple[api.Deployment, bool]:
    """(compiled, whether saturation had to be allowed): compiled with the static membrane
    bound checked; where the worst case could saturate within the window, compiled again
    allowing it (saturation is part of the neuron rule, so the backends still agree)."""
    try:
        return api.compile(model, **kwargs), False
    except SaturationRisk as exc:
        print(f"note: {exc}; compiling with --allow-saturation", flush=True)
        return api.compile(model, allow_saturation=True, **kwargs), True


def run_child(script: str, *args: object) -> tuple[dict, float]:
    """Run ``script --child ARGS`` in a fresh process (so its peak memory is its own); the
    JSON its last output line holds, and the wall-clock seconds the process took."""
    start = time.perf_counter()
    done = subprocess.run([sys.executable, script, "--child", *map(str, args)],
                          capture_output=True, text=True, check=False)
    if done.returncode != 0:
        raise RuntimeError(f"{' '.join(map(str, args))} failed:\n{done.stderr[-3000:]}")
    return json.loads(done.stdout.strip().splitlines()[-1]), time.perf_counter() - start


def timed(fn) -> float:
    """Seconds one call of ``fn()`` takes."""
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start


def per_model_arguments(doc: str, models: tuple[str, ...], timesteps: int, samples: int,
                        child: Callable[[str, int, int], dict]) -> argparse.Namespace | None:
    """--models, --timesteps and --samples of a benchmark that measures each model in its own
    process (``run_child``); in that process (--child MODEL T SAMPLES) runs ``child``, prints
    its JSON for the parent and returns None."""
    parser = argparse.ArgumentParser(description=doc.split("\n\n")[0])
    parser.add_argument("--models", default=",".join(models))
    parser.add_argument("--timesteps", type=int, default=timesteps)
    parser.add_argument("--samples", type=int, default=samples)
    parser.add_argument("--child", nargs=3, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if not args.child:
        return args
    model, steps, count = args.child
    print(json.dumps(child(model, int(steps), int(count))))
    return None


def cpu_seconds() -> float:
    """User + system time of this process (all threads) and of the children it has reaped
    (Lava's workers): on a machine shared with other jobs the work itself, where wall-clock
    time also measures the others."""
    own, reaped = (resource.getrusage(who) for who in (resource.RUSAGE_SELF,
                                                       resource.RUSAGE_CHILDREN))
    return own.ru_utime + own.ru_stime + reaped.ru_utime + reaped.ru_stime


def print_table(headers: list[str], rows: list[list]) -> None:
    cells = [[str(c) for c in row] for row in [headers, *rows]]
    widths = [max(len(row[i]) for row in cells) for i in range(len(headers))]
    for index, row in enumerate(cells):
        print("  ".join(c.rjust(w) for c, w in zip(row, widths, strict=True)))
        if index == 0:
            print("  ".join("-" * w for w in widths))


def finetuned(model: str, dataset: str, method: str, levels: int, epochs: int,
              lr: float, distill=None) -> tuple[str, dict]:
    """``model`` fine-tuned for a trained method (neurodeploy.train.finetune), cached in
    benchmarks/cache/ by everything that changes the result; returns the path and the
    fine-tune record (wall-clock and CPU time, epochs, per-epoch history, the test accuracy
    of the model before and after). ``distill`` (a ``neurodeploy.distill.Distillation``):
    distilled from the model as given; None: labels only."""
    from neurodeploy.nn import STYLES
    from neurodeploy.train import TrainConfig, finetune, save_torchscript

    style = STYLES[method]
    teacher = "" if distill is None else (f"_kd{distill.temperature}w{distill.weight}"
                                          f"a{distill.activations}")
    digest = hashlib.sha256(Path(model).read_bytes()).hexdigest()[:12]  # examples share a stem
    key = (f"{Path(model).stem}_{digest}_{dataset}_shift{style.shift}_noise{style.noise}"
           f"_L{levels}_e{epochs}_lr{lr}{teacher}")
    path, info = CACHE / f"{key}.pt", CACHE / f"{key}.json"
    if not path.exists():
        result = finetune(model, method=method, dataset=dataset, levels=levels,
                          distill=distill,
                          config=TrainConfig(epochs=epochs, lr=lr,
                                             flip=dataset == "fashion-mnist"))
        save_torchscript(result.model, path, result.input_shape)
        info.write_text(json.dumps({
            "finetune_seconds": result.history.seconds,
            "finetune_cpu_seconds": result.history.cpu_seconds,
            "finetune_threads": torch.get_num_threads(), "finetune_epochs": epochs,
            "finetune_lr": lr, "levels": levels,
            "distillation": None if distill is None else vars(distill),
            "original_test_accuracy": result.start_accuracy,
            "finetune_test_accuracy": result.test_accuracy,
            "finetune_history": [vars(e) for e in result.history.epochs]}, indent=2))
    return str(path), json.loads(info.read_text())


def measure(graph, x, y, timesteps: int, counted: np.ndarray, early_exit: bool
            ) -> tuple[dict, dict]:
    """(whole window, early exit or {}): accuracy over all of ``x`` from one run per batch;
    operations per sample over the ``counted`` samples, a sample that exits at step t
    counted by running it for t steps."""
    backend = get_backend("reference")
    batch = api.chunk_size(graph, timesteps)
    thresholds = iat_thresholds(graph) if early_exit else None
    taken = np.full(len(x), timesteps)
    hits = early_hits = 0
    start = time.perf_counter()
    for first in progress(range(0, len(x), batch), f"evaluate T={timesteps}"):
        outputs = backend.run(graph, api.quantize_inputs(graph, x[first:first + batch]),
                              timesteps, record=Record.OUTPUT).output_steps
        labels = y[first:first + batch]
        hits += int((outputs[-1].argmax(axis=1) == labels).sum())
        if early_exit:
            stop, predictions = exit_steps(confidence_steps(graph, outputs),
                                           outputs.argmax(axis=2), thresholds)
            taken[first:first + batch] = stop
            early_hits += int((predictions == labels).sum())
    seconds = time.perf_counter() - start
    full = {"accuracy": hits / len(x), **operations(graph, x[counted], timesteps),
            "evaluate_seconds": seconds}
    if not early_exit:
        return full, {}
    synops = updates = energy = 0.0
    for t in range(1, timesteps + 1):
        chosen = counted[taken[counted] == t]
        if len(chosen):
            ops = operations(graph, x[chosen], t)
            synops += ops["synops"] * len(chosen)
            updates += ops["neuron_updates"] * len(chosen)
            energy += ops["energy_pj"] * len(chosen)
    return full, {"accuracy": early_hits / len(x), "mean_timesteps": float(taken.mean()),
                  "exits": {str(t): int((taken == t).sum()) for t in range(1, timesteps + 1)},
                  "synops": synops / len(counted), "neuron_updates": updates / len(counted),
                  "energy_pj": energy / len(counted),
                  "counted_mean_timesteps": float(taken[counted].mean())}


def operations(graph, images: np.ndarray, timesteps: int) -> dict:
    """Per-sample synaptic operations, neuron updates and energy of a ``timesteps`` window."""
    backend = get_backend("reference")
    batch = api.chunk_size(graph, timesteps)
    synops: dict[str, int] = {}
    for first in range(0, len(images), batch):
        trace = backend.run(graph, api.quantize_inputs(graph, images[first:first + batch]),
                            timesteps, record=Record.COUNTS)
        for name, count in trace.synops.items():
            synops[name] = synops.get(name, 0) + count
    ops = count_operations(graph, synops, len(images), timesteps)
    target = load_target(get_graph_meta(graph).target)
    return {"synops": ops.synops, "neuron_updates": ops.neuron_updates,
            "energy_pj": ops.energy_pj(target)}


def plot_accuracy_vs_ops(results: dict, ann_acc: float, path: Path, title: str) -> None:
    """Accuracy against synaptic operations per inference, one line per method over its
    windows (``results[method]["points"][T]`` with ``accuracy``, ``synops`` and, for an early
    exit, ``mean_timesteps``)."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=(7, 4.5), layout="constrained")
    FigureCanvasAgg(fig)
    ax = fig.subplots()
    for method, result in results.items():
        points = sorted(result["points"].items(), key=lambda kv: int(kv[0]))
        ops = [p["synops"] for _, p in points]
        accuracy = [100 * p["accuracy"] for _, p in points]
        ax.plot(ops, accuracy, marker="o", label=method)
        for (t, p), o, a in zip(points, ops, accuracy, strict=True):
            label = f"T={t}" + (f" ({p['mean_timesteps']:.1f})" if "mean_timesteps" in p else "")
            ax.annotate(label, (o, a), fontsize=6, xytext=(2, -8), textcoords="offset points")
    ax.axhline(100 * ann_acc, color="black", linestyle="--", label="float ANN")
    ax.set_xscale("log")
    ax.set_xlabel("synaptic operations per inference")
    ax.set_ylabel("test accuracy (%)")
    ax.set_ylim(max(0, 100 * ann_acc - 30), 100 * ann_acc + 2)
    ax.set_title(title)
    ax.legend(fontsize=7)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=120)
