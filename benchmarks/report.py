"""The deployment report of the Fashion-MNIST CNN per target: accuracy, per-layer error,
synaptic operations and energy per inference, cores.

    python benchmarks/report.py                       # loihi, loihi2, loihi2 + dual threshold
    python benchmarks/report.py --runs loihi2 --samples 256 --timesteps 8
    python benchmarks/report.py --model examples/fashion_resnet/model.pt --tag resnet \
        --runs loihi2:dual --method p93 --max-burst 8 --timesteps 8

A run is a target, optionally with ``:dual`` (the dual threshold, which the report's
over-firing hint suggests). Each run compiles the model (capacity checked), writes the full
report (report.json, report.md, plots) to benchmarks/results/report_<dataset>_<run>/, and the
script prints one summary table and the per-layer tables and writes
benchmarks/results/report_<dataset>.json (report_<dataset>_<tag>.json and
report_<dataset>_<tag>_<run>/ with ``--tag``, so reports of other models sit beside it).
"""

from __future__ import annotations

import argparse
import time

from common import RESULTS, ROOT, print_table, repo_relative, write_result

from neurodeploy import api
from neurodeploy.convert import ConvertOptions
from neurodeploy.report.build import build_report
from neurodeploy.report.reference import ModelReference


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default=str(ROOT / "examples/fashion_cnn/model.pt"))
    parser.add_argument("--dataset", default="fashion-mnist")
    parser.add_argument("--runs", default="loihi,loihi2,loihi2:dual")
    parser.add_argument("--method", default="p99.99")
    parser.add_argument("--max-burst", type=int, default=1, help="spikes per step (loihi2)")
    parser.add_argument("--tag", help="name of this model's results (default: none)")
    parser.add_argument("--timesteps", type=int, default=4)
    parser.add_argument("--samples", type=int, default=1000, help="first N test samples")
    args = parser.parse_args()
    x, y = api.dataset(args.dataset, limit=args.samples)
    runs, rows = {}, []
    stem = f"report_{args.dataset}" + (f"_{args.tag}" if args.tag else "")
    label = repo_relative(args.model)  # the reports name the model as every clone has it
    for run in args.runs.split(","):
        target, _, option = run.partition(":")
        compiled = api.compile(args.model, target=target, method=args.method,
                               calib=args.dataset, timesteps=args.timesteps,
                               options=ConvertOptions(dual=option == "dual",
                                                      max_burst=args.max_burst))
        start = time.perf_counter()
        report = build_report(compiled.graph, x, y, target=compiled.target,
                              reference=ModelReference(compiled.ann, compiled.graph,
                                                       f"the float model {label}"),
                              network=f"{label} -> {run}", dataset=args.dataset)
        seconds = time.perf_counter() - start
        report.write(RESULTS / f"{stem}_{run.replace(':', '_')}")
        data = report.data
        ops, capacity = data["operations"], data["capacity"]
        runs[run] = {"report_seconds": seconds, "compile_seconds": compiled.seconds,
                     "report": data}
        rows.append([run, f"{100 * data['accuracy']['snn'][str(args.timesteps)]:.2f}",
                     f"{100 * data['accuracy']['ann']:.2f}", f"{ops['synops']:.4g}",
                     f"{ops['neuron_updates']:.4g}", f"{ops['energy_pj'] * 1e-6:.2f}",
                     f"{ops['ann_macs']:.4g}",
                     f"{capacity['cores_used']}/{capacity['limits']['cores']}",
                     f"{seconds:.1f}"])
    print(f"{args.dataset}: first {len(x)} test samples, method {args.method}, "
          f"max burst {args.max_burst}, T={args.timesteps}; ANN = the float model")
    print_table(["run", "SNN %", "ANN %", "synops/inf", "neuron upd/inf", "energy uJ/inf",
                 "ANN MACs", "cores", "report s"], rows)
    for name, run in runs.items():
        print(f"\n{name}: per layer")
        print_table(["population", "neurons", "rate", "corr", "rel. error", "synops/inf",
                     "energy uJ", "cores", "hints"],
                    [[layer["population"], layer["neurons"],
                      "-" if layer["activity"] is None else
                      f"{layer['activity']['firing_rate']:.3f}",
                      f"{layer['ann_vs_snn']['correlation']:.3f}",
                      f"{layer['ann_vs_snn']['relative_mae']:.3f}",
                      f"{layer['operations']['synops']:.4g}",
                      f"{layer['operations']['energy_pj'] * 1e-6:.2f}", layer["cores"],
                      len(layer["hints"])] for layer in run["report"]["layers"]])
    path = write_result(stem, {
        "model": args.model, "dataset": args.dataset, "samples": len(x),
        "method": args.method, "max_burst": args.max_burst, "timesteps": args.timesteps,
        "targets": runs})
    print(f"written {path} and {RESULTS}/{stem}_<run>/")


if __name__ == "__main__":
    main()
