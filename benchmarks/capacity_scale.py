"""Capacity of real-scale networks on multi-chip systems: compile time, chips, cores, the
spikes crossing chips, and the compile's peak memory.

    python benchmarks/capacity_scale.py                     # all three, p99.99, T=4
    python benchmarks/capacity_scale.py --models vgg11 --samples 4

The Fashion-MNIST CNN example on a multi-chip Loihi system, and the VGG-11 and ResNet-18
shapes on 3x32x32 (built by compile_speed.py: random weights, BatchNorm statistics gathered
on its 256 seeded random calibration images) on a multi-chip Loihi 2 system. Each compile
runs in its own process: the time is ``api.compile``'s, the memory the process's peak
resident set when the compile returns (``ru_maxrss``), wall-clock and CPU seconds (the
machine is shared: CPU seconds measure the compile's own work). The chips and cores are the
allocator's; the spikes crossing chips per inference come from the deployment report on the
first ``--samples`` images (test images for the CNN, calibration images for the shapes).
Writes benchmarks/results/capacity_scale.json.
"""

from __future__ import annotations

import resource

import numpy as np
from common import ROOT, cpu_seconds, per_model_arguments, print_table, run_child, write_result
from compile_speed import FASHION, SHAPE, shape_model

MODELS = {"fashion_cnn": "loihi-kapoho-bay", "vgg11": "loihi2-kapoho-point",
          "resnet18": "loihi2-kapoho-point"}


def child(model: str, timesteps: int, samples: int) -> dict:
    """One compile and one report in this process."""
    from neurodeploy import api

    target = MODELS[model]
    if model == "fashion_cnn":
        path, calib, shape = str(FASHION), "fashion-mnist", None
        x, y = api.dataset("fashion-mnist", "test", limit=samples)
    else:
        (path, calib), shape = shape_model(model), SHAPE
        x, y = calib[:samples], np.zeros(samples, np.int64)
    before = cpu_seconds()
    result = api.compile(path, target=target, method="p99.99", calib=calib,
                         timesteps=timesteps, input_shape=shape, allow_saturation=True,
                         show_progress=False)
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    cpu = cpu_seconds() - before
    data = result.report(x, y, timesteps=[timesteps], show_progress=False).data
    capacity = data["capacity"]
    return {"target": target, "seconds": result.seconds, "cpu_seconds": cpu, "peak_mb": peak,
            "chips_used": capacity["chips_used"], "chips": capacity["chips"],
            "cores_used": capacity["cores_used"], "utilisation": capacity["utilisation"],
            "fits": capacity["fits"], "samples": len(x),
            "cross_chip_spikes": capacity["cross_chip_spikes"],
            "populations": {layer["population"]: {
                "cores": layer["cores"], "chips": layer["chips"],
                "cross_chip_spikes": layer["cross_chip_spikes"]} for layer in data["layers"]}}


def measure(model: str, timesteps: int, samples: int) -> dict:
    result, seconds = run_child(__file__, model, timesteps, samples)
    print(f"{model} on {result['target']}: {result['seconds']:.1f} s compile, "
          f"{result['cores_used']} cores on {result['chips_used']} chips, "
          f"{result['peak_mb']:.0f} MB ({seconds:.0f} s in all)", flush=True)
    return result


def main() -> None:
    args = per_model_arguments(__doc__, tuple(MODELS), timesteps=4, samples=8, child=child)
    if args is None:
        return
    results = {model: measure(model, args.timesteps, args.samples)
               for model in args.models.split(",")}
    print_table(["model", "target", "compile s", "CPU s", "chips", "cores",
                 "cross-chip spikes/inf", "peak MB"],
                [[model, r["target"], f"{r['seconds']:.1f}", f"{r['cpu_seconds']:.1f}",
                  f"{r['chips_used']}/{r['chips']}",
                  r["cores_used"], f"{r['cross_chip_spikes']:.0f}", f"{r['peak_mb']:.0f}"]
                 for model, r in results.items()])
    path = write_result("capacity_scale", {"timesteps": args.timesteps, "method": "p99.99",
                                           "samples": args.samples, "results": results})
    print(f"wrote {path.relative_to(ROOT)}")


if __name__ == "__main__":
    main()
