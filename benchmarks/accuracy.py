"""Accuracy of the integer SNN against its float ANN, per method and window length T.

    python benchmarks/accuracy.py                      # Fashion-MNIST CNN, loihi, max + p99.99
    python benchmarks/accuracy.py --methods max,p99.9,p99.99 --timesteps 1,2,4,8,16,32

Compiles the model once per method and threshold granularity (for the longest T, so the
static bound covers every T), evaluates the whole test split on the reference simulator,
prints one table and writes benchmarks/results/accuracy_<dataset>_<target>.json.
"""

from __future__ import annotations

import argparse
import itertools
import time

from common import ROOT, print_table, write_result

from neurodeploy import api
from neurodeploy.convert import ConvertOptions
from neurodeploy.errors import TargetLimitExceeded
from neurodeploy.meta import get_graph_meta


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
    args = parser.parse_args()
    steps = [int(t) for t in args.timesteps.split(",")]
    x, y = api.dataset(args.dataset, limit=args.limit)
    rows, methods = [], {}
    ann_acc = None
    for method, granularity in itertools.product(args.methods.split(","),
                                                 args.granularities.split(",")):
        result = _compile(args, method, max(steps), ConvertOptions(
            per_channel=granularity == "channel"))
        if ann_acc is None:
            ann_acc = api.ann_accuracy(result.ann, x, y)
        start = time.perf_counter()
        accuracy = api.evaluate(result.graph, x, y, steps)
        label = f"{method}/{granularity}"
        methods[label] = {
            "method": method, "granularity": granularity,
            "accuracy": {str(t): a for t, a in accuracy.items()},
            "compile_seconds": result.seconds, "evaluate_seconds": time.perf_counter() - start,
            "safe_timesteps": get_graph_meta(result.graph).safe_timesteps}
        rows.append([label] + [f"{100 * accuracy[t]:.2f}" for t in steps]
                    + [f"{100 * (accuracy[steps[-1]] - ann_acc):+.2f}"])
    print(f"{args.dataset} test set ({len(x)} samples), target {args.target}; "
          f"float ANN accuracy {100 * ann_acc:.2f}%")
    print_table(["method"] + [f"T={t}" for t in steps] + [f"vs ANN @T={steps[-1]}"], rows)
    path = write_result(f"accuracy_{args.dataset}_{args.target}", {
        "model": args.model, "dataset": args.dataset, "samples": len(x),
        "target": args.target, "timesteps": steps, "ann_accuracy": ann_acc,
        "methods": methods})
    print(f"written {path}")


def _compile(args, method: str, timesteps: int, options: ConvertOptions):
    kwargs = {"target": args.target, "method": method, "calib": args.dataset,
              "timesteps": timesteps, "options": options}
    try:
        return api.compile(args.model, **kwargs)
    except TargetLimitExceeded as exc:
        print(f"note: {exc}; compiling with --allow-saturation")
        return api.compile(args.model, allow_saturation=True, **kwargs)


if __name__ == "__main__":
    main()
