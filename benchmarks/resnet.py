"""The Fashion-MNIST ResNet (examples/fashion_resnet) as an integer SNN: accuracy per method
and window length on the whole test set, and Lava vs reference bit for bit.

    python benchmarks/resnet.py                          # 10k test images, loihi2, T = 1,2,4,8
    python benchmarks/resnet.py --methods p93:dual:burst8 --limit 1000

A method is a threshold statistic with options joined by ``:`` — ``dual`` (the dual
threshold: negative spikes retract over-firing) and ``burstN`` (up to N spikes per step,
graded spikes on loihi2), e.g. ``p93:dual:burst8``. Each is compiled once for the longest T
(so the static bound covers every T) and evaluated on the reference simulator; the best
method at the longest T is then run on Lava on a few samples and compared with the reference.
Writes benchmarks/results/resnet_<dataset>_<target>.json.
"""

from __future__ import annotations

import argparse
import time

from common import ROOT, compile_checked, print_table, write_result

from neurodeploy import api
from neurodeploy.backends import Record, get_backend
from neurodeploy.convert import ConvertOptions
from neurodeploy.verify import compare

DEFAULT_METHODS = ("p99.99,p99.99:dual,p99:dual:burst4,p95:dual:burst8,p93:dual:burst8,"
                   "p90:dual:burst8")


def options(tag: str) -> tuple[str, ConvertOptions]:
    """'p93:dual:burst8' -> ('p93', ConvertOptions(dual=True, max_burst=8))."""
    statistic, *flags = tag.split(":")
    burst = next((int(f[5:]) for f in flags if f.startswith("burst")), 1)
    unknown = [f for f in flags if f != "dual" and not f.startswith("burst")]
    if unknown:
        raise SystemExit(f"unknown option {unknown[0]!r} in {tag!r}: use dual and burstN")
    return statistic, ConvertOptions(dual="dual" in flags, max_burst=burst)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default=str(ROOT / "examples/fashion_resnet/model.pt"))
    parser.add_argument("--dataset", default="fashion-mnist")
    parser.add_argument("--target", default="loihi2")
    parser.add_argument("--methods", default=DEFAULT_METHODS)
    parser.add_argument("--timesteps", default="1,2,4,8")
    parser.add_argument("--limit", type=int, help="evaluate only the first N test samples")
    parser.add_argument("--verify-samples", type=int, default=3,
                        help="samples run on Lava against the reference (0: skip)")
    args = parser.parse_args()
    steps = [int(t) for t in args.timesteps.split(",")]
    longest = max(steps)
    x, y = api.dataset(args.dataset, limit=args.limit)
    rows, methods, compiled, ann_acc = [], {}, {}, None
    for tag in args.methods.split(","):
        statistic, opts = options(tag)
        result, saturation = compile_checked(args.model, target=args.target, method=statistic,
                                             calib=args.dataset, timesteps=longest,
                                             options=opts)
        start = time.perf_counter()
        accuracy = api.evaluate(result.graph, x, y, steps)
        seconds = time.perf_counter() - start
        if ann_acc is None:
            ann_acc = api.ann_accuracy(result.ann, x, y)
        compiled[tag] = result.graph
        methods[tag] = {"accuracy": {str(t): a for t, a in accuracy.items()},
                        "compile_seconds": result.seconds, "evaluate_seconds": seconds,
                        "allow_saturation": saturation}
        rows.append([tag] + [f"{100 * accuracy[t]:.2f}" for t in steps]
                    + [f"{100 * (accuracy[t] - ann_acc):+.2f}" for t in steps[-2:]]
                    + [f"{result.seconds:.1f}", f"{seconds:.0f}"])
        print(" ".join(rows[-1]), flush=True)
    print(f"{args.dataset} test set ({len(x)} samples), target {args.target}; float ANN "
          f"accuracy {100 * ann_acc:.2f}%")
    print_table(["method"] + [f"T={t}" for t in steps]
                + [f"vs ANN @T={t}" for t in steps[-2:]] + ["compile s", "evaluate s"], rows)
    best = max(methods, key=lambda m: methods[m]["accuracy"][str(longest)])
    verified = _verify(compiled[best], x, args.verify_samples, longest) \
        if args.verify_samples else None
    if verified:
        print(f"Lava vs reference, {best}, T={longest}, {verified['samples']} samples: "
              f"{'bit-exact' if verified['bit_exact'] else 'MISMATCH'} "
              f"({verified['values']} values, {verified['processes']} Lava processes, "
              f"{verified['lava_seconds']:.0f} s)")
    path = write_result(f"resnet_{args.dataset}_{args.target}", {
        "model": args.model, "dataset": args.dataset, "samples": len(x), "target": args.target,
        "timesteps": steps, "ann_accuracy": ann_acc, "methods": methods,
        "best_method": best, "lava_verify": verified})
    print(f"written {path}")


def _verify(graph, images, samples: int, timesteps: int) -> dict:
    lava, reference = get_backend("lava"), get_backend("reference")
    inputs = api.quantize_inputs(graph, images[:samples])
    expected = reference.run(graph, inputs, timesteps, record=Record.ALL)
    actual = lava.run(graph, inputs, timesteps, record=Record.ALL)
    comparison = compare(graph, expected, actual)
    return {"samples": samples, "timesteps": timesteps, "values": comparison.values,
            "bit_exact": comparison.divergence is None,
            "divergence": str(comparison.divergence) if comparison.divergence else None,
            "processes": lava.last_processes,
            "lava_seconds": lava.last_setup_seconds + lava.last_run_seconds}


if __name__ == "__main__":
    main()
