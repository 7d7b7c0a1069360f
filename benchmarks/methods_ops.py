"""Training-free methods on the Fashion-MNIST CNN: accuracy, synaptic operations, early exit.

    python benchmarks/methods_ops.py        # p99.99, calibrate_light, calibrate, ftbc,
                                            # calibrate+ftbc, adafire, adafire+iat
                                            # at T = 1, 2, 4, 8 on loihi2

For each method and window T the model is compiled for that T (the rounding shift, the
corrections and the bias tables are T-specific), then the whole test split runs on the
reference simulator, which counts every synaptic operation (a graded spike is one event):
accuracy always on the whole test split, operations on its first ``--count-samples`` (2000)
samples (counting doubles a run's cost). A ``+iat`` method is evaluated with its early exit
from the same runs; the operations of a sample that stops at step t are those of a t-step
window, counted by running it for t steps. ``X`` and ``X+iat`` compile to the same network
(iat only adds the exit thresholds), so when both are asked for, ``X`` is the ``X+iat``
network run for its whole window. Writes
benchmarks/results/methods_ops_<dataset>_<target>.json and the plot docs/methods_ops.png
(accuracy against synaptic operations per inference).
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np
from common import ROOT, compile_checked, measure, plot_accuracy_vs_ops, print_table, write_result

from neurodeploy import api
from neurodeploy.core.meta import SYNAPSE_TYPES, get_graph_meta
from neurodeploy.frontend import load_model
from neurodeploy.operations import ann_macs as operation_count
from neurodeploy.targets import load_target

IAT = "+iat"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default=str(ROOT / "examples/fashion_cnn/model.pt"))
    parser.add_argument("--dataset", default="fashion-mnist")
    parser.add_argument("--target", default="loihi2")
    parser.add_argument("--methods",
                        default="p99.99,calibrate_light,calibrate,ftbc,calibrate+ftbc,adafire,"
                                "adafire+iat")
    parser.add_argument("--timesteps", default="1,2,4,8")
    parser.add_argument("--limit", type=int, help="evaluate only the first N test samples")
    parser.add_argument("--count-samples", type=int, default=2000,
                        help="count synaptic operations on the first N test samples "
                             "(accuracy always uses the whole split)")
    parser.add_argument("--plot", default=str(ROOT / "docs/methods_ops.png"))
    parser.add_argument("--from-json", help="recompute the goals and the plot from a results "
                                            "file of this script (no simulation)")
    args = parser.parse_args()
    if args.from_json:
        _rerender(args)
        return
    steps = [int(t) for t in args.timesteps.split(",")]
    methods = args.methods.split(",")
    target = load_target(args.target)
    x, y = api.dataset(args.dataset, limit=args.limit)
    results: dict[str, dict] = {m: {"points": {}} for m in methods}
    counted = np.arange(min(args.count_samples, len(x)))
    ann_acc = api.ann_accuracy(load_model(args.model, input_shape=tuple(x.shape[1:])), x, y)
    macs = 0
    for method in methods:
        if method + IAT in methods:
            continue  # measured from the +iat network below
        for t in steps:
            start = time.perf_counter()
            compiled, saturation = compile_checked(args.model, target=target, method=method,
                                                   calib=args.dataset, timesteps=t)
            seconds = time.perf_counter() - start
            macs = macs or sum(operation_count(node) for node in compiled.graph.nodes.values()
                               if isinstance(node, SYNAPSE_TYPES))
            notes = _short(get_graph_meta(compiled.graph).notes)
            full, early = measure(compiled.graph, x, y, t, counted, method.endswith(IAT))
            point = {**full, "compile_seconds": seconds, "allow_saturation": saturation,
                     "stage_notes": notes}
            plain = method.removesuffix(IAT)
            if plain != method and plain in methods:
                results[plain]["points"][str(t)] = point
            results[method]["points"][str(t)] = {**point, **early}
            print(f"{method} T={t}: {100 * point['accuracy']:.2f}% "
                  f"{point['synops'] / 1e6:.2f} M synops, {seconds:.0f} s compile"
                  + (f"; early exit {100 * early['accuracy']:.2f}% at "
                     f"{early['mean_timesteps']:.2f} steps" if early else ""), flush=True)
        _write(args, results, steps, ann_acc, target, len(x), len(counted), macs)
    _print(results, steps, ann_acc, macs)
    goals = _write(args, results, steps, ann_acc, target, len(x), len(counted), macs)
    for line in goals["lines"]:
        print(line)
    print(f"written benchmarks/results/methods_ops_{args.dataset}_{args.target}.json and "
          f"{args.plot}")


def _rerender(args) -> None:
    """Goals, table and plot again from a results file (e.g. after changing a goal check)."""
    data = json.loads(Path(args.from_json).read_text())
    args.dataset, args.target = data["dataset"], data["target"]
    data["goals"] = _goals(data["methods"], data["timesteps"], data["ann_accuracy"])
    _print(data["methods"], data["timesteps"], data["ann_accuracy"], data["ann_macs"])
    for line in data["goals"]["lines"]:
        print(line)
    plot_accuracy_vs_ops(data["methods"], data["ann_accuracy"], Path(args.plot), _title(args))
    Path(args.from_json).write_text(json.dumps(data, indent=2))


def _write(args, results, steps, ann_acc, target, samples, counted, macs) -> dict:
    """Results so far (JSON and plot), rewritten after every method."""
    done = {m: r for m, r in results.items() if len(r["points"]) == len(steps)}
    goals = _goals(done, steps, ann_acc)
    plot_accuracy_vs_ops(done, ann_acc, Path(args.plot), _title(args))
    write_result(f"methods_ops_{args.dataset}_{args.target}", {
        "model": args.model, "dataset": args.dataset, "samples": samples,
        "operations_counted_on_first": counted, "target": args.target, "timesteps": steps,
        "ann_accuracy": ann_acc, "ann_macs": macs, "energy_source": target.energy.source,
        "methods": done, "goals": goals})
    return goals


def _title(args) -> str:
    return f"{args.dataset} CNN on {args.target}: accuracy vs synaptic operations"


def _short(notes: dict) -> dict:
    """The stages' choices worth keeping in the result (no large tables)."""
    keep = {"calibrate": ("seconds",), "calibrate_light": ("seconds",), "ftbc": ("seconds",),
            "iat": ("thresholds", "calibration_images", "seconds"),
            "adafire": ("max_burst", "threshold_scale", "seconds")}
    out = {}
    for stage, fields in keep.items():
        if stage in notes:
            out[stage] = {f: _plain(notes[stage][f]) for f in fields if f in notes[stage]}
    return out


