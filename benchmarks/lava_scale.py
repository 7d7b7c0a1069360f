"""Lava seconds per sample-step on real-scale networks, each run verified bit-exact.

    python benchmarks/lava_scale.py                         # VGG-11 and ResNet-18, T=2, 1 sample
    python benchmarks/lava_scale.py --models resnet18 --samples 2

The VGG-11 and ResNet-18 shapes on 3x32x32 (tests/models.py via compile_speed.py: random
weights, BatchNorm statistics gathered on 256 seeded random images) compiled with p99.99 for
a multi-chip Loihi 2 system (VGG-11 needs more cores than one chip has), then the first
``--samples`` of those images run on Lava (lava-nc's bit-accurate CPU simulation) and on the
reference simulator, every spike, membrane and output compared. Each model runs in its own
process. Seconds per sample-step are Lava's stepping time over samples x T, as in
sim_speed.py; a run of few samples also pays the pipeline fill (one Lava step per synapse
layer), so the time per Lava step is given too, and Lava's setup (compiling the process
network and forking one OS process per Lava process) separately. CPU seconds count this
process and the Lava workers it reaps (user + system): on a shared machine wall-clock time
also measures the other jobs. Writes benchmarks/results/lava_scale.json.
"""

from __future__ import annotations

import time

from common import ROOT, cpu_seconds, per_model_arguments, print_table, run_child, write_result
from compile_speed import shape_model

TARGET = "loihi2-kapoho-point"
MODELS = ("vgg11", "resnet18")


def child(model: str, timesteps: int, samples: int) -> dict:
    """Compile ``model``, run it on the reference and on Lava, compare; times and sizes."""
    from neurodeploy import api
    from neurodeploy.backends import Record, get_backend
    from neurodeploy.verify import compare

    path, calib = shape_model(model)
    result = api.compile(path, target=TARGET, method="p99.99", calib=calib,
                         timesteps=timesteps, allow_saturation=True, show_progress=False)
    inputs = api.quantize_inputs(result.graph, calib[:samples])
    expected = get_backend("reference").run(result.graph, inputs, timesteps, record=Record.ALL)
    lava = get_backend("lava")
    cpu, start = cpu_seconds(), time.perf_counter()
    actual = lava.run(result.graph, inputs, timesteps, record=Record.ALL)
    wall, cpu = time.perf_counter() - start, cpu_seconds() - cpu
    comparison = compare(result.graph, expected, actual)
    cores = result.meta.cores_used
    return {"target": TARGET, "chips_used": -(-cores // result.target.limits.cores),
            "cores_used": cores,
            "neurons": comparison.neurons, "populations": comparison.populations,
            "lava_processes": lava.last_processes, "lava_steps": lava.last_steps,
            "setup_seconds": lava.last_setup_seconds, "run_seconds": lava.last_run_seconds,
            "wall_seconds": wall, "cpu_seconds": cpu,
            "seconds_per_sample_step": lava.last_run_seconds / (samples * timesteps),
            "seconds_per_lava_step": lava.last_run_seconds / lava.last_steps,
            "values_compared": comparison.values, "bit_exact": comparison.divergence is None,
            "divergence": str(comparison.divergence) if comparison.divergence else None}


def main() -> None:
    args = per_model_arguments(__doc__, MODELS, timesteps=2, samples=1, child=child)
    if args is None:
        return
    results, rows = {}, []
    for model in args.models.split(","):
        r, seconds = run_child(__file__, model, args.timesteps, args.samples)
        print(f"{model}: {r['run_seconds']:.0f} s stepping, {r['setup_seconds']:.0f} s setup, "
              f"bit-exact {r['bit_exact']} ({seconds:.0f} s with compiling)", flush=True)
        results[model] = r
        rows.append([model, f"{r['chips_used']} / {r['cores_used']}", r["neurons"],
                     r["lava_processes"], r["lava_steps"], f"{r['setup_seconds']:.1f}",
                     f"{r['seconds_per_lava_step']:.2f}", f"{r['seconds_per_sample_step']:.2f}",
                     f"{r['cpu_seconds']:.0f}", f"{r['values_compared']:,}",
                     "yes" if r["bit_exact"] else "NO"])
    print(f"Lava fixed_pt on {TARGET} networks, T={args.timesteps}, {args.samples} sample(s)")
    print_table(["model", "chips / cores", "neurons", "processes", "Lava steps", "setup s",
                 "s / Lava step", "s / sample-step", "CPU s", "values compared", "bit-exact"],
                rows)
    path = write_result("lava_scale", {"timesteps": args.timesteps, "samples": args.samples,
                                       "method": "p99.99", "results": results})
    print(f"wrote {path.relative_to(ROOT)}")
    if not all(r["bit_exact"] for r in results.values()):
        raise SystemExit("Lava diverged from the reference simulator")


if __name__ == "__main__":
    main()
