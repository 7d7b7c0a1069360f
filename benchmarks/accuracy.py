"""Accuracy of the integer SNN against its float ANN, per method and window length T.

    python benchmarks/accuracy.py                      # Fashion-MNIST CNN, loihi, max + p99.99
    python benchmarks/accuracy.py --methods max,p99.9,p99.99 --timesteps 1,2,4,8,16,32
    python benchmarks/accuracy.py --methods max,p99.99,qcfs,ecl,dual_phase --target loihi2 \
        --timesteps 1,2,4,8 --plot docs/accuracy_trained.png

    python benchmarks/accuracy.py --methods p99.99,calibrate,ftbc,adafire,adafire+iat \
        --target loihi2 --timesteps 1,2,4,8 --granularities channel \
        --result accuracy_training_free_fashion-mnist_loihi2 \
        --plot-ops benchmarks/results/accuracy_training_free_fashion-mnist_loihi2.png

Compiles the model once per method and threshold granularity (for the longest T, so the
static bound covers every T), evaluates the whole test split on the reference simulator,
counts synaptic operations per sample on the first --count-samples test images, prints one
table and writes benchmarks/results/accuracy_<dataset>_<target>.json (or --result). A
method calibrated for its window (calibrate, ftbc, adafire, iat, ecl, dual_phase:
``Method.window_specific``) is compiled once per T instead; a ``+iat`` method also reports
its early exit (accuracy, mean timesteps, operations of the steps each sample ran). A method
the target refuses (e.g. burst spikes on loihi) gets a row saying why. --plot-ops draws
accuracy against operations.

Methods that train (qcfs, ecl, dual_phase) first fine-tune the plain model
(``neurodeploy.train.finetune``, --finetune-epochs) and are compared with their own float
ANN; the fine-tuned models are cached in benchmarks/cache/ (gitignored) with their fine-tune
time. ``--merge`` re-measures the named methods and keeps the others of the existing result
file. ``--workers N`` (or ``--address``) runs the sweep's compiles as Ray tasks, one per
method and granularity, or per window for a window-specific method (``neurodeploy.shards``,
``pip install 'neurodeploy[ray]'``); the results are the one-process ones.
benchmarks/methods_ops.py measures the training-free methods the same way and checks
their goals.
"""

from __future__ import annotations

import argparse
import itertools
import json
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from common import (
    RESULTS,
    ROOT,
    compile_checked,
    finetuned,
    importable_in_ray_workers,
    measure,
    operations,
    plot_accuracy_vs_ops,
    print_table,
    write_result,
)

from neurodeploy import api
from neurodeploy.convert import ConvertOptions
from neurodeploy.core.meta import get_graph_meta
from neurodeploy.errors import NeurodeployError
from neurodeploy.methods import get_method
from neurodeploy.shards import Workers, run_sharded

TRAINED = ("qcfs", "ecl", "dual_phase")


