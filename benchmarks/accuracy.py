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
file. benchmarks/methods_ops.py measures the training-free methods the same way and checks
their goals.
"""

from __future__ import annotations

import argparse
import itertools
import json
import time
from pathlib import Path

import numpy as np
from common import (
    RESULTS,
    ROOT,
    compile_checked,
    finetuned,
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

TRAINED = ("qcfs", "ecl", "dual_phase")


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
    args = parser.parse_args()
    result = args.result or f"accuracy_{args.dataset}_{args.target}"
    if args.count_samples < 1:
        parser.error("--count-samples must be at least 1")
    steps = [int(t) for t in args.timesteps.split(",")]
    x, y = api.dataset(args.dataset, limit=args.limit)
    rows, methods = [], {}
    ann_acc = None
    if args.merge:
        old = json.loads(RESULTS.joinpath(f"{result}.json").read_text())
        methods, ann_acc = old["methods"], old["ann_accuracy"]
    counted = np.arange(min(args.count_samples, len(x)))
    for method in args.methods.split(","):
        trained = method.split("+")[0] in TRAINED
        model, finetune = (finetuned(args.model, args.dataset, method.split("+")[0],
                                     args.levels, args.finetune_epochs, args.finetune_lr)
                           if trained else (args.model, {}))
        for granularity in ["learned"] if trained else args.granularities.split(","):
            label = (method + (f"/{args.tag}" if args.tag else "") if trained
                     else f"{method}/{granularity}")
            try:
                entry, own_ann = _measure_method(args, method, model, granularity, steps, x, y,
                                                 counted)
            except NeurodeployError as exc:
                print(f"{label}: refused: {exc}", flush=True)
                methods[label] = {"method": method, "granularity": granularity,
                                  "refused": str(exc)}
                rows.append([label, "refused", *["-"] * (len(steps) + len(steps[1:3]) + 4)])
                continue
            if ann_acc is None and not trained:
                ann_acc = own_ann
            methods[label] = {**entry, **finetune}
            accuracy, early = entry["accuracy"], entry.get("early_exit", {})
            rows.append([label, f"{100 * own_ann:.2f}"]
                        + [f"{100 * accuracy[str(t)]:.2f}" for t in steps]
                        + [f"{100 * (accuracy[str(t)] - own_ann):+.2f}" for t in steps[1:3]]
                        + [" / ".join(f"{entry['synops'][str(t)] / 1e6:.2f}" for t in steps),
                           " / ".join(f"{100 * early[str(t)]['accuracy']:.2f} at "
                                      f"{early[str(t)]['mean_timesteps']:.2f}" for t in steps)
                           if early else "-"]
                        + [" / ".join(f"{seconds:.0f}" for seconds
                                      in entry["compile_seconds_per_window"].values()),
                           f"{finetune['finetune_seconds']:.0f}" if finetune else "-"])
    print(f"{args.dataset} test set ({len(x)} samples), target {args.target}; plain float ANN "
          f"accuracy {100 * ann_acc:.2f}%" if ann_acc is not None else "")
    print_table(["method", "own ANN"] + [f"T={t}" for t in steps]
                + [f"vs own ANN @T={t}" for t in steps[1:3]]
                + ["M synops/sample", "early exit % at mean T", "compile s (per compiled T)",
                   "fine-tune s"],
                rows)
    path = write_result(result, {
        "model": args.model, "dataset": args.dataset, "samples": len(x),
        "target": args.target, "timesteps": steps, "ann_accuracy": ann_acc,
        "methods": methods})
    print(f"written {path}")
    if args.plot:
        _plot(args, steps, methods, ann_acc)
        print(f"written {args.plot}")
    if args.plot_ops:
        plot_accuracy_vs_ops(_operation_points(methods), ann_acc, args.plot_ops,
                             f"{args.dataset} on {args.target}: accuracy vs synaptic operations")
        print(f"written {args.plot_ops}")


def _measure_method(args, method: str, model: str, granularity: str, steps: list[int], x, y,
                    counted: np.ndarray) -> tuple[dict, float]:
    """One method at one granularity: (its result entry, its own float ANN's accuracy)."""
    options = ConvertOptions(per_channel=granularity == "channel")
    conversion = get_method(method)
    early_exit = conversion.stages[-1].name == "iat"
    compile_steps = steps if conversion.window_specific else [max(steps)]
    accuracy, synops, early, compile_seconds = {}, {}, {}, {}
    start = time.perf_counter()
    for t in compile_steps:
        result, _ = compile_checked(model, target=args.target, method=method,
                                    calib=args.dataset, timesteps=t, options=options)
        compile_seconds[str(t)] = result.seconds
        if early_exit:  # iat is window-specific: this network runs its own window only
            full, early[str(t)] = measure(result.graph, x, y, t, counted, early_exit=True)
            accuracy[t], synops[str(t)] = full["accuracy"], full["synops"]
            continue
        evaluated = steps if len(compile_steps) == 1 else [t]
        accuracy.update(api.evaluate(result.graph, x, y, evaluated))
        for step in evaluated:
            synops[str(step)] = operations(result.graph, x[counted], step)["synops"]
    entry = {"method": method, "granularity": granularity,
             "ann_accuracy": api.ann_accuracy(result.ann, x, y),
             "accuracy": {str(t): a for t, a in accuracy.items()},
             "synops": synops, "operations_counted_on_first": len(counted),
             "compile_seconds": sum(compile_seconds.values()),
             "compile_seconds_per_window": compile_seconds,
             "evaluate_seconds": time.perf_counter() - start - sum(compile_seconds.values()),
             "safe_timesteps": get_graph_meta(result.graph).safe_timesteps}
    if early:
        entry["early_exit"] = early
    return entry, entry["ann_accuracy"]


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
