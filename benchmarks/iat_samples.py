"""How many calibration images IAT's exit thresholds need to generalize.

    python benchmarks/iat_samples.py                     # adafire, loihi2, T = 4, 8
    python benchmarks/iat_samples.py --samples 512,2048,8192 --timesteps 8

The ``iat`` stage picks each step's lowest exit threshold at which the calibration images
that would exit there keep their full-window prediction (tolerance 0.2%). On few images that
choice is optimistic: the test set meets inputs the calibration set never showed. This
converts AdaFire once per T on the usual 512 images, then calibrates only the exit thresholds
on 512, 2048, ... unlabeled training images, and evaluates each early exit on the whole test
split. Writes benchmarks/results/iat_samples_<dataset>_<target>.json.
"""

from __future__ import annotations

import argparse
from dataclasses import replace

from common import ROOT, print_table, write_result

from neurodeploy import api
from neurodeploy.convert import ConvertOptions
from neurodeploy.data import calibration_set
from neurodeploy.frontend import load_model
from neurodeploy.methods import MethodContext, get_method
from neurodeploy.methods.iat import Iat
from neurodeploy.passes import quantize
from neurodeploy.targets import load_target


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default=str(ROOT / "examples/fashion_cnn/model.pt"))
    parser.add_argument("--dataset", default="fashion-mnist")
    parser.add_argument("--target", default="loihi2")
    parser.add_argument("--method", default="adafire")
    parser.add_argument("--samples", default="512,2048")
    parser.add_argument("--timesteps", default="4,8")
    args = parser.parse_args()
    chip = load_target(args.target)
    search_images = calibration_set(args.dataset, api.DEFAULT_CALIBRATION_SAMPLES)
    ann = load_model(args.model, input_shape=tuple(search_images.shape[1:]))
    x, y = api.dataset(args.dataset)
    rows, points = [], []
    for steps in (int(t) for t in args.timesteps.split(",")):
        ctx = MethodContext(ann=ann, calib=search_images, target=chip,
                            options=replace(ConvertOptions(), timesteps=steps))
        graph = get_method(args.method).convert(ctx)
        for samples in (int(n) for n in args.samples.split(",")):
            exit_ctx = replace(ctx, calib=calibration_set(args.dataset, samples))
            compiled = quantize(Iat()(graph, exit_ctx), chip, allow_saturation=True)
            result = api.evaluate_adaptive(compiled, x, y)
            cut = 1 - result.mean_timesteps / steps
            loss = 100 * (result.full_accuracy - result.accuracy)
            points.append({"timesteps": steps, "calibration_samples": samples,
                           "accuracy": result.accuracy, "full_accuracy": result.full_accuracy,
                           "mean_timesteps": result.mean_timesteps, "timestep_cut": cut,
                           "accuracy_loss_points": loss, "exits": result.exits})
            rows.append([steps, samples, f"{100 * result.full_accuracy:.2f}",
                         f"{100 * result.accuracy:.2f}", f"{result.mean_timesteps:.2f}",
                         f"{100 * cut:.1f}%", f"{loss:.2f}",
                         "yes" if cut >= 0.3 and loss <= 0.2 else "no"])
    print(f"{args.method}+iat, {args.dataset} test set ({len(x)} samples), target {args.target}")
    print_table(["T", "calib images", "full window", "early exit", "mean steps", "cut",
                 "loss (points)", "goal"], rows)
    path = write_result(f"iat_samples_{args.dataset}_{args.target}", {
        "model": args.model, "method": args.method, "target": args.target,
        "test_samples": len(x), "points": points})
    print(f"written {path}")


if __name__ == "__main__":
    main()