@dataclass(frozen=True)
class Unit:
    """One compile of the sweep and the windows its network is evaluated at."""

    label: str
    method: str
    model: str
    granularity: str
    compiled_at: int
    evaluated: tuple[int, ...]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default=str(ROOT / "examples/fashion_cnn/model.pt"))
    parser.add_argument("--dataset", default="fashion-mnist")
    parser.add_argument("--target", default="loihi")
    parser.add_argument("--methods", default="max,p99.99")
    parser.add_argument("--granularities", default="channel,layer",
                        help="threshold granularities to compare (channel, layer)")
    parser.add_argument("--timesteps", default="1,2,4,8,16,32")
    parser.add_argument("--limit", type=int, help="evaluate only the first N test samples")
    parser.add_argument("--finetune-epochs", type=int, default=3)
    parser.add_argument("--finetune-lr", type=float, default=1e-3)
    parser.add_argument("--levels", type=int, default=4, help="clip levels of trained methods")
    parser.add_argument("--count-samples", type=int, default=2000,
                        help="count synaptic operations on the first N test samples")
    parser.add_argument("--plot", type=Path, help="write accuracy vs T (PNG) here")
    parser.add_argument("--plot-ops", type=Path,
                        help="write accuracy vs synaptic operations (PNG) here")
    parser.add_argument("--tag", default="",
                        help="appended to trained methods' labels (e.g. L2 for --levels 2)")
    parser.add_argument("--merge", action="store_true",
                        help="keep the other methods of the existing result file")
    parser.add_argument("--result", help="result file name (default accuracy_DATASET_TARGET)")
    parser.add_argument("--workers", type=int,
                        help="run the sweep's compiles as tasks on a local Ray of N workers")
    parser.add_argument("--address", help="run them on the Ray cluster at this address")
    args = parser.parse_args()
    result = args.result or f"accuracy_{args.dataset}_{args.target}"
    if args.count_samples < 1:
        parser.error("--count-samples must be at least 1")
    if not Path(args.model).is_file():  # every row would be a refusal, --merge kept over results
        parser.error(f"{args.model}: no such model file (each example's train.py "
                     "makes its own)")
    steps = [int(t) for t in args.timesteps.split(",")]
    x, y = api.dataset(args.dataset, limit=args.limit)
    methods, ann_acc = {}, None
    if args.merge:
        old = json.loads(RESULTS.joinpath(f"{result}.json").read_text())
        methods, ann_acc = old["methods"], old["ann_accuracy"]
    units, finetunes = _plan(args, steps)
    counted = np.arange(min(args.count_samples, len(x)))
    workers = Workers(args.workers, args.address)
    if workers.distributed:
        importable_in_ray_workers()
    start = time.perf_counter()
    measured = [entry for shard in run_sharded(
        measure_units, len(units), (units, args.target, args.dataset, x, y, counted), workers,
        description="sweep", shard_size=1) for entry in shard]
    sweep_seconds = time.perf_counter() - start
    rows = []
    for label, parts in itertools.groupby(zip(units, measured, strict=True),
                                          key=lambda pair: pair[0].label):
        entry = _merge(list(parts))
        if "refused" in entry:
            print(f"{label}: refused: {entry['refused']}", flush=True)
            rows.append([label, "refused", *["-"] * (len(steps) + len(steps[1:3]) + 4)])
        else:
            finetune = finetunes.get(label, {})
            entry.update(finetune)
            if ann_acc is None and not finetune:
                ann_acc = entry["ann_accuracy"]
            rows.append(_row(label, entry, steps, finetune))
        methods[label] = entry
    print(f"{args.dataset} test set ({len(x)} samples), target {args.target}; plain float ANN "
          f"accuracy {100 * ann_acc:.2f}%" if ann_acc is not None else "")
    print_table(["method", "own ANN"] + [f"T={t}" for t in steps]
                + [f"vs own ANN @T={t}" for t in steps[1:3]]
                + ["M synops/sample", "early exit % at mean T", "compile s (per compiled T)",
                   "fine-tune s"],
                rows)
    print(f"sweep: {len(units)} compiles in {sweep_seconds:.0f} s"
          + (f" on {args.workers or args.address} Ray workers" if workers.distributed else ""))
    path = write_result(result, {
        "model": args.model, "dataset": args.dataset, "samples": len(x),
        "target": args.target, "timesteps": steps, "ann_accuracy": ann_acc,
        "sweep": {"compiles": len(units), "seconds": sweep_seconds,
                  "workers": args.workers, "address": args.address},
        "methods": methods})
    print(f"written {path}")
    if args.plot:
        _plot(args, steps, methods, ann_acc)
        print(f"written {args.plot}")
    if args.plot_ops:
        plot_accuracy_vs_ops(_operation_points(methods), ann_acc, args.plot_ops,
                             f"{args.dataset} on {args.target}: accuracy vs synaptic operations")
        print(f"written {args.plot_ops}")


def _plan(args, steps: list[int]) -> tuple[list[Unit], dict[str, dict]]:
    """The sweep's compiles (one per method and granularity, or one per window for a method
    calibrated for its window) and the fine-tune record of each trained method's label; the
    trained methods' models are fine-tuned (or read from the cache) here, before the sweep."""
    units, finetunes = [], {}
    for method in args.methods.split(","):
        base = method.split("+")[0]
        trained = base in TRAINED
        model, finetune = (finetuned(args.model, args.dataset, base, args.levels,
                                     args.finetune_epochs, args.finetune_lr)
                           if trained else (str(Path(args.model).resolve()), {}))
        for granularity in ["learned"] if trained else args.granularities.split(","):
            label = (method + (f"/{args.tag}" if args.tag else "") if trained
                     else f"{method}/{granularity}")
            finetunes[label] = finetune
            units += method_units(label, method, model, granularity, steps)
    return units, finetunes


def method_units(label: str, method: str, model: str, granularity: str,
                 steps: list[int]) -> list[Unit]:
    """One compile at the longest window evaluated at every window, or one per window for a
    method calibrated for its window."""
    windows = [[t] for t in steps] if get_method(method).window_specific else [steps]
    return [Unit(label, method, model, granularity, max(evaluated), tuple(evaluated))
            for evaluated in windows]


def measure_units(rows: slice, units: list[Unit], target: str, dataset: str, x, y,
                   counted: np.ndarray) -> list[dict]:
    """Each unit of ``units[rows]`` compiled and evaluated (a Ray task when sharded)."""
    return [_measure_unit(unit, target, dataset, x, y, counted) for unit in units[rows]]


