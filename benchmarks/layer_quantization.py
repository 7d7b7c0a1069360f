"""Where a T-step, single-spike conversion loses accuracy: the float ANN with one activation
at a time (then all) replaced by what an ideal rate neuron sends at the calibrate stage's
thresholds, ``round(a * T / theta)`` levels of ``theta / T`` clipped to [0, theta].

    python benchmarks/layer_quantization.py          # Fashion-MNIST CNN, T=4, whole test split

No SNN runs here: this is the quantization floor the calibration methods start from
(corrections and weight calibration then recover part of it), layer by layer.
Writes benchmarks/results/layer_quantization_<dataset>_T<T>.json.
"""

from __future__ import annotations

import argparse

import numpy as np
import torch
from common import ROOT, print_table, write_result

from neurodeploy import api
from neurodeploy.convert import ConvertOptions
from neurodeploy.data import calibration_set
from neurodeploy.frontend import load_model
from neurodeploy.methods import MethodContext
from neurodeploy.methods.calibration import calibrated_thresholds
from neurodeploy.methods.mmse import ACTIVATIONS, quantized
from neurodeploy.targets import load_target


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default=str(ROOT / "examples/fashion_cnn/model.pt"))
    parser.add_argument("--dataset", default="fashion-mnist")
    parser.add_argument("--timesteps", type=int, default=4)
    parser.add_argument("--calib-samples", type=int, default=api.DEFAULT_CALIBRATION_SAMPLES)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    x, y = api.dataset(args.dataset)
    ann = load_model(args.model, input_shape=tuple(x.shape[1:]))
    names = [n.name for n in ann.nodes if n.op in ACTIVATIONS]
    ctx = MethodContext(ann=ann, options=ConvertOptions(timesteps=args.timesteps),
                        calib=calibration_set(args.dataset, args.calib_samples, args.seed),
                        target=load_target("loihi2"), seed=args.seed)
    thresholds = calibrated_thresholds(ctx, "calibrate", dict.fromkeys(names, 1))

    def rate_neuron(name: str):
        theta = np.asarray(thresholds[name], np.float64)

        def send(a: torch.Tensor) -> torch.Tensor:
            shaped = theta.reshape(-1, *(1,) * (a.dim() - 2))
            return torch.as_tensor(quantized(a.numpy(), shaped, args.timesteps, 1), dtype=a.dtype)
        return send

    ann_acc = api.ann_accuracy(ann, x, y)
    cases = {**{name: [name] for name in names}, "all": names}
    results, rows = {}, []
    for case, layers in cases.items():
        accuracy = api.ann_accuracy(ann, x, y, {n: rate_neuron(n) for n in layers})
        results[case] = {"accuracy": accuracy, "loss_points": 100 * (ann_acc - accuracy)}
        rows.append([case, f"{100 * accuracy:.2f}", f"{100 * (ann_acc - accuracy):.2f}"])
    print(f"float ANN {100 * ann_acc:.2f}%; T={args.timesteps}, MMSE thresholds per channel "
          f"on {args.calib_samples} images, {len(x)} test images")
    print_table(["quantized activation", "accuracy", "points lost"], rows)
    path = write_result(f"layer_quantization_{args.dataset}_T{args.timesteps}", {
        "model": args.model, "dataset": args.dataset, "timesteps": args.timesteps,
        "calibration_samples": args.calib_samples, "seed": args.seed,
        "test_samples": len(x), "ann_accuracy": ann_acc, "activations": results})
    print(f"written {path}")


if __name__ == "__main__":
    main()