def _plain(value):
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    return np.asarray(value).tolist()


def _print(results: dict, steps: list[int], ann_acc: float, ann_macs: int) -> None:
    headers = ["method", "T", "accuracy %", "vs ANN", "synops/sample", "energy uJ",
               "mean T", "compile s"]
    rows = []
    for method, result in results.items():
        for t in steps:
            p = result["points"][str(t)]
            rows.append([method, t, f"{100 * p['accuracy']:.2f}",
                         f"{100 * (p['accuracy'] - ann_acc):+.2f}", f"{p['synops']:.3g}",
                         f"{p['energy_pj'] * 1e-6:.2f}",
                         f"{p['mean_timesteps']:.2f}" if "mean_timesteps" in p else "-",
                         f"{p['compile_seconds']:.0f}"])
    print(f"float ANN: {100 * ann_acc:.2f}%, {ann_macs:.3g} MACs per sample")
    print_table(headers, rows)


def _goals(results: dict, steps: list[int], ann_acc: float) -> dict:
    """The issue's acceptance figures, computed from the measured points."""
    lines, goals = [], {}

    def acc(method, t):
        return results[method]["points"][str(t)]["accuracy"]

    for method in ("calibrate", "calibrate_light", "ftbc", "calibrate+ftbc"):
        if method in results and 4 in steps:
            gap = 100 * (ann_acc - acc(method, 4))
            goals[f"{method}_T4_gap_points"] = gap
            lines.append(f"goal {method} at T=4 within 1 point of the ANN: {gap:.2f} points "
                         f"-> {'met' if gap <= 1 else 'missed'}")
    single = [m for m in results if not m.startswith("adafire")]
    if "adafire" in results and single:
        for t in steps:
            best = max(single, key=lambda m: acc(m, t))
            mine, theirs = (results["adafire"]["points"][str(t)],
                            results[best]["points"][str(t)])
            fewer = 1 - mine["synops"] / theirs["synops"]
            frontier = _single_spike_accuracy(results, single, steps, mine["synops"])
            better = mine["accuracy"] > frontier
            met = (mine["accuracy"] >= theirs["accuracy"] and fewer >= 0.4) or better
            goals[f"adafire_T{t}"] = {"best_single": best, "synops_reduction": fewer,
                                      "accuracy_delta_points": 100 * (mine["accuracy"]
                                                                      - theirs["accuracy"]),
                                      "single_spike_accuracy_at_equal_synops": frontier,
                                      "met": met}
            lines.append(f"goal adafire T={t}: {100 * mine['accuracy']:.2f}% vs best single-"
                         f"spike {best} {100 * theirs['accuracy']:.2f}% at T={t} "
                         f"({mine['synops'] / theirs['synops']:.2f}x its synops); single-spike "
                         f"methods at equal "
                         f"synops reach {100 * frontier:.2f}% -> {'met' if met else 'missed'}")
    if "adafire+iat" in results and "adafire" in results:
        for t in steps:
            early, full = (results["adafire+iat"]["points"][str(t)],
                           results["adafire"]["points"][str(t)])
            cut = 1 - early["mean_timesteps"] / t
            loss = 100 * (full["accuracy"] - early["accuracy"])
            met = cut >= 0.3 and loss <= 0.2
            goals[f"iat_T{t}"] = {"timestep_cut": cut, "accuracy_loss_points": loss, "met": met}
            lines.append(f"goal iat T={t}: mean {early['mean_timesteps']:.2f} steps "
                         f"({100 * cut:.0f}% fewer), accuracy loss {loss:.2f} points -> "
                         f"{'met' if met else 'missed'}")
    return {"lines": lines, **goals}


def _single_spike_accuracy(results: dict, single: list[str], steps: list[int],
                           synops: float) -> float:
    """Best accuracy the single-spike methods reach (any method, any T) at ``synops`` per
    sample: their accuracy-vs-operations frontier, interpolated in log(synops) between the
    points around it (the best point when ``synops`` lies beyond them)."""
    points = sorted((p["synops"], p["accuracy"]) for m in single for s in steps
                    for p in [results[m]["points"][str(s)]])
    frontier: list[tuple[float, float]] = []
    for ops, accuracy in points:
        if not frontier or accuracy > frontier[-1][1]:
            frontier.append((ops, accuracy))
    below = [f for f in frontier if f[0] <= synops]
    above = [f for f in frontier if f[0] > synops]
    if not below:
        return 0.0
    if not above:
        return below[-1][1]
    (x0, y0), (x1, y1) = below[-1], above[0]
    share = (np.log(synops) - np.log(x0)) / (np.log(x1) - np.log(x0))
    return float(y0 + share * (y1 - y0))



if __name__ == "__main__":
    main()
