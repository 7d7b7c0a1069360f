"""Accuracy of the integer SNN against its float ANN, per method and window length T.

    python benchmarks/accuracy.py                      # Fashion-MNIST CNN, loihi, max + p99.99
    python benchmarks/accuracy.py --methods max,p99.9,p99.99 --timesteps 1,2,4,8,16,32
    python benchmarks/accuracy.py --methods max,p99.99,qcfs,ecl,dual_phase --target loihi2 \
        --timesteps 1,2,4,8 --plot docs/accuracy_trained.png

Compiles the model once per method and threshold granularity (for the longest T, so the
static bound covers every T), evaluates the whole test split on the reference simulator,
prints one table and writes benchmarks/results/accuracy_<dataset>_<target>.json.

Methods that train (qcfs, ecl, dual_phase) first fine-tune the plain model
(``neurodeploy.train.finetune``, --finetune-epochs) and are compared with their own float
ANN; the fine-tuned models are cached in benchmarks/cache/ (gitignored) with their fine-tune
time. ecl and dual_phase calibrate for one window length, so they are compiled once per T.
``--merge`` re-measures the named methods and keeps the others of the existing result file.
"""

from __future__ import annotations

import argparse
import itertools
import json
import time
from pathlib import Path

from common import RESULTS, ROOT, compile_checked, finetuned, print_table, write_result

from neurodeploy import api
from neurodeploy.convert import ConvertOptions
from neurodeploy.meta import get_graph_meta

TRAINED = ("qcfs", "ecl", "dual_phase")
PER_TIMESTEP = ("dual_phase", "ecl")  #: calibrated for one window length


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
    parser.add_argument("--plot", type=Path, help="write accuracy vs T (PNG) here")
    parser.add_argument("--tag", default="",
                        help="appended to trained methods' labels (e.g. L2 for --levels 2)")
    parser.add_argument("--merge", action="store_true",
                        help="keep the other methods of the existing result file")
    args = parser.parse_args()
    steps = [int(t) for t in args.timesteps.split(",")]
    x, y = api.dataset(args.dataset, limit=args.limit)
    rows, methods = [], {}
    ann_acc = None
    if args.merge:
        old = json.loads(RESULTS.joinpath(f"accuracy_{args.dataset}_{args.target}.json")
                         .read_text())
        methods, ann_acc = old["methods"], old["ann_accuracy"]
    for method in args.methods.split(","):
        trained = method.split("+")[0] in TRAINED
        model, finetune = (finetuned(args.model, args.dataset, method.split("+")[0],
                                     args.levels, args.finetune_epochs, args.finetune_lr)
                           if trained else (args.model, {}))
        for granularity in ["learned"] if trained else args.granularities.split(","):
            options = ConvertOptions(per_channel=granularity == "channel")
            compile_steps = steps if method.split("+")[0] in PER_TIMESTEP else [max(steps)]
            accuracy, compile_seconds, start = {}, 0.0, time.perf_counter()
            for t in compile_steps:
                result, _ = compile_checked(model, target=args.target, method=method,
                                            calib=args.dataset, timesteps=t, options=options)
                compile_seconds += result.seconds
                evaluated = steps if len(compile_steps) == 1 else [t]
                accuracy.update(api.evaluate(result.graph, x, y, evaluated))
            own_ann = api.ann_accuracy(result.ann, x, y)
            if ann_acc is None and not trained:
                ann_acc = own_ann
            label = (method + (f"/{args.tag}" if args.tag else "") if trained
                     else f"{method}/{granularity}")
            methods[label] = {
                "method": method, "granularity": granularity, "ann_accuracy": own_ann,
                "accuracy": {str(t): a for t, a in accuracy.items()},
                "compile_seconds": compile_seconds,
                "evaluate_seconds": time.perf_counter() - start - compile_seconds,
                "safe_timesteps": get_graph_meta(result.graph).safe_timesteps, **finetune}
            rows.append([label, f"{100 * own_ann:.2f}"]
                        + [f"{100 * accuracy[t]:.2f}" for t in steps]
                        + [f"{100 * (accuracy[t] - own_ann):+.2f}" for t in steps[1:3]]
                        + [f"{finetune['finetune_seconds']:.0f}" if finetune else "-"])
    print(f"{args.dataset} test set ({len(x)} samples), target {args.target}; plain float ANN "
          f"accuracy {100 * ann_acc:.2f}%" if ann_acc is not None else "")
    print_table(["method", "own ANN"] + [f"T={t}" for t in steps]
                + [f"vs own ANN @T={t}" for t in steps[1:3]] + ["fine-tune s"], rows)
    path = write_result(f"accuracy_{args.dataset}_{args.target}", {
        "model": args.model, "dataset": args.dataset, "samples": len(x),
        "target": args.target, "timesteps": steps, "ann_accuracy": ann_acc,
        "methods": methods})
    print(f"written {path}")
    if args.plot:
        _plot(args, steps, methods, ann_acc)
        print(f"written {args.plot}")


def _plot(args, steps: list[int], methods: dict, ann_acc: float | None) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6.4, 4.2))
    markers = itertools.cycle("osD^vP*X")
    for label, entry in methods.items():
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
