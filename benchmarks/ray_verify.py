"""Lava verification sharded on Ray: seconds for 20 digits samples in one process and on a
local Ray of 1 and 2 workers, and the speed-up.

    python benchmarks/ray_verify.py
    python benchmarks/ray_verify.py --samples 20 --workers 0,1,2

The network is the digits MLP example compiled for loihi2 at T=4 (benchmarks/common.py,
cached); the samples are the first digits test images. Each configuration runs in its own
process: 0 workers is the plain one-process run (no Ray), N workers a local Ray started for
the run (``neurodeploy.shards``). Each first verifies two samples (warm-up: imports, compiled
kernels, Lava's first start in each worker), then times ``Deployment.verify`` of the samples
``--repeats`` times and keeps the fastest; Ray's start-up is given separately. The speed-up
is the one-process time over the N-worker time. This machine has 2 cores, shared with other jobs:
wall-clock times also measure them.
Writes benchmarks/results/ray_verify.json.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import subprocess
import sys
import time

from common import digits_network, print_table, write_result


def child(samples: int, workers: int, repeats: int) -> dict:
    """Verify runs in this process: a warm-up on two samples (imports, compiled kernels, Lava's
    first start in every worker), then ``repeats`` timed runs of ``samples``."""
    from neurodeploy import api
    from neurodeploy.shards import Workers, ray_session

    deployment = api.load(digits_network())
    x = api.dataset("digits", limit=samples)[0]
    shards = Workers(count=workers or None)
    begin = time.perf_counter()
    with ray_session(shards) if workers else contextlib.nullcontext():
        ready = time.perf_counter()
        deployment.verify(x[:2], backend="lava", workers=shards)
        times = []
        for _ in range(repeats):
            start = time.perf_counter()
            result = deployment.verify(x, backend="lava", workers=shards)
            times.append(time.perf_counter() - start)
    return {"seconds": min(times), "all_seconds": times, "ray_start_seconds": ready - begin,
            "bit_exact": result.bit_exact, "values": result.comparison.values}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--samples", type=int, default=20)
    parser.add_argument("--workers", default="0,1,2")
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--child", nargs=3, type=int, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        print(json.dumps(child(*args.child)))
        return
    digits_network()
    runs = []
    for workers in (int(w) for w in args.workers.split(",")):
        done = subprocess.run([sys.executable, __file__, "--child", str(args.samples),
                               str(workers), str(args.repeats)], capture_output=True, text=True,
                              check=False)
        if done.returncode != 0:
            raise RuntimeError(f"{workers} workers failed:\n{done.stderr[-3000:]}")
        run = {"workers": workers, **json.loads(done.stdout.strip().splitlines()[-1])}
        print(json.dumps(run), flush=True)
        runs.append(run)
    alone = next(r["seconds"] for r in runs if r["workers"] == 0)
    for run in runs:
        run["speedup"] = alone / run["seconds"]
    print_table(["workers", "verify s", "Ray start s", "speed-up", "bit-exact"],
                [["1 process" if r["workers"] == 0 else r["workers"], f"{r['seconds']:.1f}",
                  f"{r['ray_start_seconds']:.1f}", f"{r['speedup']:.2f}", r["bit_exact"]]
                 for r in runs])
    write_result("ray_verify", {"samples": args.samples, "backend": "lava", "timesteps": 4,
                                "repeats": args.repeats, "runs": runs})


if __name__ == "__main__":
    main()
