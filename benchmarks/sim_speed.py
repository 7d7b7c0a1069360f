"""Reference simulator throughput against a plain float PyTorch loop and against Lava.

    python benchmarks/sim_speed.py [--model examples/fashion_cnn/model.pt] [--batch 500] [-T 8]

The float loop is how SNNs are usually simulated: for each step, run every layer on that
step's spikes and update float membranes (single-spike IF, reset by subtraction). It uses the
compiled network's own integer weights and thresholds as float32, so both compute the same
network (the script checks that their predictions agree). Throughput is samples x timesteps
per second; the ratios are measured in one run on the same inputs.

Lava (lava-nc's bit-accurate CPU simulation) steps one sample at a time through a pipeline of
OS processes, so it runs the first ``--lava-samples`` inputs of the same batch in one session;
its throughput counts stepping only, and its setup (compile + starting the processes) is
reported apart. Its outputs must equal the reference's on those samples.
"""

from __future__ import annotations

import argparse
import time

import nir
import numpy as np
import torch
import torch.nn.functional as F
from common import ROOT, print_table, write_result

from neurodeploy import api
from neurodeploy.backends import Record, get_backend
from neurodeploy.core.graph import predecessors, readout_name, topological_order
from neurodeploy.core.meta import population_meta
from neurodeploy.core.population import param_for_shape


def float_loop(graph: nir.NIRGraph, x: np.ndarray, timesteps: int) -> np.ndarray:
    """Step-by-step float32 SNN simulation of a single-spike network; returns readout v."""
    preds = predecessors(graph)
    order = topological_order(graph)
    params = {}
    for name in order:
        node = graph.nodes[name]
        if isinstance(node, nir.IF | nir.I):
            meta = population_meta(graph, name)
            shape = tuple(int(d) for d in node.input_type["input"])

            def p(v, shape=shape):
                return torch.as_tensor(param_for_shape(np.asarray(v, np.float32), shape))

            params[name] = (p(meta.theta), p(meta.bias), p(meta.v_init), meta.fires)
    weights = {n: torch.as_tensor(np.asarray(graph.nodes[n].weight, np.float32))
               for n in order if isinstance(graph.nodes[n], nir.Linear | nir.Conv2d)}
    inputs = torch.as_tensor(x, dtype=torch.float32)
    state: dict[str, torch.Tensor] = {}
    with torch.no_grad():
        for _ in range(timesteps):
            values: dict[str, torch.Tensor] = {}
            for name in order:
                node = graph.nodes[name]
                ins = [values[p] for p in preds[name]]
                if isinstance(node, nir.Input):
                    values[name] = inputs
                elif isinstance(node, nir.Linear):
                    values[name] = ins[0] @ weights[name].T
                elif isinstance(node, nir.Conv2d):
                    values[name] = F.conv2d(ins[0], weights[name], None, tuple(node.stride),
                                            tuple(node.padding), tuple(node.dilation), node.groups)
                elif isinstance(node, nir.SumPool2d):
                    values[name] = F.avg_pool2d(ins[0], tuple(node.kernel_size),
                                                tuple(node.stride), divisor_override=1)
                elif isinstance(node, nir.Flatten):
                    values[name] = ins[0].flatten(1)
                elif isinstance(node, nir.IF | nir.I):
                    theta, bias, v_init, fires = params[name]
                    v = state.get(name, v_init.expand_as(ins[0])) + ins[0] + bias
                    spikes = (v >= theta).float() if fires else v * 0
                    state[name] = v - spikes * theta
                    values[name] = spikes
                else:
                    values[name] = ins[0]
    return state[readout_name(graph)].numpy()


def throughput(fn, samples: int, timesteps: int, repeats: int) -> tuple[float, object]:
    fn()  # warm-up
    best = float("inf")
    for _ in range(repeats):
        start = time.perf_counter()
        result = fn()
        best = min(best, time.perf_counter() - start)
    return samples * timesteps / best, result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default=str(ROOT / "examples/fashion_cnn/model.pt"))
    parser.add_argument("--dataset", default="fashion-mnist")
    parser.add_argument("--target", default="loihi")
    parser.add_argument("--batch", type=int, default=500)
    parser.add_argument("-T", "--timesteps", type=int, default=8)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--lava-samples", type=int, default=10)
    args = parser.parse_args()
    torch.set_num_threads(2)
    compiled = api.compile(args.model, target=args.target, calib=args.dataset,
                           timesteps=args.timesteps)
    images, _ = api.dataset(args.dataset, limit=args.batch)
    x = api.quantize_inputs(compiled.graph, images)
    reference = get_backend("reference")
    ref_speed, trace = throughput(
        lambda: reference.run(compiled.graph, x, args.timesteps, record=Record.OUTPUT),
        len(x), args.timesteps, args.repeats)
    loop_speed, loop_v = throughput(lambda: float_loop(compiled.graph, x, args.timesteps),
                                    len(x), args.timesteps, args.repeats)
    agree = bool(np.array_equal(trace.outputs, loop_v.astype(np.int64)))
    lava = get_backend("lava")
    lava_trace = lava.run(compiled.graph, x[:args.lava_samples], args.timesteps)
    lava_speed = len(lava_trace.outputs) * args.timesteps / lava.last_run_seconds
    lava_agree = bool(np.array_equal(lava_trace.outputs, trace.outputs[:args.lava_samples]))
    ratio = ref_speed / loop_speed
    rows = [["reference (exact int)", f"{ref_speed:,.0f}", "1.00"],
            ["float PyTorch loop", f"{loop_speed:,.0f}", f"{ref_speed / loop_speed:.2f}"],
            ["Lava fixed_pt", f"{lava_speed:,.1f}", f"{ref_speed / lava_speed:,.0f}"]]
    print(f"{args.model}: batch {len(x)} (Lava: {len(lava_trace.outputs)}), T={args.timesteps}, "
          f"{torch.get_num_threads()} threads; float loop outputs identical: {agree}, Lava "
          f"outputs identical: {lava_agree}")
    print_table(["simulator", "samples*steps/s", "reference speed / this"], rows)
    print(f"reference / float loop speed ratio: {ratio:.2f} (goal >= {1 / 1.5:.2f})")
    print(f"reference / Lava speed ratio: {ref_speed / lava_speed:,.0f} (goal >= 1000); Lava "
          f"setup {lava.last_setup_seconds:.2f} s for {lava.last_processes} processes, run "
          f"{lava.last_run_seconds:.2f} s for {lava.last_steps} steps")
    path = write_result("sim_speed", {
        "model": args.model, "batch": len(x), "timesteps": args.timesteps,
        "reference_samples_steps_per_s": ref_speed, "float_loop_samples_steps_per_s": loop_speed,
        "reference_over_float_loop": ratio, "outputs_identical": agree,
        "lava_samples": len(lava_trace.outputs), "lava_samples_steps_per_s": lava_speed,
        "reference_over_lava": ref_speed / lava_speed, "lava_outputs_identical": lava_agree,
        "lava_setup_seconds": lava.last_setup_seconds, "lava_run_seconds": lava.last_run_seconds,
        "lava_steps": lava.last_steps, "lava_processes": lava.last_processes,
        "compile_seconds": compiled.seconds})
    print(f"compile time (excluding data loading): {compiled.seconds:.2f} s")
    print(f"written {path}")


if __name__ == "__main__":
    main()
