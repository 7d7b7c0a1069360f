"""How much a calibrated network's accuracy depends on the calibration draw.

    python benchmarks/seeds.py      # calibrate, calibrate+ftbc at T=4, seeds 0, 1, 2, loihi2

Each seed draws a different set of unlabeled training images (``compile --seed``) and seeds
every random choice of the stages; each network is evaluated on the whole test split. The
goal figures in docs/methods.md are quoted for seed 0; this table says how far they move.
Writes benchmarks/results/seeds_<dataset>_<target>.json.
"""

from __future__ import annotations

import argparse
import time

import numpy as np
from common import ROOT, print_table, write_result

from neurodeploy import api
from neurodeploy.frontend import load_model


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default=str(ROOT / "examples/fashion_cnn/model.pt"))
    parser.add_argument("--dataset", default="fashion-mnist")
    parser.add_argument("--target", default="loihi2")
    parser.add_argument("--methods", default="calibrate,calibrate+ftbc")
    parser.add_argument("--seeds", default="0,1,2")
    parser.add_argument("--timesteps", type=int, default=4)
    args = parser.parse_args()
    x, y = api.dataset(args.dataset)
    ann = load_model(args.model, input_shape=tuple(x.shape[1:]))
    ann_acc = api.ann_accuracy(ann, x, y)
    seeds = [int(s) for s in args.seeds.split(",")]
    results, rows = {}, []
    for method in args.methods.split(","):
        points = []
        for seed in seeds:
            start = time.perf_counter()
            graph = api.compile(ann, target=args.target, method=method, calib=args.dataset,
                                timesteps=args.timesteps, seed=seed, show_progress=False).graph
            seconds = time.perf_counter() - start
            accuracy = api.evaluate(graph, x, y, [args.timesteps],
                                    show_progress=False)[args.timesteps]
            points.append({"seed": seed, "accuracy": accuracy, "compile_seconds": seconds})
            print(f"{method} seed {seed}: {100 * accuracy:.2f}% ({seconds:.0f} s)", flush=True)
        gaps = 100 * (ann_acc - np.array([p["accuracy"] for p in points]))
        results[method] = {"points": points, "mean_gap_points": float(gaps.mean()),
                           "worst_gap_points": float(gaps.max()),
                           "best_gap_points": float(gaps.min())}
        rows.append([method, *(f"{100 * p['accuracy']:.2f}" for p in points),
                     f"{gaps.mean():.2f}", f"{gaps.min():.2f} .. {gaps.max():.2f}",
                     f"{int((gaps <= 1).sum())}/{len(gaps)}"])
    print(f"float ANN {100 * ann_acc:.2f}%; T={args.timesteps}, {args.target}, "
          f"{len(x)} test images")
    print_table(["method", *(f"seed {s}" for s in seeds), "mean gap", "gap range",
                 "within 1 point"], rows)
    path = write_result(f"seeds_{args.dataset}_{args.target}", {
        "model": args.model, "dataset": args.dataset, "target": args.target,
        "timesteps": args.timesteps, "test_samples": len(x), "ann_accuracy": ann_acc,
        "methods": results})
    print(f"written {path}")


if __name__ == "__main__":
    main()