def _measure_unit(unit: Unit, target: str, dataset: str, x, y, counted: np.ndarray) -> dict:
    """One compile: accuracy and operations per evaluated window, or why it was refused."""
    options = ConvertOptions(per_channel=unit.granularity == "channel")
    early_exit = get_method(unit.method).stages[-1].name == "iat"
    try:
        result, _ = compile_checked(unit.model, target=target, method=unit.method,
                                    calib=dataset, timesteps=unit.compiled_at,
                                    options=options)
    except NeurodeployError as exc:
        return {"method": unit.method, "granularity": unit.granularity, "refused": str(exc)}
    start = time.perf_counter()
    t = unit.compiled_at
    if early_exit:  # iat is window-specific: this network runs its own window only
        full, early = measure(result.graph, x, y, t, counted, early_exit=True)
        accuracy, synops, early = {t: full["accuracy"]}, {str(t): full["synops"]}, {str(t): early}
    else:
        accuracy, early = api.evaluate(result.graph, x, y, list(unit.evaluated)), {}
        synops = {str(step): operations(result.graph, x[counted], step)["synops"]
                  for step in unit.evaluated}
    notes = get_graph_meta(result.graph).notes
    return {"method": unit.method, "granularity": unit.granularity,
            "choice_per_window": {str(t): notes["auto"]["chosen"]} if "auto" in notes else {},
            "ann_accuracy": api.ann_accuracy(result.ann, x, y),
            "accuracy": {str(step): a for step, a in accuracy.items()}, "synops": synops,
            "early_exit": early, "operations_counted_on_first": len(counted),
            "compile_seconds_per_window": {str(t): result.seconds},
            "evaluate_seconds": time.perf_counter() - start,
            "safe_timesteps": get_graph_meta(result.graph).safe_timesteps}


def _merge(parts: list[tuple[Unit, dict]]) -> dict:
    """One method's entry from its compiles (the longest window's network gives the safe
    bound and the ANN); refused if any compile was."""
    measured = [entry for _, entry in parts]
    refused = next((entry for entry in measured if "refused" in entry), None)
    if refused is not None:
        return refused
    merged = ("accuracy", "synops", "early_exit", "compile_seconds_per_window",
              "choice_per_window")
    entry = {**measured[-1], **{key: {} for key in merged}, "evaluate_seconds": 0.0}
    for part in measured:
        for key in merged:
            entry[key].update(part[key])
        entry["evaluate_seconds"] += part["evaluate_seconds"]
    entry["compile_seconds"] = sum(entry["compile_seconds_per_window"].values())
    for key in ("early_exit", "choice_per_window"):  # only methods that have them
        if not entry[key]:
            del entry[key]
    return entry


def _row(label: str, entry: dict, steps: list[int], finetune: dict) -> list[str]:
    """The printed table's row of one measured method."""
    own_ann, accuracy = entry["ann_accuracy"], entry["accuracy"]
    early = entry.get("early_exit", {})
    return ([label, f"{100 * own_ann:.2f}"]
            + [f"{100 * accuracy[str(t)]:.2f}" for t in steps]
            + [f"{100 * (accuracy[str(t)] - own_ann):+.2f}" for t in steps[1:3]]
            + [" / ".join(f"{entry['synops'][str(t)] / 1e6:.2f}" for t in steps),
               " / ".join(f"{100 * early[str(t)]['accuracy']:.2f} at "
                          f"{early[str(t)]['mean_timesteps']:.2f}" for t in steps)
               if early else "-"]
            + [" / ".join(f"{seconds:.0f}" for seconds
                          in entry["compile_seconds_per_window"].values()),
               f"{finetune['finetune_seconds']:.0f}" if finetune else "-"])


def _operation_points(methods: dict) -> dict:
    """The measured entries as ``plot_accuracy_vs_ops`` points: an early exit is its own
    line, and its whole-window line is left out when the method without ``+iat`` (the same
    network) is there too."""
    points = {}
    measured = {entry["method"] for entry in methods.values()}
    for label, entry in methods.items():
        if "synops" not in entry:
            continue  # refused, or measured before operations were counted
        if entry["method"].removesuffix("+iat") not in measured - {entry["method"]}:
            points[label] = {"points": {t: {"accuracy": entry["accuracy"][t], "synops": ops}
                                        for t, ops in entry["synops"].items()}}
        if "early_exit" in entry:
            points[f"{label} early exit"] = {"points": entry["early_exit"]}
    return points


def _plot(args, steps: list[int], methods: dict, ann_acc: float | None) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6.4, 4.2))
    markers = itertools.cycle("osD^vP*X")
    for label, entry in methods.items():
        if "refused" in entry:
            continue
        ax.plot(steps, [100 * entry["accuracy"][str(t)] for t in steps], marker=next(markers),
                label=label)
    if ann_acc is not None:
        ax.axhline(100 * ann_acc, color="gray", linestyle="--", label="plain float ANN")
    ax.set_xscale("log", base=2)
    ax.set_xticks(steps, [str(t) for t in steps])
    ax.set_xlabel("timesteps T")
    ax.set_ylabel("test accuracy (%)")
    ax.set_title(f"{args.dataset}, integer SNN on {args.target} (reference simulator)")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    fig.tight_layout()
    args.plot.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(args.plot, dpi=120)


if __name__ == "__main__":
    main()
