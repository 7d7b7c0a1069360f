"""Ctrl-C and SIGTERM during `neurodeploy verify` on Lava: exit codes, time to exit, leftovers.

    python benchmarks/interrupts.py [--repeats 2] [--samples 2000]

Each run verifies a small digits network on Lava (random inputs, ``--samples`` of them, a
run of tens of seconds) and is signalled at one stage: at startup (imports, reference run),
while Lava's runtime starts its worker processes, or while it runs. The signal goes to the
process group (Ctrl-C in a terminal) or to the command's process (``kill``). Recorded per
run (tests/interrupts.py): the exit code (130 expected; none = still running after 60 s), the
seconds from the signal to the exit (most of them are the interpreter's own teardown, about
1.5 s for torch alone on this machine), the processes still alive 5 s after the exit and the
shared-memory segments of the run that still exist. Writes benchmarks/results/interrupts.json.
"""

from __future__ import annotations

import argparse
import signal
import sys
import tempfile
from pathlib import Path

import torch
from common import ROOT, print_table, write_result
from torch import nn

from neurodeploy import api

sys.path.insert(0, str(ROOT))  # the harness is shared with the tests

from tests.interrupts import STAGES, interrupt

SIGNALS = [(signal.SIGINT, True), (signal.SIGINT, False), (signal.SIGTERM, False),
           (signal.SIGTERM, True)]


def digits_network(directory: Path) -> Path:
    """An untrained 64-48-10 MLP compiled for loihi: exactness is not what is measured."""
    torch.manual_seed(0)
    model = nn.Sequential(nn.Flatten(), nn.Linear(64, 48), nn.ReLU(), nn.Linear(48, 10))
    torch.jit.save(torch.jit.script(model), str(directory / "model.pt"))
    out = directory / "model.nir"
    api.save(api.compile(directory / "model.pt", target="loihi", calib="digits", timesteps=4,
                         input_shape=(1, 8, 8), show_progress=False).graph, out)
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=1)
    parser.add_argument("--samples", type=int, default=2000)
    args = parser.parse_args()
    runs = []
    with tempfile.TemporaryDirectory() as tmp:
        network = digits_network(Path(tmp))
        for stage in STAGES:
            for signum, to_group in SIGNALS:
                for _ in range(args.repeats):
                    outcome = interrupt(["verify", str(network), "--samples", str(args.samples)],
                                        stage=stage, signum=signum, to_group=to_group,
                                        timeout=60.0)
                    print(f"{stage:<17} {outcome.signal} to {outcome.to:<7} exit "
                          f"{outcome.exit_code} after {outcome.seconds_to_exit:.2f} s, left "
                          f"{len(outcome.left_processes)} processes, "
                          f"{len(outcome.left_segments)} segments", flush=True)
                    runs.append(outcome.as_dict())
    rows = []
    for stage in STAGES:
        for signum, to_group in SIGNALS:
            group = [r for r in runs if r["stage"] == stage and r["signal"] == signum.name
                     and r["to"] == ("group" if to_group else "process")]
            rows.append([stage, signum.name, group[0]["to"], len(group),
                         sum(r["exit_code"] == 130 for r in group),
                         max(r["seconds_to_exit"] for r in group),
                         sum(len(r["left_processes"]) for r in group),
                         sum(len(r["left_segments"]) for r in group)])
    print()
    print_table(["stage", "signal", "to", "runs", "exit 130", "worst s", "left processes",
                 "left segments"], rows)
    summary = {"runs": len(runs), "exit_130": sum(r["exit_code"] == 130 for r in runs),
               "hangs": sum(r["exit_code"] is None for r in runs),
               "worst_seconds_to_exit": max(r["seconds_to_exit"] for r in runs),
               "left_processes": sum(len(r["left_processes"]) for r in runs),
               "left_segments": sum(len(r["left_segments"]) for r in runs)}
    print(f"\n{summary}")
    path = write_result("interrupts", {"samples": args.samples, "summary": summary,
                                       "runs": runs})
    print(f"wrote {path.relative_to(ROOT)}")


if __name__ == "__main__":
    main()
