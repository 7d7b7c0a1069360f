"""ECL's neuron variants on one fine-tuned model: which negative threshold, which v_init.

    python benchmarks/dual_threshold.py                # Fashion-MNIST CNN, loihi2, T=1,2,4,8

The ANN is the plain model fine-tuned with learned clips (the same cached model that
benchmarks/accuracy.py compares as qcfs and ecl). Variants, all on the same integer neuron:
no negative spikes (QCFS's neuron), negative threshold -theta/2, -theta and 0 (each with the
net-count guard, which is the only rule the neuron has), and each of those with v_init
calibrated per neuron on unlabeled images (T * (mean ANN activation - mean SNN rate), the
data-driven "optimized" initialization; compiled once per T because it is T-specific).
Prints one table and writes benchmarks/results/dual_threshold_<dataset>_<target>.json.
"""

from __future__ import annotations

import argparse
import time

from common import ROOT, finetuned, print_table, write_result

from neurodeploy import api
from neurodeploy.convert import ConvertOptions
from neurodeploy.data import calibration_set
from neurodeploy.frontend import load_model
from neurodeploy.methods import MethodContext
from neurodeploy.methods.learned import LearnedClip
from neurodeploy.passes import quantize
from neurodeploy.targets import load_target

#: label -> (dual, theta_neg ratio)
VARIANTS = {"no negative spikes (qcfs)": (False, 0.5), "theta_neg = -theta/2": (True, 0.5),
            "theta_neg = -theta": (True, 1.0), "theta_neg = 0": (True, 0.0)}
CALIBRATION_IMAGES = 256


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default=str(ROOT / "examples/fashion_cnn/model.pt"),
                        help="the plain model; it is fine-tuned (or taken from the cache)")
    parser.add_argument("--dataset", default="fashion-mnist")
    parser.add_argument("--target", default="loihi2")
    parser.add_argument("--timesteps", default="1,2,4,8")
    parser.add_argument("--limit", type=int, help="evaluate only the first N test samples")
    parser.add_argument("--finetune-epochs", type=int, default=3)
    parser.add_argument("--finetune-lr", type=float, default=1e-3)
    parser.add_argument("--levels", type=int, default=4)
    args = parser.parse_args()
    steps = [int(t) for t in args.timesteps.split(",")]
    model, _ = finetuned(args.model, args.dataset, "ecl", args.levels, args.finetune_epochs,
                         args.finetune_lr)
    ann = load_model(model)
    target = load_target(args.target)
    x, y = api.dataset(args.dataset, limit=args.limit)
    images = calibration_set(args.dataset, CALIBRATION_IMAGES)
    ann_acc = api.ann_accuracy(ann, x, y)
    results, rows = {}, []
    for label, (dual, ratio) in VARIANTS.items():
        for calibrated in (False, True):
            start = time.perf_counter()
            stage = LearnedClip("ecl", dual=dual, theta_neg_ratio=ratio,
                                calibrate_v_init=calibrated, needs_calibration=calibrated)
            accuracy = {}
            for t in steps if calibrated else [max(steps)]:
                ctx = MethodContext(ann=ann, calib=images, options=ConvertOptions(timesteps=t),
                                    target=target, show_progress=False)
                graph = stage(None, ctx)
                graph = quantize(graph, target, allow_saturation=True)
                accuracy.update(api.evaluate(graph, x, y, steps if not calibrated else [t],
                                             show_progress=False))
            name = label + (" + calibrated v_init" if calibrated else "")
            results[name] = {"dual": dual, "theta_neg_ratio": ratio, "v_init": (
                "calibrated" if calibrated else "theta/2"), "accuracy": {
                str(t): a for t, a in accuracy.items()}, "seconds": time.perf_counter() - start}
            rows.append([name] + [f"{100 * accuracy[t]:.2f}" for t in steps])
    print(f"{args.dataset} test set ({len(x)} samples), target {args.target}; fine-tuned float "
          f"ANN {100 * ann_acc:.2f}%")
    print_table(["neuron"] + [f"T={t}" for t in steps], rows)
    path = write_result(f"dual_threshold_{args.dataset}_{args.target}", {
        "model": model, "dataset": args.dataset, "samples": len(x), "target": args.target,
        "timesteps": steps, "ann_accuracy": ann_acc, "variants": results})
    print(f"written {path}")


if __name__ == "__main__":
    main()
