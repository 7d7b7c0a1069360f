"""Interoperability: an snnTorch network imported through NIR, and netx exports run in lava-dl.

    python benchmarks/interop.py            # about 10 minutes on 2 cores

1. snnTorch trains its LIF MLP on the digits (examples/snntorch_mlp, T=8, reset to zero) and
   exports it to NIR; `import` quantizes it for reference, loihi2 and loihi. On the whole test
   split: accuracy, and agreement with snnTorch's own simulation (predictions, every spike).
2. netx: the imported network (loihi2) and the converted digits ReLU MLP (T=16, per-layer
   thresholds) are exported with `--flavor netx` and run in lava-dl on the first test samples;
   accuracy of both and their agreement (the converted MLP resets by subtraction and starts at
   theta/2, netx's LIF resets to zero and starts at 0).
3. The neuron kernel with and without the leak support's slow branch (same currents).

Prints tables and writes benchmarks/results/interop.json.
"""

from __future__ import annotations

import argparse
import importlib.util
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch
from common import ROOT, print_table, timed, write_result

from neurodeploy import api
from neurodeploy.backends import Record
from neurodeploy.convert import ConvertOptions
from neurodeploy.core import neuron
from neurodeploy.interop.netx import to_netx
from neurodeploy.interop.netx_run import run_netx

DIGITS_MLP = ROOT / "examples/digits_mlp/model.pt"


