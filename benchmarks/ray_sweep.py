"""A sweep over methods and windows sharded on Ray: seconds for the accuracy benchmark's
compiles in one process and on a local Ray of 1 and 2 workers, the speed-up, and whether
every result is the one-process one.

    python benchmarks/ray_sweep.py
    python benchmarks/ray_sweep.py --methods p99.99,calibrate,ftbc,adafire --timesteps 1,2,4,8

The network is the digits MLP example (benchmarks/common.py, cached), compiled for loihi2
once per method (and per window for a window-specific method, as benchmarks/accuracy.py does:
each compile is one Ray task, ``shard_size=1``) and evaluated on the digits test split. Each
configuration runs in its own process: 0 workers is the plain run (no Ray), N workers a
local Ray started for the run, whose start-up is counted in the sweep's seconds and also
given separately. The speed-up is the one-process time over the N-worker time. This machine
has 2 cores: the compiles are independent CPU work, so two workers can at most halve it.
Writes benchmarks/results/ray_sweep.json.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import time

from accuracy import Unit, measure_units, method_units
from common import (
    CACHE,
    digits_network,
    importable_in_ray_workers,
    print_table,
    run_child,
    write_result,
)

from neurodeploy import api
from neurodeploy.shards import Workers, ray_session, run_sharded

MODEL = CACHE / "digits_mlp.pt"


def sweep_units(methods: list[str], steps: list[int]) -> list[Unit]:
    """One compile per method, or per window for a window-specific one."""
    return [unit for method in methods
            for unit in method_units(method, method, str(MODEL), "channel", steps)]


def child(workers: int, methods: str, timesteps: str) -> dict:
    """The sweep in this process (0 workers) or on a local Ray of ``workers``."""
    units = sweep_units(methods.split(","), [int(t) for t in timesteps.split(",")])
    x, y = api.dataset("digits")
    counted = list(range(50))
    shards = Workers(count=workers or None)
    importable_in_ray_workers()
    begin = time.perf_counter()
    with ray_session(shards) if workers else contextlib.nullcontext():
        ready = time.perf_counter()
        measured = run_sharded(measure_units, len(units), (units, "loihi2", "digits", x, y,
                                                           counted),
                               shards, shard_size=1, show_progress=False)
    end = time.perf_counter()
    results = [entry for shard in measured for entry in shard]
    return {"seconds": end - begin, "ray_start_seconds": ready - begin,
            "compiles": len(units),
            "accuracy": {f"{u.method}@{u.compiled_at}": r["accuracy"]
                         for u, r in zip(units, results, strict=True)}}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--methods", default="p99.99,calibrate,ftbc,adafire")
    parser.add_argument("--timesteps", default="1,2,4,8")
    parser.add_argument("--workers", default="0,1,2")
    parser.add_argument("--child", nargs=3, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        workers, methods, timesteps = args.child
        print(json.dumps(child(int(workers), methods, timesteps)))
        return
    digits_network()
    runs = []
    for workers in (int(w) for w in args.workers.split(",")):
        run, _ = run_child(__file__, workers, args.methods, args.timesteps)
        runs.append({"workers": workers, **run})
        print(json.dumps({k: v for k, v in runs[-1].items() if k != "accuracy"}), flush=True)
    alone = runs[0]
    for run in runs:
        run["speedup"] = alone["seconds"] / run["seconds"]
        run["identical_to_one_process"] = run["accuracy"] == alone["accuracy"]
    print_table(["workers", "compiles", "sweep s", "Ray start s", "speed-up", "identical"],
                [["1 process" if r["workers"] == 0 else r["workers"], r["compiles"],
                  f"{r['seconds']:.1f}", f"{r['ray_start_seconds']:.1f}",
                  f"{r['speedup']:.2f}", r["identical_to_one_process"]] for r in runs])
    write_result("ray_sweep", {"model": "examples/digits_mlp (benchmarks/cache)",
                               "dataset": "digits", "target": "loihi2",
                               "methods": args.methods.split(","),
                               "timesteps": [int(t) for t in args.timesteps.split(",")],
                               "runs": runs})


if __name__ == "__main__":
    main()
