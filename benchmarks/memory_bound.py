"""Peak memory of runs over growing numbers of samples, under the default memory budget.

    python benchmarks/memory_bound.py
    python benchmarks/memory_bound.py --resnet-images 200,2000 --digits-samples 1000,4000,16000

Three workloads, each run in its own process (the figure is the process's peak resident set,
``ru_maxrss``, which includes the fixed part: Python, torch, the graph, the inputs):

- ResNet-18 shape on 3x32x32 (benchmarks/compile_speed.py builds it, random weights and
  BatchNorm statistics; compiled once with p99.99 for loihi2 at T=4, kept in
  benchmarks/cache/) evaluated on N seeded random images, ``Deployment.evaluate``;
- the digits MLP (examples/digits_mlp, trained and compiled once into benchmarks/cache/)
  simulated at T=1000 on N digits samples (repeated test images) as ``neurodeploy simulate``
  does without ``--out`` (``predict``), and with ``--out`` at T=100 (the whole trace
  streamed to a file);
- the Fashion-MNIST CNN example compiled with calibrate_light (the MMSE thresholds and the
  corrections) at T=4 for loihi2 on N calibration images of the training split
  (``calib_samples``).

Writes benchmarks/results/memory_bound.json.
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
from common import CACHE, digits_network, print_table, write_result
from compile_speed import FASHION, SHAPE, shape_model

from neurodeploy.backends.memory import DEFAULT_MEMORY_BUDGET

RESNET = CACHE / "memory_bound_resnet18.nir"
LIMIT_MB = 3000  #: the issue's goal for ResNet-18 on 2,000 images


def prepare() -> None:
    """Compile both networks once (each in its own process, so no run inherits its memory)."""
    if not RESNET.exists():
        _child("compile-resnet")
    digits_network()


def child(kind: str, samples: int, timesteps: int) -> dict:
    """One run in this process; returns its time and peak memory."""
    from neurodeploy import api

    if kind == "compile-resnet":
        path, calib = shape_model("resnet18")
        api.compile(path, target="loihi2", method="p99.99", calib=calib, timesteps=4,
                    input_shape=SHAPE, allow_saturation=True, capacity_check=False,
                    show_progress=False).save(RESNET)
        return {}
    start = time.perf_counter()
    if kind == "cnn-calibrate":
        api.compile(FASHION, target="loihi2", method="calibrate_light", calib="fashion-mnist",
                    calib_samples=samples, timesteps=timesteps, show_progress=False)
    elif kind == "resnet-evaluate":
        deployment = api.load(RESNET)
        x = np.random.default_rng(0).random((samples, *SHAPE), dtype=np.float32)
        y = np.random.default_rng(1).integers(0, 10, samples)
        deployment.evaluate(x, y, [timesteps], show_progress=False)
    else:
        deployment = api.load(digits_network())
        x, _ = api.dataset("digits")
        x = np.resize(x, (samples, *x.shape[1:]))
        if kind == "digits-simulate":
            deployment.predict(x, timesteps, show_progress=False)
        else:
            with tempfile.TemporaryDirectory(dir=CACHE) as scratch:
                out = Path(scratch) / "trace.npz"
                deployment.simulate_to_file(x, out, timesteps, show_progress=False)
                return {"seconds": time.perf_counter() - start, "peak_mb": _peak_mb(),
                        "file_mb": out.stat().st_size / 1e6}
    return {"seconds": time.perf_counter() - start, "peak_mb": _peak_mb()}


def _peak_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def _child(kind: str, samples: int = 0, timesteps: int = 0) -> dict:
    command = [sys.executable, __file__, "--child", kind, str(samples), str(timesteps)]
    done = subprocess.run(command, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        raise RuntimeError(f"{kind} {samples} failed:\n{done.stderr[-3000:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--resnet-images", default="200,2000")
    parser.add_argument("--digits-samples", default="1000,4000,16000")
    parser.add_argument("--trace-samples", default="250,1000")
    parser.add_argument("--calib-images", default="512,8000,60000")
    parser.add_argument("--child", nargs=3, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        kind, samples, timesteps = args.child
        print(json.dumps(child(kind, int(samples), int(timesteps))))
        return
    prepare()
    runs = [("resnet-evaluate", int(n), 4) for n in args.resnet_images.split(",")]
    runs += [("digits-simulate", int(n), 1000) for n in args.digits_samples.split(",")]
    runs += [("digits-simulate-out", int(n), 100) for n in args.trace_samples.split(",")]
    runs += [("cnn-calibrate", int(n), 4) for n in args.calib_images.split(",")]
    rows, results = [], []
    for kind, samples, timesteps in runs:
        result = {"run": kind, "samples": samples, "timesteps": timesteps,
                  **_child(kind, samples, timesteps)}
        print(json.dumps(result), flush=True)
        results.append(result)
        rows.append([kind, samples, timesteps, f"{result['peak_mb']:.0f}",
                     f"{result['seconds']:.1f}", f"{result.get('file_mb', 0):.0f}"])
    print_table(["run", "samples", "T", "peak MB", "seconds", "file MB"], rows)
    resnet = [r for r in results if r["run"] == "resnet-evaluate"]
    write_result("memory_bound", {
        "budget_bytes": DEFAULT_MEMORY_BUDGET,
        "resnet_limit_mb": LIMIT_MB,
        "resnet_within_limit": all(r["peak_mb"] <= LIMIT_MB for r in resnet),
        "runs": results})


if __name__ == "__main__":
    main()