def snntorch_example():
    spec = importlib.util.spec_from_file_location(
        "snntorch_train", ROOT / "examples/snntorch_mlp/train.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def agreement(ours: dict[str, np.ndarray], theirs: list[np.ndarray]) -> float:
    """Fraction of equal spike values over all populations, steps, samples and neurons."""
    equal = sum(int((a == b).sum()) for a, b in zip(ours.values(), theirs, strict=True))
    return equal / sum(a.size for a in theirs)


def import_rows(timesteps: int, epochs: int, workdir: Path) -> tuple[list, dict, object]:
    """Train, export, import for each target; returns the rows, the results and the network
    imported for loihi2."""
    module = snntorch_example()
    torch.manual_seed(0)
    net = module.build()
    start = time.perf_counter()
    module.train(net, timesteps, epochs)
    train_seconds = time.perf_counter() - start
    path = workdir / "snntorch.nir"
    module.export(net, path)
    x, y = api.dataset("digits")
    hidden, output = module.simulate(net, x, timesteps)
    theirs = output.sum(0).argmax(1)
    rows = [["snnTorch (float)", "-", f"{100 * (theirs == y).mean():.2f}", "-", "-"]]
    results = {"snntorch_accuracy": float((theirs == y).mean()), "samples": len(x),
               "timesteps": timesteps, "epochs": epochs, "train_seconds": train_seconds,
               "targets": {}}
    for target in ("reference", "loihi2", "loihi"):
        imported = api.import_nir(path, target=target, dt=module.EXPORT_DT,
                                  timesteps=timesteps)
        trace = api.simulate(imported.graph, x, timesteps, record=Record.ALL)
        pred = trace.outputs.argmax(1)
        same_spikes = agreement(trace.spikes, [hidden, output])
        entry = {"accuracy": float((pred == y).mean()),
                 "same_predictions": float((pred == theirs).mean()),
                 "same_spikes": same_spikes,
                 "approximations": [a.__dict__ for a in imported.approximations]}
        results["targets"][target] = entry
        rows.append([f"imported -> {target}", "12-bit leak", f"{100 * entry['accuracy']:.2f}",
                     f"{100 * entry['same_predictions']:.2f}", f"{100 * same_spikes:.3f}"])
        if target == "loihi2":
            loihi2 = imported.graph
    return rows, results, loihi2


def netx_row(name: str, graph, samples: int, timesteps: int, workdir: Path) -> tuple[list, dict]:
    x, y = api.dataset("digits", limit=samples)
    ints = api.quantize_inputs(graph, x)
    warnings = to_netx(graph, workdir / f"{name}.net")
    start = time.perf_counter()
    netx = run_netx(workdir / f"{name}.net", ints, timesteps)
    seconds = time.perf_counter() - start
    ours = api.simulate(graph, x, timesteps, record=Record.ALL)
    ours_pred, netx_pred = ours.outputs.argmax(1), netx.outputs.argmax(1)
    entry = {"samples": samples, "timesteps": timesteps,
             "ours_accuracy": float((ours_pred == y).mean()),
             "netx_accuracy": float((netx_pred == y).mean()),
             "same_predictions": float((ours_pred == netx_pred).mean()),
             "same_spikes": agreement(ours.spikes, netx.spikes),
             "identical_outputs": bool(np.array_equal(ours.outputs, netx.outputs)),
             "netx_seconds": seconds, "warnings": warnings}
    row = [name, samples, timesteps, f"{100 * entry['ours_accuracy']:.1f}",
           f"{100 * entry['netx_accuracy']:.1f}", f"{100 * entry['same_predictions']:.1f}",
           f"{100 * entry['same_spikes']:.3f}"]
    return row, entry


def converted_mlp(timesteps: int):
    if not DIGITS_MLP.is_file():
        subprocess.run([sys.executable, str(ROOT / "examples/digits_mlp/train.py"), "--out",
                        str(DIGITS_MLP)], check=True)
    # p99.99, the default when this was written: auto's bursts are beyond netx's LIF
    return api.compile(str(DIGITS_MLP), target="loihi2", method="p99.99", calib="digits",
                       timesteps=timesteps, options=ConvertOptions(per_channel=False)).graph


def kernel_rows(repeats: int = 5) -> tuple[list, dict]:
    """The same (T, batch, neurons) currents through the fast path (converted networks) and
    the general path a leak selects."""
    rng = np.random.default_rng(0)
    currents = rng.integers(-200, 400, (16, 256, 4096)).astype(np.float32)
    base = {"theta": np.int32(300), "bias": np.int32(0), "v_init": np.int32(150),
            "theta_neg": np.int32(0)}
    timings = {}
    for label, extra in (("fast path (no leak)", {}), ("leak (decay 410)",
                                                          {"decay": np.int32(410)})):
        params = neuron.NeuronParams(**base, **extra)
        neuron.run(currents, params, keep_membranes=False)  # compile
        best = min(timed(lambda p=params: neuron.run(currents, p, keep_membranes=False))
                   for _ in range(repeats))
        timings[label] = best
    updates = currents.size
    rows = [[label, f"{1e3 * s:.1f}", f"{updates / s / 1e6:.0f}"] for label, s in timings.items()]
    return rows, {label: {"seconds": s, "neuron_updates_per_second": updates / s}
                  for label, s in timings.items()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--epochs", type=int, default=15)
    parser.add_argument("--netx-samples", type=int, default=50)
    args = parser.parse_args()
    torch.set_num_threads(2)
    with tempfile.TemporaryDirectory() as tmp:
        workdir = Path(tmp)
        rows, imported, graph = import_rows(8, args.epochs, workdir)
        print("snnTorch LIF MLP on the digits test split, T=8")
        print_table(["network", "neuron", "accuracy %", "same pred %", "same spikes %"], rows)
        netx_rows, netx = [], {}
        for name, net, steps in (("imported snnTorch", graph, 8),
                                 ("converted ReLU MLP", converted_mlp(16), 16)):
            row, netx[name] = netx_row(name.replace(" ", "_"), net, args.netx_samples, steps,
                                       workdir)
            netx_rows.append([name, *row[1:]])
    print("\nnetx export run in lava-dl vs the reference simulator")
    print_table(["network", "samples", "T", "ours %", "netx %", "same pred %",
                 "same spikes %"], netx_rows)
    krows, kernel = kernel_rows()
    print("\nneuron kernel, 16 steps x 256 samples x 4096 neurons")
    print_table(["path", "ms", "M updates/s"], krows)
    path = write_result("interop", {"import": imported, "netx": netx, "kernel": kernel})
    print(f"\nwrote {path}")


if __name__ == "__main__":
    main()
